/**
 * `preset: 'auto'`: the solver configuration per schedule kind and NFE, looked up in
 * lib/presets/auto-table.json, which benchmarks/auto-preset.ts derives by running every
 * candidate of auto-candidates.ts on the analytic Gaussian mixture and, for the 'discrete' rows
 * up to a UNet-stage NFE, re-ranking the best admissible ones on the bundled Fashion-MNIST UNet
 * (docs/usage.md, "preset").
 *
 * Lookup: the table row of the schedule kind ('edm' uses the 'discrete' rows: same NSR range
 * as the DDPM schedule the table was measured on) with the largest NFE <= steps (steps above
 * the last row use the last row; below the first row the first row, lowered to what steps
 * allows). The preset chooses the solver fields (PresetConfig); the caller keeps the others
 * (modelType, tStart, tEnd, denoiseToZero, thresholding, ...). With thresholding the best
 * configuration that makes only data predictions is used.
 */
import { existsSync, readFileSync } from 'fs';
import { join } from 'path';
import { MAX_STEPS } from '../bounds';
import type { CompileOptions } from '../options';
import type { NoiseSchedule } from '../schedule';
import { invalidType } from '../validate';
import type { PresetConfig } from './auto-candidates';

export type { PresetConfig };

/** The NFE rows of the table. */
export const AUTO_TABLE_NFES = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15, 17, 20, 25, 30, 40, 50];

/** The option names a preset decides (given together with a preset they are an error). */
export const PRESET_FIELDS: readonly (keyof PresetConfig)[] = [
  'solver',
  'algorithm',
  'method',
  'order',
  'skip',
  'rde',
  'corrector',
  'variant',
  'finalCorrector',
  'lowerOrderFinal',
];

export const PRESETS = ['auto', 'none'] as const;
export type Preset = (typeof PRESETS)[number];

export interface AutoPick {
  name: string;
  config: PresetConfig;
  stepsOffset: number;
  error: number;
}

export interface AutoTableEntry {
  nfe: number;
  /** The configuration used (its `error`: median error on the mixture). */
  best: AutoPick;
  /** The configuration used with thresholding: the mixture's best data-prediction candidate. */
  bestData: AutoPick;
  /** The mixture's next candidates after its best (mixtureBest when the row has a UNet stage). */
  runnersUp: AutoPick[];
  /** Present on rows that a real network re-ranked (AutoTable.unetStage): how `best` was picked. */
  unet?: AutoUnetRow;
}

/** One row's second stage: the mixture's admissible candidates measured on the bundled UNet. */
export interface AutoUnetRow {
  /** The mixture's own winner (what `best` would be without this stage). */
  mixtureBest: AutoPick;
  /** The acceptance bar: the best official SciRE / DPM-Solver++ 2M/3M / UniPC configuration on the mixture. */
  referenceBest: { name: string; error: number };
  /** How many candidates have mixture error <= referenceBest.error. */
  admitted: number;
  /** The first `top` admitted candidates (distinct solvers) by mixture error, in that order, with both errors. */
  measured: Array<{ name: string; mixtureError: number; unetError: number }>;
}

/** The setting of the UNet stage (benchmarks/auto-preset.ts; absent in a mixture-only table). */
export interface AutoUnetStage {
  schedules: Array<'discrete' | 'linear' | 'cosine'>;
  maxNfe: number;
  top: number;
  rule: string;
  /** Relative UNet error difference below which candidates count as tied (the better mixture error wins). */
  tie: number;
  model: string;
  noise: string;
  batch: number;
  seed: number;
  metric: string;
  fine: string;
  fineNfe: number;
  /** RMS(x(fineNfe) - x(fineNfe / 2)) of the fine solution. */
  fineDoubling: number;
  forwardMs: number;
  /** Wall time of the stage, and how many of its UNet solves came from a --cache of an earlier run. */
  seconds: number;
  cachedSolves: number;
}

export interface AutoTable {
  format: 'scire-auto-table-v1';
  command: string;
  metric: string;
  model: string;
  noise: string;
  batch: number;
  seed: number;
  rk4Steps: number;
  candidates: number;
  seconds?: number;
  unetStage?: AutoUnetStage;
  schedules: Partial<Record<'discrete' | 'linear' | 'cosine', AutoTableEntry[]>>;
}

let cached: AutoTable | null = null;

/** The table (lib/presets/auto-table.json; also found from dist/presets/). */
export function autoTable(): AutoTable {
  if (cached) return cached;
  const candidates = [join(__dirname, 'auto-table.json'), join(__dirname, '..', '..', 'lib', 'presets', 'auto-table.json')];
  const file = candidates.find((f) => existsSync(f));
  if (!file) throw new Error(`preset 'auto': its table is missing (looked for ${candidates.join(', ')})`);
  const t = JSON.parse(readFileSync(file, 'utf8')) as AutoTable;
  if (t.format !== 'scire-auto-table-v1') throw new Error(`preset 'auto': ${file} is not a scire-auto-table-v1 file`);
  cached = t;
  return t;
}

/** What the preset chose, as reported in plan.meta.auto and the Sampler's result. */
export interface AutoChoice {
  preset: 'auto';
  /** The table row used (its NFE) and the configuration's name there. */
  row: { schedule: string; nfe: number; name: string; error: number };
  config: PresetConfig;
  /** steps passed to the solver (nfe - 1 with the UniPC final corrector). */
  steps: number;
}

/**
 * The configuration of `preset: 'auto'` for a schedule and an NFE budget `steps`.
 * `dataOnly`: only configurations that make data predictions (thresholding).
 */
export function autoChoice(schedule: NoiseSchedule, steps: number, dataOnly: boolean): AutoChoice {
  const t = autoTable();
  const kind = schedule.kind === 'edm' ? 'discrete' : schedule.kind;
  const rows = t.schedules[kind];
  if (!rows || rows.length === 0) throw new Error(`preset 'auto': no table rows for schedule kind '${kind}'`);
  let row = rows[0];
  for (const r of rows) if (r.nfe <= steps) row = r;
  const pick = dataOnly ? row.bestData : row.best;
  const config: PresetConfig = { ...pick.config };
  let solverSteps = steps + pick.stepsOffset;
  if (solverSteps < (config.order ?? 1)) {
    // Below the table's first row: as much of the configuration as the budget allows.
    config.finalCorrector = config.solver === 'unipc' ? false : config.finalCorrector;
    solverSteps = steps;
    config.order = Math.min(config.order ?? 1, steps) as 1 | 2 | 3;
  }
  return { preset: 'auto', row: { schedule: kind, nfe: row.nfe, name: pick.name, error: pick.error }, config, steps: solverSteps };
}

/**
 * compilePlan options with the preset applied: the preset's fields filled in and steps adjusted
 * (the NFE stays `steps`). Throws a TypeError when a field the preset decides is also given.
 */
export function applyPreset(options: CompileOptions & { preset?: unknown }): { options: CompileOptions; choice: AutoChoice | null } {
  const { preset, ...rest } = options;
  if (preset === undefined || preset === 'none') return { options: rest, choice: null };
  if (preset !== 'auto') throw invalidType('preset', `one of 'auto', 'none' (or no preset)`, preset);
  for (const f of PRESET_FIELDS) {
    if (rest[f] !== undefined) {
      throw invalidType(f, `no ${f} with preset 'auto' (the preset chooses ${PRESET_FIELDS.join(', ')}; drop preset to set them)`, rest[f]);
    }
  }
  if (typeof rest.schedule !== 'object' || rest.schedule === null) return { options: rest, choice: null }; // resolveOptions reports it
  const steps = rest.steps;
  // Steps out of range are reported by resolveOptions with the caller's own value.
  if (typeof steps !== 'number' || !Number.isInteger(steps) || steps < 1 || steps > MAX_STEPS) return { options: rest, choice: null };
  const choice = autoChoice(rest.schedule, steps, rest.thresholding !== undefined);
  return { options: { ...rest, ...choice.config, steps: choice.steps }, choice };
}

/** Which solver a plan runs (plan.meta, as compilePlan wrote it): what a Sampler result reports. */
export interface SolverReport {
  solver: string;
  algorithm?: string;
  method: string;
  order: number;
  skip: string;
  rde?: string;
  corrector?: string;
  variant?: string;
  finalCorrector?: boolean;
  lowerOrderFinal: boolean;
  /** Steps the solver takes (NFE - 1 with the UniPC final corrector; + 1 NFE with denoiseToZero). */
  steps: number;
  /** 'auto' when the preset chose the configuration, with the table row it used. */
  preset?: 'auto';
  presetRow?: AutoChoice['row'];
}

export function describeSolver(meta: Record<string, unknown>): SolverReport {
  const auto = meta.auto as AutoChoice | undefined;
  const out: SolverReport = {
    solver: String(meta.solver),
    method: String(meta.method),
    order: Number(meta.order),
    skip: String(meta.skip),
    lowerOrderFinal: Boolean(meta.lowerOrderFinal),
    steps: Number(meta.steps),
  };
  if (meta.algorithm) out.algorithm = String(meta.algorithm);
  if (meta.rde) out.rde = String(meta.rde);
  if (meta.solver === 'scire') out.corrector = typeof meta.corrector === 'string' ? meta.corrector : 'none';
  if (meta.variant) out.variant = String(meta.variant);
  if (meta.solver === 'unipc') out.finalCorrector = Boolean(meta.finalCorrector);
  if (auto) {
    out.preset = 'auto';
    out.presetRow = auto.row;
  }
  return out;
}
