/**
 * Piecewise-linear function through keypoints (xp[i], yp[i]) with xp strictly increasing,
 * extended past both ends by the outermost segments. Same segment choice and the same
 * formula as the official interpolate_fn:
 *   j = clamp(#{i : xp[i] < x} - 1, 0, K - 2)
 *   f(x) = yp[j] + (x - xp[j]) (yp[j+1] - yp[j]) / (xp[j+1] - xp[j])
 */
export function interpolatePiecewiseLinear(x: number, xp: Float64Array, yp: Float64Array): number {
  const K = xp.length;
  // Binary search: lo = number of keypoints strictly below x.
  let lo = 0;
  let hi = K;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xp[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  const j = Math.min(Math.max(lo - 1, 0), K - 2);
  return yp[j] + ((x - xp[j]) * (yp[j + 1] - yp[j])) / (xp[j + 1] - xp[j]);
}
