/**
 * SolverContext: everything a solver needs to compile a Plan, handed to it by compilePlan.
 *
 * A solver module exports `compileXxx(ctx: SolverContext): Plan` and uses only this context:
 *   - ctx.options: the validated options with every default filled in (ResolvedOptions);
 *   - ctx.schedule: the noise schedule (alpha_t, sigma_t, NSR_t, lambda_t and inverses);
 *   - ctx.timeSteps(n): the outer grid tStart = t_0 > ... > t_n = tEnd with options.skip;
 *   - ctx.timeStepsBetween(s, t, n): the same trajectory rule between any two times;
 *   - ctx.evaluate(...): one network evaluation converted to a noise or data prediction
 *     (model time, output conversion for options.modelType and, on data predictions,
 *     dynamic thresholding are all handled here);
 *   - ctx.builder: the PlanBuilder (registers, lincomb);
 *   - ctx.finish(initScale, final, meta): builds the Plan with the common meta fields.
 *
 * Registers: the builder's register 0 is the solver state (initialised to initScale * x_T).
 */
import type { Plan } from '../plan';
import { outputConversion, PlanBuilder, type Prediction } from '../plan-builder';
import type { ResolvedOptions } from '../options';
import type { NoiseSchedule } from '../schedule';
import { timeSteps } from '../timesteps';

export interface EvaluateArgs {
  /** Register holding the (scaled) state. */
  src: number;
  /** The network input is inScale * R[src] (e.g. alpha_t for the v1 state x/alpha). */
  inScale: number;
  /** Continuous solver time of the evaluation. */
  t: number;
  /** What R[dst] receives: the noise prediction eps or the data prediction x0. */
  target: Prediction;
  dst: number;
}

export interface SolverContext {
  readonly options: ResolvedOptions;
  readonly schedule: NoiseSchedule;
  readonly builder: PlanBuilder;
  /** n + 1 times from options.tStart to options.tEnd on the options.skip trajectory. */
  timeSteps(n: number): number[];
  /** n + 1 times from tFrom to tTo on the options.skip trajectory (same rule as timeSteps). */
  timeStepsBetween(tFrom: number, tTo: number, n: number): number[];
  /**
   * Emits one eval op: R[dst] = prediction(inScale * R[src], t), converted from the model's
   * output type; a data prediction is followed by a 'threshold' op when options.thresholding
   * is set.
   */
  evaluate(args: EvaluateArgs): void;
  /** Marks x_t = scale * R[reg] (continuous time t) as a solver state (Plan.states). */
  markState(reg: number, scale: number, t: number): void;
  /** Builds the Plan: meta gets solver, schedule, steps, skip, ... plus `meta`. */
  finish(initScale: number, final: { src: number; scale: number }, meta?: Record<string, unknown>): Plan;
}

export function createSolverContext(options: ResolvedOptions): SolverContext {
  const schedule = options.schedule;
  const builder = new PlanBuilder();
  const params = { nsrShift: options.nsrShift, rho: options.rho };
  return {
    options,
    schedule,
    builder,
    timeSteps: (n) => timeSteps(schedule, options.skip, options.tStart, options.tEnd, n, params),
    timeStepsBetween: (tFrom, tTo, n) => timeSteps(schedule, options.skip, tFrom, tTo, n, params),
    evaluate({ src, inScale, t, target, dst }) {
      const alpha = schedule.alpha(t);
      const sigma = schedule.sigma(t);
      const { outX, outM } = outputConversion(options.modelType, target, alpha, sigma);
      // The data prediction of this evaluation, for intermediates 'x0': R[dst] itself, or from
      // the noise prediction x0 = (x_in - sigma eps) / alpha with x_in = inScale R[src]
      // (not expressible when dst overwrites src).
      let x0: Array<[number, number]> | undefined;
      if (target === 'data') x0 = [[1, dst]];
      else if (src !== dst) x0 = [[inScale / alpha, src], [-sigma / alpha, dst]];
      // Classifier guidance shifts eps by -s * sigma_t * grad (lib/plan.ts): R[dst] receives it
      // times d(R[dst])/d(eps), which is 1 for a noise and -sigma/alpha for a data prediction.
      const gradCoef = target === 'noise' ? -sigma : (sigma * sigma) / alpha;
      builder.evaluate({ src, dst, t: schedule.modelTime(t), tCont: t, inScale, outX, outM, gradCoef, x0 });
      if (target === 'data' && options.thresholding) {
        builder.threshold(dst, options.thresholding.ratio, options.thresholding.maxVal);
      }
    },
    markState(reg, scale, t) {
      builder.markState(reg, scale, schedule.modelTime(t), t);
    },
    finish(initScale, final, meta = {}) {
      return builder.build(initScale, final, {
        solver: options.solver,
        algorithm: options.algorithm,
        method: options.method,
        order: options.order,
        steps: options.steps,
        skip: options.skip,
        modelType: options.modelType,
        rde: options.rde,
        lowerOrderFinal: options.lowerOrderFinal,
        denoiseToZero: options.denoiseToZero,
        tStart: options.tStart,
        tEnd: options.tEnd,
        schedule: schedule.describe(),
        thresholding: options.thresholding,
        ...(options.auto ? { auto: options.auto } : {}),
        ...meta,
      });
    },
  };
}
