/**
 * The loaded model as the package hands it out (loadModel): the native model plus the
 * request queue that every Sampler on it shares.
 *
 *   const model = await loadModel('model.pt', { maxQueue: 256 });
 *   model.stats()   // { queueLength, running, totals, busyMs, ... } for a metrics endpoint
 *
 * Sampler requests go through the queue (priority, abort while queued, backpressure,
 * dynamic batching; see queue.ts and batcher.ts) and reach the native model one solve at a
 * time. model.execute(plan, opts) and executePlan stay the low-level, unqueued entry: the
 * native call as it is, same signature, same result, same errors.
 *
 * Models that did not come from loadModel (a native model from the binding itself, a
 * duck-typed object with execute) get a queue of their own on first use, kept in a WeakMap
 * keyed by the model object, so all Samplers on one object still share one queue.
 */
import { nativeBinding } from '../native';
import type { NativeExecuteOptions, NativeExecuteResult, NativeModel, NativeModelInfo } from '../native-types';
import type { Plan } from '../plan';
import { batchRunner, type ExecuteItem, type ServedResult } from './batcher';
import { RequestQueue, type QueueStats } from './queue';

export type ServingQueue = RequestQueue<ExecuteItem, ServedResult>;

/** model.stats(): the queue and what ran on the model. */
export type ModelStats = QueueStats;

const queues = new WeakMap<object, ServingQueue>();

/** The request queue of `model`, shared by every Sampler on it. */
export function servingQueue(model: Pick<NativeModel, 'execute'>): ServingQueue {
  let queue = queues.get(model);
  if (!queue) {
    queue = new RequestQueue(batchRunner((plan, options) => model.execute(plan, options)));
    queues.set(model, queue);
  }
  return queue;
}

/** The error of requests queued on a disposed model. */
function disposedError(): Error {
  const err = new Error('scire-solver: the model has been disposed; its queued requests were cancelled') as Error & { code: string };
  err.code = 'ERR_SCIRE_DISPOSED';
  return err;
}

/** The options as the addon takes them: a classifier given as a loadModel Model is unwrapped. */
function addonOptions(opts: NativeExecuteOptions): NativeExecuteOptions {
  const clf = opts.classifier;
  return clf instanceof Model ? { ...opts, classifier: clf.native } : opts;
}

export class Model implements NativeModel {
  readonly #native: NativeModel;
  readonly #queue: ServingQueue;

  /** Wraps a native model; `maxQueue` limits its queue (default Infinity). */
  constructor(native: NativeModel, options: { maxQueue?: number } = {}) {
    this.#native = native;
    this.#queue = new RequestQueue(
      batchRunner((plan, opts) => native.execute(plan, addonOptions(opts))),
      options.maxQueue === undefined ? {} : { maxQueue: options.maxQueue },
    );
    queues.set(this, this.#queue);
  }

  /** { path, device, dtype, parameterCount, numInputs, requiredInputs } */
  get info(): NativeModelInfo {
    return this.#native.info;
  }

  /** True after dispose(). */
  get disposed(): boolean {
    return this.#native.disposed;
  }

  /** The addon's model object (for addon-only entries used by tests and benchmarks). */
  get native(): NativeModel {
    return this.#native;
  }

  /** The queue limit given to loadModel (Infinity without one). */
  get maxQueue(): number {
    return this.#queue.maxQueue;
  }

  /** One forward on host data (tests, debugging); not queued. */
  forward(x: Float32Array, shape: number[], t: number): Promise<Float32Array> {
    return this.#native.forward(x, shape, t);
  }

  /** Runs a whole plan: the native executor's entry, unqueued (see executePlan). */
  execute(plan: Plan, opts: NativeExecuteOptions): Promise<NativeExecuteResult> {
    return this.#native.execute(plan, addonOptions(opts));
  }

  /** The request queue and what ran on the model, for a metrics endpoint. */
  stats(): ModelStats {
    return this.#queue.stats();
  }

  /**
   * Frees the captured CUDA graphs of this model and returns how many were freed. With an
   * addon that keeps one process-wide graph cache, that whole cache is freed.
   */
  clearCudaGraphs(): number {
    const own = (this.#native as { clearCudaGraphs?: () => unknown }).clearCudaGraphs;
    if (typeof own === 'function') return Number(own.call(this.#native) ?? 0);
    const global = (nativeBinding() as { clearCudaGraphs?: () => unknown }).clearCudaGraphs;
    return typeof global === 'function' ? Number(global() ?? 0) : 0;
  }

  /**
   * Cancels every queued request (they reject with ERR_SCIRE_DISPOSED) and releases the
   * module; a solve already running finishes first (the native side keeps it alive).
   */
  dispose(): void {
    this.#queue.close(disposedError());
    this.#native.dispose();
  }
}
