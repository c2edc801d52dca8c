/**
 * Noise schedules: x_t = alpha_t x_0 + sigma_t eps.
 *
 * SciRE-Solver integrates the diffusion ODE in the noise-to-signal ratio
 *   NSR_t = sigma_t / alpha_t                       (v1, noise prediction)
 * or its inverse 1/NSR_t                            (v2, data prediction),
 * so every schedule provides NSR_t and its inverse t(NSR). DPM-Solver's half log-SNR
 *   lambda_t = log alpha_t - log sigma_t = -log NSR_t
 * and its inverse are provided for the baselines and the 'logsnr' time steps.
 *
 * The VP schedules are defined exactly as the authors' code (scire_solver.py, class
 * NoiseScheduleVP) defines them:
 *   discrete: log alpha piecewise linear over the keypoints t_n = (n+1)/N, n = 0..N-1,
 *             linear extrapolation past the ends; T = 1, default tEnd = 1/N.
 *   linear:   log alpha_t = -1/4 t^2 (beta1 - beta0) - 1/2 t beta0; T = 1, tEnd = 1e-3.
 *   cosine:   alpha_t = cos((t+s)/(1+s) pi/2) / cos(s/(1+s) pi/2), s = 0.008; T = 0.9946.
 * and EDM (Karras et al. 2022) is alpha_t = 1, sigma_t = t, so NSR_t = t.
 *
 * Numerics: sigma_t = sqrt(-expm1(2 log alpha_t)) (the official code writes
 * sqrt(1 - alpha^2), which loses digits as alpha -> 1), and log(1 + NSR^2) is log1p(NSR^2).
 * Both agree with the official values to ~1e-12 relative and are more accurate.
 */
import { cosineSchedule, type CosineOptions } from './schedules/cosine';
import { discreteSchedule, type DiscreteOptions } from './schedules/discrete';
import { edmSchedule, type EdmOptions } from './schedules/edm';
import { vpLinearSchedule, type VpLinearOptions } from './schedules/vp-linear';

export type ScheduleKind = 'discrete' | 'linear' | 'cosine' | 'edm';

export interface NoiseSchedule {
  readonly kind: ScheduleKind;
  /** Default tStart: 1 for discrete/linear VP, 0.9946 for cosine (as the official code); sigmaMax for edm. */
  readonly T: number;
  /** Default tEnd: 1/N for discrete, 1e-3 for linear/cosine (official); sigmaMin for edm. */
  readonly eps: number;
  /** Range of t the schedule is defined on: tStart <= domain.max, tEnd >= domain.min (and tEnd > 0). */
  readonly domain: { readonly min: number; readonly max: number };
  /** log alpha_t (the official marginal_log_mean_coeff). */
  logAlpha(t: number): number;
  alpha(t: number): number;
  sigma(t: number): number;
  /** NSR_t = sigma_t / alpha_t. */
  nsr(t: number): number;
  /** t such that NSR_t = nsr (the official inverse_NSR). */
  inverseNsr(nsr: number): number;
  /** lambda_t = log alpha_t - log sigma_t = -log NSR_t. */
  lambda(t: number): number;
  /** t such that lambda_t = lambda. */
  inverseLambda(lambda: number): number;
  /**
   * The time the network receives for continuous time t (the official model_wrapper):
   *   discrete: 1000 (t - 1/N);  linear: 1000 max(t - 1/N, 0) with N = 1000;
   *   cosine: t;  edm: t (= sigma).
   */
  modelTime(t: number): number;
  /**
   * Range of sigma in the EDM sense (= NSR for VP schedules) that Karras time steps may span.
   * A schedule without it rejects skip 'karras'. All built-in schedules define it.
   */
  readonly sigmaBounds?: { readonly min: number; readonly max: number };
  /** Short human-readable description (for plan meta and errors). */
  describe(): string;
}

export type { CosineOptions, DiscreteOptions, EdmOptions, VpLinearOptions };

/** Factories for the built-in schedules (names fixed by DESIGN.md). */
export const NoiseSchedule = {
  /**
   * Discrete-time DDPM schedule: `{ betas }`, `{ alphasCumprod }`, or a built-in
   * `{ kind: 'linear' | 'scaled_linear' | 'squaredcos_cap_v2', N?, betaStart?, betaEnd? }`.
   */
  discrete(options: DiscreteOptions): NoiseSchedule {
    return discreteSchedule(options);
  },
  /** Continuous VP schedule of ScoreSDE: beta(t) = beta0 + t (beta1 - beta0). Defaults 0.1, 20. */
  linear(options: VpLinearOptions = {}): NoiseSchedule {
    return vpLinearSchedule(options);
  },
  /** The iDDPM cosine schedule as a continuous VP schedule (s = 0.008, T = 0.9946). */
  cosine(options: CosineOptions = {}): NoiseSchedule {
    return cosineSchedule(options);
  },
  /** EDM / variance-exploding: alpha = 1, sigma = t in [sigmaMin, sigmaMax] (defaults 0.002, 80). */
  edm(options: EdmOptions = {}): NoiseSchedule {
    return edmSchedule(options);
  },
};
