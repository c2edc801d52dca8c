/**
 * Intermediates: the snapshots of a run that `sample({ intermediates, onStep })` hands to
 * onStep, read from a Plan's optional marks (lib/plan.ts):
 *
 *   'x'  : plan.states, the solver state x_t where the authors' sample(...,
 *          return_intermediate=True) records it (x_T first for multistep solvers, then x after
 *          every step; singlestep: after every outer step; with denoiseToZero the denoised x
 *          last). One snapshot per state.
 *   'x0' : the data prediction of every evaluation (eval op's `x0` terms), read right after
 *          the evaluation (after its thresholding when there is one). One snapshot per NFE.
 *
 * A snapshot is x = sum coef * R[reg] read after the first `after` ops. Both executors (the
 * float64 reference in lib/reference.ts and the native one, native/plan.cc) derive the same
 * list with the same rule.
 */
import type { Plan } from './plan';
import { expectOneOf } from './validate';

export type IntermediatesMode = 'x' | 'x0';
export const INTERMEDIATES_MODES: readonly IntermediatesMode[] = ['x', 'x0'];

export interface Snapshot {
  /** Number of ops run before the snapshot is read. */
  after: number;
  terms: Array<[number, number]>;
  /** Model input time and continuous time of the state or evaluation. */
  t: number;
  tCont: number;
}

/** The TypeError of a bad `intermediates` value names the field and the allowed values. */
export function expectIntermediatesMode(field: string, value: unknown): IntermediatesMode {
  return expectOneOf(field, INTERMEDIATES_MODES, value);
}

/** The snapshots of `plan` for `mode`, ordered by `after` (the plan was checked by checkPlan). */
export function planSnapshots(plan: Plan, mode: IntermediatesMode): Snapshot[] {
  if (mode === 'x') {
    if (!plan.states || plan.states.length === 0) {
      throw new Error(`intermediates 'x': this plan (solver ${String(plan.meta?.solver ?? 'unknown')}) marks no states`);
    }
    return plan.states.map((s) => ({ after: s.after, terms: s.terms.map(([c, r]) => [c, r] as [number, number]), t: s.t, tCont: s.tCont }));
  }
  const out: Snapshot[] = [];
  plan.ops.forEach((op, i) => {
    if (op.op !== 'eval') return;
    if (!op.x0) {
      throw new Error(`intermediates 'x0': eval op ${i} of this plan has no data-prediction terms (x0)`);
    }
    const next = plan.ops[i + 1];
    const after = next && next.op === 'threshold' && next.reg === op.dst ? i + 2 : i + 1;
    out.push({ after, terms: op.x0.map(([c, r]) => [c, r] as [number, number]), t: op.t, tCont: op.tCont });
  });
  return out;
}
