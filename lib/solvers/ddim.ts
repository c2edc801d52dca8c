/**
 * DDIM (Song et al. 2021), the deterministic first-order solver of the diffusion ODE,
 * written as DPM-Solver-1 (Lu et al. 2022): between s and t, with the half log-SNR step
 *   h = lambda_t - lambda_s,   lambda = log alpha - log sigma = -log NSR,
 * the exponential integrator with a constant model output is exact in the linear part:
 *
 *   noise form:  x_t = (alpha_t / alpha_s) x_s - sigma_t (e^h - 1) eps_s       (DPM-Solver-1)
 *   data form:   x_t = (sigma_t / sigma_s) x_s - alpha_t (e^{-h} - 1) x0_s     (DPM-Solver++-1)
 *
 * Both are the same map (x0_s = (x_s - sigma_s eps_s) / alpha_s), so they differ by rounding
 * only. The noise form is used, as the official DPM-Solver code does for its DDIM baseline
 * (algorithm_type 'dpmsolver', order 1); with dynamic thresholding the data form is used so
 * the clipped data prediction actually drives the update (DDIM's "clip x0").
 *
 * Every step evaluates the network once at its start, so NFE = steps (+1 with denoiseToZero,
 * the final data prediction at tEnd, DPM-Solver's denoise_to_zero_fn). The method option does
 * not change anything at order 1 (multistep and singlestep DPM-Solver-1 coincide).
 */
import type { Plan } from '../plan';
import type { PlanBuilder } from '../plan-builder';
import type { SolverContext } from './context';
import { emit, reg, scale, sum } from './linear-expr';
import { marginals, type Marginals } from './marginals';

/**
 * R[dst] = DPM-Solver-1 (noise form) from s to t on the state R[x] with eps_s in R[eps]:
 *   x_t = exp(log alpha_t - log alpha_s) x_s - sigma_t phi_1 eps_s,   phi_1 = expm1(h).
 */
export function emitFirstOrderNoiseUpdate(b: PlanBuilder, dst: number, x: number, eps: number, s: Marginals, t: Marginals): void {
  const h = t.lambda - s.lambda;
  const phi_1 = Math.expm1(h);
  emit(
    b,
    dst,
    sum(
      scale(Math.exp(t.logAlpha - s.logAlpha), reg(x)),
      scale(-t.sigma * phi_1, reg(eps)),
    ),
  );
}

/**
 * R[dst] = DPM-Solver++-1 (data form) from s to t on the state R[x] with x0_s in R[x0]:
 *   x_t = (sigma_t / sigma_s) x_s - alpha_t phi_1 x0_s,   phi_1 = expm1(-h).
 */
export function emitFirstOrderDataUpdate(b: PlanBuilder, dst: number, x: number, x0: number, s: Marginals, t: Marginals): void {
  const h = t.lambda - s.lambda;
  const phi_1 = Math.expm1(-h);
  emit(
    b,
    dst,
    sum(
      scale(t.sigma / s.sigma, reg(x)),
      scale(-t.alpha * phi_1, reg(x0)),
    ),
  );
}

/**
 * Finishes a DPM-Solver-family plan whose state R[0] = x at tEnd: either x itself, or with
 * denoiseToZero one more data prediction at tEnd (one NFE) as the result.
 */
export function finishDpmPlan(ctx: SolverContext, meta: Record<string, unknown>): Plan {
  const b = ctx.builder;
  if (ctx.options.denoiseToZero) {
    const x0 = b.reg();
    ctx.evaluate({ src: b.x, inScale: 1, t: ctx.options.tEnd, target: 'data', dst: x0 });
    ctx.markState(x0, 1, ctx.options.tEnd);
    return ctx.finish(1, { src: x0, scale: 1 }, meta);
  }
  return ctx.finish(1, { src: b.x, scale: 1 }, meta);
}

export function compileDdim(ctx: SolverContext): Plan {
  const { options, schedule, builder: b } = ctx;
  const timesteps = ctx.timeSteps(options.steps);
  const dataForm = options.thresholding !== null;
  const model = b.reg();
  ctx.markState(b.x, 1, timesteps[0]);
  for (let i = 0; i < options.steps; i++) {
    const s = marginals(schedule, timesteps[i]);
    const t = marginals(schedule, timesteps[i + 1]);
    if (dataForm) {
      ctx.evaluate({ src: b.x, inScale: 1, t: s.t, target: 'data', dst: model });
      emitFirstOrderDataUpdate(b, b.x, b.x, model, s, t);
    } else {
      ctx.evaluate({ src: b.x, inScale: 1, t: s.t, target: 'noise', dst: model });
      emitFirstOrderNoiseUpdate(b, b.x, b.x, model, s, t);
    }
    ctx.markState(b.x, 1, t.t);
  }
  return finishDpmPlan(ctx, {
    form: dataForm ? 'data' : 'noise',
    timeSteps: timesteps,
  });
}
