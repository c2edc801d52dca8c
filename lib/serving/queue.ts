/**
 * The per-model request queue: what runs next on a model, and when.
 *
 *   const queue = new RequestQueue(runBatch, { maxQueue: 64 });
 *   const result = await queue.submit({ size: 1, priority: 0, batch: { key, maxBatchSize, maxWaitMs }, signal });
 *
 * - Order: higher `priority` first, first come first served within a priority.
 * - One batch in flight: the next dispatch decision is made when the model is free, so
 *   whatever queued up meanwhile can be merged, and priorities and aborts are honoured at
 *   the last moment.
 * - Batching: the head of the queue takes along every queued request with the same batch
 *   key (in queue order) while the total stays within the smallest maxBatchSize among them.
 *   Requests that arrive in the same tick coalesce (dispatch runs on setImmediate); an idle
 *   model waits up to the head's maxWaitMs for more when the batch is not full.
 * - Abort: a queued request whose signal fires is removed and rejected at once (AbortError)
 *   and never reaches the runner. Once dispatched, the runner owns its abort handling.
 * - Backpressure: a request that would make more than maxQueue requests wait is rejected
 *   with ERR_SCIRE_QUEUE_FULL.
 *
 * The runner receives the batch and must settle every request of it (resolve or reject);
 * one it leaves unsettled is rejected when the runner's promise settles.
 */
import type { AbortSignalLike } from '../native-types';
import { abortError } from '../execute';
import { onAbort } from './signals';

/** How a request may be merged with others. */
export interface BatchPolicy {
  /** Requests with equal keys can be solved as one batch. */
  readonly key: string;
  /** Most samples (sum of leading dimensions) in one batch. */
  readonly maxBatchSize: number;
  /** How long an idle model waits for more requests when the batch is not full. */
  readonly maxWaitMs: number;
}

/** What the queue needs to know of a request. */
export interface QueueItem {
  /** Samples in the request (its leading dimension). */
  readonly size: number;
  /** Higher runs first (default 0). */
  readonly priority: number;
  /** Present when the request may be merged with others. */
  readonly batch?: BatchPolicy;
  /** Rejects the request (AbortError) as soon as it fires. */
  readonly signal?: AbortSignalLike;
  /** Checked at dispatch, for cancellation flags that have no event (abort handles). */
  readonly isAborted?: () => boolean;
}

export type RequestState = 'queued' | 'running' | 'done';

/** A request in the queue, with the settle functions the runner calls. */
export interface QueuedRequest<I extends QueueItem, T> {
  readonly id: number;
  readonly item: I;
  /** performance.now() at submit / at dispatch (NaN while queued). */
  readonly enqueuedAt: number;
  readonly dispatchedAt: number;
  readonly state: RequestState;
  /** Settled already (resolve / reject are no-ops then). */
  readonly settled: boolean;
  resolve(value: T): void;
  /** An Error named 'AbortError' counts as aborted, anything else as failed. */
  reject(error: unknown): void;
}

export type BatchRunner<I extends QueueItem, T> = (batch: ReadonlyArray<QueuedRequest<I, T>>) => Promise<void>;

export interface RequestQueueOptions {
  /** Most requests waiting (not counting the running batch); default Infinity. */
  maxQueue?: number;
}

/** Counters since the queue was created. */
export interface QueueTotals {
  /** Requests accepted into the queue. */
  submitted: number;
  /** Resolved. */
  completed: number;
  /** Rejected with an error other than an abort. */
  failed: number;
  /** Rejected because their signal fired (queued or running). */
  aborted: number;
  /** Refused at submit because the queue was full (ERR_SCIRE_QUEUE_FULL). */
  rejected: number;
  /** Batches handed to the model (one native execute each). */
  batches: number;
  /** Samples in those batches (sum of leading dimensions). */
  samples: number;
}

export interface RunningBatchStats {
  /** Requests in the batch (including members that aborted since it started). */
  requests: number;
  /** Samples in the batch. */
  size: number;
  /** Since the batch was dispatched. */
  elapsedMs: number;
}

/** model.stats(): a snapshot for a metrics endpoint. */
export interface QueueStats {
  /** Requests waiting. */
  queueLength: number;
  /** Samples in the waiting requests. */
  queuedSamples: number;
  /** The queue limit of the model (Infinity without one; a Sampler may set a lower one). */
  maxQueue: number;
  /** The batch on the model now, or null when it is idle. */
  running: RunningBatchStats | null;
  totals: QueueTotals;
  /** Time with a batch in flight, the running one included. */
  busyMs: number;
  /** Since the queue was created (busyMs / uptimeMs is the model's utilisation). */
  uptimeMs: number;
}

/** The Error of a full queue: code ERR_SCIRE_QUEUE_FULL, with the numbers. */
export class QueueFullError extends Error {
  readonly code = 'ERR_SCIRE_QUEUE_FULL';
  constructor(
    readonly queueLength: number,
    readonly maxQueue: number,
    limitOf: string,
  ) {
    super(
      `scire-solver: the model's request queue is full: ${queueLength} request(s) waiting, ` +
        `maxQueue ${maxQueue} (${limitOf}); retry later or raise maxQueue`,
    );
    this.name = 'Error';
  }
}

/** Validates a maxQueue option: an integer >= 1, or Infinity. */
export function isValidMaxQueue(value: unknown): value is number {
  return typeof value === 'number' && (value === Infinity || (Number.isInteger(value) && value >= 1));
}

class Request<I extends QueueItem, T> implements QueuedRequest<I, T> {
  state: RequestState = 'queued';
  dispatchedAt = NaN;
  unsubscribe: () => void = () => undefined;

  constructor(
    readonly id: number,
    readonly item: I,
    readonly enqueuedAt: number,
    private readonly onSettle: (req: Request<I, T>, outcome: 'completed' | 'failed' | 'aborted') => void,
    private readonly fulfil: (value: T) => void,
    private readonly fail: (error: unknown) => void,
  ) {}

  get settled(): boolean {
    return this.state === 'done';
  }

  resolve(value: T): void {
    if (this.state === 'done') return;
    this.finish('completed');
    this.fulfil(value);
  }

  reject(error: unknown): void {
    if (this.state === 'done') return;
    this.finish(error instanceof Error && error.name === 'AbortError' ? 'aborted' : 'failed');
    this.fail(error);
  }

  private finish(outcome: 'completed' | 'failed' | 'aborted'): void {
    this.state = 'done';
    this.unsubscribe();
    this.onSettle(this, outcome);
  }
}

/** Insertion index keeping `list` sorted by priority (descending), then id (ascending). */
function insertionIndex<I extends QueueItem, T>(list: Request<I, T>[], req: Request<I, T>): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const other = list[mid];
    const before = other.item.priority > req.item.priority || (other.item.priority === req.item.priority && other.id < req.id);
    if (before) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class RequestQueue<I extends QueueItem, T> {
  readonly maxQueue: number;
  private readonly waiting: Request<I, T>[] = [];
  private running: { requests: number; size: number; startedAt: number } | null = null;
  private nextId = 1;
  private dispatchPending = false;
  private waitTimer: ReturnType<typeof setTimeout> | undefined;
  private closedWith: Error | undefined;
  private readonly createdAt = performance.now();
  private busyMsDone = 0;
  private readonly totals: QueueTotals = { submitted: 0, completed: 0, failed: 0, aborted: 0, rejected: 0, batches: 0, samples: 0 };

  constructor(
    private readonly runner: BatchRunner<I, T>,
    options: RequestQueueOptions = {},
  ) {
    const maxQueue = options.maxQueue ?? Infinity;
    if (!isValidMaxQueue(maxQueue)) throw new RangeError(`maxQueue must be an integer >= 1 or Infinity, got ${String(maxQueue)}`);
    this.maxQueue = maxQueue;
  }

  /** Requests waiting now. */
  get length(): number {
    return this.waiting.length;
  }

  /** True while a batch is on the model. */
  get busy(): boolean {
    return this.running !== null;
  }

  /**
   * Queues a request; resolves or rejects when the runner settles it. `limit` is a lower
   * queue limit for this request (a Sampler's maxQueue).
   */
  submit(item: I, limit?: { maxQueue: number; of: string }): Promise<T> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (item.signal?.aborted) {
      this.totals.aborted++;
      return Promise.reject(abortError(item.signal));
    }
    const useLimit = limit !== undefined && limit.maxQueue < this.maxQueue;
    const maxQueue = useLimit ? limit.maxQueue : this.maxQueue;
    if (this.waiting.length >= maxQueue) {
      this.totals.rejected++;
      return Promise.reject(new QueueFullError(this.waiting.length, maxQueue, useLimit ? limit.of : "the model's limit"));
    }
    let fulfil!: (value: T) => void;
    let fail!: (error: unknown) => void;
    const promise = new Promise<T>((resolve, reject) => {
      fulfil = resolve;
      fail = reject;
    });
    const req = new Request<I, T>(this.nextId++, item, performance.now(), (r, outcome) => this.settled(r, outcome), fulfil, fail);
    this.waiting.splice(insertionIndex(this.waiting, req), 0, req);
    this.totals.submitted++;
    const signal = item.signal;
    if (signal) req.unsubscribe = onAbort(signal, () => req.reject(abortError(signal)));
    this.scheduleDispatch();
    return promise;
  }

  /** Rejects every waiting request with `error`, and every later submit. The running batch goes on. */
  close(error: Error): void {
    this.closedWith = error;
    this.clearWaitTimer();
    for (const req of [...this.waiting]) req.reject(error);
  }

  stats(): QueueStats {
    const now = performance.now();
    const running = this.running;
    return {
      queueLength: this.waiting.length,
      queuedSamples: this.waiting.reduce((s, r) => s + r.item.size, 0),
      maxQueue: this.maxQueue,
      running: running ? { requests: running.requests, size: running.size, elapsedMs: now - running.startedAt } : null,
      totals: { ...this.totals },
      busyMs: this.busyMsDone + (running ? now - running.startedAt : 0),
      uptimeMs: now - this.createdAt,
    };
  }

  private settled(req: Request<I, T>, outcome: 'completed' | 'failed' | 'aborted'): void {
    this.totals[outcome]++;
    const at = this.waiting.indexOf(req);
    if (at >= 0) {
      // Aborted (or closed) while waiting: it leaves the queue and never runs.
      this.waiting.splice(at, 1);
      if (this.waiting.length === 0) this.clearWaitTimer();
    }
  }

  private scheduleDispatch(): void {
    if (this.running || this.dispatchPending || this.waiting.length === 0) return;
    this.dispatchPending = true;
    setImmediate(() => {
      this.dispatchPending = false;
      this.dispatch();
    });
  }

  private clearWaitTimer(): void {
    if (this.waitTimer !== undefined) clearTimeout(this.waitTimer);
    this.waitTimer = undefined;
  }

  /** Chooses the next batch: the head, plus the waiting requests it can take along. */
  private select(): { batch: Request<I, T>[]; size: number; full: boolean } {
    const head = this.waiting[0];
    const batch = [head];
    let size = head.item.size;
    const policy = head.item.batch;
    if (!policy) return { batch, size, full: true };
    let limit = policy.maxBatchSize;
    for (let i = 1; i < this.waiting.length && size < limit; i++) {
      const other = this.waiting[i];
      const b = other.item.batch;
      if (!b || b.key !== policy.key) continue;
      const merged = Math.min(limit, b.maxBatchSize);
      if (size + other.item.size > merged) continue;
      batch.push(other);
      size += other.item.size;
      limit = merged;
    }
    return { batch, size, full: size >= limit };
  }

  private dispatch(): void {
    if (this.running || this.waiting.length === 0) return;
    this.clearWaitTimer();
    const now = performance.now();
    const { batch: chosen, full } = this.select();
    const head = chosen[0];
    const waitUntil = head.enqueuedAt + (head.item.batch?.maxWaitMs ?? 0);
    if (!full && now < waitUntil) {
      // An idle model waits briefly for more requests of the head's kind; a new submit
      // dispatches again (and runs at once when the batch is full by then).
      this.waitTimer = setTimeout(() => {
        this.waitTimer = undefined;
        this.dispatch();
      }, Math.max(1, Math.ceil(waitUntil - now)));
      return;
    }
    const taken = new Set(chosen);
    for (let i = this.waiting.length - 1; i >= 0; i--) if (taken.has(this.waiting[i])) this.waiting.splice(i, 1);

    const batch: Request<I, T>[] = [];
    let size = 0;
    for (const req of chosen) {
      req.unsubscribe(); // the runner watches the signal from here on
      req.unsubscribe = () => undefined;
      req.state = 'running';
      req.dispatchedAt = now;
      if (req.item.isAborted?.()) {
        req.reject(abortError());
        continue;
      }
      batch.push(req);
      size += req.item.size;
    }
    if (batch.length === 0) {
      this.scheduleDispatch();
      return;
    }
    this.totals.batches++;
    this.totals.samples += size;
    const started = performance.now();
    this.running = { requests: batch.length, size, startedAt: started };
    let run: Promise<void>;
    try {
      run = Promise.resolve(this.runner(batch));
    } catch (e) {
      run = Promise.reject(e);
    }
    run
      .then(
        () => {
          for (const req of batch) req.reject(new Error('scire-solver: internal error: a batch ended without settling a request'));
        },
        (e: unknown) => {
          for (const req of batch) req.reject(e);
        },
      )
      .finally(() => {
        this.busyMsDone += performance.now() - started;
        this.running = null;
        this.scheduleDispatch();
      });
  }
}
