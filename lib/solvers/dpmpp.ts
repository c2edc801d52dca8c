/**
 * DPM-Solver++ (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion
 * Probabilistic Models"), the data-prediction exponential integrator in the half log-SNR
 * lambda = log alpha - log sigma, compiled to a Plan. The rules follow the authors'
 * dpm_solver_pytorch.py (algorithm_type 'dpmsolver++', solver_type 'dpmsolver'):
 *
 * method 'multistep' (2M / 3M): one evaluation per step; the first order-1 steps warm up
 *   with lower orders (step j uses order j); with lowerOrderFinal the last steps lower the
 *   order, min(order, steps + 1 - step), but ONLY when steps < 10 (DPM-Solver's rule; SciRE
 *   lowers them always). The model is never evaluated at tEnd: NFE = steps.
 * method 'singlestep_agile' (DPM-Solver's 'singlestep', "DPM-Solver-fast"): `steps` NFE split
 *   into outer steps of orders 3,..,3 then 2 and/or 1 (see singlestepOrders); the outer
 *   grid is a `K`-interval grid for logsnr, else the `steps`-interval grid taken at the
 *   cumulative sums of the orders.
 * method 'singlestep_fixed': K = floor(steps / order) outer steps of the same order on a
 *   K-interval grid: NFE = K * order.
 * Singlestep intermediate points: r1, r2 are the fractions of h at the interior points of an
 *   `order`-interval grid of the same skip type between the outer times.
 * denoiseToZero adds one data prediction at tEnd (one NFE) as the result.
 *
 * Notation (per step from s to t, or from t_prev_0 to t):
 *   h = lambda_t - lambda_s,  phi_1 = expm1(-h),  phi_2 = phi_1 / h + 1,  phi_3 = phi_2 / h - 1/2,
 *   m = data predictions x0_theta, alpha_t, sigma_t the marginal coefficients.
 */
import type { Plan } from '../plan';
import type { PlanBuilder } from '../plan-builder';
import type { SolverContext } from './context';
import { emitFirstOrderDataUpdate, finishDpmPlan } from './ddim';
import { emit, reg, scale, sub, sum } from './linear-expr';
import { marginals, type Marginals } from './marginals';
import { singlestepOrders } from './singlestep-orders';

/** One previous evaluation: its data prediction register and where it was taken. */
interface History {
  m: number;
  at: Marginals;
}

/**
 * Multistep DPM-Solver++(2M) update from t_prev_0 to t (solver_type 'dpmsolver'):
 *   h_0 = lambda_prev_0 - lambda_prev_1,  h = lambda_t - lambda_prev_0,  r0 = h_0 / h
 *   D1_0 = (m0 - m1) / r0
 *   x_t = (sigma_t / sigma_prev_0) x - alpha_t phi_1 m0 - 1/2 alpha_t phi_1 D1_0
 */
function emitMultistepSecond(b: PlanBuilder, x: number, prev1: History, prev0: History, t: Marginals): void {
  const h_0 = prev0.at.lambda - prev1.at.lambda;
  const h = t.lambda - prev0.at.lambda;
  const r0 = h_0 / h;
  const phi_1 = Math.expm1(-h);
  const D1_0 = scale(1 / r0, sub(reg(prev0.m), reg(prev1.m)));
  emit(
    b,
    x,
    sum(
      scale(t.sigma / prev0.at.sigma, reg(x)),
      scale(-t.alpha * phi_1, reg(prev0.m)),
      scale(-0.5 * t.alpha * phi_1, D1_0),
    ),
  );
}

/**
 * Multistep DPM-Solver++(3M) update from t_prev_0 to t:
 *   h_1 = lambda_prev_1 - lambda_prev_2,  h_0 = lambda_prev_0 - lambda_prev_1,  h = lambda_t - lambda_prev_0
 *   r0 = h_0 / h,  r1 = h_1 / h
 *   D1_0 = (m0 - m1) / r0,  D1_1 = (m1 - m2) / r1
 *   D1 = D1_0 + r0 / (r0 + r1) (D1_0 - D1_1),  D2 = (D1_0 - D1_1) / (r0 + r1)
 *   x_t = (sigma_t / sigma_prev_0) x - alpha_t phi_1 m0 + alpha_t phi_2 D1 - alpha_t phi_3 D2
 */
function emitMultistepThird(b: PlanBuilder, x: number, prev2: History, prev1: History, prev0: History, t: Marginals): void {
  const h_1 = prev1.at.lambda - prev2.at.lambda;
  const h_0 = prev0.at.lambda - prev1.at.lambda;
  const h = t.lambda - prev0.at.lambda;
  const r0 = h_0 / h;
  const r1 = h_1 / h;
  const phi_1 = Math.expm1(-h);
  const phi_2 = phi_1 / h + 1;
  const phi_3 = phi_2 / h - 0.5;
  const D1_0 = scale(1 / r0, sub(reg(prev0.m), reg(prev1.m)));
  const D1_1 = scale(1 / r1, sub(reg(prev1.m), reg(prev2.m)));
  const D1 = sum(D1_0, scale(r0 / (r0 + r1), sub(D1_0, D1_1)));
  const D2 = scale(1 / (r0 + r1), sub(D1_0, D1_1));
  emit(
    b,
    x,
    sum(
      scale(t.sigma / prev0.at.sigma, reg(x)),
      scale(-t.alpha * phi_1, reg(prev0.m)),
      scale(t.alpha * phi_2, D1),
      scale(-t.alpha * phi_3, D2),
    ),
  );
}

function compileMultistep(ctx: SolverContext): Plan {
  const { options, schedule, builder: b } = ctx;
  const { steps, order } = options;
  const timesteps = ctx.timeSteps(steps);
  // history[0] is the oldest; the registers of evaluations that fall out are reused.
  const history: History[] = [];
  const freeRegs: number[] = Array.from({ length: order }, () => b.reg());
  const evaluateAt = (at: Marginals): void => {
    const m = history.length === order ? history.shift()!.m : freeRegs.pop()!;
    ctx.evaluate({ src: b.x, inScale: 1, t: at.t, target: 'data', dst: m });
    history.push({ m, at });
  };
  const stepOrders: number[] = [];

  ctx.markState(b.x, 1, timesteps[0]);
  evaluateAt(marginals(schedule, timesteps[0]));
  for (let step = 1; step <= steps; step++) {
    const t = marginals(schedule, timesteps[step]);
    // Warm-up: step j < order can use j previous values. Lower-order final steps only for
    // steps < 10, as DPM-Solver ("We only use lower order for steps < 10").
    let stepOrder: number;
    if (step < order) stepOrder = step;
    else if (options.lowerOrderFinal && steps < 10) stepOrder = Math.min(order, steps + 1 - step);
    else stepOrder = order;
    stepOrders.push(stepOrder);

    const n = history.length;
    if (stepOrder === 1) {
      emitFirstOrderDataUpdate(b, b.x, b.x, history[n - 1].m, history[n - 1].at, t);
    } else if (stepOrder === 2) {
      emitMultistepSecond(b, b.x, history[n - 2], history[n - 1], t);
    } else {
      emitMultistepThird(b, b.x, history[n - 3], history[n - 2], history[n - 1], t);
    }
    ctx.markState(b.x, 1, t.t);
    // The model value at tEnd is never needed.
    if (step < steps) evaluateAt(t);
  }
  return finishDpmPlan(ctx, { algorithm: 'dpmsolver++', timeSteps: timesteps, stepOrders });
}

/** Registers reused by every outer singlestep update. */
interface SinglestepRegs {
  m_s: number;
  m_s1: number;
  m_s2: number;
  x_s1: number;
}

/**
 * The first stage of DPM-Solver++(2S) and (3S): m_s = x0(x, s), the intermediate point
 *   x_s1 = (sigma_s1 / sigma_s) x - alpha_s1 phi_11 m_s,   phi_11 = expm1(-r1 h),
 * and m_s1 = x0(x_s1, s1).
 */
function emitSinglestepFirstStage(ctx: SolverContext, regs: SinglestepRegs, s: Marginals, s1: Marginals, phi_11: number): void {
  const x = ctx.builder.x;
  ctx.evaluate({ src: x, inScale: 1, t: s.t, target: 'data', dst: regs.m_s });
  emit(
    ctx.builder,
    regs.x_s1,
    sum(
      scale(s1.sigma / s.sigma, reg(x)),
      scale(-s1.alpha * phi_11, reg(regs.m_s)),
    ),
  );
  ctx.evaluate({ src: regs.x_s1, inScale: 1, t: s1.t, target: 'data', dst: regs.m_s1 });
}

/**
 * Singlestep DPM-Solver++(2S) from s to t with the intermediate point lambda_s1 = lambda_s + r1 h:
 *   x_s1 = (sigma_s1 / sigma_s) x - alpha_s1 phi_11 m_s,              phi_11 = expm1(-r1 h)
 *   x_t  = (sigma_t / sigma_s) x - alpha_t phi_1 m_s - 1/(2 r1) alpha_t phi_1 (m_s1 - m_s)
 */
function emitSinglestepSecond(ctx: SolverContext, regs: SinglestepRegs, s: Marginals, t: Marginals, r1: number): void {
  const b = ctx.builder;
  const x = b.x;
  const h = t.lambda - s.lambda;
  const s1 = marginals(ctx.schedule, ctx.schedule.inverseLambda(s.lambda + r1 * h));
  const phi_11 = Math.expm1(-r1 * h);
  const phi_1 = Math.expm1(-h);

  emitSinglestepFirstStage(ctx, regs, s, s1, phi_11);
  emit(
    b,
    x,
    sum(
      scale(t.sigma / s.sigma, reg(x)),
      scale(-t.alpha * phi_1, reg(regs.m_s)),
      scale(-(0.5 / r1) * t.alpha * phi_1, sub(reg(regs.m_s1), reg(regs.m_s))),
    ),
  );
}

/**
 * Singlestep DPM-Solver++(3S) from s to t with lambda_s1 = lambda_s + r1 h, lambda_s2 = lambda_s + r2 h:
 *   x_s1 = (sigma_s1 / sigma_s) x - alpha_s1 phi_11 m_s,                       phi_11 = expm1(-r1 h)
 *   x_s2 = (sigma_s2 / sigma_s) x - alpha_s2 phi_12 m_s
 *          + (r2 / r1) alpha_s2 phi_22 (m_s1 - m_s),     phi_12 = expm1(-r2 h),  phi_22 = phi_12 / (r2 h) + 1
 *   x_t  = (sigma_t / sigma_s) x - alpha_t phi_1 m_s + (1 / r2) alpha_t phi_2 (m_s2 - m_s)
 */
function emitSinglestepThird(ctx: SolverContext, regs: SinglestepRegs, s: Marginals, t: Marginals, r1: number, r2: number): void {
  const b = ctx.builder;
  const x = b.x;
  const h = t.lambda - s.lambda;
  const s1 = marginals(ctx.schedule, ctx.schedule.inverseLambda(s.lambda + r1 * h));
  const s2 = marginals(ctx.schedule, ctx.schedule.inverseLambda(s.lambda + r2 * h));
  const phi_11 = Math.expm1(-r1 * h);
  const phi_12 = Math.expm1(-r2 * h);
  const phi_1 = Math.expm1(-h);
  const phi_22 = Math.expm1(-r2 * h) / (r2 * h) + 1;
  const phi_2 = phi_1 / h + 1;

  emitSinglestepFirstStage(ctx, regs, s, s1, phi_11);
  // x_s2 reuses the x_s1 register: x_s1 is not needed once m_s1 is known.
  const x_s2 = regs.x_s1;
  emit(
    b,
    x_s2,
    sum(
      scale(s2.sigma / s.sigma, reg(x)),
      scale(-s2.alpha * phi_12, reg(regs.m_s)),
      scale((r2 / r1) * s2.alpha * phi_22, sub(reg(regs.m_s1), reg(regs.m_s))),
    ),
  );
  ctx.evaluate({ src: x_s2, inScale: 1, t: s2.t, target: 'data', dst: regs.m_s2 });
  emit(
    b,
    x,
    sum(
      scale(t.sigma / s.sigma, reg(x)),
      scale(-t.alpha * phi_1, reg(regs.m_s)),
      scale((1 / r2) * t.alpha * phi_2, sub(reg(regs.m_s2), reg(regs.m_s))),
    ),
  );
}

function compileSinglestep(ctx: SolverContext): Plan {
  const { options, schedule, builder: b } = ctx;
  const { steps, order } = options;
  let orders: number[];
  let outer: number[];
  if (options.method === 'singlestep_fixed') {
    const K = Math.floor(steps / order);
    orders = Array<number>(K).fill(order);
    outer = ctx.timeSteps(K);
  } else {
    orders = singlestepOrders(steps, order);
    if (options.skip === 'logsnr') {
      // DPM-Solver: "To reproduce the results in DPM-Solver paper", a K-interval logSNR grid.
      outer = ctx.timeSteps(orders.length);
    } else {
      // The steps-interval grid at the cumulative sums of the orders.
      const fine = ctx.timeSteps(steps);
      let at = 0;
      outer = [fine[0]];
      for (const o of orders) {
        at += o;
        outer.push(fine[at]);
      }
    }
  }
  const regs: SinglestepRegs = { m_s: b.reg(), m_s1: b.reg(), m_s2: b.reg(), x_s1: b.reg() };
  const fractions: number[][] = [];
  for (let k = 0; k < orders.length; k++) {
    const s = marginals(schedule, outer[k]);
    const t = marginals(schedule, outer[k + 1]);
    const o = orders[k];
    if (o === 1) {
      ctx.evaluate({ src: b.x, inScale: 1, t: s.t, target: 'data', dst: regs.m_s });
      emitFirstOrderDataUpdate(b, b.x, b.x, regs.m_s, s, t);
      ctx.markState(b.x, 1, t.t);
      fractions.push([]);
      continue;
    }
    // r1, r2: where the interior points of an o-interval grid of the same skip type between
    // s and t fall, as fractions of that grid's lambda range.
    const lambdaInner = ctx.timeStepsBetween(s.t, t.t, o).map((ti) => schedule.lambda(ti));
    const hInner = lambdaInner[o] - lambdaInner[0];
    const r1 = (lambdaInner[1] - lambdaInner[0]) / hInner;
    if (o === 2) {
      emitSinglestepSecond(ctx, regs, s, t, r1);
      fractions.push([r1]);
    } else {
      const r2 = (lambdaInner[2] - lambdaInner[0]) / hInner;
      emitSinglestepThird(ctx, regs, s, t, r1, r2);
      fractions.push([r1, r2]);
    }
    ctx.markState(b.x, 1, t.t);
  }
  return finishDpmPlan(ctx, { algorithm: 'dpmsolver++', timeSteps: outer, stepOrders: orders, fractions });
}

export function compileDpmpp(ctx: SolverContext): Plan {
  return ctx.options.method === 'multistep' ? compileMultistep(ctx) : compileSinglestep(ctx);
}
