/**
 * Distribution measures on the Gaussian-mixture data distribution
 * p0(x) = sum_k w_k N(x; mu_k, s_k^2 I) (the GMM of the golden reference, parameters from
 * its JSON file): the log-density of samples under the true mixture, and exact samples of it.
 */
import type { GmmParams } from '../../lib/testing/gmm';
import { randn } from '../../lib/randn';

/** log p0(x) for every row of x ([B, D] flattened), by log-sum-exp over the components. */
export function mixtureLogDensity(params: GmmParams, x: ArrayLike<number>): Float64Array {
  const { D, K, means, stds, weights } = params;
  if (x.length % D !== 0) throw new RangeError(`mixtureLogDensity: x.length ${x.length} is not a multiple of D = ${D}`);
  const B = x.length / D;
  const out = new Float64Array(B);
  const logits = new Float64Array(K);
  for (let b = 0; b < B; b++) {
    let maxL = -Infinity;
    for (let k = 0; k < K; k++) {
      const v = stds[k] * stds[k];
      let sq = 0;
      for (let i = 0; i < D; i++) sq += (x[b * D + i] - means[k][i]) ** 2;
      logits[k] = Math.log(weights[k]) - (0.5 * sq) / v - (D / 2) * Math.log(2 * Math.PI * v);
      maxL = Math.max(maxL, logits[k]);
    }
    let z = 0;
    for (let k = 0; k < K; k++) z += Math.exp(logits[k] - maxL);
    out[b] = maxL + Math.log(z);
  }
  return out;
}

/** Mean and standard error of the mean. */
export function meanAndStdErr(v: ArrayLike<number>): { mean: number; stdErr: number } {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i];
  const mean = s / v.length;
  let ss = 0;
  for (let i = 0; i < v.length; i++) ss += (v[i] - mean) ** 2;
  return { mean, stdErr: Math.sqrt(ss / (v.length - 1) / v.length) };
}

/**
 * B samples of p0, stratified over the components: sample b belongs to the component whose
 * cumulative weight interval holds u_b = (b + 1/2) / B (so each component gets its share of
 * the batch up to rounding), and is mu_k + s_k z_b with z = randn([B, D], seed).
 */
export function sampleMixture(params: GmmParams, B: number, seed: number): Float64Array {
  const { D, K, means, stds, weights } = params;
  const z = randn([B, D], seed);
  const out = new Float64Array(B * D);
  const total = weights.reduce((a, w) => a + w, 0);
  for (let b = 0; b < B; b++) {
    const u = (b + 0.5) / B;
    let acc = 0;
    let k = 0;
    for (; k < K - 1; k++) {
      acc += weights[k] / total;
      if (u < acc) break;
    }
    for (let i = 0; i < D; i++) out[b * D + i] = means[k][i] + stds[k] * z[b * D + i];
  }
  return out;
}
