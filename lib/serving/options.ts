/**
 * The serving options of Sampler, loadModel and sample(), validated with the package's
 * message shape (lib/validate.ts).
 *
 *   new Sampler({ ..., batching: true | { maxBatchSize, maxWaitMs }, maxQueue })
 *   loadModel(path, { maxQueue })
 *   sampler.sample({ ..., priority })
 */
import { expectFiniteNumber, expectInteger, expectKnownKeys, invalidType, isPlainObject, outOfRange } from '../validate';

/** Dynamic batching of a Sampler's requests (see docs/usage.md, "Serving"). */
export interface BatchingOptions {
  /** Most samples (sum of the requests' leading dimensions) in one solve. Default 64. */
  maxBatchSize?: number;
  /**
   * How long an idle model waits for more requests to join a batch that is not full, in ms
   * (measured from the arrival of the request at the head of the queue). Default 0: requests that arrive in the
   * same tick, or while the model is busy, are merged; an idle model never waits.
   */
  maxWaitMs?: number;
}

export interface ResolvedBatching {
  maxBatchSize: number;
  maxWaitMs: number;
}

export const DEFAULT_MAX_BATCH_SIZE = 64;
export const DEFAULT_MAX_WAIT_MS = 0;
/** Upper bounds that catch unit mistakes (seconds given as ms, bytes as samples). */
export const MAX_BATCH_SIZE_LIMIT = 1 << 20;
export const MAX_WAIT_MS_LIMIT = 60_000;

/** `batching` of the Sampler: undefined / false (off), true (defaults) or an object. */
export function resolveBatching(value: unknown): ResolvedBatching | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return { maxBatchSize: DEFAULT_MAX_BATCH_SIZE, maxWaitMs: DEFAULT_MAX_WAIT_MS };
  if (!isPlainObject(value)) throw invalidType('batching', 'true, false or an object { maxBatchSize, maxWaitMs }', value);
  expectKnownKeys('batching', value, ['maxBatchSize', 'maxWaitMs']);
  return {
    maxBatchSize:
      value.maxBatchSize === undefined
        ? DEFAULT_MAX_BATCH_SIZE
        : expectInteger('batching.maxBatchSize', value.maxBatchSize, { min: 1, max: MAX_BATCH_SIZE_LIMIT }),
    maxWaitMs:
      value.maxWaitMs === undefined
        ? DEFAULT_MAX_WAIT_MS
        : expectFiniteNumber('batching.maxWaitMs', value.maxWaitMs, { min: 0, max: MAX_WAIT_MS_LIMIT }),
  };
}

/** `maxQueue` (Sampler or loadModel): an integer >= 1, or Infinity (the default: no limit). */
export function resolveMaxQueue(value: unknown): number {
  if (value === undefined || value === Infinity) return Infinity;
  const what = 'an integer >= 1 or Infinity';
  if (typeof value !== 'number' || Number.isNaN(value) || (Number.isFinite(value) && !Number.isInteger(value))) {
    throw invalidType('maxQueue', what, value);
  }
  if (!(value >= 1)) throw outOfRange('maxQueue', what, value);
  return value;
}

/** `priority` of sample(): a finite number, higher runs first (default 0). */
export function resolvePriority(value: unknown): number {
  if (value === undefined) return 0;
  return expectFiniteNumber('priority', value);
}
