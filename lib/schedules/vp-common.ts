/**
 * Shared relations of variance-preserving schedules (alpha_t^2 + sigma_t^2 = 1).
 * Each VP schedule supplies log alpha_t and the inverse map log alpha -> t; everything else
 * (sigma, NSR, lambda and their inverses) follows from these.
 */

/** sigma_t = sqrt(1 - alpha_t^2) = sqrt(-expm1(2 log alpha_t)). */
export function vpSigmaFromLogAlpha(logAlpha: number): number {
  return Math.sqrt(-Math.expm1(2 * logAlpha));
}

/** log alpha for a given NSR: alpha = 1/sqrt(1 + NSR^2)  =>  log alpha = -1/2 log(1 + NSR^2). */
export function vpLogAlphaFromNsr(nsr: number): number {
  return -0.5 * Math.log1p(nsr * nsr);
}

/** log alpha for a given lambda = -log NSR: log alpha = -1/2 log(1 + e^{-2 lambda}) (stable logaddexp). */
export function vpLogAlphaFromLambda(lambda: number): number {
  const a = -2 * lambda;
  // logaddexp(0, a) = max(0, a) + log1p(exp(-|a|))
  return -0.5 * (Math.max(0, a) + Math.log1p(Math.exp(-Math.abs(a))));
}

/** Builds the derived members of a VP schedule from logAlpha / alpha / inverseLogAlpha. */
export function vpDerived(
  logAlpha: (t: number) => number,
  alpha: (t: number) => number,
  inverseLogAlpha: (logAlpha: number) => number,
) {
  const sigma = (t: number): number => vpSigmaFromLogAlpha(logAlpha(t));
  return {
    sigma,
    /** NSR_t = sigma_t / alpha_t. */
    nsr: (t: number): number => sigma(t) / alpha(t),
    inverseNsr: (nsr: number): number => inverseLogAlpha(vpLogAlphaFromNsr(nsr)),
    /** lambda_t = log alpha_t - log sigma_t. */
    lambda: (t: number): number => {
      const la = logAlpha(t);
      return la - 0.5 * Math.log(-Math.expm1(2 * la));
    },
    inverseLambda: (lambda: number): number => inverseLogAlpha(vpLogAlphaFromLambda(lambda)),
  };
}
