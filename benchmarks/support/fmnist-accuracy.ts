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
import { randn } from '../../lib/randn';
import { rmsError } from '../../test/support/ground-truth';
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
}

export interface FmnistRow {
  name: string;
  family: GridEntry['family'];
  cells: Array<{ nfe: number; error: number }>;
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
}

const FINE: Omit<CompileOptions, 'schedule' | 'steps'> = { solver: 'dpmpp', order: 3, skip: 'logsnr' };
const CROSS: Omit<CompileOptions, 'schedule' | 'steps'> = { solver: 'scire', algorithm: 'v1', order: 3, skip: 'nsr', rde: 'consistent' };

/** Runs one plan on the model from x_T; returns x_0 and the plan's NFE. */
async function solve(
  model: NativeModel,
  options: CompileOptions,
  xT: Float32Array,
  shape: number[],
): Promise<{ x: Float32Array; nfe: number }> {
  const plan = compilePlan(options);
  const res = await model.execute(plan, { x: xT, shape });
  if (res.nfe !== plan.nfe) throw new Error(`${JSON.stringify(options.solver)}: executor ran ${res.nfe} evaluations, plan has ${plan.nfe}`);
  return { x: res.data, nfe: plan.nfe };
}

export async function runFmnistAccuracy(opts: FmnistAccuracyOptions): Promise<FmnistAccuracyResult> {
  const t0 = Date.now();
  const modelPath = opts.modelPath ?? DEFAULT_FMNIST_MODEL;
  const card = readModelCard(modelPath);
  if (!card.shape) throw new Error(`${card.file}: the model card has no "shape"; the benchmark needs the sample shape`);
  if (card.modelType !== 'noise') throw new Error(`${card.file}: expected a noise-prediction model, got '${card.modelType}'`);
  const shape = [opts.batch, ...card.shape];
  const device = opts.device ?? 'cpu';
  const model = await loadModel(modelPath, { device, dtype: 'float32' });
  const schedule = card.schedule;
  const xT = randn(shape, opts.seed);

  // Per-forward time of this batch (the unit of everything below).
  await model.forward(xT, shape, 500);
  const f0 = performance.now();
  const reps = opts.tiny ? 1 : 3;
  for (let i = 0; i < reps; i++) await model.forward(xT, shape, 500);
  const forwardMs = (performance.now() - f0) / reps;

  const fine = await solve(model, { schedule, steps: opts.fineNfe, ...FINE }, xT, shape);
  const half = await solve(model, { schedule, steps: opts.fineNfe / 2, ...FINE }, xT, shape);
  const cross = await solve(model, { schedule, steps: opts.fineNfe, ...CROSS }, xT, shape);

  const rows: FmnistRow[] = [];
  for (const entry of opts.grid) {
    const cells: FmnistRow['cells'] = [];
    for (const steps of opts.nfes) {
      const r = await solve(model, { schedule, steps, ...entry.options }, xT, shape);
      cells.push({ nfe: r.nfe, error: rmsError(r.x, fine.x) });
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
  };
}
