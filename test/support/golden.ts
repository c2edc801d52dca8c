/**
 * Loading the golden reference files of test/fixtures (copied from ../shared/reference; see
 * test/fixtures/README.md) and turning a case into compilePlan options.
 */
import { readFileSync } from 'fs';
import { join } from 'path';
import type { CompileOptions } from '../../lib/options';
import type { NoiseSchedule } from '../../lib/schedule';
import { GaussianMixtureNoiseModel, type GmmParams } from '../../lib/testing/gmm';
import { goldenCaseOptions } from '../../lib/testing/golden-cases';

export { goldenSchedule } from '../../lib/testing/golden-cases';

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

/** compilePlan options of a SciRE golden case. */
export function scireCaseOptions(schedule: NoiseSchedule, c: GoldenCase): CompileOptions {
  return goldenCaseOptions(c, schedule);
}
