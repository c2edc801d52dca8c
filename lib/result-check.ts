/**
 * Checks of what comes back from a model: the result object of model.execute (a loaded
 * model's, or a duck-typed one written by the user) and the finiteness of the samples.
 *
 * - checkExecuteResult: model.execute must resolve with { data: Float32Array(prod(shape)),
 *   nfe, ... }; anything else is a TypeError with code ERR_SCIRE_BAD_MODEL_OUTPUT (before,
 *   sample() resolved with data: undefined).
 * - NonFiniteError (code ERR_SCIRE_NON_FINITE): a model output or the result holds NaN or an
 *   infinity. The native executor reports the first evaluation whose output was not finite
 *   (nonFiniteEval, from one float64 sum per evaluation kept on the device and read once at
 *   the end: no host sync per step) and whether the result is finite (result.finite, found on
 *   its worker thread); the data of other models are scanned here on the JS thread.
 *   The reference executor throws the same error.
 */
import type { NativeExecuteResult } from './native-types';
import { describeValue } from './validate';

/** What a sample does with non-finite values: reject (default) or keep them. */
export type NonFiniteMode = 'error' | 'keep';
export const NON_FINITE_MODES: readonly NonFiniteMode[] = ['error', 'keep'];

/** A model output or result with NaN / Infinity values. */
export class NonFiniteError extends Error {
  readonly code = 'ERR_SCIRE_NON_FINITE';
  constructor(
    message: string,
    /** 1-based index of the first evaluation whose model output was not finite (undefined: none or unknown). */
    readonly evaluation: number | undefined,
    /** Model input time of that evaluation. */
    readonly t: number | undefined,
  ) {
    super(message);
  }
}

/** Index of the first element that is NaN or infinite, -1 when all are finite. */
export function firstNonFinite(data: ArrayLike<number>): number {
  for (let i = 0; i < data.length; i++) {
    // v - v is NaN exactly for NaN and +-Infinity.
    const v = data[i];
    if (v - v !== 0) return i;
  }
  return -1;
}

const HINT = "pass nonFinite: 'keep' to sample() to get the values anyway";

/** The error for a model output that is not finite at evaluation `evaluation` (1-based) of `total`. */
export function nonFiniteModelOutput(
  evaluation: number,
  total: number,
  t: number | undefined,
  detail = '',
  hint = HINT,
): NonFiniteError {
  const at = t === undefined ? '' : ` (t = ${Number(t.toPrecision(6))})`;
  return new NonFiniteError(
    `The model's output is not finite (NaN or Infinity) at evaluation ${evaluation} of ${total}${at}${detail}: ` +
      `the network produced it (check its inputs, weights and dtype; float16 overflows above 65504)${hint ? `; ${hint}` : ''}`,
    evaluation,
    t,
  );
}

/** The error for a result that is not finite although no model output was flagged. */
export function nonFiniteResult(index: number, value: number, measured: boolean, hint = HINT): NonFiniteError {
  const why = measured
    ? 'every model output was finite, so the solver update overflowed (check the schedule and the model type)'
    : 'the evaluation where it appeared is not known for this model';
  return new NonFiniteError(`The result is not finite: element ${index} is ${value} (${why})${hint ? `; ${hint}` : ''}`, undefined, undefined);
}

/**
 * Checks the value model.execute resolved with; returns it typed. `length` is prod(shape).
 */
export function checkExecuteResult(value: unknown, length: number): NativeExecuteResult {
  const fail = (what: string): TypeError => {
    const err = new TypeError(
      `Expected model.execute to resolve with { data: Float32Array(${length}), nfe, timings } but ${what}`,
    ) as TypeError & { code: string };
    err.code = 'ERR_SCIRE_BAD_MODEL_OUTPUT';
    return err;
  };
  if (typeof value !== 'object' || value === null) throw fail(`received ${describeValue(value)}`);
  const r = value as Record<string, unknown>;
  if (!(r.data instanceof Float32Array)) throw fail(`received data: ${describeValue(r.data)}`);
  if (r.data.length !== length) throw fail(`received data of length ${r.data.length}`);
  if (r.nfe !== undefined && !(typeof r.nfe === 'number' && Number.isInteger(r.nfe) && r.nfe >= 0)) {
    throw fail(`received nfe: ${describeValue(r.nfe)}`);
  }
  if (r.shape !== undefined && !Array.isArray(r.shape)) throw fail(`received shape: ${describeValue(r.shape)}`);
  if (r.timings !== undefined && (typeof r.timings !== 'object' || r.timings === null)) {
    throw fail(`received timings: ${describeValue(r.timings)}`);
  }
  return value as NativeExecuteResult;
}

/**
 * Throws NonFiniteError when a model output (per the executor's nonFiniteEval) or the result
 * data is not finite. `evalTimes` are the model input times of the plan's evaluations.
 */
export function checkFiniteResult(result: NativeExecuteResult, evalTimes: readonly number[]): void {
  const flagged = (result as { nonFiniteEval?: unknown }).nonFiniteEval;
  if (typeof flagged === 'number' && flagged > 0) {
    throw nonFiniteModelOutput(flagged, evalTimes.length, evalTimes[flagged - 1]);
  }
  // The native executor checks the result on its worker thread (finite: true): no O(n) scan
  // on the JS thread then. Other models' data are scanned here.
  if ((result as { finite?: unknown }).finite === true) return;
  const bad = firstNonFinite(result.data);
  if (bad >= 0) throw nonFiniteResult(bad, result.data[bad], flagged === 0);
}

/** A rejection value that is not an Error (a duck-typed model's string, say), as an Error with code ERR_SCIRE_MODEL that keeps it as the cause. */
export function asModelError(value: unknown): unknown {
  if (value instanceof Error) return value;
  const err = new Error(`model.execute rejected with a non-Error value: ${describeValue(value)}`, { cause: value }) as Error & { code: string };
  err.code = 'ERR_SCIRE_MODEL';
  return err;
}
