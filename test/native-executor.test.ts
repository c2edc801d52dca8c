/**
 * The native plan executor (model.execute / executePlan) against the TS reference executor.
 *
 * Every golden configuration (test/fixtures/golden/*.json and dpmsolver_extra.json: SciRE
 * v1/v2 in all methods, orders, skips and step counts, DPM-Solver++ and DDIM, thresholding)
 * is compiled with compilePlan and run twice on the same x_T: by executePlanReference in
 * float64 with the analytic GMM formula, and natively in float32 with the GMM's TorchScript
 * twin on the CPU.
 *
 * Tolerance, per case, with dx = x_native - x_ref and scale = max_i |x_ref_i|:
 *   max|dx| / scale <= 1e-4    (the issue's float32 target). Cases that are ill-conditioned
 *                              in float32 cannot meet it with any float32 executor; there
 *   max|dx| <= 1e-4 + 10 * float32_run_max_abs_dev     (the reference README's float32 rule,
 *                              section 6, with the official float32 run's own deviation, which
 *                              reaches 5.6e-2 on huge-step singlestep v1 'discrete' cases), and
 *                              for files without that field (image, DPM-Solver)
 *   max|dx| <= 1e-4 * scale + 10 * probe32, probe32 = max|x_ref32 - x_ref| where x_ref32 is the
 *                              reference run with the model's inputs and outputs rounded to
 *                              float32 (Math.fround): the float32 sensitivity of that case.
 * Measured here (CPU, Debian LibTorch 1.13): 28 of 460 SciRE cases exceed 1e-4, all singlestep
 * order 2-3 with 6-12 steps (and two 6-step DDIM cosine cases, where alpha near T is tiny);
 * their |dx| is 0.5-7.7x the official float32 deviation. The summary printed after the run
 * gives the worst relative error per file and the counts.
  */
import * as path from 'path';
import { readFileSync } from 'fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePlan } from '../lib/compile';
import { executePlan } from '../lib/execute';
import { loadModel } from '../lib/model';
import { nativeBinding } from '../lib/native';
import type { NativeModel, NativeStepEvent } from '../lib/native-types';
import type { CompileOptions } from '../lib/options';
import { MAX_PLAN_OPS, MAX_PLAN_REGISTERS, type Plan } from '../lib/plan';
import { checkPlan } from '../lib/plan-check';
import { executePlanReference } from '../lib/reference';
import { loadUniPcGolden, UNIPC_FILES, uniPcCaseOptions, uniPcXT } from './support/unipc-golden';
import { FIXTURES, flatten, goldenSchedule, loadGolden, loadGoldenModel, scireCaseOptions, type GoldenCase } from './support/golden';

const REL_TOL = 1e-4;
const models = new Map<string, NativeModel>();
const summary: string[] = [];

async function modelFor(file: string): Promise<NativeModel> {
  let m = models.get(file);
  if (!m) {
    m = await loadModel(path.join(FIXTURES, 'models', path.basename(file)), { device: 'cpu', dtype: 'float32' });
    models.set(file, m);
  }
  return m;
}

afterAll(() => {
  console.log(summary.join('\n'));
  for (const m of models.values()) m.dispose();
});

interface DpmCase extends GoldenCase {
  thresholding?: { ratio: number; maxVal: number } | null;
}

const DPM_SKIP = { logSNR: 'logsnr', time_uniform: 'time_uniform', time_quadratic: 'time_quadratic' } as const;
const DPM_METHOD = { multistep: 'multistep', singlestep: 'singlestep_agile', singlestep_fixed: 'singlestep_fixed' } as const;

/** compilePlan options of an official DPM-Solver call ('dpmsolver' order 1 is DDIM). */
function dpmCaseOptions(c: DpmCase): CompileOptions {
  return {
    schedule: goldenSchedule(c.schedule as 'discrete' | 'linear'),
    solver: c.algorithm_type === 'dpmsolver' ? 'ddim' : 'dpmpp',
    method: DPM_METHOD[c.method as keyof typeof DPM_METHOD],
    order: c.order,
    steps: c.steps,
    skip: DPM_SKIP[c.skip_type as keyof typeof DPM_SKIP],
    denoiseToZero: c.denoise_to_zero,
    lowerOrderFinal: c.lower_order_final,
    ...(c.thresholding ? { thresholding: c.thresholding } : {}),
  };
}

interface Group {
  name: string;
  modelFile: string;
  paramsFrom: string; // golden file whose GMM parameters the reference uses
  xT: number[];
  shape: number[];
  cases: Array<{ id: string; options: () => CompileOptions; float32Dev?: number }>;
  /** Probe the float32 sensitivity with every op rounded (executeRounded32), not only the model. */
  probeOps?: boolean;
}

function groups(): Group[] {
  const out: Group[] = [];
  for (const name of ['scire_discrete', 'scire_linear', 'scire_cosine', 'scire_image_discrete', 'scire_image_linear']) {
    const g = loadGolden(name);
    const schedule = goldenSchedule(g.schedule);
    out.push({
      name,
      modelFile: (g as unknown as { model_file: string }).model_file,
      paramsFrom: name,
      xT: flatten(g.x_T),
      shape: g.x_T_shape,
      cases: g.cases.map((c) => ({ id: c.id, options: () => scireCaseOptions(schedule, c), float32Dev: c.float32_run_max_abs_dev })),
    });
  }
  for (const name of ['dpmsolver_discrete', 'dpmsolver_linear']) {
    const g = loadGolden(name);
    out.push({
      name,
      modelFile: (g as unknown as { model_file: string }).model_file,
      paramsFrom: name,
      xT: flatten(g.x_T),
      shape: g.x_T_shape,
      cases: (g.cases as DpmCase[]).map((c) => ({ id: c.id, options: () => dpmCaseOptions(c) })),
    });
  }
  const extra = JSON.parse(readFileSync(path.join(FIXTURES, 'dpmsolver_extra.json'), 'utf8')) as { x_T_shape: number[]; cases: DpmCase[] };
  const xT = flatten(loadGolden('dpmsolver_discrete').x_T);
  for (const schedule of ['discrete', 'linear'] as const) {
    out.push({
      name: `dpmsolver_extra ${schedule}`,
      modelFile: `gmm_D16_${schedule}.pt`,
      paramsFrom: `dpmsolver_${schedule}`,
      xT,
      shape: extra.x_T_shape,
      cases: extra.cases.filter((c) => c.schedule === schedule).map((c) => ({ id: c.id, options: () => dpmCaseOptions(c) })),
    });
  }
  // The SciRE corrector (no golden vectors: native float32 vs the float64 reference only) on the
  // multistep configurations of the discrete golden file; order 3 corrections are 5-term chains.
  // v1 corrections combine model outputs with weights up to ~h = 150 (the first NSR step), so
  // their float32 sensitivity is larger than the model-rounding probe shows: cases above 1e-4 are
  // held to 1e-4 * scale + 20 * probeOps, probeOps = |x_ref32ops - x_ref| with every register
  // rounded to float32 after every op (one realisation of float32 rounding; the native kernels
  // round in a different order and the TorchScript GMM's float32 internals add their own error).
  // Only the consistent corrector is checked here: the faithful one divides the k-th difference
  // by phi^k (up to 1/0.63^3 = 4) and its v1 6-step plans reach 1.9e-2 relative in float32
  // (docs/math.md section 9): float64-only, like the official ill-conditioned float32 cases.
  {
    const g = loadGolden('scire_discrete');
    const schedule = goldenSchedule(g.schedule);
    const multistep = g.cases.filter((c) => c.method === 'multistep' && !c.denoise_to_zero);
    out.push({
      name: 'scire_discrete + corrector',
      modelFile: (g as unknown as { model_file: string }).model_file,
      paramsFrom: 'scire_discrete',
      xT: flatten(g.x_T),
      shape: g.x_T_shape,
      probeOps: true,
      cases: multistep.flatMap((c) =>
        (['consistent'] as const).map((corrector) => ({
          id: `${c.id}|corrector=${corrector}`,
          options: () => ({ ...scireCaseOptions(schedule, c), corrector }),
        })),
      ),
    });
  }
  // UniPC (authors' uni_pc.py vectors): its order-3 corrector has 5 terms and is emitted as two
  // chained one-pass lincombs, so these cases exercise that path natively too.
  for (const name of UNIPC_FILES) {
    const g = loadUniPcGolden(name);
    out.push({
      name,
      modelFile: `gmm_D16_${g.schedule}.pt`,
      paramsFrom: `dpmsolver_${g.schedule}`,
      xT: uniPcXT(g).x,
      shape: uniPcXT(g).shape,
      cases: g.cases.map((c) => ({ id: c.id, options: () => uniPcCaseOptions(c) })),
    });
  }
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): { abs: number; scale: number } {
  let abs = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    abs = Math.max(abs, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { abs, scale };
}

/** The model with its inputs and outputs rounded to float32 (the float32 sensitivity probe). */
function rounded32(model: (x: Float64Array, shape: number[], t: number) => ArrayLike<number>) {
  return (x: Float64Array, shape: number[], t: number): Float64Array =>
    Float64Array.from(model(x.map(Math.fround), shape, t), Math.fround);
}

/** The reference executor with every register rounded to float32 after every op (eval and lincomb). */
function executeRounded32(plan: Plan, x: Float64Array, shape: number[], model: (x: Float64Array, shape: number[], t: number) => ArrayLike<number>): Float64Array {
  const f = (a: ArrayLike<number>) => Float64Array.from(a, Math.fround);
  const R: Float64Array[] = [];
  R[0] = f(x.map((v) => plan.initScale * v));
  for (const op of plan.ops) {
    if (op.op === 'eval') {
      const xin = f(R[op.src].map((v) => op.inScale * v));
      const raw = f(model(xin, shape, op.t));
      R[op.dst] = f(xin.map((v, i) => op.outX * v + op.outM * raw[i]));
    } else if (op.op === 'lincomb') {
      const out = new Float64Array(x.length);
      for (const [c, r] of op.terms) for (let i = 0; i < out.length; i++) out[i] += Math.fround(c) * R[r][i];
      R[op.dst] = f(out);
    } else {
      throw new Error('executeRounded32: threshold ops are not emulated');
    }
  }
  return R[plan.final.src].map((v) => plan.final.scale * v);
}

describe('native float32 execution equals executePlanReference on every golden configuration (CPU)', () => {
  for (const group of groups()) {
    it(`${group.name}: ${group.cases.length} cases`, async () => {
      const model = await modelFor(group.modelFile);
      const gmm = loadGoldenModel(loadGolden(group.paramsFrom)).asModel();
      const x = Float32Array.from(group.xT);
      let worstRel = 0;
      let worstId = '';
      let conditioned = 0;
      let worstDevRatio = 0;
      let thresholded = 0;
      for (const c of group.cases) {
        const plan = compilePlan(c.options());
        if (plan.ops.some((op) => op.op === 'threshold')) thresholded++;
        // the reference starts from the same float32 x_T the native run gets
        const ref = executePlanReference(plan, { x: Float64Array.from(x), shape: group.shape, model: gmm });
        const res = await executePlan(model, plan, { x, shape: group.shape });
        expect(res.nfe, c.id).toBe(plan.nfe);
        expect(res.shape).toEqual(group.shape);
        const { abs, scale } = maxAbsDiff(res.data, ref.x);
        const rel = abs / scale;
        if (rel > worstRel) {
          worstRel = rel;
          worstId = c.id;
        }
        if (rel > REL_TOL) {
          if (c.float32Dev !== undefined) {
            expect(abs, `${c.id}: relative error ${rel.toExponential(2)}`).toBeLessThanOrEqual(1e-4 + 10 * c.float32Dev);
            worstDevRatio = Math.max(worstDevRatio, abs / c.float32Dev);
          } else {
            const ref32 = group.probeOps
              ? executeRounded32(plan, Float64Array.from(x), group.shape, gmm)
              : executePlanReference(plan, { x: Float64Array.from(x), shape: group.shape, model: rounded32(gmm) }).x;
            const probe = maxAbsDiff(ref32, ref.x).abs;
            expect(abs, `${c.id}: relative error ${rel.toExponential(2)}, probe32 ${probe.toExponential(2)}`).toBeLessThanOrEqual(
              REL_TOL * scale + (group.probeOps ? 20 : 10) * probe,
            );
            worstDevRatio = Math.max(worstDevRatio, abs / probe);
          }
          conditioned++;
        }
      }
      summary.push(
        `${group.name}: ${group.cases.length} cases (${thresholded} with thresholding), worst relative error ` +
          `${worstRel.toExponential(2)} (${worstId}); ${conditioned} ill-conditioned case(s) above ${REL_TOL}, ` +
          `worst |dx| / (float32_run_max_abs_dev or probe32) ${worstDevRatio.toFixed(2)}`,
      );
    });
  }
});

describe('progress, abort and errors', () => {
  const discrete = () => goldenSchedule('discrete');
  let model: NativeModel;
  let plan: Plan;
  let x: Float32Array;
  const shape = [8, 16];

  beforeAll(async () => {
    model = await modelFor('gmm_D16_discrete.pt');
    plan = compilePlan({ schedule: discrete(), steps: 20 });
    x = Float32Array.from(flatten(loadGolden('scire_discrete').x_T));
  });

  it('calls onStep once per network evaluation, in order, before the promise settles', async () => {
    const events: NativeStepEvent[] = [];
    const res = await executePlan(model, plan, { x, shape, onStep: (e) => events.push(e) });
    expect(res.nfe).toBe(plan.nfe);
    expect(events.length).toBe(plan.nfe);
    const times = plan.ops.flatMap((op) => (op.op === 'eval' ? [op.t] : []));
    events.forEach((e, i) => {
      expect(e.nfe).toBe(i + 1);
      expect(e.total).toBe(plan.nfe);
      expect(e.t).toBe(times[i]);
    });
    expect(res.timings.totalMs).toBeGreaterThan(0);
    expect(res.timings.modelMs).toBeGreaterThan(0);
    expect(res.timings.modelMs).toBeLessThanOrEqual(res.timings.totalMs);
  });

  // slow_model.pt (test/fixtures/make_executor_models.py): forward = 0.5 x after a few ms of
  // busy work, so the run is still going when the abort arrives.
  const halfModel = (xin: Float64Array) => xin.map((v) => 0.5 * v);

  it('aborting mid-run rejects with an AbortError, and a following run succeeds', async () => {
    const slow = await modelFor('slow_model.pt');
    const controller = new AbortController();
    const events: number[] = [];
    const err = (await executePlan(slow, plan, {
      x,
      shape,
      signal: controller.signal,
      onStep: (e) => {
        events.push(e.nfe);
        if (e.nfe === 2) controller.abort();
      },
    }).then(
      () => undefined,
      (e: unknown) => e,
    )) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('AbortError');
    expect(err.message).toBe('The operation was aborted');
    // checked between evaluations: the run stopped long before its 20 evaluations
    expect(events.length).toBeGreaterThanOrEqual(2);
    expect(events.length).toBeLessThan(plan.nfe);
    const again = await executePlan(slow, plan, { x, shape, signal: new AbortController().signal });
    expect(again.nfe).toBe(plan.nfe);
    const ref = executePlanReference(plan, { x: Float64Array.from(x), shape, model: halfModel });
    const { abs, scale } = maxAbsDiff(again.data, ref.x);
    expect(abs / scale).toBeLessThan(1e-5);
  });

  it('aborting through the native model.execute({ signal }) contract and an abort handle behaves the same', async () => {
    const slow = await modelFor('slow_model.pt');
    const controller = new AbortController();
    let seen = 0;
    const viaSignal = slow.execute(plan, {
      x,
      shape,
      signal: controller.signal,
      onStep: (e) => {
        seen = e.nfe;
        if (e.nfe === 1) controller.abort();
      },
    });
    await expect(viaSignal).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    expect(seen).toBeLessThan(plan.nfe);
    const handle = nativeBinding().createAbortHandle();
    expect(handle.aborted).toBe(false);
    const viaHandle = slow.execute(plan, { x, shape, abortHandle: handle, onStep: (e) => e.nfe === 1 && handle.abort() });
    await expect(viaHandle).rejects.toMatchObject({ name: 'AbortError' });
    expect(handle.aborted).toBe(true);
    const ok = await slow.execute(plan, { x, shape, signal: new AbortController().signal });
    expect(ok.nfe).toBe(plan.nfe);
  });

  it('an already aborted signal rejects before any evaluation', async () => {
    const controller = new AbortController();
    controller.abort();
    let steps = 0;
    await expect(executePlan(model, plan, { x, shape, signal: controller.signal, onStep: () => steps++ })).rejects.toMatchObject({
      name: 'AbortError',
    });
    await expect(model.execute(plan, { x, shape, signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
    expect(steps).toBe(0);
  });

  it('an error thrown by onStep stops the run and rejects with that error', async () => {
    const boom = new Error('stop here');
    let calls = 0;
    await expect(
      executePlan(model, plan, {
        x,
        shape,
        onStep: () => {
          calls++;
          throw boom;
        },
      }),
    ).rejects.toBe(boom);
    expect(calls).toBe(1);
  });

  it('rejects bad plans and options with errors naming the field', async () => {
    const first = plan.ops.findIndex((op) => op.op === 'lincomb');
    const bad = { ...plan, ops: plan.ops.map((op, i) => (i === first ? { ...op, terms: [] } : op)) } as Plan;
    expect(() => model.execute(bad, { x, shape })).toThrow(
      new RangeError(`Expected 1 to 4 terms for plan.ops[${first}].terms but received 0 terms`),
    );
    const unwritten = { ...plan, ops: [{ op: 'lincomb', dst: 1, terms: [[1, 2]] }], nfe: 0 } as unknown as Plan;
    expect(() => model.execute(unwritten, { x, shape })).toThrow(
      /plan\.ops\[0\]\.terms\[0\]\[1\] reads register 2 before any op writes it/,
    );
    expect(() => model.execute({ ...plan, nfe: plan.nfe + 1 }, { x, shape })).toThrow(
      new RangeError(`Expected the number of eval ops (${plan.nfe}) for plan.nfe but received ${plan.nfe + 1} of type number`),
    );
    expect(() => model.execute({ ...plan, format: 'v0' } as unknown as Plan, { x, shape })).toThrow(
      new TypeError("Expected 'scire-plan-v1' for plan.format but received 'v0' of type string"),
    );
    expect(() => model.execute(plan, { x: x.subarray(1), shape })).toThrow(/opts\.x has 127 elements but its shape needs 128/);
    expect(() => model.execute(plan, { x, shape, cond: x, condShape: shape })).toThrow(
      /opts\.cond was given but the model's forward takes \(x, t\) only/,
    );
    await expect(executePlan(model, plan, { x, shape: [8, 15] })).rejects.toThrow(RangeError);
  });

  it('the native validator and checkPlan share their limits (registers, ops, required tCont)', () => {
    const tooManyRegs = { ...plan, numRegs: MAX_PLAN_REGISTERS + 1 };
    expect(() => checkPlan(tooManyRegs)).toThrow(RangeError);
    expect(() => model.execute(tooManyRegs, { x, shape })).toThrow(/plan\.numRegs/);
    const atLimit = { ...plan, numRegs: MAX_PLAN_REGISTERS };
    expect(() => checkPlan(atLimit)).not.toThrow();
    const filler = { op: 'lincomb', dst: 0, terms: [[1, 0]] } as const;
    const tooManyOps = { ...plan, ops: [...plan.ops, ...new Array(MAX_PLAN_OPS + 1 - plan.ops.length).fill(filler)] } as Plan;
    expect(() => checkPlan(tooManyOps)).toThrow(RangeError);
    expect(() => model.execute(tooManyOps, { x, shape })).toThrow(
      new RangeError(`Expected at most ${MAX_PLAN_OPS} ops for plan.ops but received ${MAX_PLAN_OPS + 1}`),
    );
    const evalAt = plan.ops.findIndex((op) => op.op === 'eval');
    const noTCont = { ...plan, ops: plan.ops.map((op, i) => (i === evalAt ? { ...op, tCont: undefined } : op)) } as Plan;
    expect(() => checkPlan(noTCont)).toThrow(TypeError);
    expect(() => model.execute(noTCont, { x, shape })).toThrow(new TypeError(`Expected a finite number for plan.ops[${evalAt}].tCont but received undefined`));
  });
});

/**
 * Classifier-free guidance with test/fixtures/models/cfg_model.pt (made by
 * test/fixtures/make_cfg_model.py): forward(x, t, cond) = 0.5 tanh(x) + (t/1000) * cond @ W
 * with W[i][j] = sin(1 + i*D + j) / 2. The native run (one batched forward over
 * [uncond; cond], combined before the output conversion) must equal the reference executor
 * with the guided model raw = f(uncond) + g (f(cond) - f(uncond)) written out in float64.
 */
describe('classifier-free guidance', () => {
  const B = 3;
  const D = 6;
  const C = 4;
  const W = Array.from({ length: C }, (_, i) => Array.from({ length: D }, (_, j) => Math.sin(1 + i * D + j) / 2));
  const f = (x: Float64Array, t: number, cond: ArrayLike<number>): Float64Array => {
    const out = new Float64Array(x.length);
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < D; j++) {
        let s = 0;
        for (let i = 0; i < C; i++) s += cond[b * C + i] * W[i][j];
        out[b * D + j] = 0.5 * Math.tanh(x[b * D + j]) + (t / 1000) * s;
      }
    }
    return out;
  };
  const seq = (n: number, a: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(a * (i + 1)));
  const x = seq(B * D, 0.7);
  const cond = seq(B * C, 1.3);
  const uncond = new Float32Array(B * C); // the "empty" conditioning
  let model: NativeModel;
  beforeAll(async () => {
    model = await loadModel(path.join(FIXTURES, 'models', 'cfg_model.pt'));
    expect(model.info.numInputs).toBe(3);
  });
  afterAll(() => model.dispose());

  for (const g of [0, 1, 3.5]) {
    it(`guidance scale ${g}: native equals the reference (relative error < 1e-5)`, async () => {
      const plan = compilePlan({ schedule: goldenSchedule('discrete'), steps: 10 });
      const guided = (xin: Float64Array, _shape: number[], t: number) => {
        const u = f(xin, t, uncond);
        const c = f(xin, t, cond);
        return u.map((v, i) => v + g * (c[i] - v));
      };
      const ref = executePlanReference(plan, { x: Float64Array.from(x), shape: [B, D], model: guided });
      const res = await executePlan(model, plan, { x, shape: [B, D], cond, condShape: [B, C], uncond, guidanceScale: g });
      const { abs, scale } = maxAbsDiff(res.data, ref.x);
      expect(abs / scale).toBeLessThan(1e-5);
    });
  }

  it('without uncond it is a plain conditional run', async () => {
    const plan = compilePlan({ schedule: goldenSchedule('discrete'), steps: 6 });
    const ref = executePlanReference(plan, { x: Float64Array.from(x), shape: [B, D], model: (xin, _s, t) => f(xin, t, cond) });
    const res = await executePlan(model, plan, { x, shape: [B, D], cond, condShape: [B, C] });
    const { abs, scale } = maxAbsDiff(res.data, ref.x);
    expect(abs / scale).toBeLessThan(1e-5);
  });

  it('requires cond for a 3-input model and checks the guidance options', async () => {
    const plan = compilePlan({ schedule: goldenSchedule('discrete'), steps: 6 });
    expect(() => model.execute(plan, { x, shape: [B, D] })).toThrow(/opts\.cond \(a Float32Array\) and opts\.condShape are required/);
    await expect(executePlan(model, plan, { x, shape: [B, D], cond, condShape: [B, C], guidanceScale: 2 })).rejects.toThrow(
      /uncond/,
    );
    expect(() => model.execute(plan, { x, shape: [B, D], cond, condShape: [B + 1, C] })).toThrow(
      /opts\.condShape\[0\] must equal the batch size shape\[0\] = 3 \(got 4\)/,
    );
  });
});
