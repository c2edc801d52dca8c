/**
 * Discrete-time DDPM schedule as a continuous function (official NoiseScheduleVP 'discrete').
 *
 *   alpha_n = sqrt(prod_{i<=n} (1 - beta_i))       (alpha_n^2 = alphas_cumprod[n])
 *   keypoints t_n = (n+1)/N, n = 0..N-1             (torch.linspace(0, 1, N+1)[1:])
 *   log alpha_t: piecewise linear through (t_n, log alpha_n), extrapolated linearly
 *   T = 1, default tEnd = 1/N, model input time 1000 (t - 1/N).
 */
import { MAX_DISCRETE_N } from '../bounds';
import { linspace } from '../linspace';
import type { NoiseSchedule } from '../schedule';
import {
  expectFiniteArray,
  expectFiniteNumber,
  expectInteger,
  expectKnownKeys,
  expectObject,
  expectOneOf,
  invalidType,
  outOfRange,
} from '../validate';
import { interpolatePiecewiseLinear } from './interpolate';
import { vpDerived } from './vp-common';

export type DiscreteBetaKind = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2' | 'squaredcos';

export interface DiscreteOptions {
  /** beta_1..beta_N, each in (0, 1), non-decreasing. */
  betas?: ArrayLike<number>;
  /** alphas_cumprod (alpha-bar_n), each in (0, 1], strictly decreasing. */
  alphasCumprod?: ArrayLike<number>;
  /**
   * Built-in betas: 'linear' = linspace(betaStart, betaEnd, N) (DDPM; defaults 1e-4, 0.02),
   * 'scaled_linear' = linspace(sqrt(betaStart), sqrt(betaEnd), N)^2 (Stable Diffusion;
   * defaults 0.00085, 0.012), 'squaredcos_cap_v2' (alias 'squaredcos') = iDDPM cosine
   * alpha-bar(t) = cos^2((t + 0.008)/1.008 pi/2), betas capped at 0.999.
   */
  kind?: DiscreteBetaKind;
  /** Number of discrete steps for `kind` (default 1000). */
  N?: number;
  betaStart?: number;
  betaEnd?: number;
}

const KNOWN = ['betas', 'alphasCumprod', 'kind', 'N', 'betaStart', 'betaEnd'] as const;
const KINDS: readonly DiscreteBetaKind[] = ['linear', 'scaled_linear', 'squaredcos_cap_v2', 'squaredcos'];

function builtinBetas(kind: DiscreteBetaKind, N: number, betaStart?: number, betaEnd?: number): Float64Array {
  switch (kind) {
    case 'linear': {
      const b0 = betaStart ?? 1e-4;
      const b1 = betaEnd ?? 0.02;
      return Float64Array.from(linspace(b0, b1, N));
    }
    case 'scaled_linear': {
      const b0 = betaStart ?? 0.00085;
      const b1 = betaEnd ?? 0.012;
      return Float64Array.from(linspace(Math.sqrt(b0), Math.sqrt(b1), N), (v) => v * v);
    }
    case 'squaredcos':
    case 'squaredcos_cap_v2': {
      const alphaBar = (t: number): number => Math.cos(((t + 0.008) / 1.008) * Math.PI * 0.5) ** 2;
      const betas = new Float64Array(N);
      for (let i = 0; i < N; i++) betas[i] = Math.min(1 - alphaBar((i + 1) / N) / alphaBar(i / N), 0.999);
      return betas;
    }
  }
}

function checkBetas(betas: Float64Array): void {
  for (let i = 0; i < betas.length; i++) {
    const b = betas[i];
    if (!(b > 0 && b < 1)) throw outOfRange(`betas[${i}]`, 'a number > 0 and < 1', b);
    // Non-decreasing up to rounding (a schedule that adds less noise later is rejected).
    if (i > 0 && b < betas[i - 1] * (1 - 1e-12)) {
      throw outOfRange(`betas[${i}]`, `a non-decreasing sequence of betas (betas[${i - 1}] = ${betas[i - 1]})`, b);
    }
  }
}

function logAlphaFromBetas(betas: Float64Array): Float64Array {
  // alpha_n = sqrt(cumprod(1 - beta)), as the official code; the table holds log alpha_n.
  const out = new Float64Array(betas.length);
  let prod = 1;
  for (let i = 0; i < betas.length; i++) {
    prod *= 1 - betas[i];
    out[i] = Math.log(Math.sqrt(prod));
  }
  return out;
}

function logAlphaFromCumprod(ac: Float64Array): Float64Array {
  const out = new Float64Array(ac.length);
  for (let i = 0; i < ac.length; i++) {
    const a = ac[i];
    if (!(a > 0 && a <= 1)) throw outOfRange(`alphasCumprod[${i}]`, 'a number > 0 and <= 1', a);
    if (i > 0 && !(a < ac[i - 1])) {
      throw outOfRange(`alphasCumprod[${i}]`, `a strictly decreasing sequence (alphasCumprod[${i - 1}] = ${ac[i - 1]})`, a);
    }
    out[i] = Math.log(Math.sqrt(a));
  }
  return out;
}

export function discreteSchedule(options: DiscreteOptions): NoiseSchedule {
  const opts = expectObject('NoiseSchedule.discrete options', options);
  expectKnownKeys('NoiseSchedule.discrete options', opts, KNOWN);
  const given = (['betas', 'alphasCumprod', 'kind'] as const).filter((k) => opts[k] !== undefined);
  if (given.length !== 1) {
    throw new TypeError(
      `Expected exactly one of 'betas', 'alphasCumprod', 'kind' for NoiseSchedule.discrete options but received ${
        given.length ? given.map((g) => `'${g}'`).join(', ') : 'none'
      }`,
    );
  }
  let logAlphaTable: Float64Array;
  let source: string;
  if (opts.betas !== undefined) {
    const betas = expectFiniteArray('betas', opts.betas, { minLength: 2 });
    checkBetas(betas);
    logAlphaTable = logAlphaFromBetas(betas);
    source = 'betas';
  } else if (opts.alphasCumprod !== undefined) {
    logAlphaTable = logAlphaFromCumprod(expectFiniteArray('alphasCumprod', opts.alphasCumprod, { minLength: 2 }));
    source = 'alphasCumprod';
  } else {
    const kind = expectOneOf('kind', KINDS, opts.kind);
    const N = opts.N === undefined ? 1000 : expectInteger('N', opts.N, { min: 2, max: MAX_DISCRETE_N });
    const betaStart = opts.betaStart === undefined ? undefined : expectFiniteNumber('betaStart', opts.betaStart, { above: 0, below: 1 });
    const betaEnd = opts.betaEnd === undefined ? undefined : expectFiniteNumber('betaEnd', opts.betaEnd, { above: 0, below: 1 });
    if (kind.startsWith('squaredcos') && (betaStart !== undefined || betaEnd !== undefined)) {
      throw invalidType('betaStart/betaEnd', `no betaStart/betaEnd with kind '${kind}'`, betaStart ?? betaEnd);
    }
    const betas = builtinBetas(kind, N, betaStart, betaEnd);
    checkBetas(betas);
    logAlphaTable = logAlphaFromBetas(betas);
    source = `kind '${kind}'`;
  }
  if (opts.kind === undefined && (opts.N !== undefined || opts.betaStart !== undefined || opts.betaEnd !== undefined)) {
    throw new TypeError(`Expected N, betaStart and betaEnd only together with kind for NoiseSchedule.discrete options but received them with ${source}`);
  }

  const N = logAlphaTable.length;
  // Keypoints t_n = (n+1)/N (torch.linspace(0, 1, N+1)[1:]).
  const tKeys = Float64Array.from(linspace(0, 1, N + 1).slice(1));
  // For the inverse map, log alpha decreases with t: flip both arrays so xp increases.
  const logAlphaRev = Float64Array.from(logAlphaTable).reverse();
  const tKeysRev = Float64Array.from(tKeys).reverse();

  const logAlpha = (t: number): number => interpolatePiecewiseLinear(t, tKeys, logAlphaTable);
  const alpha = (t: number): number => Math.exp(logAlpha(t));
  const inverseLogAlpha = (la: number): number => interpolatePiecewiseLinear(la, logAlphaRev, tKeysRev);
  const derived = vpDerived(logAlpha, alpha, inverseLogAlpha);
  const eps = 1 / N;

  return {
    kind: 'discrete',
    T: 1,
    eps,
    domain: { min: eps, max: 1 },
    logAlpha,
    alpha,
    ...derived,
    // Official model_wrapper: t_input = (t - 1/N) * 1000.
    modelTime: (t: number): number => (t - 1 / N) * 1000,
    sigmaBounds: { min: derived.nsr(eps), max: derived.nsr(1) },
    describe: () => `discrete VP schedule (N = ${N}, from ${source})`,
  };
}
