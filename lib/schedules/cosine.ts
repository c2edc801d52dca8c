/**
 * The iDDPM cosine schedule as a continuous VP schedule (official NoiseScheduleVP 'cosine'):
 *   alpha_t = cos((t + s)/(1 + s) pi/2) / cos(s/(1 + s) pi/2),  s = 0.008
 *   T = 0.9946 (as DPM-Solver and the official code), default tEnd = 1e-3, model input time t.
 * The largest valid t is t_max = 2(1+s)/pi atan(999 (1+s)/pi) - s ~ 0.998 (where beta reaches 999).
 */
import type { NoiseSchedule } from '../schedule';
import { expectKnownKeys, expectObject } from '../validate';
import { vpDerived } from './vp-common';

// No options yet; the object is accepted (and checked) so the signature can grow.
export type CosineOptions = Record<string, never>;

export function cosineSchedule(options: CosineOptions): NoiseSchedule {
  const opts = expectObject('NoiseSchedule.cosine options', options);
  expectKnownKeys('NoiseSchedule.cosine options', opts, []);
  const s = 0.008;
  const betaMax = 999;
  const tMax = (Math.atan((betaMax * (1 + s)) / Math.PI) * 2 * (1 + s)) / Math.PI - s;
  const alpha0 = Math.cos((s / (1 + s)) * Math.PI * 0.5);
  const logAlpha0 = Math.log(alpha0);

  const alpha = (t: number): number => Math.cos(((t + s) / (1 + s)) * Math.PI * 0.5) / alpha0;
  const logAlpha = (t: number): number => Math.log(alpha(t));
  // t = 2(1+s)/pi arccos(alpha_t alpha_0) - s
  const inverseLogAlpha = (la: number): number => (Math.acos(Math.exp(la + logAlpha0)) * 2 * (1 + s)) / Math.PI - s;
  const derived = vpDerived(logAlpha, alpha, inverseLogAlpha);
  const T = 0.9946;
  return {
    kind: 'cosine',
    T,
    eps: 1e-3,
    domain: { min: 0, max: tMax },
    logAlpha,
    alpha,
    ...derived,
    modelTime: (t: number): number => t,
    sigmaBounds: { min: 0, max: derived.nsr(tMax) },
    describe: () => 'cosine VP schedule (s = 0.008, T = 0.9946)',
  };
}
