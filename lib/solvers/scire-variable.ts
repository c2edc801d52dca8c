/**
 * The integration variable and state of the two SciRE-Solver algorithms.
 *
 * Diffusion ODE in NSR form (x_t = alpha_t x_0 + sigma_t eps, NSR_t = sigma_t/alpha_t):
 *   v1:  y = x/alpha_t,  variable rho = NSR_t,    dy/drho = eps_theta(x_t, t)    (noise prediction)
 *   v2:  y = x/sigma_t,  variable tau = 1/NSR_t,  dy/dtau = x0_theta(x_t, t)     (data prediction)
 * Both are exact rewrites of the probability-flow ODE; a first-order step y_t = y_s + h m_s
 * with h = rho_t - rho_s (v1) or tau_t - tau_s (v2) is DDIM.
 */
import type { Prediction } from '../plan-builder';
import type { Algorithm } from '../options';
import type { NoiseSchedule } from '../schedule';

export interface ScireVariable {
  /** rho_t = NSR_t (v1) or tau_t = 1/NSR_t (v2). */
  at(t: number): number;
  /** The time at which the variable takes the value v (through the schedule's inverse NSR). */
  timeAt(v: number): number;
  /** x_t = stateScale(t) * y: alpha_t (v1) or sigma_t (v2). */
  stateScale(t: number): number;
  /** What the model evaluations are converted to: 'noise' (v1) or 'data' (v2). */
  target: Prediction;
}

export function scireVariable(schedule: NoiseSchedule, algorithm: Algorithm): ScireVariable {
  if (algorithm === 'v1') {
    return {
      at: (t) => schedule.nsr(t),
      timeAt: (rho) => schedule.inverseNsr(rho),
      stateScale: (t) => schedule.alpha(t),
      target: 'noise',
    };
  }
  return {
    at: (t) => 1 / schedule.nsr(t),
    timeAt: (tau) => schedule.inverseNsr(1 / tau),
    stateScale: (t) => schedule.sigma(t),
    target: 'data',
  };
}
