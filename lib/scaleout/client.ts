/**
 * The client side of the sampling queue: enqueue requests, wait for their results.
 *
 *   const client = await createClient({ connection: 'redis://127.0.0.1:6379', queue: 'scire' });
 *   const r = await client.submit({ n: 16, seed: 3, steps: 12, output: 'png' });
 *   fs.writeFileSync('out.png', r.bytes);              // r.data: Float32Array for 'f32' / 'npy'
 *   const id = await client.enqueue({ n: 1, seed: 9 }, { jobId: 'auto' });  // fire and forget
 *   const later = await client.result(id);
 *   await client.close();
 *
 * Every request gets a seed here when it has none (drawn at random and stored in the job),
 * so a retry or a stalled job's rerun samples the same thing. `jobId: 'auto'` derives the id
 * from the request (job.ts jobIdFor): submitting the same request twice runs it once and
 * returns the stored result, as long as the finished job is kept (removeOnComplete).
 */
import type { JobsOptions, Queue, QueueEvents } from 'bullmq';
import { expectInteger, expectKnownKeys, expectObject, invalidType } from '../validate';
import { connectionOptions, loadBullMQ, type Connection } from './bullmq';
import { jobIdFor, parseJobData, type SampleJobData } from './job';
import { readStoredResult, type SampleJobResult } from './result';

export const JOB_NAME = 'sample';
/** Defaults of enqueued jobs: 3 attempts with exponential backoff, finished jobs kept a day / a week. */
export const DEFAULT_JOB_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { age: 24 * 3600, count: 100_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

export interface CreateClientOptions {
  connection: Connection;
  queue: string;
  /** BullMQ key prefix (default 'bull'). */
  prefix?: string;
  /** Job options merged over DEFAULT_JOB_OPTIONS (attempts, backoff, removeOnComplete, ...). */
  jobOptions?: JobsOptions;
}

export interface EnqueueOptions {
  /** A job id, or 'auto' for one derived from the request (idempotent submits). Default: BullMQ's counter. */
  jobId?: string;
  /** BullMQ priority (1 = highest; 0 or absent: none). */
  priority?: number;
  /** Other BullMQ job options for this job. */
  jobOptions?: JobsOptions;
}

export interface SubmitOptions extends EnqueueOptions {
  /** Longest wait for the result, ms (default 10 minutes). */
  timeoutMs?: number;
}

export interface ScireClient {
  readonly queue: Queue;
  readonly events: QueueEvents;
  /** Adds a request; resolves with its job id. */
  enqueue(request: SampleJobData, options?: EnqueueOptions): Promise<string>;
  /** Waits for a job and reads its result (the failure reason as an Error if it failed). */
  result(jobId: string, options?: { timeoutMs?: number }): Promise<SampleJobResult>;
  /** enqueue + result. */
  submit(request: SampleJobData, options?: SubmitOptions): Promise<SampleJobResult>;
  close(): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 10 * 60_000;

/** A random seed in [0, 2^53). */
function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 21) * 2 ** 32 + Math.floor(Math.random() * 2 ** 32);
}

/**
 * The request as it goes on the queue: structurally checked (known fields, output, n or
 * shape, arrays of numbers) and given a seed. What depends on the worker's model (sample
 * shape, solver options) is checked by the worker.
 */
export function prepareRequest(request: SampleJobData): SampleJobData {
  const r = expectObject('request', request) as SampleJobData;
  // No model here: a request with n stands in a [1, 1, 1] sample (an image, so 'png' passes);
  // the worker checks n against its real sample shape and its limits.
  parseJobData(r, { maxSamples: Number.MAX_SAFE_INTEGER, maxResultBytes: Number.MAX_SAFE_INTEGER, sampleShape: r.shape ? undefined : [1, 1, 1] });
  return r.seed === undefined ? { ...r, seed: randomSeed() } : { ...r };
}

export async function createClient(options: CreateClientOptions): Promise<ScireClient> {
  const o = expectObject('createClient options', options) as unknown as CreateClientOptions;
  expectKnownKeys('createClient options', o as unknown as Record<string, unknown>, ['connection', 'queue', 'prefix', 'jobOptions']);
  if (typeof o.queue !== 'string' || o.queue.length === 0) throw invalidType('queue', 'a non-empty queue name', o.queue);
  const connection = connectionOptions(o.connection);
  const { Queue: QueueClass, QueueEvents: EventsClass } = loadBullMQ();
  const prefix = o.prefix ?? 'bull';
  const queue = new QueueClass(o.queue, { connection, prefix });
  const events = new EventsClass(o.queue, { connection: { ...connection }, prefix });
  // Each job.waitUntilFinished listens on the queue until it settles: many waits at once are normal.
  queue.setMaxListeners(0);
  events.setMaxListeners(0);
  queue.on('error', () => undefined);
  events.on('error', () => undefined);
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
  const jobDefaults = { ...DEFAULT_JOB_OPTIONS, ...o.jobOptions };

  const enqueue = async (request: SampleJobData, opts: EnqueueOptions = {}): Promise<string> => {
    const data = prepareRequest(request);
    const jobOptions: JobsOptions = { ...jobDefaults, ...opts.jobOptions };
    if (opts.jobId !== undefined) {
      if (typeof opts.jobId !== 'string' || opts.jobId.length === 0 || /^\d+$/.test(opts.jobId) || opts.jobId.includes(':')) {
        throw invalidType('jobId', "'auto' or a string that is not an integer and has no ':'", opts.jobId);
      }
      jobOptions.jobId = opts.jobId === 'auto' ? jobIdFor(data) : opts.jobId;
    }
    if (opts.priority !== undefined) jobOptions.priority = expectInteger('priority', opts.priority, { min: 0, max: 2 ** 21 });
    const job = await queue.add(JOB_NAME, data, jobOptions);
    return String(job.id);
  };

  const result = async (jobId: string, opts: { timeoutMs?: number } = {}): Promise<SampleJobResult> => {
    const timeoutMs = opts.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : expectInteger('timeoutMs', opts.timeoutMs, { min: 1 });
    const job = await queue.getJob(jobId);
    if (!job) throw new Error(`scire-solver: no job ${jobId} on queue ${o.queue} (never added, or removed)`);
    let value: unknown;
    try {
      value = await job.waitUntilFinished(events, timeoutMs);
    } catch (err) {
      const e = new Error(`scire-solver: job ${jobId} failed: ${(err as Error).message}`) as Error & { jobId: string };
      e.jobId = jobId;
      throw e;
    }
    const client = await queue.client;
    return readStoredResult(jobId, value, async (key) => {
      const text = await client.get(key);
      return text === null ? null : Buffer.from(text, 'base64');
    });
  };

  return {
    queue,
    events,
    enqueue,
    result,
    submit: async (request, opts = {}) => result(await enqueue(request, opts), { timeoutMs: opts.timeoutMs }),
    close: async () => {
      await Promise.all([queue.close(), events.close()]);
    },
  };
}
