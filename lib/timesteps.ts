/**
 * Time-step trajectories t_0 = tFrom > t_1 > ... > t_n = tTo (n intervals, n + 1 points).
 *
 *   nsr:            the NSR-shifted trajectory of SciRE-Solver (official get_time_steps 'NSR'):
 *                   u_i uniform from -log(NSR_T + k NSR_0) to -log((1 + k) NSR_0),
 *                   NSR_i = e^{-u_i} - k NSR_0,  t_i = t(NSR_i);   k = nsrShift (default 3.1)
 *   time_uniform:   t_i uniform
 *   time_quadratic: sqrt(t_i) uniform
 *   logsnr:         lambda_i = -log NSR_i uniform (DPM-Solver's 'logSNR')
 *   karras:         NSR_i^{1/rho} uniform (Karras et al. 2022, rho default 7), sigma = NSR
 *
 * Like the official code, every grid built from NSR or lambda values maps them back to t
 * through the schedule's inverse, so even t_0 and t_n are round-tripped values.
 */
import { MAX_STEPS } from './bounds';
import { linspace } from './linspace';
import { expectFiniteNumber, expectInteger, expectOneOf } from './validate';
import type { NoiseSchedule } from './schedule';

export type SkipType = 'nsr' | 'time_uniform' | 'time_quadratic' | 'logsnr' | 'karras';
export const SKIP_TYPES: readonly SkipType[] = ['nsr', 'time_uniform', 'time_quadratic', 'logsnr', 'karras'];

export interface TimeStepParams {
  /** k of the NSR trajectory (default 3.1, the official value; the paper recommends k in [2, 7]). */
  nsrShift: number;
  /** rho of the Karras trajectory (default 7). */
  rho: number;
}

export const DEFAULT_TIME_STEP_PARAMS: TimeStepParams = { nsrShift: 3.1, rho: 7 };

export function timeSteps(
  schedule: NoiseSchedule,
  skip: SkipType,
  tFrom: number,
  tTo: number,
  n: number,
  params: TimeStepParams = DEFAULT_TIME_STEP_PARAMS,
): number[] {
  // A public helper: its inputs are checked (n sizes the result; 1e9 would exhaust memory).
  expectOneOf('skip', SKIP_TYPES, skip);
  expectFiniteNumber('tFrom', tFrom);
  expectFiniteNumber('tTo', tTo);
  expectInteger('n', n, { min: 1, max: MAX_STEPS });
  switch (skip) {
    case 'nsr': {
      const k = params.nsrShift;
      const nsrT = schedule.nsr(tFrom);
      const nsr0 = schedule.nsr(tTo);
      // u_T = -log(NSR_T + k NSR_0),  u_0 = -log(NSR_0 + k NSR_0)
      const uT = -Math.log(nsrT + k * nsr0);
      const u0 = -Math.log(nsr0 + k * nsr0);
      return linspace(uT, u0, n + 1).map((u) => schedule.inverseNsr(Math.exp(-u) - k * nsr0));
    }
    case 'time_uniform':
      return linspace(tFrom, tTo, n + 1);
    case 'time_quadratic':
      return linspace(Math.sqrt(tFrom), Math.sqrt(tTo), n + 1).map((r) => r * r);
    case 'logsnr': {
      const lambdaT = schedule.lambda(tFrom);
      const lambda0 = schedule.lambda(tTo);
      return linspace(lambdaT, lambda0, n + 1).map((l) => schedule.inverseLambda(l));
    }
    case 'karras': {
      const invRho = 1 / params.rho;
      const sMaxInv = schedule.nsr(tFrom) ** invRho;
      const sMinInv = schedule.nsr(tTo) ** invRho;
      // sigma_i = (sigma_max^{1/rho} + i/n (sigma_min^{1/rho} - sigma_max^{1/rho}))^rho
      return linspace(0, 1, n + 1).map((ramp) => schedule.inverseNsr((sMaxInv + ramp * (sMinInv - sMaxInv)) ** params.rho));
    }
  }
}
