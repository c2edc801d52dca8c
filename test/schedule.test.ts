/**
 * Noise schedules and time-step trajectories: values against the official numbers stored in
 * the golden files, exact relations, inverses, and the defining property of each trajectory.
 * Tolerances are stated in each test.
 */
import { readFileSync } from 'fs';
import { join } from 'path';
import { describe, expect, test } from 'vitest';
import { linspace } from '../lib/linspace';
import { NoiseSchedule } from '../lib/schedule';
import { timeSteps, SKIP_TYPES } from '../lib/timesteps';
import { FIXTURES, goldenSchedule, loadGolden } from './support/golden';

const rel = (a: number, b: number): number => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);

const ALL = {
  discrete: NoiseSchedule.discrete({ kind: 'linear' }),
  linear: NoiseSchedule.linear(),
  cosine: NoiseSchedule.cosine(),
  edm: NoiseSchedule.edm({ sigmaMin: 0.002, sigmaMax: 80 }),
  scaled_linear: NoiseSchedule.discrete({ kind: 'scaled_linear' }),
  squaredcos: NoiseSchedule.discrete({ kind: 'squaredcos_cap_v2' }),
};

describe('linspace (torch.linspace semantics)', () => {
  test('end points exact, symmetric halves, values within 1 ulp of start + i*step', () => {
    const v = linspace(0.1, 0.7, 11);
    expect(v[0]).toBe(0.1);
    expect(v[10]).toBe(0.7);
    // second half is computed from the end: end - (n-1-i) step
    const step = (0.7 - 0.1) / 10;
    expect(v[9]).toBe(0.7 - step);
    expect(v[4]).toBe(0.1 + 4 * step);
    expect(linspace(3, 5, 1)).toEqual([3]);
  });
});

describe('discrete schedule', () => {
  const s = ALL.discrete;
  test('log alpha table equals the official table of the reference model (|d| <= 1e-14)', () => {
    const j = JSON.parse(readFileSync(join(FIXTURES, 'models', 'gmm_D16_discrete.json'), 'utf8')) as { log_alpha_table: number[] };
    for (let n = 0; n < 1000; n++) expect(Math.abs(s.logAlpha((n + 1) / 1000) - j.log_alpha_table[n])).toBeLessThanOrEqual(1e-14);
  });
  test('betas, alphasCumprod and kind give the same schedule (relative 1e-13)', () => {
    const betas = linspace(1e-4, 0.02, 1000);
    let p = 1;
    const ac = betas.map((b) => (p *= 1 - b));
    const a = NoiseSchedule.discrete({ betas });
    const c = NoiseSchedule.discrete({ alphasCumprod: ac });
    for (const t of [0.001, 0.0137, 0.5, 0.77777, 1]) {
      expect(a.logAlpha(t)).toBe(s.logAlpha(t));
      expect(rel(c.logAlpha(t), s.logAlpha(t))).toBeLessThan(1e-13);
    }
  });
  test('piecewise linear in t between keypoints t_n = (n+1)/N, linear extrapolation below 1/N', () => {
    const la = (t: number) => s.logAlpha(t);
    const mid = la(0.5005);
    expect(Math.abs(mid - 0.5 * (la(0.5) + la(0.501)))).toBeLessThan(1e-15);
    const slope = (la(0.002) - la(0.001)) / 0.001;
    expect(Math.abs(la(0.0005) - (la(0.001) - 0.0005 * slope))).toBeLessThan(1e-15);
  });
  test('defaults and model time follow the official code: T = 1, eps = 1/N, t_input = 1000 (t - 1/N)', () => {
    expect(s.T).toBe(1);
    expect(s.eps).toBe(0.001);
    expect(s.modelTime(1)).toBe(999);
    expect(s.modelTime(0.001)).toBe(0);
    expect(s.domain).toEqual({ min: 0.001, max: 1 });
  });
  test('endpoints equal the official schedule_endpoints (relative 1e-12)', () => {
    const e = loadGolden('scire_discrete') as unknown as { schedule_endpoints: Record<string, number> };
    const ep = e.schedule_endpoints;
    expect(rel(s.nsr(1), ep.nsr_T)).toBeLessThan(1e-12);
    expect(rel(s.nsr(0.001), ep.nsr_0)).toBeLessThan(1e-12);
    expect(rel(s.alpha(1), ep.alpha_T)).toBeLessThan(1e-12);
    expect(rel(s.sigma(0.001), ep.sigma_0)).toBeLessThan(1e-12);
  });
  test('built-in kinds: scaled_linear betas and the squaredcos alpha-bar', () => {
    // scaled_linear: beta_1 = 0.00085, so alpha-bar_1 = 1 - 0.00085 at t = 1/N
    expect(rel(Math.exp(2 * ALL.scaled_linear.logAlpha(0.001)), 1 - 0.00085)).toBeLessThan(1e-14);
    // squaredcos_cap_v2: alpha-bar(t_n) = cos^2((t + 0.008)/1.008 pi/2) / cos^2(0.008/1.008 pi/2) while uncapped
    const ab = (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI * 0.5) ** 2;
    for (const n of [0, 99, 499, 900]) {
      const t = (n + 1) / 1000;
      expect(rel(Math.exp(2 * ALL.squaredcos.logAlpha(t)), ab(t) / ab(0))).toBeLessThan(1e-12);
    }
    const alias = NoiseSchedule.discrete({ kind: 'squaredcos' });
    expect(alias.logAlpha(0.3)).toBe(ALL.squaredcos.logAlpha(0.3));
  });
});

describe('continuous VP schedules', () => {
  test('linear: log alpha = -t^2 (beta1-beta0)/4 - t beta0/2; T = 1, eps = 1e-3; t_input = 1000 max(t - 1e-3, 0)', () => {
    const s = ALL.linear;
    expect(s.logAlpha(0.5)).toBeCloseTo(-0.25 * 0.25 * 19.9 - 0.25 * 0.1, 15);
    expect([s.T, s.eps]).toEqual([1, 0.001]);
    expect(s.modelTime(0.0005)).toBe(0);
    expect(s.modelTime(0.5)).toBeCloseTo(499, 10);
  });
  test('cosine: alpha_t = cos((t+s)/(1+s) pi/2)/cos(s/(1+s) pi/2); T = 0.9946; t_input = t', () => {
    const s = ALL.cosine;
    const f = (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI * 0.5);
    expect(rel(s.alpha(0.3), f(0.3) / f(0))).toBeLessThan(1e-15);
    expect([s.T, s.eps, s.modelTime(0.3)]).toEqual([0.9946, 0.001, 0.3]);
    // largest valid t: where beta(t) reaches 999 (official cosine_t_max)
    const tMax = (Math.atan((999 * 1.008) / Math.PI) * 2 * 1.008) / Math.PI - 0.008;
    expect(rel(s.domain.max, tMax)).toBeLessThan(1e-15);
    expect(s.domain.max).toBeGreaterThan(0.9946);
  });
  test('endpoints of linear and cosine equal the official values (relative 1e-12)', () => {
    for (const name of ['linear', 'cosine'] as const) {
      const ep = (loadGolden(`scire_${name}`) as unknown as { schedule_endpoints: Record<string, number> }).schedule_endpoints;
      const s = goldenSchedule(name);
      expect(rel(s.nsr(ep.t_T), ep.nsr_T)).toBeLessThan(1e-12);
      expect(rel(s.nsr(ep.t_0), ep.nsr_0)).toBeLessThan(1e-12);
      expect(rel(s.sigma(ep.t_0), ep.sigma_0)).toBeLessThan(1e-12);
      expect(rel(s.alpha(ep.t_T), ep.alpha_T)).toBeLessThan(1e-12);
    }
  });
});

describe('relations shared by every schedule', () => {
  for (const [name, s] of Object.entries(ALL)) {
    test(`${name}: NSR = sigma/alpha, lambda = -log NSR, VP: alpha^2 + sigma^2 = 1, inverses round-trip (relative 1e-10)`, () => {
      const lo = Math.max(s.domain.min, s.eps);
      for (let i = 0; i <= 20; i++) {
        const t = lo + ((s.T - lo) * i) / 20;
        expect(rel(s.nsr(t), s.sigma(t) / s.alpha(t))).toBeLessThan(1e-14);
        expect(Math.abs(s.lambda(t) + Math.log(s.nsr(t)))).toBeLessThan(1e-13);
        if (s.kind !== 'edm') expect(Math.abs(s.alpha(t) ** 2 + s.sigma(t) ** 2 - 1)).toBeLessThan(1e-15);
        expect(rel(s.inverseNsr(s.nsr(t)), t)).toBeLessThan(1e-10);
        expect(rel(s.inverseLambda(s.lambda(t)), t)).toBeLessThan(1e-10);
        expect(Math.abs(s.logAlpha(t) - Math.log(s.alpha(t)))).toBeLessThan(1e-14);
      }
    });
  }
  test('edm: alpha = 1, sigma = NSR = t, t_input = sigma, defaults sigmaMax/sigmaMin', () => {
    const s = ALL.edm;
    expect([s.alpha(3), s.sigma(3), s.nsr(3), s.modelTime(3), s.T, s.eps]).toEqual([1, 3, 3, 3, 80, 0.002]);
    expect(s.sigmaBounds).toEqual({ min: 0.002, max: 80 });
    expect(NoiseSchedule.edm().T).toBe(80);
  });
});

describe('time steps', () => {
  const s = ALL.discrete;
  test('NSR trajectory equals the official grid (the model times of a golden multistep case, |d| <= 1e-12)', () => {
    const g = loadGolden('scire_discrete');
    const c = g.cases.find((k) => k.id === 'scire|discrete|scire_v1|multistep|o3|NSR|s20');
    expect(c).toBeDefined();
    const grid = timeSteps(s, 'nsr', 1, 0.001, 20);
    // multistep evaluates the model at t_0 .. t_{steps-1}
    for (let i = 0; i < 20; i++) expect(Math.abs(grid[i] - (c as { model_t_continuous: number[] }).model_t_continuous[i])).toBeLessThanOrEqual(1e-12);
  });
  test('NSR trajectory: NSR_i + k NSR_0 is geometric (relative 1e-10), k configurable', () => {
    for (const k of [3.1, 2, 7]) {
      const grid = timeSteps(s, 'nsr', 1, 0.001, 10, { nsrShift: k, rho: 7 });
      const nsr0 = s.nsr(0.001);
      const q = grid.map((t) => s.nsr(t) + k * nsr0);
      for (let i = 1; i < 10; i++) expect(rel(q[i] / q[i - 1], q[i + 1] / q[i])).toBeLessThan(1e-10);
    }
  });
  test('logsnr: lambda uniform; karras: NSR^(1/rho) uniform; time_quadratic: sqrt(t) uniform (relative 1e-9)', () => {
    const n = 8;
    const l = timeSteps(s, 'logsnr', 1, 0.001, n).map((t) => s.lambda(t));
    const kr = timeSteps(s, 'karras', 1, 0.001, n, { nsrShift: 3.1, rho: 7 }).map((t) => s.nsr(t) ** (1 / 7));
    const q = timeSteps(s, 'time_quadratic', 1, 0.001, n).map(Math.sqrt);
    for (const seq of [l, kr, q]) {
      const d = seq[1] - seq[0];
      for (let i = 1; i < n; i++) expect(rel(seq[i + 1] - seq[i], d)).toBeLessThan(1e-9);
    }
    // karras on EDM is exactly Karras et al.'s sigma schedule
    const e = timeSteps(ALL.edm, 'karras', 80, 0.002, 4, { nsrShift: 3.1, rho: 7 });
    expect(rel(e[2], (0.5 * 80 ** (1 / 7) + 0.5 * 0.002 ** (1 / 7)) ** 7)).toBeLessThan(1e-14);
  });
  for (const [name, sch] of Object.entries(ALL)) {
    test(`${name}: every trajectory decreases from tStart to tEnd (end points relative 1e-9)`, () => {
      for (const skip of SKIP_TYPES) {
        const grid = timeSteps(sch, skip, sch.T, sch.eps, 12);
        expect(grid.length).toBe(13);
        expect(rel(grid[0], sch.T)).toBeLessThan(1e-9);
        expect(rel(grid[12], sch.eps)).toBeLessThan(1e-9);
        for (let i = 1; i <= 12; i++) expect(grid[i]).toBeLessThan(grid[i - 1]);
      }
    });
  }
});

describe('bad schedule options', () => {
  const cases: Array<[string, () => unknown, RegExp, ErrorConstructor]> = [
    ['non-finite beta', () => NoiseSchedule.discrete({ betas: [0.1, NaN, 0.2] }), /Expected a finite number for betas\[1\] but received NaN \(number\)/, TypeError],
    ['decreasing betas', () => NoiseSchedule.discrete({ betas: [0.1, 0.2, 0.15] }), /non-decreasing sequence of betas.*betas\[2\].*0\.15/, RangeError],
    ['beta >= 1', () => NoiseSchedule.discrete({ betas: [0.1, 1] }), /Expected a number > 0 and < 1 for betas\[1\] but received 1 \(number\)/, RangeError],
    ['beta <= 0', () => NoiseSchedule.discrete({ betas: [0, 0.1] }), /betas\[0\]/, RangeError],
    ['too few betas', () => NoiseSchedule.discrete({ betas: [0.1] }), /betas\.length/, RangeError],
    ['betas not an array', () => NoiseSchedule.discrete({ betas: 'x' as unknown as number[] }), /Expected an array of finite numbers for betas but received 'x' \(string\)/, TypeError],
    ['increasing alphasCumprod', () => NoiseSchedule.discrete({ alphasCumprod: [0.9, 0.95] }), /strictly decreasing.*alphasCumprod\[1\]/, RangeError],
    ['betas and kind', () => NoiseSchedule.discrete({ betas: [0.1, 0.2], kind: 'linear' }), /exactly one of 'betas', 'alphasCumprod', 'kind'.*'betas', 'kind'/, TypeError],
    ['none given', () => NoiseSchedule.discrete({}), /exactly one of 'betas', 'alphasCumprod', 'kind'.*none/, TypeError],
    ['unknown kind', () => NoiseSchedule.discrete({ kind: 'quadratic' as 'linear' }), /Expected one of 'linear', 'scaled_linear', 'squaredcos_cap_v2', 'squaredcos' for kind but received 'quadratic' \(string\)/, TypeError],
    ['N < 2', () => NoiseSchedule.discrete({ kind: 'linear', N: 1 }), /Expected an integer >= 2 and <= 1000000 for N but received 1/, RangeError],
    ['N not integer', () => NoiseSchedule.discrete({ kind: 'linear', N: 10.5 }), /for N but received 10.5/, TypeError],
    ['N with betas', () => NoiseSchedule.discrete({ betas: [0.1, 0.2], N: 2 }), /only together with kind/, TypeError],
    ['unknown key', () => NoiseSchedule.discrete({ kind: 'linear', bettas: 1 } as never), /unknown option 'bettas'/, TypeError],
    ['linear beta1 <= beta0', () => NoiseSchedule.linear({ beta0: 1, beta1: 0.5 }), /Expected a number > beta0 \(1\) for beta1 but received 0.5/, RangeError],
    ['linear beta0 < 0', () => NoiseSchedule.linear({ beta0: -1 }), /for beta0 but received -1/, RangeError],
    ['linear infinite beta1', () => NoiseSchedule.linear({ beta1: Infinity }), /Expected a finite number > 0 for beta1 but received Infinity/, TypeError],
    ['edm sigmaMax <= sigmaMin', () => NoiseSchedule.edm({ sigmaMin: 1, sigmaMax: 1 }), /for sigmaMax but received 1/, RangeError],
    ['edm sigmaMin <= 0', () => NoiseSchedule.edm({ sigmaMin: 0 }), /Expected a finite number > 0 for sigmaMin but received 0/, RangeError],
    ['cosine unknown key', () => NoiseSchedule.cosine({ s: 0.01 } as never), /unknown option 's'/, TypeError],
  ];
  test.each(cases)('%s', (_name, fn, msg, cls) => {
    expect(fn).toThrow(cls);
    expect(fn).toThrow(msg);
  });
});
