/**
 * A fine, high-accuracy solution of the diffusion probability-flow ODE, used as the
 * "exact" answer when measuring solver errors (reference README §3).
 *
 * Variables: the noise-to-signal ratio rho = sigma/alpha = e^{-lambda} and the scaled state
 * y = x/alpha. For a VP process (alpha^2 + sigma^2 = 1) the ODE reads
 *
 *     dy/d rho    = eps(alpha(rho) * y, rho)
 *     dy/d lambda = -rho * eps(alpha(rho) * y, rho),     alpha(rho) = 1/sqrt(1 + rho^2)
 *
 * and is integrated by classical RK4 on a grid uniform in lambda between lambda_T and
 * lambda_0, in float64. The answer is x_0 = alpha(rho_0) * y(rho_0). The integration runs
 * twice (N and 2N steps) and reports the doubling difference, an upper estimate of the
 * error of the N-step result (RK4 error ~ N^-4, so the 2N result is ~16x better still).
 *
 * The noise predictor is asked in terms of the marginal coefficients (alpha, sigma), so the
 * same routine serves every schedule: the time parametrisation only fixes the endpoints.
 */

/** eps(x; alpha, sigma): the noise prediction at marginal coefficients (alpha, sigma). */
export type NoiseAtMarginal = (x: Float64Array, alpha: number, sigma: number) => Float64Array;

export interface GroundTruthOptions {
  /** The initial state x_T (flattened, any batch layout the noise function understands). */
  xT: Float64Array;
  /** NSR at the start (sigma_T / alpha_T) and at the end (sigma_0 / alpha_0), nsrStart > nsrEnd > 0. */
  nsrStart: number;
  nsrEnd: number;
  eps: NoiseAtMarginal;
  /** RK4 steps of the finer run is 2*steps; default 4000. */
  steps?: number;
}

export interface GroundTruth {
  /** x_0 from the 2*steps run. */
  x0: Float64Array;
  /** RK4 steps of the returned solution. */
  steps: number;
  /** max |x0(steps) - x0(2*steps)|: the doubling check. */
  doublingMaxAbs: number;
}

/** Marginal coefficients of a VP process at a given NSR rho. */
function marginalAtNsr(rho: number): { alpha: number; sigma: number } {
  const alpha = 1 / Math.sqrt(1 + rho * rho);
  return { alpha, sigma: rho * alpha };
}

/** f(lambda, y) = dy/dlambda = -rho * eps(alpha y; alpha, sigma), rho = e^{-lambda}. */
function rhs(eps: NoiseAtMarginal, lambda: number, y: Float64Array): Float64Array {
  const rho = Math.exp(-lambda);
  const { alpha, sigma } = marginalAtNsr(rho);
  const x = new Float64Array(y.length);
  for (let i = 0; i < y.length; i++) x[i] = alpha * y[i];
  const e = eps(x, alpha, sigma);
  const out = new Float64Array(y.length);
  for (let i = 0; i < y.length; i++) out[i] = -rho * e[i];
  return out;
}

/** y + c * k, elementwise. */
function axpy(y: Float64Array, c: number, k: Float64Array): Float64Array {
  const out = new Float64Array(y.length);
  for (let i = 0; i < y.length; i++) out[i] = y[i] + c * k[i];
  return out;
}

/** Classical RK4 in lambda from NSR nsrStart to nsrEnd with `steps` uniform steps; returns x_0. */
export function rk4InLambda(xT: Float64Array, nsrStart: number, nsrEnd: number, eps: NoiseAtMarginal, steps: number): Float64Array {
  const lambdaT = -Math.log(nsrStart);
  const lambda0 = -Math.log(nsrEnd);
  const dl = (lambda0 - lambdaT) / steps;
  const alphaT = marginalAtNsr(nsrStart).alpha;
  let y = new Float64Array(xT.length);
  for (let i = 0; i < xT.length; i++) y[i] = xT[i] / alphaT;
  for (let n = 0; n < steps; n++) {
    const l = lambdaT + n * dl;
    const k1 = rhs(eps, l, y);
    const k2 = rhs(eps, l + dl / 2, axpy(y, dl / 2, k1));
    const k3 = rhs(eps, l + dl / 2, axpy(y, dl / 2, k2));
    const k4 = rhs(eps, l + dl, axpy(y, dl, k3));
    const next = new Float64Array(y.length);
    for (let i = 0; i < y.length; i++) next[i] = y[i] + (dl / 6) * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]);
    y = next;
  }
  const alpha0 = marginalAtNsr(nsrEnd).alpha;
  const x0 = new Float64Array(y.length);
  for (let i = 0; i < y.length; i++) x0[i] = alpha0 * y[i];
  return x0;
}

/** Solve with `steps` and `2*steps` RK4 steps; return the finer answer and the doubling difference. */
export function groundTruth(opts: GroundTruthOptions): GroundTruth {
  const steps = opts.steps ?? 4000;
  if (!(opts.nsrStart > opts.nsrEnd && opts.nsrEnd > 0)) {
    throw new RangeError(`groundTruth: need nsrStart > nsrEnd > 0, got ${opts.nsrStart}, ${opts.nsrEnd}`);
  }
  const coarse = rk4InLambda(opts.xT, opts.nsrStart, opts.nsrEnd, opts.eps, steps);
  const fine = rk4InLambda(opts.xT, opts.nsrStart, opts.nsrEnd, opts.eps, 2 * steps);
  let doublingMaxAbs = 0;
  for (let i = 0; i < fine.length; i++) doublingMaxAbs = Math.max(doublingMaxAbs, Math.abs(fine[i] - coarse[i]));
  return { x0: fine, steps: 2 * steps, doublingMaxAbs };
}

const cache = new Map<string, GroundTruth>();

/** groundTruth() memoised by a caller-chosen key (one solve per test run and problem). */
export function cachedGroundTruth(key: string, opts: GroundTruthOptions): GroundTruth {
  let gt = cache.get(key);
  if (!gt) {
    gt = groundTruth(opts);
    cache.set(key, gt);
  }
  return gt;
}

/** Root-mean-square of (a - b) over all elements. */
export function rmsError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`rmsError: length mismatch ${a.length} vs ${b.length}`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s / a.length);
}

/**
 * Observed order of convergence: the least-squares slope of -log2(err) against log2(NFE),
 * and the last-doubling estimate log2(err[n-2] / err[n-1]).
 */
export function observedOrder(nfes: number[], errs: number[]): { slope: number; lastDoubling: number } {
  const xs = nfes.map((n) => Math.log2(n));
  const ys = errs.map((e) => -Math.log2(e));
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < xs.length; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  const n = errs.length;
  return { slope: sxy / sxx, lastDoubling: Math.log2(errs[n - 2] / errs[n - 1]) };
}
