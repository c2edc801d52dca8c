/**
 * Part (b) of benchmarks/accuracy.ts: the solver grid on a real network, the bundled
 * Fashion-MNIST UNet (models/fmnist_unet.pt + its model card), float32 through the native
 * plan executor on the CPU.
 *
 * The "exact" answer is a fine high-order solve of the same probability-flow ODE from the
 * same x_T: DPM-Solver++ 3M (logSNR steps) at fineNfe evaluations. Its convergence is
 * checked twice: by halving (fineNfe/2 vs fineNfe) and against a different high-order
 * method at fineNfe (SciRE v1 3M with the consistent coefficients, NSR steps).
 */
import { join } from 'path';
import { compilePlan } from '../../lib/compile';
import { loadModel } from '../../lib/model';
import { readModelCard } from '../../lib/model-card';
import type { CompileOptions } from '../../lib/options';
import type { NativeModel } from '../../lib/native-types';
import type { Plan } from '../../lib/plan';
import type { AutoChoice } from '../../lib/presets/auto';
import { randn } from '../../lib/randn';
import { rmsError } from '../../test/support/ground-truth';
import { SolveCache } from './solve-cache';
import type { GridEntry } from './solver-grid';

export const DEFAULT_FMNIST_MODEL = join(__dirname, '..', '..', 'models', 'fmnist_unet.pt');

export interface FmnistAccuracyOptions {
  grid: GridEntry[];
  nfes: number[];
  batch: number;
  seed: number;
  fineNfe: number;
  modelPath?: string;
  tiny?: boolean;
  device?: string;
  /** Directory of the solve cache (benchmarks/support/solve-cache.ts); none: every plan runs. */
  cacheDir?: string;
}

export interface FmnistRow {
  name: string;
  family: GridEntry['family'];
  /** error: RMS over all pixels; perSample: RMS over each sample's pixels (batch order). */
  /** preset: the table configuration the preset ran at that NFE. */
  cells: Array<{ nfe: number; error: number; perSample: number[]; preset?: string }>;
}

export interface FmnistAccuracyResult {
  rows: FmnistRow[];
  modelPath: string;
  batch: number;
  shape: number[];
  seed: number;
  fineName: string;
  fineNfe: number;
  fineDoubling: number;
  crossName: string;
  fineCross: number;
  forwardMs: number;
  seconds: number;
  device: string;
  /** Solves taken from the cache (0 without --cache). */
  cacheHits: number;
}

const FINE: Omit<CompileOptions, 'schedule' | 'steps'> = { solver: 'dpmpp', order: 3, skip: 'logsnr' };
const CROSS: Omit<CompileOptions, 'schedule' | 'steps'> = { solver: 'scire', algorithm: 'v1', order: 3, skip: 'nsr', rde: 'consistent' };

/** The bundled UNet (or another noise-prediction model with a card), loaded once, and its noise x_T. */
export interface FmnistProblem {
  model: NativeModel;
  modelPath: string;
  schedule: CompileOptions['schedule'];
  shape: number[];
  seed: number;
  xT: Float32Array;
  device: string;
  cache: SolveCache | null;
  /** Runs one plan on the model from x_T (or takes it from the cache); returns x_0 and the plan's NFE. */
  solve(options: CompileOptions): Promise<{ x: Float32Array; nfe: number; cached: boolean; plan: Plan }>;
}

export async function loadFmnistProblem(opts: { batch: number; seed: number; modelPath?: string; device?: string; cacheDir?: string }): Promise<FmnistProblem> {
  const modelPath = opts.modelPath ?? DEFAULT_FMNIST_MODEL;
  const card = readModelCard(modelPath);
  if (!card.shape) throw new Error(`${card.file}: the model card has no "shape"; the benchmark needs the sample shape`);
  if (card.modelType !== 'noise') throw new Error(`${card.file}: expected a noise-prediction model, got '${card.modelType}'`);
  const shape = [opts.batch, ...card.shape];
  const device = opts.device ?? 'cpu';
  const model = await loadModel(modelPath, { device, dtype: 'float32' });
  const xT = randn(shape, opts.seed);
  const cache = opts.cacheDir ? new SolveCache(opts.cacheDir) : null;
  const problem: FmnistProblem = {
    model,
    modelPath,
    schedule: card.schedule,
    shape,
    seed: opts.seed,
    xT,
    device,
    cache,
    async solve(options) {
      const plan = compilePlan(options);
      const key = { modelPath, device, dtype: 'float32', shape, seed: opts.seed, plan };
      const hit = cache?.get(key);
      if (hit) return { x: hit, nfe: plan.nfe, cached: true, plan };
      const res = await model.execute(plan, { x: xT, shape });
      if (res.nfe !== plan.nfe) throw new Error(`${JSON.stringify(options.solver)}: executor ran ${res.nfe} evaluations, plan has ${plan.nfe}`);
      cache?.put(key, res.data);
      return { x: res.data, nfe: plan.nfe, cached: false, plan };
    },
  };
  return problem;
}

/** RMS error of each sample (the batch's leading dimension) of x against ref. */
export function perSampleRms(x: Float32Array, ref: Float32Array, batch: number): number[] {
  const n = x.length / batch;
  const out: number[] = [];
  for (let b = 0; b < batch; b++) out.push(rmsError(x.subarray(b * n, (b + 1) * n), ref.subarray(b * n, (b + 1) * n)));
  return out;
}

export async function runFmnistAccuracy(opts: FmnistAccuracyOptions): Promise<FmnistAccuracyResult> {
  const t0 = Date.now();
  const p = await loadFmnistProblem(opts);
  const { model, modelPath, schedule, shape, xT, device } = p;
  const solve = (options: CompileOptions) => p.solve(options);

  // Per-forward time of this batch (the unit of everything below).
  await model.forward(xT, shape, 500);
  const f0 = performance.now();
  const reps = opts.tiny ? 1 : 3;
  for (let i = 0; i < reps; i++) await model.forward(xT, shape, 500);
  const forwardMs = (performance.now() - f0) / reps;

  const fine = await solve({ schedule, steps: opts.fineNfe, ...FINE });
  const half = await solve({ schedule, steps: opts.fineNfe / 2, ...FINE });
  const cross = await solve({ schedule, steps: opts.fineNfe, ...CROSS });

  const rows: FmnistRow[] = [];
  for (const entry of opts.grid) {
    const cells: FmnistRow['cells'] = [];
    for (const steps of opts.nfes) {
      const r = await solve({ schedule, steps, ...entry.options });
      const auto = r.plan.meta.auto as AutoChoice | undefined;
      cells.push({ nfe: r.nfe, error: rmsError(r.x, fine.x), perSample: perSampleRms(r.x, fine.x, opts.batch), ...(auto ? { preset: auto.row.name } : {}) });
    }
    rows.push({ name: entry.name, family: entry.family, cells });
    process.stderr.write(`  fmnist accuracy: ${entry.name} done (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
  }
  model.dispose();
  return {
    rows,
    modelPath: modelPath.replace(join(__dirname, '..', '..') + '/', ''),
    batch: opts.batch,
    shape,
    seed: opts.seed,
    fineName: 'DPM-Solver++ 3M (logSNR steps)',
    fineNfe: opts.fineNfe,
    fineDoubling: rmsError(fine.x, half.x),
    crossName: 'SciRE v1 3M consistent (NSR steps)',
    fineCross: rmsError(fine.x, cross.x),
    forwardMs,
    seconds: (Date.now() - t0) / 1000,
    device,
    cacheHits: p.cache?.hits ?? 0,
  };
}
