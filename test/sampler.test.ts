/**
 * Sampler on the native executor with the analytic GMM image model
 * (test/fixtures/models/gmm_img1x4x4_discrete.pt, a noise predictor on [B, 1, 4, 4] under the
 * DDPM linear-beta discrete schedule; see test/fixtures/reference-README.md section 1).
 *
 * The float64 oracle is executePlanReference with the same model rebuilt in JS from its JSON
 * parameters (lib/testing/gmm.ts). The native run is float32 throughout, so results are
 * compared with an absolute tolerance of 1e-4 on values of order 1. Measured here: at most 6e-6
 * (6 and 12 steps, scire and dpmpp); the reference README, section 6, reports float32-vs-float64
 * deviations of the official multistep SciRE of up to 3e-4 on harder cases.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compilePlan } from '../lib/compile';
import { describeSolver } from '../lib/presets/auto';
import { loadModel } from '../lib/model';
import { randn } from '../lib/randn';
import { executePlanReference } from '../lib/reference';
import { Sampler, type SampleStepEvent, type SamplerModel } from '../lib/sampler';
import { NoiseSchedule } from '../lib/schedule';
import { GaussianMixtureNoiseModel, type GmmParams } from '../lib/testing/gmm';

const MODELS = path.join(__dirname, 'fixtures', 'models');
const GMM_PT = path.join(MODELS, 'gmm_img1x4x4_discrete.pt');
const GMM_PARAMS = JSON.parse(fs.readFileSync(path.join(MODELS, 'gmm_img1x4x4_discrete.json'), 'utf8')) as GmmParams;
const SHAPE = [6, 1, 4, 4];
const FLOAT32_TOL = 1e-4;

/** The GMM's own schedule: betas = linspace(1e-4, 0.02, 1000). */
const schedule = NoiseSchedule.discrete({ kind: 'linear', N: 1000, betaStart: 1e-4, betaEnd: 0.02 });
const gmm = new GaussianMixtureNoiseModel(GMM_PARAMS);

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

let model: SamplerModel;

beforeAll(async () => {
  model = await loadModel(GMM_PT, { device: 'cpu', dtype: 'float32' });
});

describe('Sampler options (validated once, at construction)', () => {
  it('needs a loaded model', () => {
    expect(() => new Sampler({ model: undefined as unknown as SamplerModel, schedule })).toThrow(
      /^Expected a loaded model \(await loadModel\(path\)\) for model but received undefined$/,
    );
    expect(() => new Sampler({ model: {} as SamplerModel, schedule })).toThrow(TypeError);
  });

  it('rejects bad solver options with the message of compilePlan', () => {
    expect(() => new Sampler({ model, schedule, solver: 'euler' as never })).toThrow(
      /Expected one of 'scire', 'ddim', 'dpmpp', 'unipc' for solver but received 'euler' \(string\)/,
    );
    expect(() => new Sampler({ model, schedule, steps: 0 })).toThrow(RangeError);
    expect(() => new Sampler({ model, schedule, order: 4 as never })).toThrow(/for order but received 4/);
    expect(() => new Sampler({ model, schedule, solver: 'ddim', algorithm: 'v2' })).toThrow(/algorithm/);
    expect(() => new Sampler({ model, schedule, tStart: 2 })).toThrow(/for tStart but received 2/);
    expect(() => new Sampler({ model, schedule, stepz: 3 } as never)).toThrow(/unknown option 'stepz'/);
  });

  it("defaults to preset 'auto' at 12 steps; a solver field or preset 'none' gives compilePlan's defaults", () => {
    const sampler = new Sampler({ model, schedule });
    expect(sampler.options.preset).toBe('auto');
    expect(sampler.planFor()).toEqual(compilePlan({ schedule, steps: 12, preset: 'auto' }));
    expect(sampler.planFor().nfe).toBe(12);
    for (const opts of [{ preset: 'none' as const }, { order: 3 as const }, { solver: 'scire' as const }]) {
      const meta = new Sampler({ model, schedule, ...opts }).planFor().meta;
      expect(meta).toMatchObject({ solver: 'scire', algorithm: 'v1', method: 'multistep', order: 3, skip: 'nsr', steps: 12 });
      expect(meta.auto).toBeUndefined();
    }
  });

  it('rejects bad sample() inputs', async () => {
    const sampler = new Sampler({ model, schedule, steps: 4 });
    await expect(sampler.sample({ shape: [2, 0, 4, 4], seed: 1 })).rejects.toThrow(/for shape\[1\] but received 0/);
    await expect(sampler.sample({ shape: SHAPE, x: new Float32Array(5) })).rejects.toThrow(
      /Expected 96 \(the number of elements of shape\) for x.length but received 5/,
    );
    await expect(sampler.sample({ shape: SHAPE, x: new Float32Array(96), seed: 3 })).rejects.toThrow(/no x together with seed/);
    await expect(sampler.sample({ shape: SHAPE, seed: -1 })).rejects.toThrow(RangeError);
    await expect(sampler.sample({ shape: SHAPE, seed: 1, guidanceScale: 2 })).rejects.toThrow(/no guidanceScale without cond/);
    await expect(sampler.sample({ shape: SHAPE, seed: 1, x0: new Float32Array(96) })).rejects.toThrow(
      /a start time < T \(1\) for img2img/,
    );
    await expect(sampler.sample({ shape: SHAPE, seed: 1, tStart: 0.0005 })).rejects.toThrow(/for tStart/);
    await expect(sampler.sample({ shape: SHAPE, sed: 1 } as never)).rejects.toThrow(/unknown option 'sed'/);
  });
});

describe('Sampler.sample on the native executor (CPU, float32)', () => {
  it('matches executePlanReference on the same seeded noise', async () => {
    const sampler = new Sampler({ model, schedule, steps: 12 });
    const out = await sampler.sample({ shape: SHAPE, seed: 42 });
    expect(out.shape).toEqual(SHAPE);
    expect(out.nfe).toBe(12);
    expect(out.seed).toBe(42);

    const xT = randn(SHAPE, 42);
    const plan = compilePlan({ schedule, steps: 12, preset: 'auto' });
    expect(out.solver).toEqual(describeSolver(plan.meta));
    expect(out.solver.preset).toBe('auto');
    const ref = executePlanReference(plan, { x: xT, shape: SHAPE, model: gmm.asModel() });
    const dev = maxAbsDiff(out.data, ref.x);
    expect(dev).toBeLessThan(FLOAT32_TOL);
    // Not a trivial agreement: the samples moved far from the noise.
    expect(maxAbsDiff(ref.x, xT)).toBeGreaterThan(0.5);
  });

  it('gives bit-identical output for the same seed, different output for another', async () => {
    const sampler = new Sampler({ model, schedule, steps: 6 });
    const a = await sampler.sample({ shape: SHAPE, seed: 7 });
    const b = await sampler.sample({ shape: SHAPE, seed: 7 });
    const c = await sampler.sample({ shape: SHAPE, seed: 8 });
    expect(Buffer.from(a.data.buffer).equals(Buffer.from(b.data.buffer))).toBe(true);
    expect(maxAbsDiff(a.data, c.data)).toBeGreaterThan(0.1);
  });

  it('uses x as the starting state when given', async () => {
    const sampler = new Sampler({ model, schedule, steps: 6, solver: 'dpmpp', order: 2 });
    const x = randn(SHAPE, 5);
    const viaX = await sampler.sample({ shape: SHAPE, x });
    const viaSeed = await sampler.sample({ shape: SHAPE, seed: 5 });
    expect(viaX.seed).toBeUndefined();
    expect(Buffer.from(viaX.data.buffer).equals(Buffer.from(viaSeed.data.buffer))).toBe(true);
  });

  it('reports every evaluation to onStep, in order, with the solver times', async () => {
    for (const method of ['multistep', 'singlestep_fixed'] as const) {
      const sampler = new Sampler({ model, schedule, steps: 8, method, order: 3 });
      const events: SampleStepEvent[] = [];
      const out = await sampler.sample({ shape: SHAPE, seed: 1, onStep: (e) => events.push({ ...e }) });
      expect(events.length).toBe(out.nfe);
      expect(out.nfe).toBe(method === 'multistep' ? 8 : 6); // singlestep_fixed: floor(8/3)*3
      const evals = sampler.planFor().ops.filter((op) => op.op === 'eval');
      events.forEach((e, i) => {
        expect(e.nfe).toBe(i + 1);
        expect(e.total).toBe(out.nfe);
        expect(e.tCont).toBe((evals[i] as { tCont: number }).tCont);
        expect(e.t).toBeCloseTo((evals[i] as { t: number }).t, 3);
      });
    }
  });

  it('stops when the signal aborts, with an AbortError', async () => {
    // A batch large enough that one evaluation takes milliseconds: the abort requested from
    // the first progress event reaches the worker well before the 12th evaluation.
    const big = [50_000, 1, 4, 4];
    const sampler = new Sampler({ model, schedule, steps: 12 });
    const controller = new AbortController();
    let seen = 0;
    const run = sampler.sample({
      shape: big,
      seed: 3,
      signal: controller.signal,
      onStep: (e) => {
        seen = e.nfe;
        controller.abort();
      },
    });
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect(seen).toBeGreaterThanOrEqual(1);
    expect(seen).toBeLessThan(12);

    const aborted = AbortSignal.abort();
    await expect(sampler.sample({ shape: SHAPE, seed: 3, signal: aborted })).rejects.toMatchObject({ name: 'AbortError' });
    // The sampler stays usable.
    const after = await sampler.sample({ shape: SHAPE, seed: 3 });
    expect(after.nfe).toBe(12);
  });

  it('passes cond to a forward(x, t, cond) model, with condShape [batch, cond.length / batch] by default', async () => {
    // cond_model.pt: forward(x, t, cond) = x * t[:, None] + cond.sum()  (test/fixtures/make_bad_models.py)
    const condModel = await loadModel(path.join(MODELS, 'cond_model.pt'));
    const sampler = new Sampler({ model: condModel, schedule, steps: 3, solver: 'ddim' });
    const shape = [2, 3];
    const cond = new Float32Array([1, 2, 3, 4]);
    const out = await sampler.sample({ shape, seed: 2, cond });
    const ref = executePlanReference(sampler.planFor(), {
      x: randn(shape, 2),
      shape,
      model: (x, _shape, t) => Float64Array.from(x, (v) => v * t + 10),
    });
    let num = 0;
    let den = 0;
    for (let i = 0; i < ref.x.length; i++) {
      num = Math.max(num, Math.abs(out.data[i] - ref.x[i]));
      den = Math.max(den, Math.abs(ref.x[i]));
    }
    expect(num / den).toBeLessThan(1e-5); // float32 relative rounding over 3 steps
    await expect(sampler.sample({ shape, seed: 2, cond: new Float32Array(3) })).rejects.toThrow(
      /a multiple of the batch size 2 \(or give condShape\) for cond.length but received 3/,
    );
    await expect(new Sampler({ model, schedule }).sample({ shape: SHAPE, seed: 1, cond })).rejects.toThrow(
      /no cond for this model: its forward takes \(x, t\) only/,
    );
  });

  it('img2img: noises x0 to tStart as add_noise does and solves from there', async () => {
    const steps = 6;
    const tStart = 0.2;
    const sampler = new Sampler({ model, schedule, steps });
    const x0 = new Float32Array(SHAPE.reduce((a, b) => a * b, 1));
    const means = GMM_PARAMS.means;
    for (let b = 0; b < SHAPE[0]; b++) for (let i = 0; i < 16; i++) x0[b * 16 + i] = means[b % means.length][i];

    const events: number[] = [];
    const out = await sampler.sample({ shape: SHAPE, seed: 11, x0, tStart, onStep: (e) => events.push(e.tCont) });
    expect(out.tStart).toBe(tStart);
    expect(out.nfe).toBe(steps);
    // The first evaluation is at tStart (multistep evaluates the starting point first).
    expect(events[0]).toBeCloseTo(tStart, 12);

    // Oracle: x_tStart = alpha x0 + sigma noise in float64, then the plan compiled for tStart.
    const noise = randn(SHAPE, 11);
    const alpha = schedule.alpha(tStart);
    const sigma = schedule.sigma(tStart);
    const xStart = Float64Array.from(x0, (v, i) => alpha * v + sigma * noise[i]);
    const plan = compilePlan({ schedule, steps, tStart, preset: 'auto' });
    const ref = executePlanReference(plan, { x: xStart, shape: SHAPE, model: gmm.asModel() });
    expect(maxAbsDiff(out.data, ref.x)).toBeLessThan(FLOAT32_TOL);
    // Started from mixture mean k at moderate noise, sample b ends nearest to mean k (b mod 4):
    // img2img keeps what x0 was, where a sample from pure noise would pick any component.
    for (let b = 0; b < SHAPE[0]; b++) {
      const sample = out.data.subarray(b * 16, (b + 1) * 16);
      const dist = means.map((m) => Math.hypot(...m.map((v, i) => v - sample[i])));
      expect(dist.indexOf(Math.min(...dist)), `sample ${b}`).toBe(b % means.length);
    }

    // The plan is compiled once per tStart and cached.
    expect(sampler.planFor(tStart)).toBe(sampler.planFor(tStart));
    const again = await sampler.sample({ shape: SHAPE, seed: 11, x0, tStart });
    expect(again.timings.compileMs).toBe(0);
    expect(Buffer.from(again.data.buffer).equals(Buffer.from(out.data.buffer))).toBe(true);
  });
});
