/**
 * Assertions shared by the golden tests (vitest only: test/support/golden.ts stays free of
 * vitest, the benchmarks import it).
 */
import { expect } from 'vitest';

/**
 * Compares a run's model evaluation times with a case's recorded model_t_input: same count,
 * each within 1e-9. Returns the worst deviation.
 */
export function expectEvalTimes(evalTimes: ArrayLike<number>, recorded: number[]): number {
  expect(evalTimes.length).toBe(recorded.length);
  let worst = 0;
  for (let i = 0; i < recorded.length; i++) {
    const dt = Math.abs(evalTimes[i] - recorded[i]);
    worst = Math.max(worst, dt);
    expect(dt).toBeLessThanOrEqual(1e-9);
  }
  return worst;
}

/** max |x - ref| and max |ref| of a result against a case's x0 (checked for equal length). */
export function diffToReference(x: ArrayLike<number>, ref: number[]): { maxAbs: number; maxRef: number } {
  expect(x.length).toBe(ref.length);
  let maxAbs = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(x[i] - ref[i]));
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
  }
  return { maxAbs, maxRef };
}
