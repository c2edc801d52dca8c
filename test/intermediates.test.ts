/**
 * Intermediates: sample({ intermediates: 'x' | 'x0', onStep }) and model.execute's
 * opts.intermediates (lib/intermediates.ts, native/executor.cc), against the authors'
 * sample(..., return_intermediate=True).
 *
 * Golden data (both made by the authors' scire_solver.py on the analytic GMM):
 *   - test/fixtures/scire_intermediates.json (test/support/generate_scire_intermediates.py):
 *     the whole batch, with each entry's continuous time and state_scale (alpha_t for v1,
 *     sigma_t for v2; 1 for the denoised entry), so x_t = state_scale * their entry;
 *   - intermediates_b0 of every float64 case of the shared golden files (batch element 0).
 * Tolerances: reference executor (float64) relative error < 1e-9 (max |d| / max |want| per
 * entry); native float32 relative error < 1e-4 (the project's usual float32 bound), except
 * entries that are ill-conditioned in float32, which get the rule of native-executor.test.ts:
 * |dx| <= 1e-4 + 10 * (the authors' own float32 run's deviation of that entry) for states, and
 * |dx| <= 1e-4 scale + 10 probe32 (float32-rounded reference) for data predictions near T
 * (x0 = (x - sigma eps)/alpha amplifies float32 rounding by 1/alpha_T ~ 157). The counts are
 * printed after the run.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { inflateSync } from 'node:zlib';
import { readFileSync } from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePlan } from '../lib/compile';
import { executePlan } from '../lib/execute';
import { planSnapshots } from '../lib/intermediates';
import { loadModel } from '../lib/model';
import type { NativeModel, NativeStepEvent } from '../lib/native-types';
import type { Plan } from '../lib/plan';
import { executePlanReference, type ReferenceModel } from '../lib/reference';
import { Sampler, type SampleStepEvent } from '../lib/sampler';
import { FIXTURES, flatten, goldenSchedule, loadGolden, loadGoldenModel, scireCaseOptions, type GoldenCase } from './support/golden';
import { relativeError } from './support/native-gmm';
import { DIST_CLI, ROOT, ensureDistBuilt } from './support/dist';
import { parseCommandLine, UsageError, type SampleArgs } from '../lib/cli-args';
import { previewPath } from '../lib/cli';
import { GRID_PADDING } from '../lib/image-io';

interface IntermediatesCase extends GoldenCase {
  float32_run_max_abs_dev: number[];
  state_t_continuous: number[];
  state_scale: number[];
  intermediates: unknown[];
}
interface IntermediatesFile {
  format: string;
  scire_solver_py_sha256: string;
  cases: IntermediatesCase[];
}

const FILE = JSON.parse(readFileSync(path.join(FIXTURES, 'scire_intermediates.json'), 'utf8')) as IntermediatesFile;
const REF_TOL = 1e-9;
const F32_TOL = 1e-4;
const models = new Map<string, NativeModel>();
const worst = { ref: 0, refB0: 0, native: 0, x0: 0, conditioned: 0 };

/**
 * The float32 sensitivity probe of native-executor.test.ts, with snapshots: the reference
 * executor with every register, model input and output rounded to float32 after every op.
 */
function snapshotsRounded32(plan: Plan, x: number[], shape: number[], model: ReferenceModel, mode: 'x' | 'x0'): Float64Array[] {
  const f = (a: ArrayLike<number>) => Float64Array.from(a, Math.fround);
  const snaps = planSnapshots(plan, mode);
  const out: Float64Array[] = [];
  const R: Float64Array[] = [];
  const take = (done: number): void => {
    for (const s of snaps.filter((k) => k.after === done)) {
      const v = new Float64Array(x.length);
      for (const [c, r] of s.terms) for (let i = 0; i < v.length; i++) v[i] += Math.fround(c) * R[r][i];
      out.push(f(v));
    }
  };
  R[0] = f(x.map((v) => plan.initScale * v));
  take(0);
  plan.ops.forEach((op, i) => {
    if (op.op === 'eval') {
      const xin = f(R[op.src].map((v) => op.inScale * v));
      const raw = f(model(xin, shape, op.t) as ArrayLike<number>);
      R[op.dst] = f(xin.map((v, j) => op.outX * v + op.outM * raw[j]));
    } else if (op.op === 'lincomb') {
      const v = new Float64Array(x.length);
      for (const [c, r] of op.terms) for (let j = 0; j < v.length; j++) v[j] += Math.fround(c) * R[r][j];
      R[op.dst] = f(v);
    } else {
      throw new Error('snapshotsRounded32: threshold ops are not emulated');
    }
    take(i + 1);
  });
  return out;
}

/**
 * float32 check of one snapshot against the float64 reference `want`: relative error < 1e-4,
 * or, for the entries that are ill-conditioned in float32 (states near T in the scaled
 * variable x/alpha, singlestep order 3; as in native-executor.test.ts),
 * max|dx| <= 1e-4 scale + 10 probe32 with probe32 = max|rounded32 - want|.
 */
function expectFloat32Close(got: ArrayLike<number>, want: ArrayLike<number>, probe32: () => ArrayLike<number>, what: string): number {
  const err = relativeError(got, want);
  if (err < F32_TOL) return err;
  const scale = Math.max(...Array.from(want, Math.abs));
  const probe = relativeError(probe32(), want) * scale;
  expect(err * scale, `${what}: relative error ${err.toExponential(2)}, probe32 ${probe.toExponential(2)}`).toBeLessThanOrEqual(
    F32_TOL * scale + 10 * probe,
  );
  worst.conditioned++;
  return err;
}

/**
 * float32 check of a state against the authors' float64 entry: relative error < 1e-4, or the
 * reference README's float32 rule (section 6) with the authors' own float32 run of that entry:
 * max|dx| <= 1e-4 + 10 * float32_run_max_abs_dev (it reaches 1.1e-2 on singlestep v1 discrete).
 */
function expectCloseToTheirFloat32(got: ArrayLike<number>, want: ArrayLike<number>, dev32: number, what: string): number {
  const err = relativeError(got, want);
  if (err < F32_TOL) return err;
  const scale = Math.max(...Array.from(want, Math.abs));
  expect(err * scale, `${what}: relative error ${err.toExponential(2)}, their float32 deviation ${dev32.toExponential(2)}`).toBeLessThanOrEqual(
    1e-4 + 10 * dev32,
  );
  worst.conditioned++;
  return err;
}

async function nativeModel(schedule: string): Promise<NativeModel> {
  let m = models.get(schedule);
  if (!m) {
    m = await loadModel(path.join(FIXTURES, 'models', `gmm_D16_${schedule}.pt`), { device: 'cpu', dtype: 'float32' });
    models.set(schedule, m);
  }
  return m;
}

function setup(c: GoldenCase) {
  const g = loadGolden(`scire_${c.schedule}`);
  const schedule = goldenSchedule(g.schedule);
  return { plan: compilePlan(scireCaseOptions(schedule, c)), xT: flatten(g.x_T), shape: g.x_T_shape, gmm: loadGoldenModel(g) };
}

/** x_t of the authors' entry k (their internal state times its scale). */
const theirX = (c: IntermediatesCase, k: number): number[] => flatten(c.intermediates[k]).map((v) => c.state_scale[k] * v);

async function nativeRun(plan: Plan, schedule: string, xT: number[], shape: number[], mode: 'x' | 'x0'): Promise<NativeStepEvent[]> {
  const events: NativeStepEvent[] = [];
  await executePlan(await nativeModel(schedule), plan, {
    x: Float32Array.from(xT),
    shape,
    intermediates: mode,
    onStep: (ev) => events.push(ev),
  });
  return events;
}

afterAll(() => {
  console.log(
    `intermediates: worst relative error reference ${worst.ref.toExponential(2)} (fixture), ${worst.refB0.toExponential(2)} ` +
      `(golden intermediates_b0), native float32 ${worst.native.toExponential(2)} (${worst.conditioned} ill-conditioned entries above 1e-4), native x0 ${worst.x0.toExponential(2)}`,
  );
  for (const m of models.values()) m.dispose();
});

describe("intermediates 'x' against the authors' return_intermediate", () => {
  it('fixture sanity', () => {
    expect(FILE.format).toBe('scire-intermediates-v1');
    expect(FILE.cases.length).toBeGreaterThanOrEqual(8);
    // The authors' scire_solver.py of the golden files (reference README).
    expect(FILE.scire_solver_py_sha256).toBe('36fcc4cbb75719a59b3f42f69c699d6f51f2476c377dd221c88c45634881e270');
  });

  for (const c of FILE.cases) {
    it(`reference (float64) and native (float32): ${c.id}`, async () => {
      const { plan, xT, shape, gmm } = setup(c);
      const ref = executePlanReference(plan, { x: xT, shape, model: gmm.asModel(), intermediates: 'x' });
      const got = ref.intermediates ?? [];
      expect(got.length).toBe(c.intermediates.length);
      got.forEach((snap, k) => {
        expect(Math.abs(snap.tCont - c.state_t_continuous[k])).toBeLessThan(1e-12);
        const err = relativeError(snap.x, theirX(c, k));
        worst.ref = Math.max(worst.ref, err);
        expect(err).toBeLessThan(REF_TOL);
      });
      // Multistep records x_T first (before any evaluation); the last entry is the result.
      if (c.method === 'multistep') {
        expect(got[0].nfe).toBe(0);
        expect(relativeError(got[0].x, xT)).toBeLessThan(1e-14);
      }
      expect(got[got.length - 1].nfe).toBe(plan.nfe);
      expect(relativeError(got[got.length - 1].x, ref.x)).toBeLessThan(1e-14);

      const events = await nativeRun(plan, c.schedule, xT, shape, 'x');
      expect(events.length).toBe(c.intermediates.length);
      events.forEach((ev, k) => {
        expect(ev.x).toBeInstanceOf(Float32Array);
        expect(ev.nfe).toBe(got[k].nfe);
        expect(ev.total).toBe(plan.nfe);
        expect(ev.tCont).toBe(got[k].tCont);
        const err = expectCloseToTheirFloat32(ev.x as Float32Array, theirX(c, k), c.float32_run_max_abs_dev[k], `${c.id} entry ${k}`);
        worst.native = Math.max(worst.native, err);
      });
    });
  }

  for (const name of ['scire_discrete', 'scire_linear', 'scire_cosine', 'scire_image_discrete']) {
    it(`reference matches intermediates_b0 of every float64 case of ${name}`, () => {
      const g = loadGolden(name);
      const schedule = goldenSchedule(g.schedule);
      const gmm = loadGoldenModel(g);
      const xT = flatten(g.x_T);
      const per = xT.length / g.x_T_shape[0];
      let checked = 0;
      for (const c of g.cases as Array<GoldenCase & { intermediates_b0?: unknown[] }>) {
        if (!c.intermediates_b0) continue;
        const plan = compilePlan(scireCaseOptions(schedule, c));
        const ref = executePlanReference(plan, { x: xT, shape: g.x_T_shape, model: gmm.asModel(), intermediates: 'x' });
        const theirs = flatten(c.intermediates_b0);
        const got = ref.intermediates ?? [];
        expect(got.length * per, c.id).toBe(theirs.length);
        got.forEach((snap, k) => {
          // Their entries are the internal state (x/alpha or x/sigma): divide by the state's scale.
          const scale = (plan.states ?? [])[k].terms[0][0];
          const ours = Array.from(snap.x.subarray(0, per), (v) => v / scale);
          const err = relativeError(ours, theirs.slice(k * per, (k + 1) * per));
          worst.refB0 = Math.max(worst.refB0, err);
          expect(err, `${c.id} entry ${k}`).toBeLessThan(REF_TOL);
        });
        checked++;
      }
      expect(checked).toBeGreaterThan(20);
    });
  }
});

describe("intermediates 'x0': the data prediction of every evaluation", () => {
  const c = FILE.cases.find((k) => k.algorithm_type === 'scire_v1' && k.method === 'multistep' && k.denoise_to_zero) as IntermediatesCase;

  it('one per evaluation; v1 (from the noise prediction) and v2 (data prediction) agree at x_T; dtz ends on the result', async () => {
    const { plan, xT, shape, gmm } = setup(c);
    const ref = executePlanReference(plan, { x: xT, shape, model: gmm.asModel(), intermediates: 'x0' });
    const got = ref.intermediates ?? [];
    expect(got.map((s) => s.nfe)).toEqual(Array.from({ length: plan.nfe }, (_, i) => i + 1));
    expect(got.map((s) => s.t)).toEqual(ref.evalTimes);
    // denoise_to_zero: the last evaluation's data prediction is the result.
    expect(relativeError(got[got.length - 1].x, ref.x)).toBeLessThan(1e-15);
    // The first evaluation of v1 and of v2 is at (x_T, T): the same data prediction, once
    // converted from the noise prediction (v1), once the eval op's own output (v2).
    const v2 = setup({ ...c, algorithm_type: 'scire_v2' });
    const refV2 = executePlanReference(v2.plan, { x: xT, shape, model: gmm.asModel(), intermediates: 'x0' });
    expect(relativeError(got[0].x, (refV2.intermediates ?? [])[0].x)).toBeLessThan(1e-11);
    // Not trivially x_T: the prediction moved towards the data.
    expect(relativeError(got[0].x, xT)).toBeGreaterThan(0.1);

    const events = await nativeRun(plan, c.schedule, xT, shape, 'x0');
    expect(events.length).toBe(plan.nfe);
    let probes: Float64Array[] | undefined;
    events.forEach((ev, k) => {
      expect(ev.nfe).toBe(k + 1);
      const probe32 = () => (probes ??= snapshotsRounded32(plan, xT, shape, gmm.asModel(), 'x0'))[k];
      const err = expectFloat32Close(ev.x as Float32Array, got[k].x, probe32, `x0 of evaluation ${k + 1}`);
      worst.x0 = Math.max(worst.x0, err);
    });
  });

  it('every solver marks x0 on every eval and states ending on the result', () => {
    const schedule = goldenSchedule('discrete');
    const variants = [
      { solver: 'scire', method: 'singlestep_agile', order: 3 },
      { solver: 'scire', corrector: 'faithful' },
      { solver: 'dpmpp', method: 'multistep', order: 3, thresholding: { ratio: 0.9, maxVal: 1 } },
      { solver: 'dpmpp', method: 'singlestep_fixed', order: 2 },
      { solver: 'ddim' },
      { solver: 'unipc', denoiseToZero: true },
    ];
    const g = loadGolden('scire_discrete');
    const gmm = loadGoldenModel(g);
    for (const v of variants) {
      const plan = compilePlan({ schedule, steps: 8, ...v } as never);
      expect(planSnapshots(plan, 'x0').length).toBe(plan.nfe);
      const ref = executePlanReference(plan, { x: flatten(g.x_T), shape: g.x_T_shape, model: gmm.asModel(), intermediates: 'x' });
      const got = ref.intermediates ?? [];
      expect(got.length, JSON.stringify(v)).toBeGreaterThan(1);
      expect(relativeError(got[got.length - 1].x, ref.x), JSON.stringify(v)).toBeLessThan(1e-15);
    }
  });
});

describe('Sampler and validation', () => {
  const schedule = goldenSchedule('discrete');
  let model: NativeModel;
  beforeAll(async () => {
    model = await nativeModel('discrete');
  });

  it('a bad intermediates value is a TypeError naming the field and the values; without onStep an error', async () => {
    const sampler = new Sampler({ model, schedule, steps: 6 });
    await expect(sampler.sample({ shape: [2, 16], seed: 1, intermediates: 'xt' as never, onStep: () => undefined })).rejects.toThrow(
      /^Expected one of 'x', 'x0' for intermediates but received 'xt' \(string\)$/,
    );
    await expect(sampler.sample({ shape: [2, 16], seed: 1, intermediates: 'x' })).rejects.toThrow(TypeError);
    await expect(sampler.sample({ shape: [2, 16], seed: 1, intermediates: 'x' })).rejects.toThrow(
      /for onStep but received undefined/,
    );
    const plan = compilePlan({ schedule, steps: 6 });
    const opts = { x: new Float32Array(32), shape: [2, 16], onStep: () => undefined };
    await expect(executePlan(model, plan, { ...opts, intermediates: 1 as never })).rejects.toThrow(/for intermediates/);
    await expect(executePlan(model, plan, { ...opts, intermediates: 'x', cudaGraph: true })).rejects.toThrow(/for cudaGraph/);
    // The native addon checks too (bypassing the JS checks).
    const direct = (p: Plan, o: object) => () => model.execute(p, o as never);
    expect(direct(plan, { ...opts, intermediates: 'y' })).toThrow(/opts.intermediates must be one of 'x', 'x0'/);
    expect(direct(plan, { x: opts.x, shape: opts.shape, intermediates: 'x' })).toThrow(/opts.onStep/);
    const { states: _drop, ...bare } = plan;
    expect(direct(bare as Plan, { ...opts, intermediates: 'x' })).toThrow(/plan.states/);
    const badState = { ...plan, states: [{ after: 0, terms: [[1, 1]], t: 0, tCont: 0 }] };
    expect(direct(badState as Plan, { ...opts, intermediates: 'x' })).toThrow(/reads register 1 before/);
    expect(direct(plan, { ...opts, intermediates: 'x', cudaGraph: true })).toThrow(/opts.cudaGraph/);
  });

  it("events carry x only when asked; 'x' ends on the returned sample", async () => {
    const sampler = new Sampler({ model, schedule, steps: 6, solver: 'scire', order: 2 });
    const plain: SampleStepEvent[] = [];
    await sampler.sample({ shape: [3, 16], seed: 4, onStep: (e) => plain.push(e) });
    expect(plain.length).toBe(6);
    expect(plain.every((e) => e.x === undefined)).toBe(true);

    const states: SampleStepEvent[] = [];
    const out = await sampler.sample({ shape: [3, 16], seed: 4, intermediates: 'x', onStep: (e) => states.push(e) });
    expect(states.length).toBe(7); // x_T and the state after each of the 6 steps
    expect(states.map((e) => e.nfe)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(states[6].x).toEqual(out.data);
    expect(states.every((e) => e.x?.length === 48)).toBe(true);
  });

  it('with dynamic batching each request receives only its own slice', async () => {
    const batched = new Sampler({ model, schedule, steps: 6, batching: { maxBatchSize: 8, maxWaitMs: 50 } });
    const alone = new Sampler({ model, schedule, steps: 6 });
    const run = async (s: Sampler, seed: number, rows: number) => {
      const ev: SampleStepEvent[] = [];
      const out = await s.sample({ shape: [rows, 16], seed, intermediates: 'x0', onStep: (e) => ev.push(e) });
      return { ev, out };
    };
    const [a, b] = await Promise.all([run(batched, 11, 2), run(batched, 12, 3)]);
    expect(a.out.timings.batchRequests).toBe(2);
    expect(b.out.timings.batchRequests).toBe(2);
    for (const [got, seed, rows] of [[a, 11, 2], [b, 12, 3]] as const) {
      const solo = await run(alone, seed, rows);
      expect(got.ev.length).toBe(6);
      got.ev.forEach((e, k) => {
        expect(e.x?.length).toBe(rows * 16);
        expect(relativeError(e.x as Float32Array, solo.ev[k].x as Float32Array)).toBeLessThan(1e-5);
      });
    }
  });
});

/** Gray 8-bit PNG as the CLI writes it (filter 0 rows): width, height, pixels. */
function readGrayPng(file: string): { width: number; height: number; pixels: Buffer } {
  const buf = fs.readFileSync(file);
  const width = buf.readUInt32BE(16);
  const height = buf.readUInt32BE(20);
  expect(buf[25]).toBe(0); // gray
  const idat: Buffer[] = [];
  for (let at = 8; at < buf.length; ) {
    const len = buf.readUInt32BE(at);
    if (buf.toString('latin1', at + 4, at + 8) === 'IDAT') idat.push(buf.subarray(at + 8, at + 8 + len));
    at += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const pixels = Buffer.alloc(width * height);
  for (let y = 0; y < height; y++) raw.copy(pixels, y * width, y * (width + 1) + 1, (y + 1) * (width + 1));
  return { width, height, pixels };
}

function tile(png: { width: number; pixels: Buffer }, col: number, row: number, side: number): number[] {
  const left = GRID_PADDING + col * (side + GRID_PADDING);
  const top = GRID_PADDING + row * (side + GRID_PADDING);
  const out: number[] = [];
  for (let y = top; y < top + side; y++) for (let x = left; x < left + side; x++) out.push(png.pixels[y * png.width + x]);
  return out;
}

describe('scire sample --preview-every K', () => {
  it('parses the flag; a bad K is a usage error; the preview file sits next to --out', () => {
    expect((parseCommandLine(['sample', '--preview-every', '3']) as SampleArgs).previewEvery).toBe(3);
    expect((parseCommandLine(['sample']) as SampleArgs).previewEvery).toBeUndefined();
    expect(() => parseCommandLine(['sample', '--preview-every', '0'])).toThrow(UsageError);
    expect(() => parseCommandLine(['sample', '--preview-every', 'x'])).toThrow(/--preview-every must be an integer/);
    expect(previewPath('out/x.png')).toBe('out/x.preview.png');
    expect(previewPath('x.NPY')).toBe('x.preview.png');
  });

  it('writes one row per previewed evaluation; with denoise-to-zero the last row is the samples', () => {
    ensureDistBuilt();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'scire-preview-'));
    const out = path.join(tmp, 'gmm.png');
    const gmmPt = path.join(ROOT, 'test', 'fixtures', 'models', 'gmm_img1x4x4_discrete.pt');
    const run = spawnSync(
      process.execPath,
      [DIST_CLI, 'sample', '--model', gmmPt, '--shape', '1,4,4', '-n', '3', '--steps', '6', '--denoise-to-zero', '--preview-every', '3', '-q', '--out', out],
      { cwd: ROOT, encoding: 'utf8', timeout: 120_000 },
    );
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    // NFE 7 (6 steps + the denoising evaluation): previews at 3, 6 and the last, 7.
    expect(run.stdout).toMatch(/NFE 7,/);
    expect(run.stdout).toContain(`preview of x0 at NFE 3, 6, 7 -> ${path.join(tmp, 'gmm.preview.png')}`);
    const preview = readGrayPng(path.join(tmp, 'gmm.preview.png'));
    expect([preview.width, preview.height]).toEqual([3 * (4 + GRID_PADDING) + GRID_PADDING, 3 * (4 + GRID_PADDING) + GRID_PADDING]);
    // The last evaluation's data prediction is the result: its row equals the samples' tiles
    // (samples.png lays 3 samples out 2 per row).
    const samples = readGrayPng(out);
    for (let k = 0; k < 3; k++) expect(tile(preview, k, 2, 4), `sample ${k}`).toEqual(tile(samples, k % 2, Math.floor(k / 2), 4));
    // The first preview (NFE 3) is an earlier, different prediction.
    expect(tile(preview, 0, 0, 4)).not.toEqual(tile(preview, 0, 2, 4));
    fs.rmSync(tmp, { recursive: true, force: true });
  }, 120_000);
});
