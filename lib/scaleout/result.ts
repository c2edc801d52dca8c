/**
 * The result of a sampling job as it is stored in Redis, and reading it back.
 *
 * The job's return value (BullMQ keeps it as JSON in the job's hash, and copies it into the
 * 'completed' event of the queue's event stream) is a small JSON object:
 *
 *   { format: 'scire-result/1', output: 'f32' | 'npy' | 'png', shape, seed, nfe, bytes,
 *     encoding: 'base64', data: '<the bytes in base64>'            // store 'inline'
 *     encoding: 'redis-key', key: '<prefix>:<queue>:scire-result:<jobId>', ttlSeconds  // store 'key'
 *     timings: { queueMs, batchSize, batchRequests, executeMs, totalMs }, worker: { host, pid, device } }
 *
 * Bytes travel as base64 (4/3 of their size: BullMQ's client speaks strings). 'inline' stores
 * them twice (the job hash, and the 'completed' event of the event stream, which keeps the
 * last 10,000 events by default); 'key' stores them once, as a string with a TTL, and keeps
 * the return value and the event small. 'auto' (the default) stores results up to 64 KiB inline
 * and larger ones under a key. A Redis string holds at most 512 MB; the worker's
 * maxResultBytes (default 16 MiB of float32) refuses larger jobs before they run.
 */
import { encodeNpy, encodePng, float32Bytes, toImageGrid, toUnitRange } from '../image-io';
import type { SampleResult } from '../sampler';
import { expectInteger, expectOneOf, invalidType, isPlainObject } from '../validate';
import type { OutputFormat } from './job';

export const RESULT_FORMAT = 'scire-result/1';
export type ResultStore = 'inline' | 'key' | 'auto';
export const RESULT_STORES: readonly ResultStore[] = ['inline', 'key', 'auto'];
/** Largest result that 'auto' keeps inline. */
export const DEFAULT_INLINE_MAX_BYTES = 64 * 1024;
/** Lifetime of a result key (store 'key'): one day. */
export const DEFAULT_RESULT_TTL_SECONDS = 24 * 3600;

export interface StoredResultBase {
  format: typeof RESULT_FORMAT;
  output: OutputFormat;
  shape: number[];
  /** The seed as a number, or a decimal string when >= 2^53. */
  seed: number | string | null;
  nfe: number;
  /** Length of the encoded output in bytes. */
  bytes: number;
  timings: { queueMs: number; batchSize: number; batchRequests: number; executeMs: number; totalMs: number };
  worker: { host: string; pid: number; device: string };
}

export type StoredResult =
  | (StoredResultBase & { encoding: 'base64'; data: string })
  | (StoredResultBase & { encoding: 'redis-key'; key: string; ttlSeconds: number });

/** A Buffer view of the same bytes (no copy). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The bytes of a sample result in the requested format. */
export function encodeOutput(result: SampleResult, output: OutputFormat, dataRange?: readonly [number, number]): Buffer {
  switch (output) {
    case 'npy':
      return asBuffer(encodeNpy(result.data, result.shape));
    case 'png':
      return asBuffer(encodePng(toImageGrid(toUnitRange(result.data, dataRange), result.shape)));
    default:
      return Buffer.from(float32Bytes(result.data));
  }
}

/** The part of the stored result that does not depend on where the bytes go. */
export function resultMeta(
  result: SampleResult,
  output: OutputFormat,
  bytes: number,
  worker: StoredResultBase['worker'],
): StoredResultBase {
  const t = result.timings;
  return {
    format: RESULT_FORMAT,
    output,
    shape: result.shape,
    seed: result.seed === undefined ? null : typeof result.seed === 'bigint' ? result.seed.toString() : result.seed,
    nfe: result.nfe,
    bytes,
    timings: { queueMs: t.queueMs, batchSize: t.batchSize, batchRequests: t.batchRequests, executeMs: t.executeMs, totalMs: t.totalMs },
    worker,
  };
}

/** The result key of a job. */
export function resultKey(prefix: string, queue: string, jobId: string): string {
  return `${prefix}:${queue}:scire-result:${jobId}`;
}

/** Options of the worker's result store, checked. */
export function resolveResultStore(value: unknown): { store: ResultStore; inlineMaxBytes: number; ttlSeconds: number } {
  if (value === undefined) return { store: 'auto', inlineMaxBytes: DEFAULT_INLINE_MAX_BYTES, ttlSeconds: DEFAULT_RESULT_TTL_SECONDS };
  if (typeof value === 'string') return { ...resolveResultStore(undefined), store: expectOneOf('results', RESULT_STORES, value) };
  if (!isPlainObject(value)) throw invalidType('results', "'inline', 'key', 'auto' or { store, inlineMaxBytes, ttlSeconds }", value);
  return {
    store: value.store === undefined ? 'auto' : expectOneOf('results.store', RESULT_STORES, value.store),
    inlineMaxBytes:
      value.inlineMaxBytes === undefined ? DEFAULT_INLINE_MAX_BYTES : expectInteger('results.inlineMaxBytes', value.inlineMaxBytes, { min: 0 }),
    ttlSeconds:
      value.ttlSeconds === undefined ? DEFAULT_RESULT_TTL_SECONDS : expectInteger('results.ttlSeconds', value.ttlSeconds, { min: 1 }),
  };
}

/** A finished job's result on the client: the metadata and the bytes. */
export type SampleJobResult = Omit<StoredResultBase, 'bytes'> & {
  jobId: string;
  /** The output file's bytes (PNG, NPY) or the raw little-endian float32 samples (f32). */
  bytes: Buffer;
  /** The samples as float32 (f32 and npy outputs). */
  data?: Float32Array;
};

/** Float32 samples from the stored bytes (f32: the bytes; npy: after the header). */
function samplesOf(output: OutputFormat, bytes: Buffer, shape: number[]): Float32Array | undefined {
  if (output === 'png') return undefined;
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = bytes.length - count * 4;
  const copy = new Uint8Array(bytes.subarray(offset)); // aligned copy
  const out = new Float32Array(copy.buffer, 0, count);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    const view = new DataView(copy.buffer);
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  }
  return out;
}

/**
 * Reads a stored result back. `getKey` fetches a result key (store 'key'); it resolves with
 * null when the key is gone (expired), which is an error here.
 */
export async function readStoredResult(
  jobId: string,
  value: unknown,
  getKey: (key: string) => Promise<Buffer | null>,
): Promise<SampleJobResult> {
  const stored = (typeof value === 'string' ? JSON.parse(value) : value) as StoredResult;
  if (!isPlainObject(stored) || stored.format !== RESULT_FORMAT) {
    throw new Error(`scire-solver: job ${jobId} returned ${JSON.stringify(value)?.slice(0, 80)}, not a ${RESULT_FORMAT} result`);
  }
  let bytes: Buffer;
  if (stored.encoding === 'base64') {
    bytes = Buffer.from(stored.data, 'base64');
  } else {
    const got = await getKey(stored.key);
    if (got === null) {
      throw new Error(`scire-solver: the result of job ${jobId} (key ${stored.key}) has expired (ttl ${stored.ttlSeconds} s)`);
    }
    bytes = got;
  }
  const meta: Omit<StoredResultBase, 'bytes'> = {
    format: stored.format,
    output: stored.output,
    shape: stored.shape,
    seed: stored.seed,
    nfe: stored.nfe,
    timings: stored.timings,
    worker: stored.worker,
  };
  const data = samplesOf(stored.output, bytes, stored.shape);
  return { ...meta, jobId, bytes, ...(data ? { data } : {}) };
}
