/**
 * The per-model request queue and the dynamic batcher (lib/serving) with a fake model
 * (test/support/fake-model.ts): ordering, priority, maxQueue, abort, grouping keys, split
 * correctness, step fan-out, stats. No native code; every case runs in milliseconds.
 */
import { describe, expect, it } from 'vitest';
import { resolveLoadModelOptions } from '../lib/model';
import { Sampler, type SampleOptions, type SampleResult, type SamplerOptions } from '../lib/sampler';
import { NoiseSchedule } from '../lib/schedule';
import type { NativeExecuteOptions, NativeModel } from '../lib/native-types';
import type { Plan } from '../lib/plan';
import { batchKey, concatOptions, type ExecuteItem } from '../lib/serving/batcher';
import { Model, servingQueue } from '../lib/serving/model';
import { QueueFullError, RequestQueue } from '../lib/serving/queue';
import { abortWatcherCount, onAbort } from '../lib/serving/signals';
import { FakeModel } from './support/fake-model';

const schedule = NoiseSchedule.discrete({ kind: 'linear', N: 1000, betaStart: 1e-4, betaEnd: 0.02 });
const ROW = 4; // per-sample shape [4]

function sampler(model: FakeModel | Model, extra: Partial<SamplerOptions> = {}): Sampler {
  return new Sampler({ model: model as unknown as NativeModel, schedule, solver: 'ddim', steps: 2, ...extra });
}

/** x of n rows whose first value (the fake model's row marker) is marker, marker+1, ... */
function rows(marker: number, n = 1): Float32Array {
  const x = new Float32Array(n * ROW);
  for (let r = 0; r < n; r++) x.fill(marker + r, r * ROW, (r + 1) * ROW);
  return x;
}

function req(s: Sampler, marker: number, extra: Partial<SampleOptions> = {}, n = 1): Promise<SampleResult> {
  return s.sample({ shape: [n, ROW], x: rows(marker, n), ...extra });
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A few microtask turns: enough for a rejection to travel through sample() to the caller, no macrotask. */
async function microtasks(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

/** The settled state of a promise without waiting: 'pending' | 'resolved' | 'rejected'. */
function track<T>(p: Promise<T>): { state: string; value?: T; error?: unknown } {
  const t: { state: string; value?: T; error?: unknown } = { state: 'pending' };
  p.then(
    (v) => Object.assign(t, { state: 'resolved', value: v }),
    (e) => Object.assign(t, { state: 'rejected', error: e }),
  );
  return t;
}

describe('queue order', () => {
  it('runs one execute at a time, first come first served', async () => {
    const fake = new FakeModel();
    const s = sampler(fake);
    const out = await Promise.all([10, 20, 30, 40, 50].map((m) => req(s, m)));
    expect(fake.calls.map((c) => c.rowMarkers[0])).toEqual([10, 20, 30, 40, 50]);
    expect(fake.maxInFlight).toBe(1);
    out.forEach((o, i) => {
      expect(Array.from(o.data)).toEqual(new Array(ROW).fill(2 * (10 * (i + 1)) + 1));
      expect(o.timings.batchSize).toBe(1);
      expect(o.timings.batchRequests).toBe(1);
    });
  });

  it('runs higher priority first, FIFO within a priority, decided when the model frees up', async () => {
    const fake = new FakeModel();
    const s = sampler(fake);
    const release = fake.hold();
    const blocker = req(s, 1);
    await tick(); // the blocker is on the model
    const queued = [
      req(s, 2, { priority: 0 }),
      req(s, 3, { priority: 5 }),
      req(s, 4, { priority: 0 }),
      req(s, 5, { priority: 5 }),
      req(s, 6, { priority: -1 }),
      req(s, 7, { priority: 9.5 }),
    ];
    release();
    await Promise.all([blocker, ...queued]);
    expect(fake.calls.map((c) => c.rowMarkers[0])).toEqual([1, 7, 3, 5, 2, 4, 6]);
  });

  it('shares one queue between every Sampler on the same model', async () => {
    const fake = new FakeModel();
    const a = sampler(fake);
    const b = sampler(fake, { solver: 'dpmpp', order: 2, steps: 3 });
    expect(servingQueue(fake)).toBe(servingQueue(fake));
    await Promise.all([req(a, 1), req(b, 2), req(a, 3), req(b, 4)]);
    expect(fake.maxInFlight).toBe(1);
    expect(fake.calls.map((c) => c.rowMarkers[0])).toEqual([1, 2, 3, 4]);
  });
});

describe('maxQueue', () => {
  it('rejects with ERR_SCIRE_QUEUE_FULL and the numbers once the Sampler limit is reached', async () => {
    const fake = new FakeModel();
    const s = sampler(fake, { maxQueue: 2 });
    const release = fake.hold();
    const running = req(s, 1);
    await tick();
    const waiting = [req(s, 2), req(s, 3)];
    const err = (await req(s, 4).catch((e: unknown) => e)) as QueueFullError;
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('ERR_SCIRE_QUEUE_FULL');
    expect(err.message).toBe(
      "scire-solver: the model's request queue is full: 2 request(s) waiting, maxQueue 2 (the Sampler's maxQueue); retry later or raise maxQueue",
    );
    expect(err.stack).toContain('serving-queue.test.ts'); // the caller's frames
    expect(servingQueue(fake).stats().totals.rejected).toBe(1);
    release();
    await Promise.all([running, ...waiting]);
    expect(fake.calls).toHaveLength(3);
    // Room again.
    await expect(req(s, 5)).resolves.toMatchObject({ shape: [1, ROW] });
  });

  it("applies the model's limit (loadModel maxQueue) to every Sampler, and the lower of the two", async () => {
    const fake = new FakeModel();
    const model = new Model(fake as unknown as NativeModel, { maxQueue: 3 });
    const loose = sampler(model);
    const tight = sampler(model, { maxQueue: 1 });
    const release = fake.hold();
    const running = req(loose, 1);
    await tick();
    const w1 = req(loose, 2);
    await expect(req(tight, 3)).rejects.toMatchObject({ code: 'ERR_SCIRE_QUEUE_FULL', queueLength: 1, maxQueue: 1 });
    const w2 = req(loose, 4);
    const w3 = req(loose, 5);
    await expect(req(loose, 6)).rejects.toThrow(/3 request\(s\) waiting, maxQueue 3 \(the model's limit\)/);
    expect(model.stats()).toMatchObject({ queueLength: 3, maxQueue: 3, running: { requests: 1, size: 1 } });
    release();
    await Promise.all([running, w1, w2, w3]);
  });

  it('validates maxQueue, batching and priority', async () => {
    const fake = new FakeModel();
    expect(() => sampler(fake, { maxQueue: 0 })).toThrow(/^Expected an integer >= 1 or Infinity for maxQueue but received 0 \(number\)$/);
    expect(() => sampler(fake, { maxQueue: 2.5 })).toThrow(TypeError);
    expect(() => sampler(fake, { maxQueue: '3' as never })).toThrow(/for maxQueue but received '3' \(string\)/);
    expect(() => sampler(fake, { batching: 'yes' as never })).toThrow(
      /^Expected true, false or an object \{ maxBatchSize, maxWaitMs \} for batching but received 'yes' \(string\)$/,
    );
    expect(() => sampler(fake, { batching: { maxBatchSize: 0 } })).toThrow(/for batching.maxBatchSize but received 0/);
    expect(() => sampler(fake, { batching: { maxWaitMs: -1 } })).toThrow(RangeError);
    expect(() => sampler(fake, { batching: { maxBatchsize: 4 } as never })).toThrow(/unknown option 'maxBatchsize'/);
    expect(sampler(fake, { batching: true }).batching).toEqual({ maxBatchSize: 64, maxWaitMs: 0 });
    expect(sampler(fake, { batching: { maxWaitMs: 3 } }).batching).toEqual({ maxBatchSize: 64, maxWaitMs: 3 });
    expect(sampler(fake).batching).toBeUndefined();
    await expect(req(sampler(fake), 1, { priority: Number.NaN })).rejects.toThrow(/for priority but received NaN/);
    expect(() => new RequestQueue(async () => undefined, { maxQueue: -1 })).toThrow(RangeError);
    expect(resolveLoadModelOptions({ maxQueue: 8 })).toEqual({ device: 'cpu', dtype: 'float32', maxQueue: 8 });
    expect(resolveLoadModelOptions(undefined).maxQueue).toBe(Infinity);
    expect(() => resolveLoadModelOptions({ maxQueue: 0 })).toThrow(/for maxQueue but received 0/);
    expect(() => resolveLoadModelOptions({ maxqueue: 3 })).toThrow(/unknown option 'maxqueue'/);
  });
});

describe('abort', () => {
  it('rejects a queued request at once; it never reaches the model', async () => {
    const fake = new FakeModel();
    const s = sampler(fake);
    const release = fake.hold();
    const running = req(s, 1);
    await tick();
    const controller = new AbortController();
    const victim = track(req(s, 2, { signal: controller.signal }));
    const other = req(s, 3);
    await tick();
    expect(servingQueue(fake).stats().queueLength).toBe(2);
    controller.abort(new Error('client went away'));
    await microtasks(); // no macrotask: rejected within the abort's own turn of the event loop
    expect(victim.state).toBe('rejected');
    expect((victim.error as Error).name).toBe('AbortError');
    expect(((victim.error as Error).cause as Error).message).toBe('client went away');
    expect(servingQueue(fake).stats()).toMatchObject({ queueLength: 1 });
    release();
    await Promise.all([running, other]);
    expect(fake.calls.map((c) => c.rowMarkers[0])).toEqual([1, 3]);
    expect(servingQueue(fake).stats().totals).toMatchObject({ submitted: 3, completed: 2, aborted: 1, failed: 0, batches: 2 });
    expect(abortWatcherCount(controller.signal)).toBe(0);
  });

  it('drops an aborted member from a running batch; the others get their results', async () => {
    const fake = new FakeModel();
    const s = sampler(fake, { batching: true });
    const release = fake.hold();
    const controllers = [0, 1, 2].map(() => new AbortController());
    const p = controllers.map((c, i) => track(req(s, 10 * (i + 1), { signal: c.signal })));
    await tick();
    expect(fake.calls).toHaveLength(1);
    expect(fake.calls[0].shape).toEqual([3, ROW]);
    controllers[1].abort();
    await microtasks();
    expect(p[1].state).toBe('rejected'); // at once, while the batch still runs
    expect(fake.calls[0].signal?.aborted).toBe(false); // the others still need the solve
    release();
    await new Promise((r) => setTimeout(r, 20));
    expect(p[0].state).toBe('resolved');
    expect(p[2].state).toBe('resolved');
    expect(Array.from(p[0].value!.data)).toEqual(new Array(ROW).fill(21));
    expect(Array.from(p[2].value!.data)).toEqual(new Array(ROW).fill(61));
    expect(p[0].value!.timings).toMatchObject({ batchSize: 3, batchRequests: 3 });
    expect(servingQueue(fake).stats().totals).toMatchObject({ completed: 2, aborted: 1, batches: 1, samples: 3 });
  });

  it('aborts the solve itself when every member of the batch has aborted', async () => {
    const fake = new FakeModel();
    const s = sampler(fake, { batching: true });
    const release = fake.hold();
    const controller = new AbortController(); // one signal shared by both
    const p = [track(req(s, 1, { signal: controller.signal })), track(req(s, 2, { signal: controller.signal }))];
    await tick();
    expect(abortWatcherCount(controller.signal)).toBe(2);
    controller.abort();
    await microtasks();
    expect(p.map((x) => x.state)).toEqual(['rejected', 'rejected']);
    expect(fake.calls[0].signal?.aborted).toBe(true);
    release();
    await new Promise((r) => setTimeout(r, 10));
    expect(fake.calls[0].aborted).toBe(true); // the fake executor stopped at its next evaluation
    expect(servingQueue(fake).stats()).toMatchObject({ running: null, totals: { aborted: 2, completed: 0 } });
  });

  it('rejects an already aborted signal without queueing', async () => {
    const fake = new FakeModel();
    const s = sampler(fake);
    await expect(req(s, 1, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    expect(fake.calls).toHaveLength(0);
  });

  it('keeps one listener per signal however many requests share it', async () => {
    const controller = new AbortController();
    const seen: number[] = [];
    const offs = Array.from({ length: 50 }, (_, i) => onAbort(controller.signal, () => seen.push(i)));
    expect(abortWatcherCount(controller.signal)).toBe(50);
    offs[3]();
    offs[3]();
    controller.abort();
    expect(seen).toHaveLength(49);
    expect(seen).not.toContain(3);
    expect(abortWatcherCount(controller.signal)).toBe(0);
  });
});

describe('dynamic batching', () => {
  it('merges same-tick requests into one execute and gives each its own slice', async () => {
    const fake = new FakeModel();
    const s = sampler(fake, { batching: true });
    const out = await Promise.all([req(s, 100, {}, 1), req(s, 200, {}, 3), req(s, 300, {}, 2)]);
    expect(fake.calls).toHaveLength(1);
    expect(fake.calls[0].shape).toEqual([6, ROW]);
    expect(fake.calls[0].rowMarkers).toEqual([100, 200, 201, 202, 300, 301]);
    expect(out.map((o) => o.shape)).toEqual([
      [1, ROW],
      [3, ROW],
      [2, ROW],
    ]);
    expect(Array.from(out[1].data)).toEqual([...rows(200, 3)].map((v) => 2 * v + 1));
    expect(Array.from(out[2].data)).toEqual([...rows(300, 2)].map((v) => 2 * v + 1));
    expect(out[0].data.buffer).not.toBe(out[1].data.buffer); // copies, not views of one buffer
    for (const o of out) expect(o.timings).toMatchObject({ batchSize: 6, batchRequests: 3 });
  });

  it('respects maxBatchSize (in samples) and the order of the queue', async () => {
    const fake = new FakeModel();
    const s = sampler(fake, { batching: { maxBatchSize: 4 } });
    await Promise.all([...Array(10).keys()].map((i) => req(s, i)));
    expect(fake.calls.map((c) => c.rowMarkers)).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9],
    ]);
    // A request larger than maxBatchSize runs alone.
    await req(s, 50, {}, 6);
    expect(fake.calls.at(-1)!.shape).toEqual([6, ROW]);
  });

  it('merges only requests with the same plan, per-sample shape, conditioning and guidance', async () => {
    const fake = new FakeModel();
    const s = sampler(fake, { batching: true });
    const same = sampler(fake, { batching: true }); // equal options: equal plan content
    const other = sampler(fake, { batching: true, steps: 3 });
    const unbatched = sampler(fake);
    const cond = (m: number): Partial<SampleOptions> => ({ cond: new Float32Array([m, m]) });
    const cfg = (g: number): Partial<SampleOptions> => ({ cond: new Float32Array([1, 1]), uncond: new Float32Array(2), guidanceScale: g });
    await Promise.all([
      req(s, 1),
      req(same, 2),
      req(other, 3),
      s.sample({ shape: [1, 2, 2], x: rows(4) }), // same size, other per-sample shape
      req(s, 5, { tStart: 0.5 }), // other start time: other plan
      req(unbatched, 6),
      req(s, 7, cond(70)),
      req(s, 8, cond(80)),
      req(s, 9, cfg(2)),
      req(s, 10, cfg(3)),
      req(s, 11, cfg(2)),
      req(s, 12, { cudaGraph: false }),
      req(s, 13),
    ]);
    const groups = fake.calls.map((c) => c.rowMarkers);
    expect(groups).toEqual([[1, 2, 13], [3], [4], [5], [6], [7, 8], [9, 11], [10], [12]]);
    const condCall = fake.calls[5];
    expect(condCall.condShape).toEqual([2, 2]);
    expect(fake.calls[6].guidanceScale).toBe(2);
    expect(fake.calls[7].guidanceScale).toBe(3);
  });

  it('concatenates cond along dimension 0 in member order', async () => {
    const fake = new FakeModel();
    const s = sampler(fake, { batching: true });
    const out = await Promise.all([
      s.sample({ shape: [2, ROW], x: rows(0, 2), cond: new Float32Array([10, 10, 20, 20]) }),
      s.sample({ shape: [1, ROW], x: rows(5, 1), cond: new Float32Array([30, 30]) }),
    ]);
    expect(fake.calls).toHaveLength(1);
    // data = 2 x + 1 + cond[row][0]
    expect(Array.from(out[0].data)).toEqual([11, 11, 11, 11, 23, 23, 23, 23]);
    expect(Array.from(out[1].data)).toEqual(new Array(ROW).fill(2 * 5 + 1 + 30));
    const joined = concatOptions([
      { x: rows(0, 1), shape: [1, ROW], cond: new Float32Array([1]), condShape: [1, 1], uncond: new Float32Array([2]), guidanceScale: 4 },
      { x: rows(1, 2), shape: [2, ROW], cond: new Float32Array([3, 4]), condShape: [2, 1], uncond: new Float32Array([5, 6]), guidanceScale: 4 },
    ]);
    expect(joined).toMatchObject({ shape: [3, ROW], condShape: [3, 1], guidanceScale: 4 });
    expect(Array.from(joined.uncond!)).toEqual([2, 5, 6]);
  });

  it('an idle model waits up to maxWaitMs for more requests; with 0 it does not wait', async () => {
    const fake = new FakeModel();
    const waiting = sampler(fake, { batching: { maxWaitMs: 40 } });
    const first = req(waiting, 1);
    await new Promise((r) => setTimeout(r, 5));
    const second = req(waiting, 2);
    await Promise.all([first, second]);
    expect(fake.calls.map((c) => c.rowMarkers)).toEqual([[1, 2]]);

    const eager = sampler(fake, { batching: { maxWaitMs: 0 } });
    const a = req(eager, 3);
    await new Promise((r) => setTimeout(r, 5));
    await Promise.all([a, req(eager, 4)]);
    expect(fake.calls.slice(1).map((c) => c.rowMarkers)).toEqual([[3], [4]]);
  });

  it('a full batch does not wait for maxWaitMs', async () => {
    const fake = new FakeModel();
    const s = sampler(fake, { batching: { maxBatchSize: 2, maxWaitMs: 10_000 } });
    const t0 = performance.now();
    await Promise.all([req(s, 1), req(s, 2)]);
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(fake.calls).toHaveLength(1);
  });

  it('fans the step events out to every member; a throwing onStep fails only its own request', async () => {
    const fake = new FakeModel();
    const s = sampler(fake, { batching: true, steps: 3 });
    const seen: number[][] = [[], [], []];
    const results = await Promise.allSettled([
      req(s, 1, { onStep: (e) => seen[0].push(e.nfe) }),
      req(s, 2, {
        onStep: (e) => {
          seen[1].push(e.nfe);
          if (e.nfe === 2) throw new Error('bad callback');
        },
      }),
      req(s, 3, { onStep: (e) => seen[2].push(e.nfe) }),
    ]);
    expect(fake.calls).toHaveLength(1);
    expect(seen).toEqual([[1, 2, 3], [1, 2], [1, 2, 3]]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(((results[1] as PromiseRejectedResult).reason as Error).message).toBe('bad callback');
  });

  it('does not hand batch-wide non-finite flags of the executor to every member', async () => {
    const fake = new FakeModel();
    const execute = fake.execute.bind(fake);
    const flagged = { execute: async (plan: Plan, opts: NativeExecuteOptions) => ({ ...(await execute(plan, opts)), finite: false, nonFiniteEval: 2 }) };
    const queue = servingQueue(flagged);
    const plan = sampler(fake).planFor();
    const item = (marker: number, batch = true): ExecuteItem => ({
      plan,
      options: { x: rows(marker), shape: [1, ROW] },
      size: 1,
      priority: 0,
      ...(batch ? { batch: { key: 'k', maxBatchSize: 8, maxWaitMs: 0 } } : {}),
    });
    const [a, b] = (await Promise.all([queue.submit(item(1)), queue.submit(item(2))])) as unknown as Array<Record<string, unknown>>;
    for (const r of [a, b]) {
      expect(r.finite).toBeUndefined();
      expect(r.nonFiniteEval).toBe(-1);
    }
    expect((a.timings as Record<string, number>).batchRequests).toBe(2);
    const alone = (await queue.submit(item(3, false))) as unknown as Record<string, unknown>;
    expect(alone).toMatchObject({ finite: false, nonFiniteEval: 2 }); // a solo run keeps them
  });

  it('gives each member its own copy of a model error', async () => {
    const fake = new FakeModel();
    const s = sampler(fake, { batching: true });
    const boom = Object.assign(new RangeError('execute: out of memory'), { code: 'ERR_TEST' });
    fake.failWith = boom;
    const errs = (await Promise.allSettled([req(s, 1), req(s, 2)])).map((r) => (r as PromiseRejectedResult).reason as RangeError & { code: string });
    expect(errs[0]).not.toBe(errs[1]);
    for (const e of errs) {
      expect(e).toBeInstanceOf(RangeError);
      expect(e.message).toBe('execute: out of memory');
      expect(e.code).toBe('ERR_TEST');
    }
    expect(servingQueue(fake).stats().totals).toMatchObject({ failed: 2, completed: 0 });
  });

  it('rejects what a duck-typed execute returns when it is not a result of the batch shape', async () => {
    const bad = { info: { dtype: 'float32' }, execute: async () => ({ data: new Float32Array(3), nfe: 1 }) };
    const s = new Sampler({ model: bad as unknown as NativeModel, schedule, solver: 'ddim', steps: 2 });
    await expect(req(s, 1)).rejects.toMatchObject({
      code: 'ERR_SCIRE_BAD_MODEL_OUTPUT',
      message: 'Expected model.execute to resolve with { data: Float32Array(4), nfe, timings } but received data of length 3',
    });
    const none = new Sampler({ model: { info: {}, execute: async () => undefined } as unknown as NativeModel, schedule, solver: 'ddim', steps: 2 });
    await expect(req(none, 1)).rejects.toThrow(/but received undefined$/);
    const rejectsString = new Sampler({ model: { execute: () => Promise.reject('boom') } as unknown as NativeModel, schedule, solver: 'ddim', steps: 2 });
    await expect(req(rejectsString, 1)).rejects.toMatchObject({
      code: 'ERR_SCIRE_MODEL',
      message: "model.execute rejected with a non-Error value: 'boom' (string)",
      cause: 'boom',
    });
  });

  it('batch keys differ exactly in the fields that must match', () => {
    const s = sampler(new FakeModel());
    const plan = s.planFor();
    const base = { x: new Float32Array(8), shape: [2, ROW] };
    const k = batchKey(plan, base, 'float32');
    expect(batchKey(plan, { ...base, shape: [7, ROW] }, 'float32')).toBe(k); // batch size is free
    expect(batchKey(s.planFor(0.5), base, 'float32')).not.toBe(k);
    expect(batchKey(plan, base, 'float16')).not.toBe(k);
    expect(batchKey(plan, { ...base, shape: [2, 2, 2] }, 'float32')).not.toBe(k);
    expect(batchKey(JSON.parse(JSON.stringify(plan)), base, 'float32')).toBe(k); // by content
  });
});

describe('stats, timings and dispose', () => {
  it('reports the running batch, the queue and the totals', async () => {
    const fake = new FakeModel();
    const model = new Model(fake as unknown as NativeModel);
    const s = sampler(model, { batching: { maxBatchSize: 2 } });
    const release = fake.hold();
    const all = [1, 2, 3, 4, 5].map((m) => req(s, m));
    await tick();
    const st = model.stats();
    expect(st).toMatchObject({ queueLength: 3, queuedSamples: 3, maxQueue: Infinity, running: { requests: 2, size: 2 } });
    expect(st.busyMs).toBeGreaterThanOrEqual(0);
    expect(st.uptimeMs).toBeGreaterThanOrEqual(st.busyMs);
    release();
    const out = await Promise.all(all);
    expect(model.stats()).toMatchObject({
      queueLength: 0,
      running: null,
      totals: { submitted: 5, completed: 5, failed: 0, aborted: 0, rejected: 0, batches: 3, samples: 5 },
    });
    expect(out[4].timings.queueMs).toBeGreaterThan(0);
    expect(out[4].timings.queueMs).toBeLessThanOrEqual(out[4].timings.totalMs);
  });

  it('forwards info, forward, execute (unqueued) and clearCudaGraphs to the native model', async () => {
    const fake = new FakeModel();
    const native = Object.defineProperties(fake, {
      clearCudaGraphs: { value: () => 3 },
      forward: { value: async (x: Float32Array) => x.map((v) => v + 1) },
    });
    const model = new Model(native as unknown as NativeModel);
    expect(model.info).toBe(fake.info);
    expect(model.native).toBe(native);
    expect(model.clearCudaGraphs()).toBe(3);
    expect(Array.from(await model.forward(new Float32Array([1, 2]), [1, 2], 5))).toEqual([2, 3]);
    const s = sampler(model);
    const direct = await model.execute(s.planFor(), { x: rows(7), shape: [1, ROW] });
    expect(Array.from(direct.data)).toEqual(new Array(ROW).fill(15));
    expect(model.stats().totals.submitted).toBe(0); // execute() is the low-level, unqueued entry
  });

  it('dispose() rejects the queued requests with ERR_SCIRE_DISPOSED and refuses new ones', async () => {
    const fake = new FakeModel();
    let disposed = false;
    const native = Object.defineProperties(fake, {
      dispose: { value: () => (disposed = true) },
      disposed: { get: () => disposed },
    });
    const model = new Model(native as unknown as NativeModel);
    const s = sampler(model);
    const release = fake.hold();
    const running = req(s, 1);
    await tick();
    const queued = req(s, 2);
    model.dispose();
    await expect(queued).rejects.toMatchObject({ code: 'ERR_SCIRE_DISPOSED' });
    await expect(req(s, 3)).rejects.toThrow(/the model has been disposed/);
    expect(model.disposed).toBe(true);
    release();
    await expect(running).resolves.toBeTruthy();
  });
});
