/** Order statistics of the acceptance summaries (benchmarks/fmnist-acceptance.ts, fid-summary.ts). */

/** The q-quantile of ascending `sorted` values, interpolating linearly between neighbours. */
export function quantile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** The median (the mean of the two middle values for an even count). */
export function median(values: number[]): number {
  return quantile([...values].sort((a, b) => a - b), 0.5);
}
