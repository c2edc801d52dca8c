/**
 * The UniPC golden files (test/fixtures/unipc_*.json, made by test/support/generate_unipc_golden.py
 * from the authors' uni_pc.py on the golden GMM) and their cases as compilePlan options.
 */
import { readFileSync } from 'fs';
import { join } from 'path';
import type { CompileOptions } from '../../lib/options';
import { GaussianMixtureNoiseModel, type GmmParams } from '../../lib/testing/gmm';
import { FIXTURES, flatten, goldenSchedule } from './golden';

export interface UniPcCase {
  id: string;
  schedule: 'discrete' | 'linear';
  variant: 'bh1' | 'bh2';
  order: number;
  skip_type: 'logSNR' | 'time_uniform' | 'time_quadratic';
  steps: number;
  lower_order_final: boolean;
  final_corrector: boolean;
  denoise_to_zero: boolean;
  thresholding: { ratio: number; maxVal: number } | null;
  nfe: number;
  model_t_continuous: number[];
  model_t_input: number[];
  x0: number[][];
}

export interface UniPcFile {
  format: string;
  schedule: 'discrete' | 'linear';
  model_params_file: string;
  x_T: number[][];
  x_T_shape: number[];
  cases: UniPcCase[];
}

export const UNIPC_FILES = ['unipc_discrete', 'unipc_linear'];

export function loadUniPcGolden(name: string): UniPcFile {
  return JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8')) as UniPcFile;
}

export function uniPcModel(g: UniPcFile): GaussianMixtureNoiseModel {
  const params = JSON.parse(readFileSync(join(FIXTURES, g.model_params_file), 'utf8')) as GmmParams;
  return new GaussianMixtureNoiseModel(params);
}

const SKIP = { logSNR: 'logsnr', time_uniform: 'time_uniform', time_quadratic: 'time_quadratic' } as const;

export function uniPcCaseOptions(c: UniPcCase): CompileOptions {
  return {
    schedule: goldenSchedule(c.schedule),
    solver: 'unipc',
    variant: c.variant,
    order: c.order,
    steps: c.steps,
    skip: SKIP[c.skip_type],
    lowerOrderFinal: c.lower_order_final,
    finalCorrector: c.final_corrector,
    denoiseToZero: c.denoise_to_zero,
    ...(c.thresholding ? { thresholding: c.thresholding } : {}),
  };
}

/** x_T of the file, flattened row-major ([8, 16]: the [8, 1, 4, 4] input of the generator). */
export function uniPcXT(g: UniPcFile): { x: number[]; shape: number[] } {
  const x = flatten(g.x_T);
  return { x, shape: [g.x_T.length, x.length / g.x_T.length] };
}
