/**
 * Inpainting as a per-step correction of the solver state, compiled into the plan.
 *
 * The authors' sample(..., correcting_xt_fn) (SciRE-Solver's scire_solver.py and DPM-Solver's
 * dpm_solver_pytorch.py) calls correcting_xt_fn(x, t, step) on the state after every step,
 * right before the state is recorded by return_intermediate: so exactly at the states a plan
 * marks (plan.states, lib/plan.ts). Inpainting is the correction
 *
 *   x_t <- m * (alpha_t x0 + sigma_t z) + (1 - m) * x_t
 *
 * (m: the mask, 1 where x0 is known; z: the run's starting noise). A plan keeps its state as
 * x_t = scale * R[reg] (SciRE: y = x/alpha_t or x/sigma_t), so in register units the
 * correction is  R <- (1 - m) R + m (a x0 + s z)  with a = alpha_t / scale, s = sigma_t / scale,
 * computed here in float64.
 *
 * addInpainting(plan, schedule) places one correction per state mark:
 *   - fused into the lincomb op that wrote the state just before the mark (`inpaint` field:
 *     the same single pass over memory, only mask, x0 and z are read in addition);
 *   - otherwise as an 'inpaint' op (the data prediction of denoiseToZero, written by an eval);
 *   - the state x_T (mark at 0 ops): the authors evaluate the model at x_T first and correct
 *     afterwards, so the 'inpaint' op goes right after the first eval when it reads the state.
 * The state marks move with the inserted ops (intermediates 'x' show the corrected states,
 * as the authors' list does). Finally the result is composited with x0:
 *   result = (1 - m) result + m x0      (final.inpaint = { a: 1, s: 0 })
 * so that the known region of a sample equals x0 exactly (the authors' last correction, at
 * tEnd > 0, leaves alpha_tEnd x0 + sigma_tEnd z there: for the discrete DDPM schedule
 * sigma_tEnd = 0.01). Without that final composite a plan is the authors' loop op for op.
 */
import type { InpaintCorrection, Plan, PlanOp, PlanState } from './plan';
import type { NoiseSchedule } from './schedule';

/** Whether a plan carries inpainting corrections (and so needs inpainting inputs to run). */
export function planUsesInpaint(plan: Plan): boolean {
  if (plan.final && (plan.final as { inpaint?: unknown }).inpaint !== undefined) return true;
  return Array.isArray(plan.ops) && plan.ops.some((op) => op && (op.op === 'inpaint' || (op.op === 'lincomb' && op.inpaint !== undefined)));
}

function correctionAt(schedule: NoiseSchedule, state: PlanState): InpaintCorrection {
  if (state.terms.length !== 1) {
    throw new Error(`internal: inpainting needs each state as scale * R[reg] (state at t=${state.tCont} has ${state.terms.length} terms)`);
  }
  const scale = state.terms[0][0];
  const a = schedule.alpha(state.tCont) / scale;
  const s = schedule.sigma(state.tCont) / scale;
  if (!Number.isFinite(a) || !Number.isFinite(s)) {
    throw new Error(`internal: non-finite inpainting coefficient (a=${a}, s=${s}) at t=${state.tCont}`);
  }
  return { a, s };
}

/** The plan with the inpainting correction at every state mark and the final composite. */
export function addInpainting(plan: Plan, schedule: NoiseSchedule): Plan {
  const states = plan.states ?? [];
  if (states.length === 0) throw new Error(`internal: inpainting needs a plan that marks its states (solver ${String(plan.meta?.solver)})`);
  const ops: PlanOp[] = plan.ops.map((op) => (op.op === 'lincomb' ? { ...op, terms: op.terms.map(([c, r]) => [c, r] as [number, number]) } : { ...op }));
  // Insertions: position in the original ops -> inpaint ops to insert before it.
  const inserts = new Map<number, PlanOp[]>();
  const newAfter: number[] = [];
  for (const state of states) {
    const corr = correctionAt(schedule, state);
    const reg = state.terms[0][1];
    let at = state.after;
    if (at === 0 && ops[0]?.op === 'eval' && ops[0].src === reg) {
      // The authors' order at x_T: evaluate first (with its thresholding), then correct.
      const first = ops[0];
      at = ops[1]?.op === 'threshold' && ops[1].reg === first.dst ? 2 : 1;
    }
    const prev = at > 0 ? ops[at - 1] : undefined;
    const pending = inserts.get(at);
    if (prev && prev.op === 'lincomb' && prev.dst === reg && prev.inpaint === undefined && !pending) {
      prev.inpaint = corr;
    } else {
      const list = pending ?? [];
      list.push({ op: 'inpaint', reg, a: corr.a, s: corr.s });
      inserts.set(at, list);
    }
    newAfter.push(at);
  }
  // Rebuild the op list and the state marks' op counts.
  const out: PlanOp[] = [];
  const shift: number[] = []; // shift[i]: ops inserted before original op i (and at i)
  for (let i = 0; i <= ops.length; i++) {
    for (const extra of inserts.get(i) ?? []) out.push(extra);
    shift.push(out.length - i);
    if (i < ops.length) out.push(ops[i]);
  }
  const newStates: PlanState[] = states.map((s, j) => ({
    after: newAfter[j] + shift[newAfter[j]],
    terms: s.terms.map(([c, r]) => [c, r] as [number, number]),
    t: s.t,
    tCont: s.tCont,
  }));
  return {
    ...plan,
    ops: out,
    final: { ...plan.final, inpaint: { a: 1, s: 0 } },
    states: newStates,
    meta: { ...plan.meta, inpaint: true },
  };
}
