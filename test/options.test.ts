/**
 * compilePlan options (defaults, every bad-option case with its message), the structure of
 * the plans, model output types, thresholding, and the input checks of executePlanReference.
 */
import { describe, expect, test } from 'vitest';
import { compilePlan } from '../lib/compile';
import type { CompileOptions } from '../lib/options';
import type { Plan } from '../lib/plan';
import { checkPlan } from '../lib/plan-check';
import { dynamicThreshold, executePlanReference } from '../lib/reference';
import { NoiseSchedule } from '../lib/schedule';
import { flatten, goldenSchedule, loadGolden, loadGoldenModel } from './support/golden';

const discrete = NoiseSchedule.discrete({ kind: 'linear' });
const linear = NoiseSchedule.linear();
const edm = NoiseSchedule.edm();

describe('defaults', () => {
  test('compilePlan({ schedule, steps }) is SciRE v1, multistep, order 3, NSR, lower-order final, noise, faithful', () => {
    const plan = compilePlan({ schedule: discrete, steps: 10 });
    expect(plan.meta).toMatchObject({
      solver: 'scire',
      algorithm: 'v1',
      method: 'multistep',
      order: 3,
      skip: 'nsr',
      lowerOrderFinal: true,
      denoiseToZero: false,
      modelType: 'noise',
      rde: 'faithful',
      tStart: 1,
      tEnd: 0.001,
    });
    const explicit = compilePlan({
      schedule: discrete,
      steps: 10,
      solver: 'scire',
      algorithm: 'v1',
      method: 'multistep',
      order: 3,
      skip: 'nsr',
      lowerOrderFinal: true,
      modelType: 'noise',
      rde: 'faithful',
      nsrShift: 3.1,
      denoiseToZero: false,
    });
    expect(explicit).toEqual(plan);
  });
  test('the default equals the official configuration of the golden case (v1 3M NSR)', () => {
    const g = loadGolden('scire_discrete');
    const c = g.cases.find((k) => k.id === 'scire|discrete|scire_v1|multistep|o3|NSR|s12');
    const res = executePlanReference(compilePlan({ schedule: goldenSchedule('discrete'), steps: 12 }), {
      x: flatten(g.x_T),
      shape: g.x_T_shape,
      model: loadGoldenModel(g).asModel(),
    });
    const ref = flatten(c?.x0);
    // same tolerance as test/golden.test.ts: |dx| <= 1e-9 (+ 1e3 * probe, here ~1e-14)
    for (let i = 0; i < ref.length; i++) expect(Math.abs(res.x[i] - ref[i])).toBeLessThanOrEqual(1e-9);
  });
});

describe('bad options', () => {
  const base: CompileOptions = { schedule: discrete, steps: 10 };
  const { sigmaBounds: _drop, ...noBounds } = linear;
  const cases: Array<[string, Record<string, unknown>, RegExp, ErrorConstructor]> = [
    ['missing schedule', { schedule: undefined }, /Expected a NoiseSchedule .* for schedule but received undefined/, TypeError],
    ['schedule without nsr', { schedule: { ...linear, nsr: 3 } }, /Expected a function for schedule\.nsr but received 3 \(number\)/, TypeError],
    ['unknown solver', { solver: 'euler' }, /^Expected one of 'scire', 'ddim', 'dpmpp', 'unipc' for solver but received 'euler' \(string\)$/, TypeError],
    ['unknown algorithm', { algorithm: 'v3' }, /^Expected one of 'v1', 'v2' for algorithm but received 'v3' \(string\)$/, TypeError],
    ['unknown method', { method: 'adaptive' }, /^Expected one of 'multistep', 'singlestep_agile', 'singlestep_fixed' for method but received 'adaptive' \(string\)$/, TypeError],
    ['unknown skip', { skip: 'logSNR' }, /^Expected one of 'nsr', 'time_uniform', 'time_quadratic', 'logsnr', 'karras' for skip but received 'logSNR' \(string\)$/, TypeError],
    ['unknown modelType', { modelType: 'eps' }, /^Expected one of 'noise', 'x_start', 'v', 'score' for modelType but received 'eps' \(string\)$/, TypeError],
    ['unknown rde', { rde: 'exact' }, /^Expected one of 'faithful', 'consistent' for rde but received 'exact' \(string\)$/, TypeError],
    ['order 4', { order: 4 }, /^Expected one of 1, 2, 3 for order but received 4 \(number\)$/, TypeError],
    ['order as string', { order: '3' }, /for order but received '3' \(string\)/, TypeError],
    ['ddim order 2', { solver: 'ddim', order: 2 }, /^Expected one of 1 for order but received 2 \(number\)$/, TypeError],
    ['steps < order', { steps: 2, order: 3 }, /^Expected an integer >= order \(3\) for steps but received 2 \(number\)$/, RangeError],
    ['non-integer steps', { steps: 10.5 }, /^Expected an integer >= 1 and <= 10000 for steps but received 10.5 \(number\)$/, TypeError],
    ['steps 0', { steps: 0 }, /^Expected an integer >= 1 and <= 10000 for steps but received 0 \(number\)$/, RangeError],
    ['missing steps', { steps: undefined }, /for steps but received undefined/, TypeError],
    ['tEnd >= tStart', { tStart: 0.5, tEnd: 0.5 }, /^Expected a number < tStart \(0.5\) for tEnd but received 0.5 \(number\)$/, RangeError],
    ['tStart past the schedule', { tStart: 1.5 }, /^Expected a finite number > 0 and <= 1 for tStart but received 1.5 \(number\)$/, RangeError],
    ['tEnd below 1/N (discrete)', { tEnd: 0.0005 }, /^Expected a finite number >= 0.001 for tEnd but received 0.0005 \(number\)$/, RangeError],
    ['tEnd <= 0 (linear)', { schedule: linear, tEnd: 0 }, /^Expected a finite number > 0 for tEnd but received 0 \(number\)$/, RangeError],
    ['tStart NaN', { tStart: NaN }, /for tStart but received NaN \(number\)/, TypeError],
    ['karras without sigma bounds', { schedule: noBounds, skip: 'karras' }, /^Expected one of 'nsr', 'time_uniform', 'time_quadratic', 'logsnr' \('karras' needs a schedule with sigmaBounds; linear has none\) for skip but received 'karras' \(string\)$/, TypeError],
    ['thresholding ratio 0', { algorithm: 'v2', thresholding: { ratio: 0 } }, /^Expected a finite number > 0 and <= 1 for thresholding\.ratio but received 0 \(number\)$/, RangeError],
    ['thresholding ratio > 1', { algorithm: 'v2', thresholding: { ratio: 1.5 } }, /for thresholding\.ratio but received 1.5/, RangeError],
    ['thresholding maxVal 0', { algorithm: 'v2', thresholding: { maxVal: 0 } }, /for thresholding\.maxVal but received 0/, RangeError],
    ['thresholding not an object', { algorithm: 'v2', thresholding: true }, /^Expected an object for thresholding but received true \(boolean\)$/, TypeError],
    ['thresholding unknown key', { algorithm: 'v2', thresholding: { percentile: 0.9 } }, /unknown option 'percentile'/, TypeError],
    ['thresholding with nothing to threshold (v1)', { thresholding: { ratio: 0.995 } }, /no data prediction to threshold.*algorithm 'v2'.*denoiseToZero/, TypeError],
    ['algorithm with ddim', { solver: 'ddim', algorithm: 'v1' }, /^Expected no algorithm with solver 'ddim' .*scire' only.* for algorithm but received 'v1' \(string\)$/, TypeError],
    ['rde with dpmpp', { solver: 'dpmpp', rde: 'consistent' }, /^Expected no rde with solver 'dpmpp' .*scire' only.* for rde but received 'consistent' \(string\)$/, TypeError],
    ['unknown unipc variant', { solver: 'unipc', variant: 'bh3' }, /^Expected one of 'bh1', 'bh2' for variant but received 'bh3' \(string\)$/, TypeError],
    ['variant with scire', { variant: 'bh2' }, /^Expected no variant with solver 'scire' .*'unipc' only.* for variant but received 'bh2' \(string\)$/, TypeError],
    ['finalCorrector with dpmpp', { solver: 'dpmpp', finalCorrector: true }, /^Expected no finalCorrector with solver 'dpmpp' .*'unipc' only/, TypeError],
    ['finalCorrector not boolean', { solver: 'unipc', finalCorrector: 'yes' }, /^Expected a boolean for finalCorrector but received 'yes' \(string\)$/, TypeError],
    ['unipc singlestep', { solver: 'unipc', method: 'singlestep_fixed' }, /^Expected 'multistep' with solver 'unipc' .* for method but received 'singlestep_fixed'/, TypeError],
    ['unknown scire corrector', { corrector: 'unic' }, /^Expected one of 'none', 'faithful', 'consistent' for corrector but received 'unic' \(string\)$/, TypeError],
    ['corrector with dpmpp', { solver: 'dpmpp', corrector: 'consistent' }, /^Expected no corrector with solver 'dpmpp' .*'scire' only/, TypeError],
    ['corrector with singlestep', { method: 'singlestep_agile', corrector: 'consistent' }, /^Expected 'multistep' with corrector 'consistent' .* for method but received 'singlestep_agile'/, TypeError],
    ['unknown option', { stpes: 10 }, /unknown option 'stpes'/, TypeError],
    ["'v' with EDM", { schedule: edm, modelType: 'v' }, /one of 'noise', 'x_start', 'score' with an EDM schedule.*received 'v'/, TypeError],
    ['denoiseToZero not boolean', { denoiseToZero: 1 }, /^Expected a boolean for denoiseToZero but received 1 \(number\)$/, TypeError],
    ['lowerOrderFinal not boolean', { lowerOrderFinal: 'yes' }, /for lowerOrderFinal but received 'yes'/, TypeError],
    ['nsrShift <= 0', { nsrShift: 0 }, /^Expected a finite number > 0 for nsrShift but received 0 \(number\)$/, RangeError],
    ['rho <= 0', { skip: 'karras', rho: -1 }, /for rho but received -1/, RangeError],
    ['options not an object', { __replace: 5 }, /Expected an object for compilePlan options but received 5 \(number\)/, TypeError],
  ];
  test.each(cases)('%s', (_name, patch, msg, cls) => {
    const opts = '__replace' in patch ? patch.__replace : { ...base, ...patch };
    const fn = () => compilePlan(opts as CompileOptions);
    expect(fn).toThrow(cls);
    expect(fn).toThrow(msg);
  });
});

describe('plan structure', () => {
  const methods = ['multistep', 'singlestep_agile', 'singlestep_fixed'] as const;
  for (const schedule of [discrete, linear, NoiseSchedule.cosine(), edm]) {
    for (const method of methods) {
      for (const order of [1, 2, 3] as const) {
        test(`${schedule.kind} ${method} order ${order}: NFE rule, registers, ops valid`, () => {
          for (const steps of [3, 5, 6, 10, 20]) {
            for (const dtz of [false, true]) {
              for (const algorithm of ['v1', 'v2'] as const) {
                const plan = compilePlan({ schedule, steps, method, order, algorithm, denoiseToZero: dtz });
                checkPlan(plan);
                const base = method === 'singlestep_fixed' ? Math.floor(steps / order) * order : steps;
                expect(plan.nfe).toBe(base + (dtz ? 1 : 0));
                const maxRegs = method === 'multistep' ? 1 + order : order === 1 ? 2 : order === 2 ? 4 : 5;
                expect(plan.numRegs).toBeLessThanOrEqual(maxRegs);
                for (const op of plan.ops) {
                  if (op.op === 'eval') expect(op.t).toBe(schedule.modelTime(op.tCont));
                  if (op.op === 'lincomb') expect(op.terms.length).toBeLessThanOrEqual(4);
                }
                expect(plan.ops.some((op) => op.op === 'threshold')).toBe(false);
              }
            }
          }
        });
      }
    }
  }
  test('the model is never evaluated at tEnd unless denoiseToZero (then last, at t_input of tEnd)', () => {
    const plan = compilePlan({ schedule: discrete, steps: 8 });
    expect(plan.ops.filter((op) => op.op === 'eval').every((op) => op.op === 'eval' && op.tCont > 0.001 * (1 + 1e-9))).toBe(true);
    const dtz = compilePlan({ schedule: discrete, steps: 8, denoiseToZero: true });
    const last = dtz.ops.filter((op) => op.op === 'eval').pop();
    expect(last).toMatchObject({ tCont: 0.001, t: 0 });
  });
});

describe('model output types (same ODE, converted in the eval op)', () => {
  const g = loadGolden('scire_linear');
  const gmm = loadGoldenModel(g);
  const x = flatten(g.x_T);
  const shape = g.x_T_shape;
  // Models of the other types built from the exact noise predictor at the same input time.
  const marg = (tIn: number) => {
    const la = gmm.logAlpha(tIn);
    return { a: Math.exp(la), s: Math.sqrt(-Math.expm1(2 * la)) };
  };
  const models = {
    noise: gmm.asModel(),
    x_start: (xin: Float64Array, sh: number[], tIn: number) => {
      const { a, s } = marg(tIn);
      const e = gmm.noise(xin, sh, tIn);
      return xin.map((v, i) => (v - s * e[i]) / a); // x0 = (x - sigma eps)/alpha
    },
    v: (xin: Float64Array, sh: number[], tIn: number) => {
      const { a, s } = marg(tIn);
      const e = gmm.noise(xin, sh, tIn);
      return xin.map((v, i) => a * e[i] - (s * (v - s * e[i])) / a); // v = alpha eps - sigma x0
    },
    score: (xin: Float64Array, sh: number[], tIn: number) => {
      const { s } = marg(tIn);
      return gmm.noise(xin, sh, tIn).map((e) => -e / s); // score = -eps/sigma
    },
  };
  for (const algorithm of ['v1', 'v2'] as const) {
    for (const method of ['multistep', 'singlestep_fixed'] as const) {
      test(`${algorithm} ${method}: x_start, v and score models give the noise model's result (relative 1e-9)`, () => {
        const opts: CompileOptions = { schedule: goldenSchedule('linear'), steps: 12, algorithm, method, denoiseToZero: true };
        const ref = executePlanReference(compilePlan(opts), { x, shape, model: models.noise }).x;
        const scale = Math.max(...ref.map(Math.abs));
        for (const modelType of ['x_start', 'v', 'score'] as const) {
          const out = executePlanReference(compilePlan({ ...opts, modelType }), { x, shape, model: models[modelType] }).x;
          let maxAbs = 0;
          for (let i = 0; i < ref.length; i++) maxAbs = Math.max(maxAbs, Math.abs(out[i] - ref[i]));
          expect(maxAbs / scale).toBeLessThan(1e-9);
        }
      });
    }
  }
});

describe('thresholding', () => {
  test('v2: a threshold op follows every data prediction; v1 + denoiseToZero: only the final one', () => {
    const v2 = compilePlan({ schedule: discrete, steps: 10, algorithm: 'v2', thresholding: { ratio: 0.9, maxVal: 1.5 } });
    v2.ops.forEach((op, i) => {
      if (op.op === 'eval') expect(v2.ops[i + 1]).toEqual({ op: 'threshold', reg: op.dst, ratio: 0.9, maxVal: 1.5 });
    });
    expect(v2.ops.filter((op) => op.op === 'threshold').length).toBe(v2.nfe);
    const v1 = compilePlan({ schedule: discrete, steps: 10, denoiseToZero: true, thresholding: {} });
    const th = v1.ops.filter((op) => op.op === 'threshold');
    expect(th).toEqual([{ op: 'threshold', reg: v1.final.src, ratio: 0.995, maxVal: 1 }]);
    expect(v1.ops[v1.ops.length - 1].op).toBe('threshold');
  });
  test('dynamicThreshold: per-sample quantile with linear interpolation, s = max(q, maxVal), clamp then divide', () => {
    // batch of 2 samples of 5 values
    const x = Float64Array.from([1, -4, 2, 3, -0.5, 0.1, 0.2, -0.3, 0.4, 0.5]);
    dynamicThreshold(x, 2, 0.5, 1);
    // sample 0: |x| sorted = 0.5 1 2 3 4, median = 2, s = max(2, 1) = 2
    expect(Array.from(x.slice(0, 5))).toEqual([0.5, -1, 1, 1, -0.25]);
    // sample 1: median |x| = 0.3 < maxVal 1: s = 1, unchanged
    expect(Array.from(x.slice(5))).toEqual([0.1, 0.2, -0.3, 0.4, 0.5]);
    const y = Float64Array.from([1, 2, 3, 4]);
    dynamicThreshold(y, 1, 0.9, 0.1); // position 0.9*3 = 2.7: q = 3 + 0.7*(4-3) = 3.7
    expect(y[3]).toBeCloseTo(1, 15);
    expect(y[0]).toBeCloseTo(1 / 3.7, 15);
  });
  test('a thresholded v2 solve stays within [-1, 1] at every data prediction (maxVal 1)', () => {
    const g = loadGolden('scire_discrete');
    const gmm = loadGoldenModel(g);
    const plan = compilePlan({ schedule: discrete, steps: 10, algorithm: 'v2', denoiseToZero: true, thresholding: { ratio: 0.8, maxVal: 1 } });
    const res = executePlanReference(plan, { x: flatten(g.x_T), shape: g.x_T_shape, model: gmm.asModel() });
    // the result is the thresholded final data prediction
    for (const v of res.x) expect(Math.abs(v)).toBeLessThanOrEqual(1);
    const plain = executePlanReference(compilePlan({ schedule: discrete, steps: 10, algorithm: 'v2', denoiseToZero: true }), {
      x: flatten(g.x_T),
      shape: g.x_T_shape,
      model: gmm.asModel(),
    });
    expect(Math.max(...plain.x.map(Math.abs))).toBeGreaterThan(1); // so the check above is not vacuous
  });
});

describe('executePlanReference input checks', () => {
  const plan = compilePlan({ schedule: discrete, steps: 4, order: 2 });
  const model = (x: Float64Array) => x.map(() => 0.1);
  const x = new Float64Array(32).fill(0.5);
  const ok = { x, shape: [2, 16], model };
  test('valid inputs run: Float64Array, Float32Array and number[] give the same result', () => {
    const a = executePlanReference(plan, ok);
    const b = executePlanReference(plan, { ...ok, x: Float32Array.from(x) });
    const c = executePlanReference(plan, { ...ok, x: Array.from(x) });
    expect(a.nfe).toBe(4);
    expect(a.evalTimes).toEqual(plan.ops.filter((o) => o.op === 'eval').map((o) => (o.op === 'eval' ? o.t : NaN)));
    expect(b.x).toEqual(a.x);
    expect(c.x).toEqual(a.x);
  });
  const bad: Array<[string, () => unknown, RegExp, ErrorConstructor]> = [
    ['x length vs shape', () => executePlanReference(plan, { ...ok, shape: [4, 16] }), /^Expected prod\(shape\) = 64 for x\.length but received 32 \(number\)$/, RangeError],
    ['non-integer dim', () => executePlanReference(plan, { ...ok, shape: [2, 15.5] }), /for shape\[1\] but received 15.5/, TypeError],
    ['empty shape', () => executePlanReference(plan, { ...ok, shape: [] }), /for shape but received \[0 items\]/, TypeError],
    ['x not numeric', () => executePlanReference(plan, { ...ok, x: 'abc' as never }), /for x but received 'abc'/, TypeError],
    ['x has NaN', () => executePlanReference(plan, { ...ok, x: Float64Array.from(x).fill(NaN, 3, 4) }), /for x\[3\] but received NaN/, TypeError],
    ['model not a function', () => executePlanReference(plan, { ...ok, model: 3 as never }), /^Expected a function for model but received 3 \(number\)$/, TypeError],
    ['model output length', () => executePlanReference(plan, { ...ok, model: () => new Float64Array(3) }), /model output \(evaluation 0, t = 999\)/, RangeError],
    // Same error as the Sampler's non-finite check: an Error with code ERR_SCIRE_NON_FINITE.
    ['model output NaN', () => executePlanReference(plan, { ...ok, model: (v) => v.map(() => NaN) }), /not finite \(NaN or Infinity\) at evaluation 1 of \d+ \(t = 999\): model output\[0\] is NaN/, Error],
  ];
  test.each(bad)('%s', (_n, fn, msg, cls) => {
    expect(fn).toThrow(cls);
    expect(fn).toThrow(msg);
  });
  const mutate = (f: (p: Plan) => void): Plan => {
    const p = structuredClone(plan);
    f(p);
    return p;
  };
  const badPlans: Array<[string, Plan, RegExp]> = [
    ['format', mutate((p) => ((p as { format: string }).format = 'v0')), /for plan\.format but received 'v0'/],
    ['register out of range', mutate((p) => ((p.ops[1] as { dst: number }).dst = 9)), /plan\.ops\[1\]\.dst/],
    ['read before write', mutate((p) => (p.ops[0] = { ...(p.ops[0] as object), src: 2 } as Plan['ops'][0])), /a register written by an earlier op for plan\.ops\[0\]\.src/],
    ['nfe mismatch', mutate((p) => (p.nfe = 7)), /the number of eval ops \(4\) for plan\.nfe but received 7/],
    ['five terms', mutate((p) => p.ops.push({ op: 'lincomb', dst: 0, terms: [[1, 0], [1, 0], [1, 0], [1, 0], [1, 0]] })), /1 to 4 \[coefficient, register\] pairs for plan\.ops\[\d+\]\.terms/],
    ['non-finite coefficient', mutate((p) => p.ops.push({ op: 'lincomb', dst: 0, terms: [[Infinity, 0]] })), /terms\[0\]\[0\] but received Infinity/],
    ['threshold ratio', mutate((p) => p.ops.push({ op: 'threshold', reg: 0, ratio: 0, maxVal: 1 })), /ratio but received 0/],
  ];
  test.each(badPlans)('invalid plan: %s', (_n, p, msg) => {
    expect(() => executePlanReference(p, ok)).toThrow(msg);
  });
});
