/**
 * The analytic Gaussian-mixture noise predictor of the golden reference
 * (../shared/reference/README.md section 1), rebuilt in float64 from its JSON parameters.
 *
 * Data distribution p0(x) = sum_k w_k N(x; mu_k, s_k^2 I) in D dimensions. Under
 * x_t = alpha x_0 + sigma eps the marginal is sum_k w_k N(x; alpha mu_k, v_k I) with
 *   v_k   = alpha^2 s_k^2 + sigma^2
 *   d_k   = x - alpha mu_k
 *   l_k   = log w_k - 1/2 |d_k|^2 / v_k - D/2 log(2 pi v_k)
 *   g_k   = softmax_k(l_k)                 (posterior responsibilities)
 *   eps   = sigma sum_k g_k d_k / v_k      (= -sigma grad log p_t(x), the exact noise prediction)
 * with alpha = exp(log_alpha), sigma^2 = -expm1(2 log_alpha). log_alpha comes from the model
 * input time t_input through the schedule's own time map (discrete table / linear / cosine).
 *
 * Used by tests and benchmarks as a model with an exact answer; it is not part of sampling.
 */
import { expectFiniteArray, expectInteger, expectObject, expectOneOf, invalidType, outOfRange } from '../validate';

export interface GmmParams {
  schedule: 'discrete' | 'linear' | 'cosine';
  D: number;
  K: number;
  means: number[][];
  stds: number[];
  weights: number[];
  total_N: number;
  log_alpha_table?: number[];
  beta_0?: number;
  beta_1?: number;
  cosine_s?: number;
  [key: string]: unknown;
}

export type ReferenceModelFn = (x: Float64Array, shape: number[], tInput: number) => Float64Array;

export class GaussianMixtureNoiseModel {
  readonly schedule: 'discrete' | 'linear' | 'cosine';
  readonly D: number;
  readonly K: number;
  private readonly means: Float64Array[];
  private readonly vars0: Float64Array; // s_k^2
  private readonly logWeights: Float64Array;
  private readonly totalN: number;
  private readonly table: Float64Array | null;
  private readonly beta0: number;
  private readonly beta1: number;
  private readonly cosineS: number;
  /** Number of calls of noise() / model (for tests that count evaluations). */
  calls = 0;

  constructor(params: GmmParams) {
    const p = expectObject('GMM params', params);
    this.schedule = expectOneOf('GMM params.schedule', ['discrete', 'linear', 'cosine'] as const, p.schedule);
    this.D = expectInteger('GMM params.D', p.D, { min: 1 });
    this.K = expectInteger('GMM params.K', p.K, { min: 1 });
    if (!Array.isArray(p.means) || p.means.length !== this.K) throw invalidType('GMM params.means', `an array of K = ${this.K} mean vectors`, p.means);
    this.means = (p.means as unknown[]).map((m, k) => {
      const v = expectFiniteArray(`GMM params.means[${k}]`, m);
      if (v.length !== this.D) throw outOfRange(`GMM params.means[${k}].length`, `D = ${this.D}`, v.length);
      return v;
    });
    const stds = expectFiniteArray('GMM params.stds', p.stds);
    const weights = expectFiniteArray('GMM params.weights', p.weights);
    if (stds.length !== this.K) throw outOfRange('GMM params.stds.length', `K = ${this.K}`, stds.length);
    if (weights.length !== this.K) throw outOfRange('GMM params.weights.length', `K = ${this.K}`, weights.length);
    this.vars0 = stds.map((s) => s * s);
    this.logWeights = weights.map((w) => Math.log(w));
    this.totalN = expectInteger('GMM params.total_N', p.total_N, { min: 2 });
    this.table = this.schedule === 'discrete' ? expectFiniteArray('GMM params.log_alpha_table', p.log_alpha_table, { minLength: 2 }) : null;
    this.beta0 = this.schedule === 'linear' ? (p.beta_0 as number) : NaN;
    this.beta1 = this.schedule === 'linear' ? (p.beta_1 as number) : NaN;
    this.cosineS = this.schedule === 'cosine' ? (p.cosine_s as number) : NaN;
  }

  /** log alpha at model input time tInput, through the schedule's time map (README section 1). */
  logAlpha(tInput: number): number {
    switch (this.schedule) {
      case 'discrete': {
        const T = this.table as Float64Array;
        const N = T.length;
        const pos = (tInput * N) / 1000;
        const n = Math.min(Math.max(Math.floor(pos), 0), N - 2);
        const f = pos - n;
        return T[n] + f * (T[n + 1] - T[n]);
      }
      case 'linear': {
        const t = tInput / 1000 + 1 / this.totalN;
        return -0.25 * t * t * (this.beta1 - this.beta0) - 0.5 * t * this.beta0;
      }
      case 'cosine': {
        const s = this.cosineS;
        return Math.log(Math.cos(((tInput + s) / (1 + s)) * Math.PI * 0.5)) - Math.log(Math.cos((s / (1 + s)) * Math.PI * 0.5));
      }
    }
  }

  /**
   * Exact noise prediction at a given log alpha (VP: sigma^2 = 1 - alpha^2), for x of any
   * shape [B, ...] whose trailing size is D. Returns a new Float64Array.
   */
  noiseAtLogAlpha(x: ArrayLike<number>, logAlpha: number): Float64Array {
    const D = this.D;
    if (x.length % D !== 0) throw outOfRange('x.length', `a multiple of D = ${D}`, x.length);
    const B = x.length / D;
    const alpha = Math.exp(logAlpha);
    const sigma2 = -Math.expm1(2 * logAlpha);
    const sigma = Math.sqrt(sigma2);
    const K = this.K;
    const out = new Float64Array(x.length);
    const v = new Float64Array(K);
    for (let k = 0; k < K; k++) v[k] = alpha * alpha * this.vars0[k] + sigma2;
    const logits = new Float64Array(K);
    const d = new Float64Array(D);
    for (let b = 0; b < B; b++) {
      const off = b * D;
      let maxL = -Infinity;
      for (let k = 0; k < K; k++) {
        const mu = this.means[k];
        let sq = 0;
        for (let i = 0; i < D; i++) {
          const di = x[off + i] - alpha * mu[i];
          sq += di * di;
        }
        const l = this.logWeights[k] - (0.5 * sq) / v[k] - (D / 2) * Math.log(2 * Math.PI * v[k]);
        logits[k] = l;
        if (l > maxL) maxL = l;
      }
      let z = 0;
      for (let k = 0; k < K; k++) z += Math.exp(logits[k] - maxL);
      const logZ = maxL + Math.log(z);
      for (let k = 0; k < K; k++) {
        const g = Math.exp(logits[k] - logZ) / v[k];
        const mu = this.means[k];
        for (let i = 0; i < D; i++) {
          d[i] = x[off + i] - alpha * mu[i];
          out[off + i] += g * d[i];
        }
      }
      for (let i = 0; i < D; i++) out[off + i] *= sigma;
    }
    return out;
  }

  /** The module's forward: eps(x, t_input) for x of shape [B, ...] with prod(dims) = D. */
  noise(x: ArrayLike<number>, shape: readonly number[], tInput: number): Float64Array {
    const size = shape.reduce((a, b) => a * b, 1);
    if (size !== x.length) throw outOfRange('x.length', `prod(shape) = ${size}`, x.length);
    if (shape.length < 2 || size / shape[0] !== this.D) {
      throw outOfRange('shape', `[B, ...dims] with prod(dims) = D = ${this.D}`, `[${shape.join(', ')}]`);
    }
    this.calls++;
    return this.noiseAtLogAlpha(x, this.logAlpha(tInput));
  }

  /**
   * The exact gradient of the component posterior, grad_x sum_b log p(k = labels[b] | x_b) at
   * model input time tInput (the analytic classifier of the classifier-guidance golden tests):
   *   log p(k | x) = l_k - logsumexp_j l_j,   grad = -d_k / v_k + sum_j g_j d_j / v_j.
   */
  classifierGradient(x: ArrayLike<number>, shape: readonly number[], tInput: number, labels: readonly number[]): Float64Array {
    const size = shape.reduce((a, b) => a * b, 1);
    if (size !== x.length) throw outOfRange('x.length', `prod(shape) = ${size}`, x.length);
    if (shape.length < 2 || size / shape[0] !== this.D) {
      throw outOfRange('shape', `[B, ...dims] with prod(dims) = D = ${this.D}`, `[${shape.join(', ')}]`);
    }
    if (labels.length !== shape[0]) throw outOfRange('labels.length', `the batch size ${shape[0]}`, labels.length);
    const D = this.D;
    const K = this.K;
    const logAlpha = this.logAlpha(tInput);
    const alpha = Math.exp(logAlpha);
    const sigma2 = -Math.expm1(2 * logAlpha);
    // grad log p_t(x) = -sum_j g_j d_j / v_j = -eps / sigma; the label's own term is -d_y / v_y.
    const eps = this.noiseAtLogAlpha(x, logAlpha);
    const sigma = Math.sqrt(sigma2);
    const out = new Float64Array(x.length);
    for (let b = 0; b < shape[0]; b++) {
      const y = expectInteger(`labels[${b}]`, labels[b], { min: 0, max: K - 1 });
      const vy = alpha * alpha * this.vars0[y] + sigma2;
      const mu = this.means[y];
      for (let i = 0; i < D; i++) {
        const j = b * D + i;
        out[j] = -(x[j] - alpha * mu[i]) / vy + eps[j] / sigma;
      }
    }
    return out;
  }

  /** The analytic classifier as the reference executor expects it (classifierGradient). */
  asClassifier(): (x: Float64Array, shape: number[], tInput: number, labels: number[]) => Float64Array {
    return (x, shape, tInput, labels) => this.classifierGradient(x, shape, tInput, labels);
  }

  /** The model as the reference executor expects it: (x, shape, tInput) => eps. */
  asModel(): ReferenceModelFn {
    return (x, shape, tInput) => this.noise(x, shape, tInput);
  }
}
