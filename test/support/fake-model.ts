/**
 * A duck-typed model for the serving tests: no native code, answers in microseconds.
 *
 * execute(plan, opts) walks the plan's evaluations (one macrotask each, or held at a gate),
 * reports each through opts.onStep, honours opts.signal between evaluations as the native
 * executor does (AbortError), and returns data[i] = 2 x[i] + 1 (+ cond[row] when cond is
 * given), so that a test can tell which input produced which output row.
 */
import type { NativeExecuteOptions, NativeExecuteResult } from '../../lib/native-types';
import type { Plan } from '../../lib/plan';

export interface FakeCall {
  shape: number[];
  /** x[0] of every row (tests put a marker there). */
  rowMarkers: number[];
  condShape?: number[];
  guidanceScale?: number;
  signal?: AbortSignal;
  aborted: boolean;
}

export class FakeModel {
  readonly info = { path: 'fake', device: 'cpu', dtype: 'float32' as const, parameterCount: 0, numInputs: 3, requiredInputs: 2 };
  readonly calls: FakeCall[] = [];
  /** Rejects the next execute with this error. */
  failWith: Error | undefined;
  private gate: Promise<void> | undefined;
  private release: (() => void) | undefined;
  inFlight = 0;
  maxInFlight = 0;

  /** Holds every execute before its first evaluation until the returned function is called. */
  hold(): () => void {
    this.gate = new Promise<void>((r) => {
      this.release = r;
    });
    return () => {
      this.release?.();
      this.gate = undefined;
    };
  }

  async execute(plan: Plan, opts: NativeExecuteOptions): Promise<NativeExecuteResult> {
    const rowLen = opts.x.length / opts.shape[0];
    const call: FakeCall = {
      shape: [...opts.shape],
      rowMarkers: Array.from({ length: opts.shape[0] }, (_, r) => opts.x[r * rowLen]),
      condShape: opts.condShape ? [...opts.condShape] : undefined,
      guidanceScale: opts.guidanceScale,
      signal: opts.signal,
      aborted: false,
    };
    this.calls.push(call);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.gate) await this.gate;
      const total = plan.nfe;
      for (let nfe = 1; nfe <= total; nfe++) {
        await new Promise((r) => setImmediate(r));
        if (opts.signal?.aborted || opts.abortHandle?.aborted) {
          call.aborted = true;
          const err = new Error('execute: aborted');
          err.name = 'AbortError';
          throw err;
        }
        opts.onStep?.({ nfe, total, t: nfe });
      }
      if (this.failWith) {
        const e = this.failWith;
        this.failWith = undefined;
        throw e;
      }
      const data = new Float32Array(opts.x.length);
      const condLen = opts.cond && opts.condShape ? opts.cond.length / opts.condShape[0] : 0;
      for (let i = 0; i < data.length; i++) {
        const row = Math.floor(i / rowLen);
        data[i] = 2 * opts.x[i] + 1 + (condLen > 0 ? (opts.cond as Float32Array)[row * condLen] : 0);
      }
      return { data, shape: [...opts.shape], nfe: total, timings: { totalMs: 0, modelMs: 0, solverMs: 0 } };
    } finally {
      this.inFlight--;
    }
  }
}
