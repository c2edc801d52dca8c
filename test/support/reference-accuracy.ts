/**
 * The official accuracy numbers: test/fixtures/reference-accuracy.json is a copy of
 * ../shared/reference/accuracy.json (RMS error of x_0 against the RK4 ground truth for the
 * official scire_solver.py and dpm_solver_pytorch.py on the seed-0 GMM, x_T of the golden
 * files; see test/fixtures/reference-README.md and the reference accuracy_table.md).
 */
import { readFileSync } from 'fs';
import { join } from 'path';
import type { CompileOptions } from '../../lib/options';

export interface ReferenceAccuracyEntry {
  schedule: 'discrete' | 'linear' | 'cosine';
  solver: 'scire' | 'dpm';
  algorithm_type: 'scire_v1' | 'scire_v2' | 'dpmsolver' | 'dpmsolver++';
  method: string;
  order: number;
  skip_type: string;
  steps: number;
  nfe: number;
  rms_error: number;
  table?: string;
}

let entries: ReferenceAccuracyEntry[] | null = null;

export function referenceAccuracy(): ReferenceAccuracyEntry[] {
  if (!entries) {
    entries = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'reference-accuracy.json'), 'utf8')) as ReferenceAccuracyEntry[];
  }
  return entries;
}

const SKIP: Record<string, string> = { nsr: 'NSR', logsnr: 'logSNR', time_uniform: 'time_uniform', time_quadratic: 'time_quadratic' };

/**
 * The official RMS error of the run that compilePlan(options) reproduces, or undefined when
 * the reference did not run it. Only faithful SciRE (without corrector), DDIM and DPM-Solver++ have counterparts;
 * DDIM on the NSR grid is the official SciRE order 1 (identical to DPM-Solver-1, README quirk 9).
 */
export function referenceError(
  schedule: string,
  o: Omit<CompileOptions, 'schedule'>,
): number | undefined {
  const solver = o.solver ?? 'scire';
  if (o.rde === 'consistent' || o.lowerOrderFinal === false || o.denoiseToZero) return undefined;
  // No official accuracy runs of UniPC or of the SciRE corrector (an addition of this package).
  if (solver === 'unipc' || (o.corrector !== undefined && o.corrector !== 'none')) return undefined;
  const skip = SKIP[o.skip ?? (solver === 'scire' ? 'nsr' : 'logsnr')];
  const method = o.method ?? 'multistep';
  let want: Partial<ReferenceAccuracyEntry>;
  if (solver === 'scire') {
    want = { solver: 'scire', algorithm_type: o.algorithm === 'v2' ? 'scire_v2' : 'scire_v1', method, order: o.order ?? 3 };
  } else if (solver === 'ddim') {
    want = skip === 'NSR' ? { solver: 'scire', algorithm_type: 'scire_v1', method: 'multistep', order: 1 } : { solver: 'dpm', algorithm_type: 'dpmsolver', method: 'multistep', order: 1 };
  } else {
    if (method !== 'multistep') return undefined;
    want = { solver: 'dpm', algorithm_type: 'dpmsolver++', method, order: o.order ?? 2 };
  }
  const hit = referenceAccuracy().find(
    (e) =>
      e.schedule === schedule &&
      e.steps === o.steps &&
      e.skip_type === skip &&
      (Object.keys(want) as Array<keyof ReferenceAccuracyEntry>).every((k) => e[k] === want[k]),
  );
  return hit?.rms_error;
}
