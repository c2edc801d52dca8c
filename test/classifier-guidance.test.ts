/**
 * Classifier guidance (the authors' model_wrapper(guidance_type="classifier")) against their code.
 *
 * Golden data: test/fixtures/classifier_guidance.json (test/support/generate_classifier_golden.py):
 * SciRE-Solver and DPM-Solver++ multistep with classifier guidance on the analytic GMM, whose
 * classifier is the exact posterior of the mixture component (labels [0, 1, 2, 3, 0, 1, 2, 3],
 * scales 1, 2, 4). Tolerances, as the other golden tests: the reference executor (float64, the
 * analytic gradient of lib/testing/gmm.ts) relative error < 1e-9 (max |d| / max |want|); the
 * native executor (float32, the TorchScript classifier test/fixtures/models/gmm_D16_*_clf.pt
 * differentiated by LibTorch autograd) relative error < 1e-4, or, for a case that is
 * ill-conditioned in float32, |dx| <= 1e-4 + 10 * (the authors' own float32 run's deviation).
 */
import { readFileSync } from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePlan } from '../lib/compile';
import { executePlan } from '../lib/execute';
import { loadModel } from '../lib/model';
import type { NativeModel } from '../lib/native-types';
import type { Plan } from '../lib/plan';
import { checkPlan } from '../lib/plan-check';
import { executePlanReference } from '../lib/reference';
import { Sampler } from '../lib/sampler';
import { goldenCaseOptions, goldenSchedule } from '../lib/testing/golden-cases';
import { GaussianMixtureNoiseModel, type GmmParams } from '../lib/testing/gmm';
import { FIXTURES, flatten, type GoldenCase } from './support/golden';
import { relativeError } from './support/native-gmm';

/** A golden case of the classifier-guidance fixture: the golden-case fields plus the classifier's. */
interface ClassifierCase extends Omit<GoldenCase, 'schedule' | 't_start' | 't_end' | 'dtype' | 'model_t_continuous'> {
  schedule: 'discrete' | 'linear';
  t_start: null;
  t_end: null;
  model_type: 'noise';
  classifier_scale: number;
  class_labels: number[];
  float32_run_max_abs_dev: number;
}
interface ClassifierFile {
  format: string;
  x_T_from: Record<string, string>;
  cases: ClassifierCase[];
}

export const CLASSIFIER_GOLDEN = JSON.parse(readFileSync(path.join(FIXTURES, 'classifier_guidance.json'), 'utf8')) as ClassifierFile;
const REF_TOL = 1e-9;

function gmm(name: string): GaussianMixtureNoiseModel {
  return new GaussianMixtureNoiseModel(JSON.parse(readFileSync(path.join(FIXTURES, 'models', `gmm_D16_${name}.json`), 'utf8')) as GmmParams);
}
function xT(name: string): number[] {
  const g = JSON.parse(readFileSync(path.join(FIXTURES, CLASSIFIER_GOLDEN.x_T_from[name]), 'utf8')) as { x_T: unknown[] };
  return flatten(g.x_T);
}

describe('classifier guidance: reference executor vs the authors\' model_wrapper', () => {
  it('has the cases of the generator', () => {
    expect(CLASSIFIER_GOLDEN.format).toBe('scire-classifier-guidance-v1');
    expect(CLASSIFIER_GOLDEN.cases.length).toBe(22);
  });
  let worst = 0;
  for (const c of CLASSIFIER_GOLDEN.cases) {
    it(c.id, () => {
      const model = gmm(c.schedule);
      const plan = compilePlan(goldenCaseOptions(c, goldenSchedule(c.schedule)));
      const x = xT(c.schedule);
      const res = executePlanReference(plan, {
        x,
        shape: [8, 16],
        model: model.asModel(),
        classifier: model.asClassifier(),
        classLabels: c.class_labels,
        classifierScale: c.classifier_scale,
      });
      expect(res.nfe).toBe(c.nfe);
      expect(relativeError(res.evalTimes, c.model_t_input)).toBeLessThan(1e-12);
      const err = relativeError(res.x, flatten(c.x0));
      worst = Math.max(worst, err);
      expect(err).toBeLessThan(REF_TOL);
      // The guidance is not a no-op at this scale: the unguided solve differs by far more.
      const plain = executePlanReference(plan, { x, shape: [8, 16], model: model.asModel() });
      expect(relativeError(plain.x, flatten(c.x0))).toBeGreaterThan(1e-3);
    });
  }
  it('worst relative error', () => {
    console.log(`classifier guidance golden: reference executor worst relative error ${worst.toExponential(2)} (tolerance ${REF_TOL})`);
  });
});

const F32_TOL = 1e-4;
const loaded: NativeModel[] = [];
async function load(file: string): Promise<NativeModel> {
  const m = await loadModel(path.join(FIXTURES, 'models', file), { device: 'cpu', dtype: 'float32' });
  loaded.push(m);
  return m;
}
afterAll(() => {
  for (const m of loaded) m.dispose?.();
});

describe('classifier guidance: native executor (float32, LibTorch autograd) vs the authors', () => {
  const nets = new Map<string, { model: NativeModel; clf: NativeModel }>();
  beforeAll(async () => {
    for (const name of ['discrete', 'linear']) {
      nets.set(name, { model: await load(`gmm_D16_${name}.pt`), clf: await load(`gmm_D16_${name}_clf.pt`) });
    }
  });
  let worst = 0;
  let worstId = '';
  const conditioned: string[] = [];
  for (const c of CLASSIFIER_GOLDEN.cases) {
    it(c.id, async () => {
      const { model, clf } = nets.get(c.schedule)!;
      const plan = compilePlan(goldenCaseOptions(c, goldenSchedule(c.schedule)));
      const out = await executePlan(model, plan, {
        x: Float32Array.from(xT(c.schedule)),
        shape: [8, 16],
        classifier: clf,
        classLabels: Int32Array.from(c.class_labels),
        classifierScale: c.classifier_scale,
      });
      expect(out.nfe).toBe(c.nfe);
      const want = flatten(c.x0);
      const err = relativeError(out.data, want);
      if (err > worst) [worst, worstId] = [err, c.id];
      if (err >= F32_TOL) {
        // Ill-conditioned in float32 (the authors' own float32 run deviates too): README section 6 rule.
        const scale = Math.max(...want.map(Math.abs));
        expect(err * scale, `${c.id}: relative error ${err.toExponential(2)}, their float32 deviation ${c.float32_run_max_abs_dev}`).toBeLessThanOrEqual(
          1e-4 + 10 * c.float32_run_max_abs_dev,
        );
        conditioned.push(`${c.id} (their float32 deviation ${c.float32_run_max_abs_dev.toExponential(2)})`);
      }
    });
  }
  it('worst relative error', () => {
    console.log(
      `classifier guidance golden: native float32 worst relative error ${worst.toExponential(2)} (${worstId}); ` +
        `${conditioned.length} cases above ${F32_TOL}, within 1e-4 + 10 x their float32 deviation: ${conditioned.join(', ')}`,
    );
  });
});

describe('classifier guidance: model types, Sampler, batching and validation', () => {
  const schedule = goldenSchedule('discrete');
  const c = CLASSIFIER_GOLDEN.cases.find((k) => k.id.startsWith('scire|discrete|scire_v1|multistep|o3|NSR|s10|noise|scale4'))!;
  const x = Float32Array.from(xT('discrete'));
  let model: NativeModel;
  let clf: NativeModel;
  let badClf: NativeModel;
  beforeAll(async () => {
    model = await load('gmm_D16_discrete.pt');
    clf = await load('gmm_D16_discrete_clf.pt');
    badClf = await load('bad_clf_shape.pt');
  });

  it('the shift enters every model type the same way (x_start and v models of the same GMM)', () => {
    // gradCoef does not depend on the model type (lib/plan.ts): an x_start or v model of the
    // same exact GMM gives the authors' noise-model answer.
    const gmmModel = gmm('discrete');
    for (const modelType of ['x_start', 'v', 'score'] as const) {
      const plan = compilePlan({ ...goldenCaseOptions(c, schedule), modelType });
      const convert = (xs: Float64Array, shape: number[], tInput: number): Float64Array => {
        const la = gmmModel.logAlpha(tInput);
        const alpha = Math.exp(la);
        const sigma = Math.sqrt(-Math.expm1(2 * la));
        const eps = gmmModel.noise(xs, shape, tInput);
        // x_start: x0 = (x - sigma eps) / alpha;  v = alpha eps - sigma x0;  score = -eps / sigma
        if (modelType === 'x_start') return eps.map((e, i) => (xs[i] - sigma * e) / alpha);
        if (modelType === 'v') return eps.map((e, i) => alpha * e - (sigma * (xs[i] - sigma * e)) / alpha);
        return eps.map((e) => -e / sigma);
      };
      const res = executePlanReference(plan, {
        x: xT('discrete'),
        shape: [8, 16],
        model: convert,
        classifier: gmmModel.asClassifier(),
        classLabels: c.class_labels,
        classifierScale: c.classifier_scale,
      });
      expect(relativeError(res.x, flatten(c.x0)), modelType).toBeLessThan(1e-9);
    }
  });

  it('a classifier whose backward keeps t (x * t): native autograd gradient equals the closed form', async () => {
    // linear_time_clf.pt: z = (x * t / 1000) @ W, grad_x log_softmax(z)[y] = (t / 1000) W (onehot(y) - softmax(z)).
    const W = Array.from({ length: 16 }, (_, i) => [0, 1, 2].map((k) => Math.sin(1 + 3 * i + k)));
    const grad = (xs: Float64Array, shape: number[], tInput: number, labels: number[]): Float64Array => {
      const out = new Float64Array(xs.length);
      const s = tInput / 1000;
      for (let b = 0; b < shape[0]; b++) {
        const z = [0, 1, 2].map((k) => W.reduce((acc, row, i) => acc + xs[b * 16 + i] * s * row[k], 0));
        const m = Math.max(...z);
        const e = z.map((v) => Math.exp(v - m));
        const p = e.map((v) => v / e.reduce((a, c) => a + c, 0));
        for (let i = 0; i < 16; i++) out[b * 16 + i] = s * [0, 1, 2].reduce((acc, k) => acc + W[i][k] * ((k === labels[b] ? 1 : 0) - p[k]), 0);
      }
      return out;
    };
    const timeClf = await load('linear_time_clf.pt');
    const plan = compilePlan(goldenCaseOptions(c, schedule));
    const labels = [0, 1, 2, 0, 1, 2, 0, 1];
    const want = executePlanReference(plan, { x, shape: [8, 16], model: gmm('discrete').asModel(), classifier: grad, classLabels: labels, classifierScale: 1 });
    const plain = executePlanReference(plan, { x, shape: [8, 16], model: gmm('discrete').asModel() });
    const got = await executePlan(model, plan, { x, shape: [8, 16], classifier: timeClf, classLabels: Int32Array.from(labels), classifierScale: 1 });
    console.log(`linear_time_clf: native vs closed form ${relativeError(got.data, want.x).toExponential(2)}, guidance effect ${relativeError(want.x, plain.x).toExponential(2)}`);
    expect(relativeError(want.x, plain.x)).toBeGreaterThan(1e-2); // the guidance matters here
    expect(relativeError(got.data, want.x)).toBeLessThan(F32_TOL);
  });

  it('Sampler({ classifier, classifierScale }).sample({ classLabels }) equals executePlan, per-element and one-for-all labels', async () => {
    const sampler = new Sampler({ model, schedule, ...goldenCaseOptions(c, schedule), classifier: clf, classifierScale: 4 });
    const out = await sampler.sample({ shape: [8, 16], x, classLabels: c.class_labels });
    expect(relativeError(out.data, flatten(c.x0))).toBeLessThan(F32_TOL);
    const one = await sampler.sample({ shape: [8, 16], x, classLabels: 2 });
    const direct = await executePlan(model, sampler.planFor(), { x, shape: [8, 16], classifier: clf, classLabels: new Int32Array(8).fill(2), classifierScale: 4 });
    expect(relativeError(one.data, direct.data)).toBeLessThan(1e-6);
    expect(relativeError(one.data, out.data)).toBeGreaterThan(1e-2);
  });

  it('dynamic batching: requests with their own labels share one solve and get what they get alone', async () => {
    const opts = { model, schedule, ...goldenCaseOptions(c, schedule), classifier: clf, classifierScale: 4 };
    const alone = new Sampler(opts);
    const batched = new Sampler({ ...opts, batching: { maxBatchSize: 16, maxWaitMs: 50 } });
    const half = (k: number) => x.slice(k * 64, (k + 1) * 64);
    const [a, b] = await Promise.all([
      batched.sample({ shape: [4, 16], x: half(0), classLabels: [0, 1, 2, 3] }),
      batched.sample({ shape: [4, 16], x: half(1), classLabels: 3 }),
    ]);
    expect(a.timings.batchRequests).toBe(2);
    const a1 = await alone.sample({ shape: [4, 16], x: half(0), classLabels: [0, 1, 2, 3] });
    const b1 = await alone.sample({ shape: [4, 16], x: half(1), classLabels: 3 });
    expect(relativeError(a.data, a1.data)).toBeLessThan(1e-5);
    expect(relativeError(b.data, b1.data)).toBeLessThan(1e-5);
  });

  it('rejects bad input with errors naming the field', async () => {
    const plan: Plan = compilePlan(goldenCaseOptions(c, schedule));
    const base = { x, shape: [8, 16] };
    const run = (o: Record<string, unknown>) => executePlan(model, plan, { ...base, ...o } as never);
    await expect(run({ classifier: clf, classLabels: new Int32Array(8).fill(4) })).rejects.toMatchObject({
      name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: expect.stringMatching(/classLabels: label 4 is out of range for a classifier with C = 4 classes/),
    });
    await expect(run({ classifier: clf, classLabels: [0, 1] })).rejects.toThrow(/batch size shape\[0\] = 8.*classLabels\.length/);
    await expect(run({ classifier: clf, classLabels: [0, 1, 2, 3, 0, 1, 2, -1] })).rejects.toThrow(/classLabels\[7\]/);
    await expect(run({ classifier: clf, classLabels: 1.5 })).rejects.toThrow(TypeError);
    await expect(run({ classifier: clf })).rejects.toThrow(/classLabels/);
    await expect(run({ classifier: clf, classLabels: 0, classifierScale: NaN })).rejects.toThrow(/classifierScale/);
    await expect(run({ classLabels: 0 })).rejects.toThrow(/no classLabels without classifier/);
    await expect(run({ classifierScale: 2 })).rejects.toThrow(/no classifierScale without classifier/);
    await expect(run({ classifier: {}, classLabels: 0 })).rejects.toThrow(/classifier.*loadModel/);
    await expect(run({ classifier: clf, classLabels: 0, cudaGraph: true })).rejects.toThrow(/cudaGraph/);
    await expect(run({ classifier: badClf, classLabels: 0 })).rejects.toMatchObject({
      code: 'ERR_SCIRE_BAD_CLASSIFIER_OUTPUT', message: expect.stringMatching(/evaluation 1 of 10.*output shape \[128\] is not \[B, C\]/),
    });
    // A classifier that raises (linear_time_clf.pt reshapes x to [B, 16]; here x is [2, 6]).
    const half = await load('slow_model.pt');
    const timeClf = await load('linear_time_clf.pt');
    const small = compilePlan({ schedule, steps: 2, order: 2 });
    await expect(executePlan(half, small, { x: new Float32Array(12), shape: [2, 6], classifier: timeClf, classLabels: 0 })).rejects.toMatchObject({
      code: 'ERR_SCIRE_CLASSIFIER_CALL',
      message: expect.stringMatching(/classifier guidance at evaluation 1 of 2 \(t = 999.*the classifier's forward failed: .*shape/s),
    });
    // A plan whose eval ops lack gradCoef (hand-made) cannot be guided.
    const stripped = { ...plan, ops: plan.ops.map((op) => (op.op === 'eval' ? { ...op, gradCoef: undefined } : op)) } as Plan;
    await expect(executePlan(model, stripped, { ...base, classifier: clf, classLabels: 0 })).rejects.toThrow(/plan\.ops\[0\]\.gradCoef/);
    // Also the native addon itself (no JS checks in front; it throws synchronously on bad options).
    expect(() => model.execute(stripped, { ...base, classifier: clf, classLabels: new Int32Array(8) })).toThrow(/plan\.ops\[0\]\.gradCoef/);
    expect(() => model.execute(plan, { ...base, classifier: clf, classLabels: new Int32Array(3) })).toThrow(/classLabels\.length/);
    expect(() => model.execute(plan, { ...base, classLabels: new Int32Array(8) })).toThrow(/opts\.classifier/);
    expect(() => model.execute(plan, { ...base, classifier: clf, classLabels: [0, 0, 0, 0, 0, 0, 0, 0] } as never)).toThrow(/Int32Array/);
    // The model still works after the failures.
    const ok = await run({ classifier: clf, classLabels: Int32Array.from(c.class_labels), classifierScale: 4 });
    expect(relativeError(ok.data, flatten(c.x0))).toBeLessThan(F32_TOL);
  });

  it('checkPlan and the native plan parser check gradCoef like the other fields', async () => {
    const plan: Plan = compilePlan(goldenCaseOptions(c, schedule));
    expect(plan.ops.every((op) => op.op !== 'eval' || Number.isFinite(op.gradCoef))).toBe(true);
    const bad = (v: unknown) => ({ ...plan, ops: plan.ops.map((op, i) => (i === 0 ? { ...op, gradCoef: v } : op)) }) as Plan;
    expect(() => checkPlan(bad(NaN))).toThrow(/plan\.ops\[0\]\.gradCoef/);
    expect(() => checkPlan(bad('1'))).toThrow(/plan\.ops\[0\]\.gradCoef/);
    expect(() => checkPlan(bad(undefined))).not.toThrow(); // optional without a classifier
    expect(() => checkPlan(bad(undefined), undefined, { gradCoef: true })).toThrow(/plan\.ops\[0\]\.gradCoef/);
    expect(() => model.execute(bad(Infinity), { x, shape: [8, 16] })).toThrow(/finite number for plan\.ops\[0\]\.gradCoef/);
    expect(() => model.execute(bad('x'), { x, shape: [8, 16] })).toThrow(/plan\.ops\[0\]\.gradCoef/);
    // Without a classifier a plan's gradCoef is not used: the run equals the unguided one.
    const a = await model.execute(plan, { x, shape: [8, 16] });
    const b = await model.execute(bad(undefined), { x, shape: [8, 16] });
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
    // The reference executor refuses a classifier run on a plan without gradCoef.
    expect(() =>
      executePlanReference(bad(undefined), { x: xT('discrete'), shape: [8, 16], model: gmm('discrete').asModel(), classifier: gmm('discrete').asClassifier(), classLabels: 0 }),
    ).toThrow(/plan\.ops\[0\]\.gradCoef/);
  });

  it('Sampler validation', async () => {
    const o = { model, schedule, steps: 6 };
    expect(() => new Sampler({ ...o, classifierScale: 2 })).toThrow(/no classifierScale without classifier/);
    expect(() => new Sampler({ ...o, classifier: {} as never })).toThrow(/classifier.*loadModel/);
    expect(() => new Sampler({ ...o, classifier: model })).toThrow(/other than the network/);
    expect(() => new Sampler({ ...o, classifier: clf, classifierScale: Infinity })).toThrow(/classifierScale/);
    const plain = new Sampler(o);
    await expect(plain.sample({ shape: [8, 16], x, classLabels: 1 })).rejects.toThrow(/classLabels.*no classifier/);
    const guided = new Sampler({ ...o, classifier: clf });
    await expect(guided.sample({ shape: [8, 16], x })).rejects.toThrow(/classLabels/);
    await expect(guided.sample({ shape: [8, 16], x, classLabels: [1, 2] })).rejects.toThrow(/classLabels\.length/);
    const cfg = new Sampler({ ...o, classifier: clf });
    await expect(cfg.sample({ shape: [8, 16], x, classLabels: 1, cond: new Float32Array(8), uncond: new Float32Array(8), guidanceScale: 2 })).rejects.toThrow(
      /cond|classifier/,
    );
  });
});
