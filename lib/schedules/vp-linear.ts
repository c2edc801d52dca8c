/**
 * Continuous VP schedule of ScoreSDE (official NoiseScheduleVP 'linear'):
 *   beta(t) = beta0 + t (beta1 - beta0)
 *   log alpha_t = -1/4 t^2 (beta1 - beta0) - 1/2 t beta0
 *   T = 1, default tEnd = 1e-3 (= 1/N, N = 1000), model input time 1000 max(t - 1/N, 0).
 */
import type { NoiseSchedule } from '../schedule';
import { expectFiniteNumber, expectKnownKeys, expectObject, outOfRange } from '../validate';
import { vpDerived } from './vp-common';

export interface VpLinearOptions {
  beta0?: number;
  beta1?: number;
}

const TOTAL_N = 1000;

export function vpLinearSchedule(options: VpLinearOptions): NoiseSchedule {
  const opts = expectObject('NoiseSchedule.linear options', options);
  expectKnownKeys('NoiseSchedule.linear options', opts, ['beta0', 'beta1']);
  const beta0 = opts.beta0 === undefined ? 0.1 : expectFiniteNumber('beta0', opts.beta0, { min: 0 });
  const beta1 = opts.beta1 === undefined ? 20 : expectFiniteNumber('beta1', opts.beta1, { above: 0 });
  if (!(beta1 > beta0)) throw outOfRange('beta1', `a number > beta0 (${beta0})`, beta1);
  const dBeta = beta1 - beta0;

  const logAlpha = (t: number): number => -0.25 * t * t * dBeta - 0.5 * t * beta0;
  const alpha = (t: number): number => Math.exp(logAlpha(t));
  // Solve 1/4 dBeta t^2 + 1/2 beta0 t + logAlpha = 0 for t >= 0 in the cancellation-free form
  // of the official inverse_NSR:  tmp = -4 dBeta logAlpha,  t = tmp / (sqrt(beta0^2 + tmp) + beta0) / dBeta.
  const inverseLogAlpha = (la: number): number => {
    const tmp = -4 * dBeta * la;
    return tmp / (Math.sqrt(beta0 * beta0 + tmp) + beta0) / dBeta;
  };
  const derived = vpDerived(logAlpha, alpha, inverseLogAlpha);
  const eps = 1 / TOTAL_N;
  return {
    kind: 'linear',
    T: 1,
    eps,
    domain: { min: 0, max: 1 },
    logAlpha,
    alpha,
    ...derived,
    modelTime: (t: number): number => 1000 * Math.max(t - 1 / TOTAL_N, 0),
    sigmaBounds: { min: 0, max: derived.nsr(1) },
    describe: () => `linear VP schedule (beta0 = ${beta0}, beta1 = ${beta1})`,
  };
}
