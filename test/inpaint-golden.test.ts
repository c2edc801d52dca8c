/**
 * Inpainting plans (compilePlan({ ..., inpaint: true }), lib/inpaint.ts) against the authors'
 * sample(..., correcting_xt_fn=<inpainting>): test/fixtures/inpaint.json, made by
 * test/support/generate_inpaint_golden.py from SciRE-Solver's scire_solver.py, DPM-Solver's
 * dpm_solver_pytorch.py and UniPC's uni_pc.py on the analytic GMM (x0, a soft mask and z = x_T
 * in the file).
 *
 * The authors' result is the state after the last correction; our plan adds the final
 * composite with x0 (final.inpaint), so the comparison with their result runs the plan without
 * it, and the composite is checked on its own: result = (1 - m) theirs + m x0.
 * Tolerances: reference executor (float64) relative error (max |d| / max |want|) < 1e-9;
 * native float32: relative error < 1e-4, or for ill-conditioned cases the reference README's
 * float32 rule |dx| <= 1e-4 + 10 * (the authors' own float32 run's deviation).
 */
import { readFileSync } from 'fs';
import * as path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { compilePlan } from '../lib/compile';
import { executePlan } from '../lib/execute';
import { planUsesInpaint } from '../lib/inpaint';
import { loadModel } from '../lib/model';
import type { NativeModel } from '../lib/native-types';
import type { Plan } from '../lib/plan';
import { checkPlan } from '../lib/plan-check';
import { randn } from '../lib/randn';
import { executePlanReference } from '../lib/reference';
import type { CompileOptions } from '../lib/options';
import type { NoiseSchedule } from '../lib/schedule';
import { goldenCaseOptions, type GoldenCaseCall } from '../lib/testing/golden-cases';
import { FIXTURES, flatten, goldenSchedule, loadGolden, loadGoldenModel } from './support/golden';
import { relativeError } from './support/native-gmm';

interface InpaintCase extends GoldenCaseCall {
  id: string;
  nfe: number;
  correction_t: number[];
  x0: unknown[];
  float32_run_max_abs_dev: number;
}
interface InpaintFile {
  format: string;
  scire_solver_py_sha256: string;
  dpm_solver_pytorch_py_sha256: string;
  uni_pc_py_sha256: string;
  known_x0: unknown[];
  mask: unknown[];
  cases: InpaintCase[];
}

const FILE = JSON.parse(readFileSync(path.join(FIXTURES, 'inpaint.json'), 'utf8')) as InpaintFile;
const REF_TOL = 1e-9;
const F32_TOL = 1e-4;
const KNOWN = flatten(FILE.known_x0);
const MASK = flatten(FILE.mask);
const worst = { ref: 0, composite: 0, native: 0, conditioned: 0 };
const models = new Map<string, NativeModel>();

/** compilePlan options of a case: SciRE / DPM-Solver as the golden files, UniPC as unipc-golden. */
function caseOptions(c: InpaintCase, schedule: NoiseSchedule): CompileOptions {
  if (c.id.startsWith('unipc|')) {
    return {
      schedule,
      solver: 'unipc',
      variant: c.algorithm_type as 'bh1' | 'bh2',
      order: c.order as 1 | 2 | 3,
      steps: c.steps,
      skip: c.skip_type === 'logSNR' ? 'logsnr' : 'time_uniform',
      lowerOrderFinal: c.lower_order_final,
      denoiseToZero: c.denoise_to_zero,
    };
  }
  return goldenCaseOptions(c, schedule);
}

function setup(c: InpaintCase) {
  const g = loadGolden(`scire_${c.schedule}`);
  const schedule = goldenSchedule(g.schedule);
  const plan = compilePlan({ ...caseOptions(c, schedule), inpaint: true });
  const xT = flatten(g.x_T);
  return { plan, xT, shape: g.x_T_shape, gmm: loadGoldenModel(g), inpaint: { x0: KNOWN, mask: MASK, noise: xT } };
}

/** The plan without the final composite: the authors' loop. */
const withoutComposite = (plan: Plan): Plan => ({ ...plan, final: { src: plan.final.src, scale: plan.final.scale } });

async function nativeModel(schedule: string): Promise<NativeModel> {
  let m = models.get(schedule);
  if (!m) {
    m = await loadModel(path.join(FIXTURES, 'models', `gmm_D16_${schedule}.pt`), { device: 'cpu', dtype: 'float32' });
    models.set(schedule, m);
  }
  return m;
}

afterAll(() => {
  console.log(
    `inpaint golden: worst relative error reference ${worst.ref.toExponential(2)}, composite ${worst.composite.toExponential(2)}, ` +
      `native float32 ${worst.native.toExponential(2)} (${worst.conditioned} ill-conditioned cases above 1e-4)`,
  );
  for (const m of models.values()) m.dispose();
});

describe("inpainting against the authors' correcting_xt_fn", () => {
  it('fixture sanity', () => {
    expect(FILE.format).toBe('scire-inpaint-v1');
    expect(FILE.cases.length).toBe(32);
    expect(FILE.scire_solver_py_sha256).toBe('36fcc4cbb75719a59b3f42f69c699d6f51f2476c377dd221c88c45634881e270');
    expect(FILE.dpm_solver_pytorch_py_sha256).toBe('673c59fd6ec4ce40f339d7335bc00711552cf87ea15acfa3548f5dcca026d9d2');
    expect(FILE.uni_pc_py_sha256).toBe('3f41b67a80ec8548c1d64aa6a33bb57429bf946e95c05d0595277cb2e0d83ade');
    // a soft mask: known, unknown and in-between entries
    expect(MASK.some((m) => m === 1) && MASK.some((m) => m === 0) && MASK.some((m) => m > 0 && m < 1)).toBe(true);
  });

  for (const c of FILE.cases) {
    it(`reference (float64) and native (float32): ${c.id}`, async () => {
      const { plan, xT, shape, gmm, inpaint } = setup(c);
      expect(planUsesInpaint(plan)).toBe(true);
      expect(plan.nfe).toBe(c.nfe);
      // one correction per authors' call, at their times
      const corrections = plan.ops.filter((op) => op.op === 'inpaint' || (op.op === 'lincomb' && op.inpaint)).length;
      expect(corrections).toBe(c.correction_t.length);
      const theirs = flatten(c.x0);

      const loop = executePlanReference(withoutComposite(plan), { x: xT, shape, model: gmm.asModel(), inpaint });
      const err = relativeError(loop.x, theirs);
      worst.ref = Math.max(worst.ref, err);
      expect(err).toBeLessThan(REF_TOL);

      // The composite: the known region is x0 exactly, the rest the authors' result.
      const full = executePlanReference(plan, { x: xT, shape, model: gmm.asModel(), inpaint });
      const want = theirs.map((v, i) => (1 - MASK[i]) * v + MASK[i] * KNOWN[i]);
      const errC = relativeError(full.x, want);
      worst.composite = Math.max(worst.composite, errC);
      expect(errC).toBeLessThan(REF_TOL);
      MASK.forEach((m, i) => {
        if (m === 1) expect(full.x[i]).toBe(KNOWN[i]);
      });

      // native float32, the authors' loop and the full plan
      const model = await nativeModel(c.schedule);
      const f32 = { x0: Float32Array.from(KNOWN), mask: Float32Array.from(MASK), noise: Float32Array.from(xT) };
      const run = await executePlan(model, withoutComposite(plan), { x: Float32Array.from(xT), shape, inpaint: f32 });
      const errN = relativeError(run.data, theirs);
      worst.native = Math.max(worst.native, errN);
      if (errN >= F32_TOL) {
        const scale = Math.max(...theirs.map(Math.abs));
        expect(errN * scale, `${c.id}: their float32 deviation ${c.float32_run_max_abs_dev}`).toBeLessThanOrEqual(1e-4 + 10 * c.float32_run_max_abs_dev);
        worst.conditioned++;
      }
      const runFull = await executePlan(model, plan, { x: Float32Array.from(xT), shape, inpaint: f32 });
      MASK.forEach((m, i) => {
        if (m === 1) expect(runFull.data[i]).toBe(Math.fround(KNOWN[i]));
        else expect(Math.abs(runFull.data[i] - ((1 - m) * run.data[i] + m * KNOWN[i]))).toBeLessThan(1e-5);
      });
    });
  }
});

describe('inpainting plans', () => {
  const schedule = goldenSchedule('discrete');
  const variants = [
    { solver: 'scire', method: 'multistep' },
    { solver: 'scire', method: 'singlestep_agile', algorithm: 'v2' },
    { solver: 'scire', method: 'multistep', corrector: 'faithful', denoiseToZero: true },
    { solver: 'dpmpp', method: 'multistep', thresholding: { ratio: 0.99, maxVal: 1 } },
    { solver: 'dpmpp', method: 'singlestep_fixed', order: 3 },
    { solver: 'ddim' },
    { solver: 'unipc' },
  ] as const;

  it('a plan without inpaint is unchanged (inpaint: false or absent)', () => {
    for (const v of variants) {
      const plain = compilePlan({ schedule, steps: 9, ...v });
      expect(compilePlan({ schedule, steps: 9, ...v, inpaint: false })).toEqual(plain);
      expect(planUsesInpaint(plain)).toBe(false);
      expect(JSON.stringify(plain)).not.toMatch(/inpaint/);
    }
  });

  it('every solver: one correction per state, fused into the lincomb that writes it where there is one', () => {
    for (const v of variants) {
      const plain = compilePlan({ schedule, steps: 9, ...v });
      const plan = compilePlan({ schedule, steps: 9, ...v, inpaint: true });
      checkPlan(plan, 'x');
      const standalone = plan.ops.filter((op) => op.op === 'inpaint').length;
      const fused = plan.ops.filter((op) => op.op === 'lincomb' && op.inpaint).length;
      expect(standalone + fused, JSON.stringify(v)).toBe(plain.states?.length);
      expect(plan.ops.length).toBe(plain.ops.length + standalone);
      // only x_T and a denoised state need an op of their own
      expect(standalone).toBeLessThanOrEqual(2);
      expect(plan.final.inpaint).toEqual({ a: 1, s: 0 });
      expect(plan.nfe).toBe(plain.nfe);
      expect(plan.meta.inpaint).toBe(true);
    }
  });

  it('the known region stays on alpha_t x0 + sigma_t z at every state (intermediates x)', () => {
    const g = loadGolden('scire_discrete');
    const gmm = loadGoldenModel(g);
    const xT = flatten(g.x_T);
    for (const v of variants) {
      const plan = compilePlan({ schedule, steps: 9, ...v, inpaint: true });
      const ref = executePlanReference(plan, {
        x: xT,
        shape: g.x_T_shape,
        model: gmm.asModel(),
        intermediates: 'x',
        inpaint: { x0: KNOWN, mask: MASK, noise: xT },
      });
      for (const snap of ref.intermediates ?? []) {
        const a = schedule.alpha(snap.tCont);
        const s = schedule.sigma(snap.tCont);
        MASK.forEach((m, i) => {
          if (m === 1) expect(Math.abs(snap.x[i] - (a * KNOWN[i] + s * xT[i]))).toBeLessThan(1e-12 * (1 + Math.abs(snap.x[i])));
        });
      }
    }
  });
});

describe('inpainting plan checks', () => {
  const schedule = goldenSchedule('linear');
  const g = loadGolden('scire_linear');
  const xT = flatten(g.x_T);
  const base = (): Plan => compilePlan({ schedule, steps: 6, inpaint: true });
  const run = (plan: Plan, inpaint?: unknown) =>
    executePlanReference(plan, { x: xT, shape: g.x_T_shape, model: loadGoldenModel(g).asModel(), ...(inpaint === undefined ? {} : { inpaint }) } as never);
  const inputs = { x0: KNOWN, mask: MASK, noise: xT };

  it('refuses bad correction fields with the field named', () => {
    const p = base();
    const i = p.ops.findIndex((op) => op.op === 'inpaint');
    const j = p.ops.findIndex((op) => op.op === 'lincomb' && op.inpaint);
    expect(() => checkPlan({ ...p, ops: p.ops.map((op, k) => (k === i ? { ...op, a: NaN } : op)) })).toThrow(
      new RegExp(`plan\\.ops\\[${i}\\]\\.a`),
    );
    expect(() => checkPlan({ ...p, ops: p.ops.map((op, k) => (k === j ? { ...op, inpaint: { a: 1, s: 1e39 } } : op)) } as Plan)).toThrow(
      new RegExp(`plan\\.ops\\[${j}\\]\\.inpaint\\.s`),
    );
    expect(() => checkPlan({ ...p, ops: p.ops.map((op, k) => (k === j ? { ...op, inpaint: 3 } : op)) } as unknown as Plan)).toThrow(TypeError);
    expect(() => checkPlan({ ...p, ops: p.ops.map((op, k) => (k === i ? { ...op, reg: 40 } : op)) })).toThrow(/plan\.ops\[\d+\]\.reg/);
    expect(() => checkPlan({ ...p, final: { ...p.final, inpaint: { a: 1 } } } as unknown as Plan)).toThrow(/plan\.final\.inpaint\.s/);
  });

  it('needs the inputs exactly when the plan inpaints', () => {
    expect(() => run(base())).toThrow(/inpaint: true for inpaint but received undefined/);
    expect(() => run(compilePlan({ schedule, steps: 6 }), inputs)).toThrow(/no inpaint inputs/);
    expect(() => run(base(), { ...inputs, mask: MASK.map((m) => m * 2) })).toThrow(/\[0, 1\] for inpaint\.mask\[\d+\]/);
    expect(() => run(base(), { ...inputs, mask: MASK.map((m, k) => (k === 3 ? NaN : m)) })).toThrow(/inpaint\.mask\[3\]/);
    expect(() => run(base(), { ...inputs, x0: KNOWN.slice(1) })).toThrow(/inpaint\.x0\.length/);
    expect(() => run(base(), { ...inputs, noise: undefined })).toThrow(/inpaint\.noise/);
    expect(() => compilePlan({ schedule, steps: 6, inpaint: 'yes' as never })).toThrow(/inpaint/);
  });
});

describe('native executor: inpainting inputs and plan fields', () => {
  const schedule = goldenSchedule('discrete');
  const g = loadGolden('scire_discrete');
  const xT = Float32Array.from(flatten(g.x_T));
  const shape = g.x_T_shape;
  const inputs = { x0: Float32Array.from(KNOWN), mask: Float32Array.from(MASK), noise: xT };

  it('refuses bad plan fields and inputs with the field named (model.execute, no JS checks)', async () => {
    const model = await nativeModel('discrete');
    const p = compilePlan({ schedule, steps: 6, denoiseToZero: true, inpaint: true });
    const i = p.ops.findIndex((op) => op.op === 'inpaint');
    const j = p.ops.findIndex((op) => op.op === 'lincomb' && op.inpaint);
    // async: model.execute throws its validation errors synchronously
    const exec = async (plan: unknown, opts: Record<string, unknown> = {}) => model.execute(plan as Plan, { x: xT, shape, inpaint: inputs, ...opts } as never);
    await expect(exec({ ...p, ops: p.ops.map((op, k) => (k === i ? { ...op, a: Infinity } : op)) })).rejects.toThrow(new RegExp(`plan\\.ops\\[${i}\\]\\.a`));
    await expect(exec({ ...p, ops: p.ops.map((op, k) => (k === j ? { ...op, inpaint: { a: 1, s: -1e39 } } : op)) })).rejects.toThrow(
      new RegExp(`magnitude at most 3\\.4e38 for plan\\.ops\\[${j}\\]\\.inpaint\\.s`),
    );
    await expect(exec({ ...p, ops: p.ops.map((op, k) => (k === j ? { ...op, inpaint: 'x' } : op)) })).rejects.toThrow(TypeError);
    await expect(exec({ ...p, ops: p.ops.map((op, k) => (k === i ? { ...op, reg: 9 } : op)) })).rejects.toThrow(/plan\.ops\[\d+\]\.reg/);
    await expect(exec({ ...p, ops: p.ops.map((op, k) => (k === i ? { ...op, op: 'inpaintx' } : op)) })).rejects.toThrow(/'eval', 'lincomb', 'threshold', 'inpaint'/);
    await expect(exec({ ...p, final: { ...p.final, inpaint: { s: 0 } } })).rejects.toThrow(/plan\.final\.inpaint\.a/);
    await expect(exec(p, { inpaint: undefined })).rejects.toThrow(/opts\.inpaint/);
    await expect(exec(compilePlan({ schedule, steps: 6 }))).rejects.toThrow(/opts\.inpaint must be absent for a plan without inpainting/);
    await expect(exec(p, { inpaint: { ...inputs, mask: inputs.mask.map((m) => -m) } })).rejects.toThrow(/opts\.inpaint\.mask must hold numbers in \[0, 1\]/);
    await expect(exec(p, { inpaint: { ...inputs, mask: inputs.mask.map((m, k) => (k ? m : NaN)) } })).rejects.toThrow(RangeError);
    await expect(exec(p, { inpaint: { ...inputs, x0: inputs.x0.slice(2) } })).rejects.toThrow(/opts\.inpaint\.x0/);
    await expect(exec(p, { inpaint: { ...inputs, noise: inputs.noise.map((v, k) => (k === 5 ? Infinity : v)) } })).rejects.toThrow(/opts\.inpaint\.noise must hold finite numbers/);
    await expect(exec(p, { inpaint: 7 })).rejects.toThrow(TypeError);
    await expect(exec(p, { cudaGraph: true })).rejects.toThrow(/opts\.cudaGraph/);
    // executePlan (the JS checks) says the same with its own field names
    await expect(executePlan(model, p, { x: xT, shape })).rejects.toThrow(/for inpaint but received undefined/);
    await expect(executePlan(model, p, { x: xT, shape, inpaint: { ...inputs, mask: inputs.mask.map((m) => m + 1) } })).rejects.toThrow(/for inpaint\.mask\[\d+\]/);
    await expect(executePlan(model, p, { x: xT, shape, inpaint: inputs, cudaGraph: true })).rejects.toThrow(/cudaGraph/);
    const ok = await executePlan(model, p, { x: xT, shape, inpaint: inputs });
    expect(ok.data.length).toBe(xT.length);
  });

  it("intermediates 'x' of a native inpainting run are the corrected states of the reference", async () => {
    const model = await nativeModel('discrete');
    for (const opts of [{}, { solver: 'unipc' as const }, { method: 'singlestep_fixed' as const, order: 2 as const, denoiseToZero: true }]) {
      const plan = compilePlan({ schedule, steps: 6, ...opts, inpaint: true });
      const ref = executePlanReference(plan, { x: xT, shape, model: loadGoldenModel(g).asModel(), intermediates: 'x', inpaint: inputs });
      const events: Float32Array[] = [];
      await executePlan(model, plan, { x: xT, shape, inpaint: inputs, intermediates: 'x', onStep: (ev) => ev.x && events.push(ev.x) });
      expect(events.length).toBe(ref.intermediates?.length);
      events.forEach((x, k) => {
        const want = (ref.intermediates ?? [])[k].x;
        expect(relativeError(x, want), `${JSON.stringify(opts)} state ${k}`).toBeLessThan(F32_TOL);
      });
    }
  });

  it('a batch larger than one parallel chunk of the CPU kernel equals its rows run alone', async () => {
    const model = await nativeModel('discrete');
    const rows = 4100; // 65 600 values: the CPU kernels split at 32 768
    const big = [rows, 16];
    const x = randn(big, 3);
    const x0 = randn(big, 4).map((v) => 0.5 * v);
    const mask = Float32Array.from({ length: rows * 16 }, (_, k) => [0, 1, 0.3][k % 3]);
    for (const opts of [{}, { solver: 'dpmpp' as const, order: 3 as const }, { method: 'singlestep_agile' as const, denoiseToZero: true }]) {
      const plan = compilePlan({ schedule, steps: 7, ...opts, inpaint: true });
      const got = await executePlan(model, plan, { x, shape: big, inpaint: { x0, mask, noise: x } });
      for (let k = 0; k < mask.length; k++) if (mask[k] === 1 && got.data[k] !== x0[k]) throw new Error(`known value ${k} changed`);
      // Rows from both ends (different chunks of the big pass) alone: the same up to the network's
      // batch-size dependence (a wrong chunk split gives O(1) errors).
      for (const from of [0, 2040, rows - 64]) {
        const part = (a: Float32Array) => a.slice(from * 16, (from + 64) * 16);
        const alone = await executePlan(model, plan, { x: part(x), shape: [64, 16], inpaint: { x0: part(x0), mask: part(mask), noise: part(x) } });
        expect(relativeError(part(got.data), alone.data)).toBeLessThan(1e-5);
      }
    }
  }, 60_000);
});
