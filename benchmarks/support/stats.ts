/** Order statistics of the acceptance summaries (benchmarks/fmnist-acceptance.ts, fid-summary.ts, auto-candidates-fd.ts). */

/** The q-quantile of ascending `sorted` values, interpolating linearly between neighbours. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** The median (the mean of the two middle values for an even count). */
export function median(values: number[]): number {
  return quantile([...values].sort((a, b) => a - b), 0.5);
}

/** Spearman's rank correlation of two equally long lists (tied values get consecutive ranks in list order). */
export function rankCorrelation(a: number[], b: number[]): number {
  if (a.length !== b.length || a.length < 2) throw new RangeError(`rankCorrelation needs two lists of the same length >= 2 (got ${a.length} and ${b.length})`);
  const ranks = (v: number[]): number[] => {
    const r = new Array<number>(v.length);
    v.map((x, i) => [x, i])
      .sort((p, q) => p[0] - q[0] || p[1] - q[1])
      .forEach(([, i], k) => (r[i] = k));
    return r;
  };
  const ra = ranks(a);
  const rb = ranks(b);
  const mean = (a.length - 1) / 2;
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < a.length; i++) {
    num += (ra[i] - mean) * (rb[i] - mean);
    da += (ra[i] - mean) ** 2;
    db += (rb[i] - mean) ** 2;
  }
  return num / Math.sqrt(da * db);
}
