/**
 * The whole plan as one CUDA graph (native/cuda_graph.{h,cc}).
 *
 * On every machine:
 *   - RunPlanOps, the synchronisation-free loop that a CUDA graph records, equals the
 *     executor's eager run bit for bit (same kernels, same terms, same order) on the CPU, for
 *     multistep, singlestep and thresholding plans (model.runPlanOps vs model.execute).
 * On a machine with a CUDA device and a CUDA build only (skipped elsewhere, with the reason
 * in the test name):
 *   - a graph replay equals the eager run bit for bit; the second call replays the cached
 *     graph; a smaller batch of the same bucket replays it too (padded, sliced);
 *     model.clearCudaGraphs() frees it.
 * The GPU timings and the UNet checks live in benchmarks/gpu.sh (one script for a GPU machine).
 */
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePlan } from '../lib/compile';
import { executePlan } from '../lib/execute';
import { Sampler } from '../lib/sampler';
import type { NativeModel } from '../lib/native-types';
import type { Plan } from '../lib/plan';
import { FIXTURES, flatten, goldenSchedule, loadGolden, scireCaseOptions } from './support/golden';
import { testingBinding, type TestingModel } from './support/testing-addon';

type GraphModel = TestingModel;

// The testing addon: model.runPlanOps and the graph cache's state are test-only entries.
const binding = testingBinding();
const info = binding.buildInfo();
const hasGpu = info.cuda && info.cudaDeviceCount > 0;
const gpuSkipReason = hasGpu ? '' : ' (skipped: no CUDA device on this machine / CPU-only LibTorch)';

function bitEqual(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return ua.every((v, i) => v === ub[i]);
}

const golden = loadGolden('scire_image_discrete');
const shape = golden.x_T_shape;
const x = Float32Array.from(flatten(golden.x_T) as number[]);
const schedule = goldenSchedule('discrete');
// One case per method (multistep order 3, singlestep agile and fixed) from the golden file.
const cases = ['multistep', 'singlestep_agile', 'singlestep_fixed'].map((method) => {
  const c = golden.cases.find((k) => k.method === method && k.order >= 2);
  if (!c) throw new Error(`no ${method} case in scire_image_discrete.json`);
  return c;
});

async function load(device: string): Promise<GraphModel> {
  const file = path.resolve(FIXTURES, 'golden', golden.model_file);
  return (await binding.loadModel(file, { device, dtype: 'float32' })) as GraphModel;
}

describe('RunPlanOps (the loop a CUDA graph records)', () => {
  let model: GraphModel;
  beforeAll(async () => {
    model = await load('cpu');
  });
  afterAll(() => model.dispose());

  for (const c of cases) {
    it(`equals the executor bit for bit on the CPU: ${c.id}`, async () => {
      const plan = compilePlan(scireCaseOptions(schedule, c));
      const eager = await model.execute(plan, { x, shape });
      const ops = await model.runPlanOps(plan, { x, shape });
      expect(bitEqual(ops, eager.data)).toBe(true);
      // and both are the golden sample within the float32 tolerance of the executor tests
      const ref = flatten(c.x0) as number[];
      const scale = Math.max(...ref.map(Math.abs));
      const err = Math.max(...ref.map((r, i) => Math.abs(ops[i] - r)));
      expect(err / scale).toBeLessThan(1e-4);
    });
  }

  it('with dynamic thresholding (DPM-Solver++ 2M)', async () => {
    const plan = compilePlan({
      schedule,
      solver: 'dpmpp',
      order: 2,
      steps: 6,
      thresholding: { ratio: 0.995, maxVal: 1.5 },
    });
    expect(plan.ops.some((op) => op.op === 'threshold')).toBe(true);
    const eager = await model.execute(plan, { x, shape });
    const ops = await model.runPlanOps(plan, { x, shape });
    expect(bitEqual(ops, eager.data)).toBe(true);
  });

  it('rejects a bad x with the field named', async () => {
    const plan = compilePlan(scireCaseOptions(schedule, cases[0]));
    expect(() => model.runPlanOps(plan, { x: new Float32Array(3), shape })).toThrow(/runPlanOps: x has 3 elements but its shape needs 128/);
  });
});

describe('the cudaGraph option', () => {
  let model: GraphModel;
  beforeAll(async () => {
    model = await load('cpu');
  });
  afterAll(() => model.dispose());
  const plan = () => compilePlan(scireCaseOptions(schedule, cases[0]));

  it("accepts only 'auto', true or false (JS and native checks)", async () => {
    await expect(executePlan(model, plan(), { x, shape, cudaGraph: 'yes' as never })).rejects.toThrow(
      /Expected 'auto', true or false for cudaGraph but received 'yes'/,
    );
    expect(() => model.execute(plan(), { x, shape, cudaGraph: 1 as never })).toThrow(
      /execute: Expected 'auto', true or false for opts.cudaGraph but received a value of type number/,
    );
  });

  it("on the CPU: 'auto' runs op by op (timings.cudaGraph 'off'), equal to false bit for bit", async () => {
    const auto = await executePlan(model, plan(), { x, shape, cudaGraph: 'auto' });
    const off = await executePlan(model, plan(), { x, shape, cudaGraph: false });
    expect(auto.timings.cudaGraph).toBe('off');
    expect(bitEqual(auto.data, off.data)).toBe(true);
  });

  it('on the CPU: true is an error naming the device, through executePlan and Sampler', async () => {
    await expect(executePlan(model, plan(), { x, shape, cudaGraph: true })).rejects.toThrow(
      /cudaGraph is true but the plan cannot run as a CUDA graph: the model is on cpu, not on a CUDA device/,
    );
    const sampler = new Sampler({ model, schedule, steps: 6 });
    await expect(sampler.sample({ shape, seed: 1, cudaGraph: true })).rejects.toThrow(/cudaGraph is true/);
    const ok = await sampler.sample({ shape, seed: 1, cudaGraph: false });
    expect(ok.nfe).toBe(6);
  });
});

describe('CUDA graph replay' + gpuSkipReason, () => {
  it.skipIf(!hasGpu)('equals the eager run bit for bit, replays the cached graph, and clearCudaGraphs drops it', async () => {
    const model = await load('cuda');
    try {
      expect(model.clearCudaGraphs()).toBe(0);
      const plan = compilePlan(scireCaseOptions(schedule, cases[0]));
      const opts = (cudaGraph: boolean) => ({ x, shape, cudaGraph }) as Parameters<NativeModel['execute']>[1];
      const eager = await model.execute(plan, opts(false));
      const first = await model.execute(plan, opts(true));
      const second = await model.execute(plan, opts(true));
      expect(first.timings.cudaGraph).toBe('captured');
      expect(second.timings.cudaGraph).toBe('replayed');
      expect(first.timings.cudaGraphReason).toBeUndefined();
      expect(Number.isNaN(second.timings.modelMs)).toBe(true);
      expect(bitEqual(first.data, eager.data)).toBe(true);
      expect(bitEqual(second.data, eager.data)).toBe(true);
      expect(binding.cudaGraphCacheState().entries).toBe(1);
      // batches 5 to 8 share the bucket-8 graph (padded with zero rows, the result sliced)
      const five = { x: x.subarray(0, 5 * 16), shape: [5, ...shape.slice(1)] };
      const eager5 = await model.execute(plan, { ...five, cudaGraph: false });
      const graph5 = await model.execute(plan, { ...five, cudaGraph: true });
      expect(graph5.timings.cudaGraph).toBe('replayed');
      expect(graph5.shape).toEqual(five.shape);
      let err = 0;
      let scale = 0;
      for (let i = 0; i < eager5.data.length; i++) {
        err = Math.max(err, Math.abs(graph5.data[i] - eager5.data[i]));
        scale = Math.max(scale, Math.abs(eager5.data[i]));
      }
      expect(err / scale).toBeLessThan(1e-5); // another batch size may pick other cuBLAS kernels
      expect(binding.cudaGraphCacheState().entries).toBe(1);
      expect(binding.cudaGraphCacheState().bytes).toBeGreaterThan(0);
      expect(model.clearCudaGraphs()).toBe(1);
      expect(binding.cudaGraphCacheState().entries).toBe(0);
    } finally {
      model.dispose();
    }
  });
});
