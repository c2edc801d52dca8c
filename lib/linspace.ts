/**
 * n evenly spaced numbers from start to end (inclusive), computed exactly as torch.linspace
 * does on the CPU in float64: step = (end - start) / (n - 1); the first half is start + i*step,
 * the second half end - (n - 1 - i)*step. Matching it bit for bit keeps the time grids
 * identical to the official implementation's.
 */
export function linspace(start: number, end: number, n: number): number[] {
  if (n === 1) return [start];
  const step = (end - start) / (n - 1);
  const halfway = Math.floor(n / 2);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    out[i] = i < halfway ? start + step * i : end - step * (n - i - 1);
  }
  return out;
}
