/**
 * createWorker: a BullMQ worker whose jobs are sample requests (lib/scaleout/job.ts).
 *
 *   const w = await createWorker({ connection: 'redis://127.0.0.1:6379', queue: 'scire',
 *                                  model: 'models/fmnist_unet.pt', device: 'cuda:0', concurrency: 16 });
 *   ...
 *   await w.close();   // stop taking jobs, finish the ones in flight, close the connections
 *
 * Several jobs are in flight at once (`concurrency`), all on one model: their sample() calls
 * meet in the model's request queue, where dynamic batching (on by default here) runs the
 * compatible ones as one solve. The event loop stays free while the native thread samples, so
 * BullMQ renews its job locks on time even under load.
 *
 * Failures:
 *   - data no worker can run (unknown field, bad shape, bad solver option, ...): the job fails
 *     at once with the validation message, and is not retried (UnrecoverableError);
 *   - anything else (a native error, Redis trouble) throws as usual, and BullMQ retries the
 *     job as its `attempts` / `backoff` say;
 *   - a worker that dies mid-job (SIGKILL, power loss) stops renewing its locks: after
 *     `stalledInterval` another worker finds the job stalled and runs it again (at most
 *     `maxStalledCount` times). Sampling is deterministic given the seed, so the rerun gives
 *     the same result.
 */
import * as os from 'node:os';
import type { Job, Worker } from 'bullmq';
import { loadModel, type LoadModelOptions } from '../model';
import { readModelCard } from '../model-card';
import type { CompileOptions } from '../options';
import { Sampler, type SampleResult, type SamplerModel } from '../sampler';
import { PRESET_FIELDS } from '../presets/auto';
import type { NoiseSchedule } from '../schedule';
import type { Model } from '../serving/model';
import type { BatchingOptions } from '../serving/options';
import { expectFiniteNumber, expectInteger, expectKnownKeys, expectObject, invalidType } from '../validate';
import { connectionOptions, loadBullMQ, type Connection } from './bullmq';
import { DEFAULT_MAX_JOB_SAMPLES, DEFAULT_MAX_RESULT_BYTES, canonicalJson, parseJobData, type JobLimits } from './job';
import { encodeOutput, resolveResultStore, resultKey, resultMeta, type StoredResult } from './result';

/** BullMQ's timing defaults, kept: a dead worker's jobs are back in the queue within about a minute. */
export const DEFAULT_LOCK_DURATION_MS = 30_000;
export const DEFAULT_STALLED_INTERVAL_MS = 30_000;
export const DEFAULT_MAX_STALLED_COUNT = 1;
export const DEFAULT_CONCURRENCY = 16;
export const DEFAULT_PROGRESS_INTERVAL_MS = 1000;
/**
 * How long an idle model waits to fill a batch, in a worker (the Sampler's default is 0). When
 * a batch finishes, its jobs complete together and BullMQ fetches their successors one Redis
 * round trip each; without a short wait the first successor would start a solve alone and the
 * others would wait for it (batches of 1, 7, 1, 7, ... instead of 8, 8, ...).
 */
export const DEFAULT_WORKER_MAX_WAIT_MS = 5;
const MAX_CACHED_SAMPLERS = 32;

export interface CreateWorkerOptions {
  /** Redis: a URL or ioredis options. */
  connection: Connection;
  /** Queue name (the same on the clients). */
  queue: string;
  /** A Sampler to run the jobs with (its model, schedule, solver options and batching). */
  sampler?: Sampler;
  /**
   * Or a model: a loaded model, or the path of a TorchScript file with its model card beside
   * it (schedule, model type, sample shape and data range come from the card).
   */
  model?: SamplerModel | string;
  /** With a model path: device and dtype (loadModel's). */
  device?: LoadModelOptions['device'];
  dtype?: LoadModelOptions['dtype'];
  /** With a loaded model: its schedule (a model path takes the card's). */
  schedule?: NoiseSchedule;
  /** Default solver options of the jobs (a job may override them). */
  solverOptions?: Omit<CompileOptions, 'schedule'>;
  /**
   * Dynamic batching of the jobs in flight (default { maxBatchSize: 64, maxWaitMs: 5 }; ignored
   * with `sampler`, whose batching is used as it is).
   */
  batching?: boolean | BatchingOptions;
  /** Shape of one sample; needed for jobs that give `n` (a model path takes the card's). */
  sampleShape?: number[];
  /** Data range of the samples, for PNG outputs (a model path takes the card's; default [-1, 1]). */
  dataRange?: [number, number];
  /** Jobs in flight on this worker (default 16): the most a dynamic batch can gather. */
  concurrency?: number;
  /** BullMQ job lock, ms (default 30000). It is renewed every lockDuration / 2 while a job runs. */
  lockDuration?: number;
  /** How often this worker looks for stalled jobs (locks that expired), ms (default 30000). */
  stalledInterval?: number;
  /** Times a job may stall before it fails (default 1). */
  maxStalledCount?: number;
  /** BullMQ key prefix (default 'bull'). */
  prefix?: string;
  /** Most samples in one job (default 64). */
  maxSamples?: number;
  /** Most bytes of float32 samples in one job's result (default 16 MiB). */
  maxResultBytes?: number;
  /** Where results go: 'auto' (default), 'inline', 'key', or { store, inlineMaxBytes, ttlSeconds }. */
  results?: 'inline' | 'key' | 'auto' | { store?: 'inline' | 'key' | 'auto'; inlineMaxBytes?: number; ttlSeconds?: number };
  /** Least time between two job.updateProgress calls of one job, ms (default 1000). */
  progressIntervalMs?: number;
  /** Start taking jobs at once (default true); false: call worker.run() yourself. */
  autorun?: boolean;
}

export interface ScireWorker {
  /** The BullMQ worker (events: 'completed', 'failed', 'stalled', 'error', ...). */
  readonly worker: Worker;
  /** The model the jobs run on. */
  readonly model: SamplerModel;
  /** Counts of this worker's jobs. */
  stats(): { active: number; completed: number; failed: number };
  /**
   * Graceful stop: takes no new job, waits for the jobs in flight, closes the Redis
   * connections and (when the worker loaded it) disposes the model.
   */
  close(): Promise<void>;
}

const WORKER_KEYS = [
  'connection', 'queue', 'sampler', 'model', 'device', 'dtype', 'schedule', 'solverOptions', 'batching', 'sampleShape',
  'dataRange', 'concurrency', 'lockDuration', 'stalledInterval', 'maxStalledCount', 'prefix', 'maxSamples',
  'maxResultBytes', 'results', 'progressIntervalMs', 'autorun',
];

/** A TypeError or RangeError of the package's validation: the job's data is at fault. */
export function isValidationError(err: unknown): err is TypeError | RangeError {
  return err instanceof TypeError || err instanceof RangeError;
}

interface Base {
  model: SamplerModel;
  schedule: NoiseSchedule;
  solverOptions: Record<string, unknown>;
  batching: boolean | BatchingOptions | undefined;
  sampleShape?: number[];
  dataRange?: [number, number];
  ownsModel: boolean;
}

/**
 * The worker's solver options that a job's own options leave in force: a job that sets a solver
 * field (solver, order, ...) overrides the base preset, and a job that sets a preset overrides
 * the base's solver fields (the two cannot be combined, lib/presets/auto.ts).
 */
function baseUnder(base: Record<string, unknown>, overrides: Record<string, unknown>): Record<string, unknown> {
  const out = { ...base };
  if (PRESET_FIELDS.some((f) => overrides[f] !== undefined)) delete out.preset;
  if (overrides.preset !== undefined) for (const f of PRESET_FIELDS) delete out[f];
  return out;
}

async function resolveBase(o: CreateWorkerOptions): Promise<Base> {
  if (o.sampler !== undefined) {
    if (!(o.sampler instanceof Sampler)) throw invalidType('sampler', 'a Sampler', o.sampler);
    if (o.model !== undefined) throw invalidType('model', 'no model together with sampler (the sampler has one)', o.model);
    const { batching } = o.sampler;
    return {
      model: o.sampler.model,
      schedule: o.sampler.schedule,
      solverOptions: { ...o.sampler.options },
      batching: batching ? { ...batching } : false,
      sampleShape: o.sampleShape,
      dataRange: o.dataRange,
      ownsModel: false,
    };
  }
  if (typeof o.model === 'string') {
    const card = readModelCard(o.model);
    const model = await loadModel(o.model, { device: o.device, dtype: o.dtype });
    return {
      model,
      schedule: o.schedule ?? card.schedule,
      solverOptions: { modelType: card.modelType, ...o.solverOptions },
      batching: o.batching ?? { maxWaitMs: DEFAULT_WORKER_MAX_WAIT_MS },
      sampleShape: o.sampleShape ?? card.shape,
      dataRange: o.dataRange ?? card.dataRange,
      ownsModel: true,
    };
  }
  if (typeof o.model !== 'object' || o.model === null || typeof (o.model as SamplerModel).execute !== 'function') {
    throw invalidType('model', 'a loaded model, the path of a TorchScript file, or a sampler', o.model);
  }
  if (o.schedule === undefined) throw invalidType('schedule', 'the NoiseSchedule of the model (with a loaded model)', o.schedule);
  return {
    model: o.model as SamplerModel,
    schedule: o.schedule,
    solverOptions: { ...o.solverOptions },
    batching: o.batching ?? { maxWaitMs: DEFAULT_WORKER_MAX_WAIT_MS },
    sampleShape: o.sampleShape,
    dataRange: o.dataRange,
    ownsModel: false,
  };
}

/** Starts a BullMQ worker that samples the jobs of `queue`. */
export async function createWorker(options: CreateWorkerOptions): Promise<ScireWorker> {
  const o = expectObject('createWorker options', options) as unknown as CreateWorkerOptions;
  expectKnownKeys('createWorker options', o as unknown as Record<string, unknown>, WORKER_KEYS);
  if (typeof o.queue !== 'string' || o.queue.length === 0) throw invalidType('queue', 'a non-empty queue name', o.queue);
  const connection = connectionOptions(o.connection);
  const concurrency = o.concurrency === undefined ? DEFAULT_CONCURRENCY : expectInteger('concurrency', o.concurrency, { min: 1, max: 4096 });
  const lockDuration = o.lockDuration === undefined ? DEFAULT_LOCK_DURATION_MS : expectInteger('lockDuration', o.lockDuration, { min: 100 });
  const stalledInterval =
    o.stalledInterval === undefined ? DEFAULT_STALLED_INTERVAL_MS : expectInteger('stalledInterval', o.stalledInterval, { min: 100 });
  const maxStalledCount =
    o.maxStalledCount === undefined ? DEFAULT_MAX_STALLED_COUNT : expectInteger('maxStalledCount', o.maxStalledCount, { min: 0 });
  const progressIntervalMs =
    o.progressIntervalMs === undefined ? DEFAULT_PROGRESS_INTERVAL_MS : expectFiniteNumber('progressIntervalMs', o.progressIntervalMs, { min: 0 });
  const limits: JobLimits = {
    maxSamples: o.maxSamples === undefined ? DEFAULT_MAX_JOB_SAMPLES : expectInteger('maxSamples', o.maxSamples, { min: 1 }),
    maxResultBytes:
      o.maxResultBytes === undefined ? DEFAULT_MAX_RESULT_BYTES : expectInteger('maxResultBytes', o.maxResultBytes, { min: 4, max: 512 * 1024 * 1024 }),
  };
  const store = resolveResultStore(o.results);
  const prefix = o.prefix ?? 'bull';
  const { Worker: WorkerClass, UnrecoverableError } = loadBullMQ();

  const base = await resolveBase(o);
  limits.sampleShape = base.sampleShape;
  // The default Sampler checks the worker's solver options now, before any job arrives.
  const samplers = new Map<string, Sampler>();
  const makeSampler = (overrides: Record<string, unknown>): Sampler =>
    new Sampler({
      model: base.model,
      schedule: base.schedule,
      ...(baseUnder(base.solverOptions, overrides) as Omit<CompileOptions, 'schedule'>),
      ...overrides,
      batching: base.batching,
    });
  samplers.set('{}', o.sampler ?? makeSampler({}));

  /** The Sampler for a job's solver options (one per distinct set, least recently used dropped). */
  const samplerFor = (overrides: Record<string, unknown>): Sampler => {
    const key = canonicalJson(overrides);
    let s = samplers.get(key);
    if (s) {
      samplers.delete(key);
    } else {
      s = makeSampler(overrides); // throws the compilePlan message for a bad option
      if (samplers.size >= MAX_CACHED_SAMPLERS) {
        const oldest = [...samplers.keys()].find((k) => k !== '{}');
        if (oldest !== undefined) samplers.delete(oldest);
      }
    }
    samplers.set(key, s);
    return s;
  };

  const identity = { host: os.hostname(), pid: process.pid, device: base.model.info?.device ?? 'unknown' };
  const counts = { active: 0, completed: 0, failed: 0 };

  const processJob = async (job: Job): Promise<StoredResult> => {
    let sampler: Sampler;
    let parsed: ReturnType<typeof parseJobData>;
    let result: SampleResult;
    let lastProgress = 0;
    try {
      parsed = parseJobData(job.data, limits);
      sampler = samplerFor(parsed.solver);
      result = await sampler.sample({
        ...parsed.sample,
        onStep: (ev) => {
          const now = performance.now();
          if (now - lastProgress < progressIntervalMs || ev.nfe === ev.total) return;
          lastProgress = now;
          job.updateProgress({ nfe: ev.nfe, total: ev.total }).catch(() => undefined);
        },
      });
    } catch (err) {
      if (isValidationError(err)) throw new UnrecoverableError(`${err.name}: ${err.message}`);
      throw err;
    }
    const bytes = encodeOutput(result, parsed.output, base.dataRange);
    const meta = resultMeta(result, parsed.output, bytes.length, identity);
    const useKey = store.store === 'key' || (store.store === 'auto' && bytes.length > store.inlineMaxBytes);
    if (!useKey) return { ...meta, encoding: 'base64', data: bytes.toString('base64') };
    const key = resultKey(prefix, o.queue, String(job.id));
    const client = await worker.client;
    await client.set(key, bytes.toString('base64'), { EX: store.ttlSeconds });
    return { ...meta, encoding: 'redis-key', key, ttlSeconds: store.ttlSeconds };
  };

  const worker: Worker = new WorkerClass(
    o.queue,
    async (job: Job) => {
      counts.active++;
      try {
        const r = await processJob(job);
        counts.completed++;
        return r;
      } catch (err) {
        counts.failed++;
        throw err;
      } finally {
        counts.active--;
      }
    },
    { connection, concurrency, lockDuration, stalledInterval, maxStalledCount, prefix, autorun: o.autorun ?? true },
  );
  // BullMQ re-emits connection trouble here; without a listener Node would throw it.
  worker.on('error', (err) => {
    if (worker.listenerCount('error') === 1) process.emitWarning(`scire worker (${o.queue}): ${err.message}`);
  });
  await worker.waitUntilReady();

  let closing: Promise<void> | undefined;
  return {
    worker,
    model: base.model,
    stats: () => ({ ...counts }),
    close: () =>
      (closing ??= (async () => {
        await worker.close();
        if (base.ownsModel) (base.model as Model).dispose();
      })()),
  };
}
