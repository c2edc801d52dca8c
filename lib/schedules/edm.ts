/**
 * EDM (Karras et al. 2022) / variance-exploding parametrisation: x_t = x_0 + t eps, so
 *   alpha_t = 1,  sigma_t = t,  NSR_t = t,  lambda_t = -log t,
 *   T = sigmaMax, default tEnd = sigmaMin, model input time t (= sigma).
 */
import type { NoiseSchedule } from '../schedule';
import { expectFiniteNumber, expectKnownKeys, expectObject, outOfRange } from '../validate';

export interface EdmOptions {
  /** Smallest sigma (default 0.002). */
  sigmaMin?: number;
  /** Largest sigma (default 80). */
  sigmaMax?: number;
}

export function edmSchedule(options: EdmOptions): NoiseSchedule {
  const opts = expectObject('NoiseSchedule.edm options', options);
  expectKnownKeys('NoiseSchedule.edm options', opts, ['sigmaMin', 'sigmaMax']);
  const sigmaMin = opts.sigmaMin === undefined ? 0.002 : expectFiniteNumber('sigmaMin', opts.sigmaMin, { above: 0 });
  const sigmaMax = opts.sigmaMax === undefined ? 80 : expectFiniteNumber('sigmaMax', opts.sigmaMax, { above: 0 });
  if (!(sigmaMax > sigmaMin)) throw outOfRange('sigmaMax', `a number > sigmaMin (${sigmaMin})`, sigmaMax);
  return {
    kind: 'edm',
    T: sigmaMax,
    eps: sigmaMin,
    domain: { min: sigmaMin, max: sigmaMax },
    logAlpha: () => 0,
    alpha: () => 1,
    sigma: (t: number) => t,
    nsr: (t: number) => t,
    inverseNsr: (nsr: number) => nsr,
    lambda: (t: number) => -Math.log(t),
    inverseLambda: (lambda: number) => Math.exp(-lambda),
    modelTime: (t: number) => t,
    sigmaBounds: { min: sigmaMin, max: sigmaMax },
    describe: () => `EDM schedule (sigmaMin = ${sigmaMin}, sigmaMax = ${sigmaMax})`,
  };
}
