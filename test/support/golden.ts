/**
 * Loading the golden reference files of test/fixtures (copied from ../shared/reference; see
 * test/fixtures/README.md) and turning a case into compilePlan options.
 */
import { readFileSync } from 'fs';
import { join } from 'path';
import type { CompileOptions } from '../../lib/options';
import { NoiseSchedule } from '../../lib/schedule';
import { GaussianMixtureNoiseModel, type GmmParams } from '../../lib/testing/gmm';

export const FIXTURES = join(__dirname, '..', 'fixtures');

export interface GoldenCase {
  id: string;
  solver: string;
  schedule: string;
  algorithm_type: string;
  method: string;
  order: number;
  skip_type: string;
  steps: number;
  denoise_to_zero: boolean;
  lower_order_final: boolean;
  t_start: number | null;
  t_end: number | null;
  dtype: string;
  nfe: number;
  model_t_continuous: number[];
  model_t_input: number[];
  x0: unknown[];
  float64_rounding_probe_max_abs?: number;
  float32_run_max_abs_dev?: number;
  max_abs_dev_vs_float64?: number;
}

export interface GoldenFile {
  format: string;
  schedule: 'discrete' | 'linear' | 'cosine';
  model_params_file: string;
  x_T: unknown[];
  x_T_shape: number[];
  t_start_used: number;
  t_end_used: number;
  cases: GoldenCase[];
  cases_float32: GoldenCase[];
  skipped: Array<{ id: string; reason: string }>;
}

export function loadGolden(name: string): GoldenFile {
  return JSON.parse(readFileSync(join(FIXTURES, 'golden', `${name}.json`), 'utf8')) as GoldenFile;
}

/** The GMM of a golden file (model_params_file is relative to the golden file). */
export function loadGoldenModel(g: GoldenFile): GaussianMixtureNoiseModel {
  const params = JSON.parse(readFileSync(join(FIXTURES, 'golden', g.model_params_file), 'utf8')) as GmmParams;
  return new GaussianMixtureNoiseModel(params);
}

export function flatten(v: unknown): number[] {
  return Array.isArray(v) ? v.flatMap((e) => flatten(e)) : [v as number];
}

/** The schedule the official generator used for a golden file (float64 tables). */
export function goldenSchedule(kind: 'discrete' | 'linear' | 'cosine'): NoiseSchedule {
  switch (kind) {
    case 'discrete':
      return NoiseSchedule.discrete({ kind: 'linear', N: 1000, betaStart: 1e-4, betaEnd: 0.02 });
    case 'linear':
      return NoiseSchedule.linear({ beta0: 0.1, beta1: 20 });
    case 'cosine':
      return NoiseSchedule.cosine();
  }
}

const SKIP: Record<string, CompileOptions['skip']> = {
  NSR: 'nsr',
  time_uniform: 'time_uniform',
  time_quadratic: 'time_quadratic',
  logSNR: 'logsnr',
};

/** compilePlan options of a SciRE golden case. */
export function scireCaseOptions(schedule: NoiseSchedule, c: GoldenCase): CompileOptions {
  return {
    schedule,
    solver: 'scire',
    algorithm: c.algorithm_type === 'scire_v1' ? 'v1' : 'v2',
    method: c.method as CompileOptions['method'],
    order: c.order,
    steps: c.steps,
    skip: SKIP[c.skip_type],
    denoiseToZero: c.denoise_to_zero,
    lowerOrderFinal: c.lower_order_final,
    ...(c.t_start === null ? {} : { tStart: c.t_start }),
    ...(c.t_end === null ? {} : { tEnd: c.t_end }),
  };
}
