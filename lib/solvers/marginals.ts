/**
 * The per-time quantities the DPM-Solver family (DDIM, DPM-Solver, DPM-Solver++) uses:
 * alpha_t, sigma_t, log alpha_t and the half log-SNR lambda_t = log alpha_t - log sigma_t.
 */
import type { NoiseSchedule } from '../schedule';

export interface Marginals {
  /** Continuous solver time. */
  t: number;
  alpha: number;
  sigma: number;
  logAlpha: number;
  lambda: number;
}

export function marginals(schedule: NoiseSchedule, t: number): Marginals {
  return {
    t,
    alpha: schedule.alpha(t),
    sigma: schedule.sigma(t),
    logAlpha: schedule.logAlpha(t),
    lambda: schedule.lambda(t),
  };
}
