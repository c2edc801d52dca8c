/**
 * UniPC (Zhao, Bai, Rao, Zhou, Lu, "UniPC: A Unified Predictor-Corrector Framework for Fast
 * Sampling of Diffusion Models", NeurIPS 2023), multistep, data prediction, variants B(h) = h
 * ('bh1') and B(h) = e^h - 1 ('bh2'), compiled to a Plan. The rules follow the authors'
 * uni_pc.py (github.com/wl-zhao/UniPC: UniPC.multistep_uni_pc_bh_update and UniPC.sample with
 * algorithm_type 'data_prediction'); docs/math.md section 10 has the formulas.
 *
 * Notation (one step from s = t_prev_0 to t, data predictions m, half log-SNR lambda):
 *   h = lambda_t - lambda_s,  hh = -h,  h phi_1 = expm1(hh),
 *   h phi_{k+1} = h phi_k / hh - 1/k!   (so h phi_2 = expm1(hh)/hh - 1, ...)
 *   r_k = (lambda_{prev_k} - lambda_s) / h  (k = 1..p-1, negative),  r_p = 1
 *   D1_k = (m_{prev_k} - m_s) / r_k,   D1_t = m_t - m_s
 *   R = [r_j^{i-1}]_{i,j = 1..p},  g_i = h phi_{i+1} i! / B(h)
 * Predictor UniP-p (p = step order):
 *   rhos_p = 1/2 for p = 2, else the solution of R[1..p-1, 1..p-1] rhos_p = g[1..p-1]
 *   x_t^pred = (sigma_t / sigma_s) x - alpha_t h phi_1 m_s - alpha_t B(h) sum_k rhos_p_k D1_k
 * Corrector UniC-p, with the evaluation m_t = x0(x_t^pred, t) that the next step needs anyway:
 *   rhos_c = 1/2 for p = 1, else the solution of R rhos_c = g
 *   x_t = (sigma_t / sigma_s) x - alpha_t h phi_1 m_s - alpha_t B(h) (sum_k rhos_c_k D1_k + rhos_c_p D1_t)
 *
 * Loop (as the authors' sample): one evaluation at t_0; warm-up step j < order uses order j;
 * then order `order`, with lowerOrderFinal min(order, steps + 1 - j) at every step count (the
 * authors' rule; DPM-Solver lowers only below 10 steps); every step is corrected except the
 * last one, whose corrector would need one more evaluation (finalCorrector: true pays it,
 * NFE = steps + 1). The evaluation m_t is of the *predicted* x_t and is reused as the next
 * step's m_s. denoiseToZero adds one data prediction at tEnd.
 *
 * Plan form: the predicted x_t and the corrected state alternate between two registers, so
 * the order-3 corrector (5 terms: x, m_s, m_1, m_2, m_t) never reads its destination and the
 * PlanBuilder splits it into two chained one-pass lincombs.
 */
import type { Plan } from '../plan';
import type { PlanBuilder } from '../plan-builder';
import type { SolverContext } from './context';
import { finishDpmPlan } from './ddim';
import { emit, reg, scale, sub, sum, type LinearExpr } from './linear-expr';
import { marginals, type Marginals } from './marginals';

interface History {
  m: number;
  at: Marginals;
}

/** Solves the small dense system A z = b by Gaussian elimination with partial pivoting. */
export function solveSmall(A: number[][], b: number[]): number[] {
  const n = b.length;
  const M = A.map((row, i) => [...row.slice(0, n), b[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r][c]) > Math.abs(M[p][c])) p = r;
    [M[c], M[p]] = [M[p], M[c]];
    for (let r = c + 1; r < n; r++) {
      const f = M[r][c] / M[c][c];
      for (let k = c; k <= n; k++) M[r][k] -= f * M[c][k];
    }
  }
  const z = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = M[r][n];
    for (let k = r + 1; k < n; k++) s -= M[r][k] * z[k];
    z[r] = s / M[r][r];
  }
  return z;
}

/** The scalar coefficients of one UniPC step of order p (see the header). */
export interface UniPcStep {
  h: number;
  /** h phi_1 = expm1(-h). */
  hPhi1: number;
  /** B(h). */
  B: number;
  /** r_1..r_{p-1} (the last node r_p = 1 is implicit). */
  rks: number[];
  /** Predictor weights of D1_1..D1_{p-1}. */
  rhosP: number[];
  /** Corrector weights of D1_1..D1_{p-1}, D1_t. */
  rhosC: number[];
}

export function uniPcStep(variant: 'bh1' | 'bh2', prevLambdas: number[], lambdaT: number): UniPcStep {
  // prevLambdas: newest first (lambda_s, lambda_prev_1, ...), length p.
  const p = prevLambdas.length;
  const lambdaS = prevLambdas[0];
  const h = lambdaT - lambdaS;
  const hh = -h;
  const hPhi1 = Math.expm1(hh);
  const B = variant === 'bh1' ? hh : Math.expm1(hh);
  const rks = prevLambdas.slice(1).map((l) => (l - lambdaS) / h);
  const nodes = [...rks, 1];
  // R[i][j] = r_j^i (i = 0..p-1), g_i = h phi_{i+2} (i+1)! / B(h)
  const R: number[][] = [];
  const g: number[] = [];
  let hPhiK = hPhi1 / hh - 1; // h phi_2
  let factorial = 1;
  for (let i = 1; i <= p; i++) {
    R.push(nodes.map((r) => Math.pow(r, i - 1)));
    g.push((hPhiK * factorial) / B);
    factorial *= i + 1;
    hPhiK = hPhiK / hh - 1 / factorial;
  }
  let rhosP: number[] = [];
  if (p === 2) rhosP = [0.5];
  else if (p > 2) rhosP = solveSmall(R.slice(0, p - 1).map((row) => row.slice(0, p - 1)), g.slice(0, p - 1));
  const rhosC = p === 1 ? [0.5] : solveSmall(R, g);
  return { h, hPhi1, B, rks, rhosP, rhosC };
}

/**
 * Emits R[dst] = (sigma_t / sigma_s) x - alpha_t h phi_1 m_s - alpha_t B(h) (sum_k rho_k D1_k [+ rho_t D1_t]).
 * `prev` is newest first (prev[0] = s); mT is the evaluation at t for the corrector, or null.
 */
function emitUniPcUpdate(b: PlanBuilder, dst: number, x: number, prev: History[], t: Marginals, st: UniPcStep, rhos: number[], mT: number | null): void {
  const s = prev[0];
  const D1s: LinearExpr[] = st.rks.map((r, k) => scale(1 / r, sub(reg(prev[k + 1].m), reg(s.m))));
  const residual: LinearExpr[] = D1s.slice(0, rhos.length).map((D1_k, k) => scale(rhos[k], D1_k));
  if (mT !== null) {
    const D1_t = sub(reg(mT), reg(s.m));
    residual.push(scale(rhos[rhos.length - 1], D1_t));
  }
  emit(
    b,
    dst,
    sum(
      scale(t.sigma / s.at.sigma, reg(x)),
      scale(-t.alpha * st.hPhi1, reg(s.m)),
      scale(-t.alpha * st.B, sum(...residual)),
    ),
  );
}

export function compileUniPc(ctx: SolverContext): Plan {
  const { options, schedule, builder: b } = ctx;
  const { steps, order, lowerOrderFinal, finalCorrector } = options;
  const variant = options.variant ?? 'bh1';
  const timesteps = ctx.timeSteps(steps);
  // history[0] is the oldest; registers of evaluations that fall out are reused.
  const history: History[] = [];
  const freeRegs: number[] = Array.from({ length: order + 1 }, () => b.reg());
  const record = (m: number, at: Marginals): void => {
    history.push({ m, at });
    if (history.length > order) freeRegs.push(history.shift()!.m);
  };
  // The state and the predicted x_t alternate between these two registers.
  let xs = b.x;
  let xp = b.reg();
  const stepOrders: number[] = [];
  const corrected: boolean[] = [];

  ctx.markState(xs, 1, timesteps[0]);
  {
    const m = freeRegs.pop()!;
    ctx.evaluate({ src: xs, inScale: 1, t: timesteps[0], target: 'data', dst: m });
    record(m, marginals(schedule, timesteps[0]));
  }
  for (let step = 1; step <= steps; step++) {
    const t = marginals(schedule, timesteps[step]);
    let p: number;
    if (step < order) p = step;
    else p = lowerOrderFinal ? Math.min(order, steps + 1 - step) : order;
    const useCorrector = step < steps || finalCorrector;
    stepOrders.push(p);
    corrected.push(useCorrector);
    const prev = history.slice(history.length - p).reverse(); // newest first
    const st = uniPcStep(
      variant,
      prev.map((e) => e.at.lambda),
      t.lambda,
    );
    if (!useCorrector) {
      // The last step: predictor only, the result is the state at tEnd.
      emitUniPcUpdate(b, xp, xs, prev, t, st, st.rhosP, null);
      [xs, xp] = [xp, xs];
      ctx.markState(xs, 1, t.t);
      break;
    }
    emitUniPcUpdate(b, xp, xs, prev, t, st, st.rhosP, null);
    // The oldest value may still be needed by this step's corrector: order + 1 model registers.
    const m = freeRegs.pop()!;
    ctx.evaluate({ src: xp, inScale: 1, t: t.t, target: 'data', dst: m });
    emitUniPcUpdate(b, xp, xs, prev, t, st, st.rhosC, m);
    record(m, t);
    [xs, xp] = [xp, xs];
    ctx.markState(xs, 1, t.t);
  }
  return finishUniPc(ctx, xs, { variant, finalCorrector, timeSteps: timesteps, stepOrders, corrected });
}

/** Like finishDpmPlan, for a state that may live in any register. */
function finishUniPc(ctx: SolverContext, state: number, meta: Record<string, unknown>): Plan {
  const b = ctx.builder;
  if (state === b.x) return finishDpmPlan(ctx, meta);
  if (ctx.options.denoiseToZero) {
    const x0 = b.reg();
    ctx.evaluate({ src: state, inScale: 1, t: ctx.options.tEnd, target: 'data', dst: x0 });
    ctx.markState(x0, 1, ctx.options.tEnd);
    return ctx.finish(1, { src: x0, scale: 1 }, meta);
  }
  return ctx.finish(1, { src: state, scale: 1 }, meta);
}
