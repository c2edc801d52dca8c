/**
 * The recursive derivative estimation (RDE) coefficients of SciRE-Solver: the phi_1(m)
 * series and the official indexing (faithful mode), the official quirks reproduced, the
 * plain bugs fixed, and the exactness of the 'consistent' coefficients on polynomials.
 */
import { describe, expect, test } from 'vitest';
import { compilePlan } from '../lib/compile';
import { resolveOptions, type CompileOptions } from '../lib/options';
import { executePlanReference } from '../lib/reference';
import { NoiseSchedule, type NoiseSchedule as Schedule } from '../lib/schedule';
import { createSolverContext } from '../lib/solvers/context';
import { multistepPhi, seriesPhi, singlestepPhi } from '../lib/solvers/phi';
import { correctorIncrement, multistepCoefficients } from '../lib/solvers/scire-multistep';
import { agileOrders, intermediateRatios } from '../lib/solvers/scire-singlestep';
import { scireVariable } from '../lib/solvers/scire-variable';
import { timeSteps } from '../lib/timesteps';

const discrete = NoiseSchedule.discrete({ kind: 'linear' });
const linear = NoiseSchedule.linear();
const ctxFor = (o: CompileOptions) => createSolverContext(resolveOptions(o));

describe('phi_1(m) series and the official indexing', () => {
  test('seriesPhi(n)[i] = sum_{j=1}^{i+3} (-1)^{j-1}/j!  (2/3, 5/8, 19/30, 91/144, ... -> 1 - 1/e)', () => {
    const phi = seriesPhi(30);
    expect(phi.length).toBe(30);
    expect(phi[0]).toBeCloseTo(2 / 3, 15);
    expect(phi[1]).toBeCloseTo(5 / 8, 15);
    expect(phi[2]).toBeCloseTo(19 / 30, 15);
    expect(phi[3]).toBeCloseTo(91 / 144, 15);
    expect(phi[29]).toBeCloseTo(1 - Math.exp(-1), 15);
  });
  test('multistep (steps = 10, order 3): warm-up phi[2j-1]; j < 5: phi[2(j-3)+1]; j = 5: phi[-1]; j > 5: phi[2(10-j)]', () => {
    const phi = seriesPhi(11);
    const got = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((j) => multistepPhi(phi, j, 10, 3));
    const idx = [1, 3, 1, 3, 10, 8, 6, 4, 2, 0];
    expect(got).toEqual(idx.map((i) => phi[i]));
  });
  test('singlestep (K = 4): j < 2: phi[2j]; j = 2: phi[-1]; j > 2: phi[2(K-j)-1]; agile step K wraps to phi[-1]', () => {
    const phi = seriesPhi(4);
    expect([0, 1, 2, 3, 4].map((j) => singlestepPhi(phi, j, 4))).toEqual([phi[0], phi[2], phi[3], phi[1], phi[3]]);
  });
  test('agile order lists as the official get_orders_and_timesteps_for_singlestep_solver', () => {
    expect(agileOrders(6, 3)).toEqual([3, 2, 1]);
    expect(agileOrders(7, 3)).toEqual([3, 3, 1]);
    expect(agileOrders(8, 3)).toEqual([3, 3, 2]);
    expect(agileOrders(5, 2)).toEqual([2, 2, 1]);
    expect(agileOrders(4, 1)).toEqual([1, 1, 1, 1]);
    for (let s = 3; s < 30; s++) for (const o of [1, 2, 3]) expect(agileOrders(s, o).reduce((a, b) => a + b, 0)).toBe(s);
  });
});

describe('faithful coefficients (official quirks 3-5, 8)', () => {
  const ctx = ctxFor({ schedule: discrete, steps: 10 });
  const grid = timeSteps(discrete, 'nsr', 1, 0.001, 10);
  const nsr = grid.map((t) => discrete.nsr(t));
  test('order 2: coefficient of (m0 - m1) is h/(2 phi r^(1/4)), r = log(NSR_1/NSR_0)/log(NSR_0/NSR_t), for v1 and v2', () => {
    const phi = 0.63;
    for (const alg of ['v1', 'v2'] as const) {
      const v = scireVariable(discrete, alg);
      const [c0, c1] = multistepCoefficients(ctx, v, [grid[3], grid[4]], grid[5], true, phi);
      const h = v.at(grid[5]) - v.at(grid[4]);
      const r = Math.log(nsr[3] / nsr[4]) / Math.log(nsr[4] / nsr[5]);
      expect(c1 / (-h / (2 * phi * r ** 0.25)) - 1).toBeCloseTo(0, 13);
      expect((c0 + c1) / h - 1).toBeCloseTo(0, 13);
    }
  });
  test('order 3: D1, D2 coefficients h/(2 r0 phi), h/(6 r0 phi r1 phi) with NSR ratios r0, r1 (phi twice), also for v2', () => {
    const phi = 0.64;
    for (const alg of ['v1', 'v2'] as const) {
      const v = scireVariable(discrete, alg);
      const [c0, c1, c2] = multistepCoefficients(ctx, v, [grid[2], grid[3], grid[4]], grid[5], true, phi);
      const h = v.at(grid[5]) - v.at(grid[4]);
      const r0 = (phi * (nsr[4] - nsr[3])) / (nsr[5] - nsr[4]);
      const r1 = (phi / (1 + phi)) * ((nsr[3] - nsr[2]) / (nsr[4] - nsr[3]));
      const a = h / (2 * r0 * phi);
      const b = h / (6 * r0 * phi * r1 * phi);
      // y + h m0 + a (m0 - m1) + b (m0 - 2 m1 + m2)
      expect(c2 / b - 1).toBeCloseTo(0, 12);
      expect(c1 / (-a - 2 * b) - 1).toBeCloseTo(0, 12);
      expect(c0 / (h + a + b) - 1).toBeCloseTo(0, 12);
    }
  });
  test('lower_order_final always applies in faithful multistep (last update order 1, the one before order 2)', () => {
    const plan = compilePlan({ schedule: discrete, steps: 20 });
    const updates = plan.ops.filter((op) => op.op === 'lincomb' && op.dst === 0);
    expect(updates.map((op) => (op.op === 'lincomb' ? op.terms.length - 1 : 0))).toEqual([1, 2, ...Array(16).fill(3), 2, 1]);
    const none = compilePlan({ schedule: discrete, steps: 20, lowerOrderFinal: false });
    const lastUpdate = none.ops.filter((op) => op.op === 'lincomb' && op.dst === 0).pop();
    expect(lastUpdate?.op === 'lincomb' ? lastUpdate.terms.length : 0).toBe(4); // y, m0, m1, m2: still order 3
  });
  test('singlestep r1, r2: inner NSR grid on discrete, defaults 1/3, 2/3 on continuous schedules', () => {
    const c = ctxFor({ schedule: discrete, steps: 6, method: 'singlestep_fixed' });
    const inner = timeSteps(discrete, 'nsr', 0.8, 0.3, 3).map((t) => discrete.nsr(t));
    const [r1, r2] = intermediateRatios(c, 0.8, 0.3, 3, true);
    expect(r1).toBeCloseTo((inner[1] - inner[0]) / (inner[3] - inner[0]), 14);
    expect(r2).toBeCloseTo((inner[2] - inner[0]) / (inner[3] - inner[0]), 14);
    expect(Math.abs(r1 - 1 / 3)).toBeGreaterThan(0.05);
    expect(intermediateRatios(ctxFor({ schedule: linear, steps: 6, method: 'singlestep_fixed' }), 0.8, 0.3, 3, true)).toEqual([1 / 3, 2 / 3]);
    expect(intermediateRatios(c, 0.8, 0.3, 3, false)).toEqual([1 / 3, 2 / 3]);
    expect(intermediateRatios(c, 0.8, 0.3, 2, true).length).toBe(1);
  });
  test('v2 singlestep on discrete applies the NSR ratio r1 in 1/NSR space (quirk 5)', () => {
    const plan = compilePlan({ schedule: discrete, steps: 2, order: 2, method: 'singlestep_fixed', algorithm: 'v2' });
    const evals = plan.ops.filter((op) => op.op === 'eval').map((op) => (op.op === 'eval' ? op.tCont : NaN));
    const [s, t] = timeSteps(discrete, 'nsr', 1, 0.001, 1);
    const inner = timeSteps(discrete, 'nsr', s, t, 2).map((x) => discrete.nsr(x));
    const r1 = (inner[1] - inner[0]) / (inner[2] - inner[0]);
    const tau = (x: number) => 1 / discrete.nsr(x);
    const s1 = discrete.inverseNsr(1 / (tau(s) + r1 * (tau(t) - tau(s))));
    expect(evals[0]).toBe(s);
    expect(Math.abs(evals[1] - s1)).toBeLessThan(1e-14);
  });
});

describe('plain bugs of the official code, fixed', () => {
  const cosine = NoiseSchedule.cosine();
  test('cosine + NSR skip works (the official inverse_NSR raises a TypeError)', () => {
    const plan = compilePlan({ schedule: cosine, steps: 10 });
    const times = plan.ops.filter((op) => op.op === 'eval').map((op) => (op.op === 'eval' ? op.tCont : NaN));
    expect(times).toEqual(timeSteps(cosine, 'nsr', 0.9946, 0.001, 10).slice(0, 10));
    expect(times.every((t) => Number.isFinite(t) && t > 0.001 && t <= 0.9946)).toBe(true);
  });
  test('cosine + singlestep updates the state (the official loop has no cosine branch and returns x_T alpha_0/alpha_T)', () => {
    const plan = compilePlan({ schedule: cosine, steps: 9, method: 'singlestep_fixed', order: 3, skip: 'time_uniform' });
    expect(plan.nfe).toBe(9);
    // a state-independent model eps = 1: v1 gives y_0 = y_T + (NSR_0 - NSR_T) exactly (DDIM-exact for constant eps)
    const res = executePlanReference(plan, { x: [2], shape: [1, 1], model: (x) => x.map(() => 1) });
    const expected = cosine.alpha(0.001) * (2 / cosine.alpha(0.9946) + cosine.nsr(0.001) - cosine.nsr(0.9946));
    expect(res.x[0] / expected - 1).toBeCloseTo(0, 12);
  });
});

describe("'consistent' coefficients are the exact Taylor / Adams-Bashforth coefficients", () => {
  // For m(v) a polynomial of degree order-1 in the integration variable, sum c_i m_i must equal
  // the exact integral of m from v_0 to v_t on any non-uniform grid (relative 1e-10).
  const cases: Array<[string, Schedule]> = [
    ['discrete', discrete],
    ['linear', linear],
    ['edm', NoiseSchedule.edm()],
  ];
  for (const [name, sch] of cases) {
    for (const alg of ['v1', 'v2'] as const) {
      test(`${name} ${alg}: orders 1, 2, 3 integrate polynomials of degree 0, 1, 2 exactly`, () => {
        const ctx = ctxFor({ schedule: sch, steps: 10, algorithm: alg, rde: 'consistent' });
        const v = scireVariable(sch, alg);
        const grid = timeSteps(sch, 'time_quadratic', sch.T * 0.7, sch.eps * 20, 7); // non-uniform in v
        const [p0, p1, p2] = [0.3, -1.7, 0.9];
        for (const order of [1, 2, 3]) {
          const past = grid.slice(3 - order, 3);
          const t = grid[3];
          const coefs = multistepCoefficients(ctx, v, past, t, false, 1);
          const vv = past.map((x) => v.at(x)).reverse(); // newest first, matches coefs
          const deg = order - 1;
          const m = (x: number) => p0 + (deg >= 1 ? p1 * x : 0) + (deg >= 2 ? p2 * x * x : 0);
          const M = (x: number) => p0 * x + (deg >= 1 ? (p1 * x * x) / 2 : 0) + (deg >= 2 ? (p2 * x * x * x) / 3 : 0);
          const approx = coefs.reduce((acc, c, i) => acc + c * m(vv[i]), 0);
          const exact = M(v.at(t)) - M(vv[0]);
          expect(Math.abs(approx - exact) / Math.max(Math.abs(exact), 1e-300)).toBeLessThan(1e-10);
        }
      });
    }
  }
  test('singlestep order 2 / 3 solve dy/dv = linear / quadratic q(v) exactly (state-independent model, v1 and v2; relative 1e-10)', () => {
    const sch = linear;
    const tOf = (tIn: number) => tIn / 1000 + 1e-3; // linear model time map, t > 1e-3 here
    for (const order of [2, 3]) {
      const c2 = order === 3 ? 0.0003 : 0;
      const q = (v: number) => 0.4 - 0.02 * v + c2 * v * v;
      const Q = (v: number) => 0.4 * v - 0.01 * v * v + (c2 / 3) * v * v * v;
      for (const alg of ['v1', 'v2'] as const) {
        const v = scireVariable(sch, alg);
        // v1: eps = q(NSR); v2: the noise output whose data prediction is q(1/NSR)
        const model = (x: Float64Array, _s: number[], tIn: number) => {
          const t = tOf(tIn);
          const target = q(v.at(t));
          return alg === 'v1' ? x.map(() => target) : x.map((xi) => (xi - sch.alpha(t) * target) / sch.sigma(t));
        };
        const opts: CompileOptions = { schedule: sch, steps: 6, order, method: 'singlestep_fixed', algorithm: alg, rde: 'consistent', skip: 'time_uniform', tEnd: 0.01 };
        const res = executePlanReference(compilePlan(opts), { x: [1.5], shape: [1, 1], model });
        const exact = v.stateScale(0.01) * (1.5 / v.stateScale(1) + Q(v.at(0.01)) - Q(v.at(1)));
        expect(Math.abs(res.x[0] / exact - 1)).toBeLessThan(1e-10);
        // the faithful coefficients (phi ~ 0.63) are not exact on the same problem
        const faithful = executePlanReference(compilePlan({ ...opts, rde: 'faithful' }), { x: [1.5], shape: [1, 1], model });
        expect(Math.abs(faithful.x[0] / exact - 1)).toBeGreaterThan(1e-6);
      }
    }
  });
  test('consistent multistep keeps the full order when steps >= 10 (lowers only below 10, as DPM-Solver)', () => {
    const last = (o: CompileOptions) => {
      const ups = compilePlan(o).ops.filter((op) => op.op === 'lincomb' && op.dst === 0);
      return ups.map((op) => (op.op === 'lincomb' ? op.terms.length - 1 : 0)).slice(-2);
    };
    expect(last({ schedule: discrete, steps: 12, rde: 'consistent' })).toEqual([3, 3]);
    expect(last({ schedule: discrete, steps: 8, rde: 'consistent' })).toEqual([2, 1]);
    expect(last({ schedule: discrete, steps: 12, rde: 'faithful' })).toEqual([2, 1]);
  });
});

describe('the SciRE corrector (docs/math.md section 9)', () => {
  // With phi = 1 the corrector of a step of predictor order p integrates polynomials of degree p
  // exactly through (v_t, m_t), (v_0, m0), ..., (v_{p-1}, m_{p-1}) (Adams-Moulton in v).
  for (const alg of ['v1', 'v2'] as const) {
    test(`${alg}: phi = 1 integrates polynomials of degree 1, 2, 3 exactly on a non-uniform grid (relative 1e-10)`, () => {
      const v = scireVariable(discrete, alg);
      const grid = timeSteps(discrete, 'time_quadratic', 0.7, 0.02, 7);
      const cs = [0.3, -1.7, 0.9, 0.25];
      for (const p of [1, 2, 3]) {
        const past = grid.slice(3 - p, 3);
        const t = grid[3];
        // registers: 0..p-1 = m0 (newest), m1, ...; p = m_t
        const inc = correctorIncrement(v, past, t, 1, [0, 1, 2].slice(0, p), p);
        const vs = [...past.map((x) => v.at(x)).reverse(), v.at(t)];
        const m = (x: number) => cs.slice(0, p + 1).reduce((acc, c, k) => acc + c * x ** k, 0);
        const M = (x: number) => cs.slice(0, p + 1).reduce((acc, c, k) => acc + (c * x ** (k + 1)) / (k + 1), 0);
        let approx = 0;
        for (const [r, c] of inc) approx += c * m(vs[r]);
        const exact = M(v.at(t)) - M(vs[0]);
        expect(Math.abs(approx - exact) / Math.abs(exact)).toBeLessThan(1e-10);
      }
    });
  }
  test('faithful phi divides the k-th derivative term by phi^k: with m linear only the D1_t term changes, by 1/phi', () => {
    const v = scireVariable(discrete, 'v1');
    const grid = timeSteps(discrete, 'nsr', 1, 0.001, 10);
    const phi = 0.63;
    const past = grid.slice(3, 5);
    const t = grid[5];
    const h = v.at(t) - v.at(past[1]);
    const a = correctorIncrement(v, past, t, 1, [0, 1], 2);
    const b = correctorIncrement(v, past, t, phi, [0, 1], 2);
    // a - b on m_t: h/2 (1 - 1/phi) - h^3/6 (1 - 1/phi^2) / (h (h + h1))
    const h1 = v.at(past[1]) - v.at(past[0]);
    const want = (h / 2) * (1 - 1 / phi) - ((h * h * h) / 6) * (1 - 1 / phi ** 2) / (h * (h + h1));
    expect(((a.get(2) as number) - (b.get(2) as number)) / want - 1).toBeCloseTo(0, 10);
  });
  test('no extra NFE, every lincomb within 4 terms, the last step uncorrected; corrector none = the official plan', () => {
    for (const order of [1, 2, 3]) {
      for (const corrector of ['faithful', 'consistent'] as const) {
        const plan = compilePlan({ schedule: discrete, steps: 8, order, corrector });
        expect(plan.nfe).toBe(8);
        expect(plan.meta.corrector).toBe(corrector);
        // 8 predictor updates + 7 corrections (+ chained pieces)
        expect(plan.ops.filter((op) => op.op === 'lincomb').length).toBeGreaterThanOrEqual(15);
      }
    }
    expect(compilePlan({ schedule: discrete, steps: 8, corrector: 'none' })).toEqual(compilePlan({ schedule: discrete, steps: 8 }));
  });
});
