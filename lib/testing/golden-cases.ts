/**
 * Golden reference cases (test/fixtures/golden, test/fixtures/dpmsolver_extra.json: official
 * SciRE-Solver / DPM-Solver calls) as compilePlan options. Shared by the golden tests,
 * scripts/gpu-check.js and benchmarks/gpu.js.
 */
import type { CompileOptions } from '../options';
import { NoiseSchedule } from '../schedule';

/** The fields of a golden case that describe the official call. */
export interface GoldenCaseCall {
  schedule: string;
  /** 'scire_v1' | 'scire_v2' | 'dpmsolver' (order 1: DDIM) | 'dpmsolver++' */
  algorithm_type: string;
  /** SciRE: multistep | singlestep_agile | singlestep_fixed; DPM-Solver: multistep | singlestep | singlestep_fixed */
  method: string;
  order: number;
  /** NSR | time_uniform | time_quadratic | logSNR */
  skip_type: string;
  steps: number;
  denoise_to_zero: boolean;
  lower_order_final: boolean;
  t_start?: number | null;
  t_end?: number | null;
  thresholding?: { ratio: number; maxVal: number } | null;
}

/** The schedule the official generator used for a golden file (float64 tables). */
export function goldenSchedule(kind: string): NoiseSchedule {
  switch (kind) {
    case 'discrete':
      return NoiseSchedule.discrete({ kind: 'linear', N: 1000, betaStart: 1e-4, betaEnd: 0.02 });
    case 'linear':
      return NoiseSchedule.linear({ beta0: 0.1, beta1: 20 });
    case 'cosine':
      return NoiseSchedule.cosine();
    default:
      throw new RangeError(`golden schedule must be 'discrete', 'linear' or 'cosine', got ${JSON.stringify(kind)}`);
  }
}

const SKIP: Record<string, CompileOptions['skip']> = {
  NSR: 'nsr',
  time_uniform: 'time_uniform',
  time_quadratic: 'time_quadratic',
  logSNR: 'logsnr',
};
const DPM_METHOD: Record<string, CompileOptions['method']> = {
  multistep: 'multistep',
  singlestep: 'singlestep_agile',
  singlestep_fixed: 'singlestep_fixed',
};

/** compilePlan options of a golden case (schedule: goldenSchedule(c.schedule) unless given). */
export function goldenCaseOptions(c: GoldenCaseCall, schedule: NoiseSchedule = goldenSchedule(c.schedule)): CompileOptions {
  const skip = SKIP[c.skip_type];
  if (skip === undefined) throw new RangeError(`golden case skip_type must be one of ${Object.keys(SKIP).join(', ')}, got ${JSON.stringify(c.skip_type)}`);
  const common = {
    schedule,
    order: c.order as CompileOptions['order'], // the golden cases use orders 1-3
    steps: c.steps,
    skip,
    denoiseToZero: c.denoise_to_zero,
    lowerOrderFinal: c.lower_order_final,
  };
  if (c.algorithm_type === 'scire_v1' || c.algorithm_type === 'scire_v2') {
    return {
      ...common,
      solver: 'scire',
      algorithm: c.algorithm_type === 'scire_v1' ? 'v1' : 'v2',
      method: c.method as CompileOptions['method'],
      ...(c.t_start == null ? {} : { tStart: c.t_start }),
      ...(c.t_end == null ? {} : { tEnd: c.t_end }),
    };
  }
  if (c.algorithm_type === 'dpmsolver' || c.algorithm_type === 'dpmsolver++') {
    return {
      ...common,
      solver: c.algorithm_type === 'dpmsolver' ? 'ddim' : 'dpmpp',
      method: DPM_METHOD[c.method],
      ...(c.thresholding ? { thresholding: c.thresholding } : {}),
    };
  }
  throw new RangeError(`golden case algorithm_type must be scire_v1, scire_v2, dpmsolver or dpmsolver++, got ${JSON.stringify(c.algorithm_type)}`);
}
