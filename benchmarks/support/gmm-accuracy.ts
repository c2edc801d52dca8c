/**
 * Part (a) of benchmarks/accuracy.ts: every solver of the grid on the analytic Gaussian
 * mixture (the golden reference's seed-0 GMM, D = 16, K = 4, exact noise prediction), in
 * float64 through compilePlan + executePlanReference.
 *
 * - x_T: randn([batch, 16], seed), the prior N(0, I) of the VP process.
 * - Error: RMS over all elements of x_0 - x_0^fine, x_0^fine = RK4 in lambda from the same
 *   x_T (test/support/ground-truth.ts), checked by doubling its step count.
 * - Distribution measure: mean log-likelihood of the samples under the true mixture p0,
 *   next to that of the fine ODE solution (what a perfect solver would score; the ODE ends at
 *   tEnd = 1e-3, not 0) and of exact samples of p0.
 */
import { readFileSync } from 'fs';
import { join } from 'path';
import { compilePlan } from '../../lib/compile';
import { randn } from '../../lib/randn';
import { executePlanReference } from '../../lib/reference';
import { GaussianMixtureNoiseModel, type GmmParams } from '../../lib/testing/gmm';
import { goldenSchedule } from '../../test/support/golden';
import { groundTruth, rmsError } from '../../test/support/ground-truth';
import { meanAndStdErr, mixtureLogDensity, sampleMixture } from './gmm-likelihood';
import type { GridEntry } from './solver-grid';

export interface GmmAccuracyOptions {
  grid: GridEntry[];
  nfes: number[];
  batch: number;
  seed: number;
  /** RK4 steps of the coarse fine solution (the reference uses twice as many). */
  rk4Steps: number;
}

export interface GmmRow {
  name: string;
  family: GridEntry['family'];
  /** Per NFE target: actual NFE, RMS error, mean log-likelihood. */
  cells: Array<{ nfe: number; error: number; medianError: number; logLik: number }>;
}

export interface GmmAccuracyResult {
  rows: GmmRow[];
  fineLogLik: { mean: number; stdErr: number };
  exactLogLik: { mean: number; stdErr: number };
  doublingMaxAbs: number;
  rk4Steps: number;
  batch: number;
  seed: number;
}

export const GMM_PARAMS_FILE = join(__dirname, '..', '..', 'test', 'fixtures', 'models', 'gmm_D16_discrete.json');

export function loadGmmParams(): GmmParams {
  return JSON.parse(readFileSync(GMM_PARAMS_FILE, 'utf8')) as GmmParams;
}

/** Median over the samples of each sample's RMS error (robust to the few x_T near a mode boundary). */
export function medianSampleError(x: ArrayLike<number>, ref: ArrayLike<number>, D: number): number {
  const B = x.length / D;
  const per = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    let s = 0;
    for (let i = 0; i < D; i++) s += (x[b * D + i] - ref[b * D + i]) ** 2;
    per[b] = Math.sqrt(s / D);
  }
  per.sort();
  return B % 2 ? per[(B - 1) / 2] : 0.5 * (per[B / 2 - 1] + per[B / 2]);
}

export function runGmmAccuracy(opts: GmmAccuracyOptions): GmmAccuracyResult {
  const params = loadGmmParams();
  const gmm = new GaussianMixtureNoiseModel(params);
  const schedule = goldenSchedule('discrete');
  const xT = Float64Array.from(randn([opts.batch, params.D], opts.seed));
  const shape = [opts.batch, params.D];
  const gt = groundTruth({
    xT,
    nsrStart: schedule.nsr(schedule.T),
    nsrEnd: schedule.nsr(schedule.eps),
    eps: (x, alpha) => gmm.noiseAtLogAlpha(x, Math.log(alpha)),
    steps: opts.rk4Steps,
  });
  const rows: GmmRow[] = [];
  for (const entry of opts.grid) {
    const cells = opts.nfes.map((steps) => {
      const plan = compilePlan({ schedule, steps, ...entry.options });
      const res = executePlanReference(plan, { x: xT, shape, model: gmm.asModel() });
      return { nfe: plan.nfe, error: rmsError(res.x, gt.x0), medianError: medianSampleError(res.x, gt.x0, params.D), logLik: meanAndStdErr(mixtureLogDensity(params, res.x)).mean };
    });
    rows.push({ name: entry.name, family: entry.family, cells });
  }
  return {
    rows,
    fineLogLik: meanAndStdErr(mixtureLogDensity(params, gt.x0)),
    exactLogLik: meanAndStdErr(mixtureLogDensity(params, sampleMixture(params, opts.batch, opts.seed + 1))),
    doublingMaxAbs: gt.doublingMaxAbs,
    rk4Steps: gt.steps,
    batch: opts.batch,
    seed: opts.seed,
  };
}
