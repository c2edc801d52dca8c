/**
 * The model card: the JSON file next to a TorchScript model (`model.pt` -> `model.json`)
 * that says what the network needs and what it returns, so the CLI can sample it with no
 * other flags:
 *
 *   {
 *     "modelType": "noise",                         // 'noise' | 'x_start' | 'v' | 'score'
 *     "shape": [1, 28, 28],                         // one sample, without the batch dimension
 *     "dataRange": [-1, 1],                         // what the data looks like (for PNG output)
 *     "schedule": { "kind": "discrete", "betaSchedule": "linear",
 *                   "betaStart": 0.0001, "betaEnd": 0.02, "numSteps": 1000 }
 *   }
 *
 * A class-conditional model (forward(x, t, cond)) states how cond is built:
 *
 *     "conditioning": { "kind": "one-hot", "size": 11, "nullIndex": 10,
 *                       "classes": ["t-shirt/top", "trouser", ...] }
 *
 * cond row b is the one-hot row of class k (0 <= k < classes.length) or of nullIndex (no
 * class: the uncond input of classifier-free guidance); see lib/class-cond.ts.
 *
 * schedule kinds: discrete ({ betaSchedule, betaStart?, betaEnd?, numSteps? } or
 * { betas } or { alphasCumprod }), linear ({ beta0?, beta1? }), cosine ({}), edm
 * ({ sigmaMin?, sigmaMax? }).
 *
 * The parameter files of the reference Gaussian-mixture models (../shared/reference/models,
 * `"schedule": "discrete" | "linear" | "cosine"` with `ddpm_betas` / `beta_0`, `beta_1`,
 * and `D`) are read too: they are noise predictors on [D] vectors (or any shape with D
 * elements), data range unknown.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NoiseSchedule } from './schedule';
import type { ModelType } from './plan-builder';
import { expectFiniteArray, expectFiniteNumber, expectInteger, expectObject, expectOneOf, invalidType } from './validate';

export interface ModelCard {
  /** The file the card was read from. */
  file: string;
  modelType: ModelType;
  schedule: NoiseSchedule;
  /** Shape of one sample (no batch dimension), when the card states it. */
  shape?: number[];
  /** [low, high] of the data, when the card states it. */
  dataRange?: [number, number];
  name?: string;
  /** How a class-conditional model's cond input is built, when the card says so. */
  conditioning?: ClassConditioning;
}

/** The card's "conditioning": one-hot class rows of `size` floats, `nullIndex` = no class. */
export interface ClassConditioning {
  kind: 'one-hot';
  /** Floats per cond row (classes.length + 1: the classes and the null class). */
  size: number;
  /** Class names, in index order. */
  classes: string[];
  /** The index whose one-hot row means "no class" (the uncond input of guidance). */
  nullIndex: number;
}

function conditioningFromCard(spec: Record<string, unknown>): ClassConditioning {
  const kind = expectOneOf('conditioning.kind', ['one-hot'] as const, spec.kind);
  if (!Array.isArray(spec.classes) || spec.classes.length === 0 || spec.classes.some((c) => typeof c !== 'string' || c.trim() === '')) {
    throw invalidType('conditioning.classes', 'a non-empty array of class names (non-empty strings)', spec.classes);
  }
  const classes = spec.classes as string[];
  const size = expectInteger('conditioning.size', spec.size, { min: classes.length + 1, max: classes.length + 1 });
  const nullIndex = expectInteger('conditioning.nullIndex', spec.nullIndex, { min: classes.length, max: size - 1 });
  return { kind, size, classes: [...classes], nullIndex };
}

const MODEL_TYPES: readonly ModelType[] = ['noise', 'x_start', 'v', 'score'];

/** `dir/name.pt` -> `dir/name.json` (any extension is replaced). */
export function modelCardPath(modelPath: string): string {
  const ext = path.extname(modelPath);
  return (ext ? modelPath.slice(0, -ext.length) : modelPath) + '.json';
}

function scheduleFromCard(field: string, spec: Record<string, unknown>): NoiseSchedule {
  const kind = expectOneOf(`${field}.kind`, ['discrete', 'linear', 'cosine', 'edm'] as const, spec.kind);
  switch (kind) {
    case 'discrete': {
      if (spec.betas !== undefined) return NoiseSchedule.discrete({ betas: expectFiniteArray(`${field}.betas`, spec.betas) });
      if (spec.alphasCumprod !== undefined) {
        return NoiseSchedule.discrete({ alphasCumprod: expectFiniteArray(`${field}.alphasCumprod`, spec.alphasCumprod) });
      }
      const betaSchedule = expectOneOf(
        `${field}.betaSchedule`,
        ['linear', 'scaled_linear', 'squaredcos_cap_v2', 'squaredcos'] as const,
        spec.betaSchedule ?? 'linear',
      );
      return NoiseSchedule.discrete({
        kind: betaSchedule,
        N: spec.numSteps === undefined ? undefined : expectInteger(`${field}.numSteps`, spec.numSteps, { min: 2 }),
        betaStart: spec.betaStart === undefined ? undefined : expectFiniteNumber(`${field}.betaStart`, spec.betaStart),
        betaEnd: spec.betaEnd === undefined ? undefined : expectFiniteNumber(`${field}.betaEnd`, spec.betaEnd),
      });
    }
    case 'linear':
      return NoiseSchedule.linear({
        beta0: spec.beta0 === undefined ? undefined : expectFiniteNumber(`${field}.beta0`, spec.beta0),
        beta1: spec.beta1 === undefined ? undefined : expectFiniteNumber(`${field}.beta1`, spec.beta1),
      });
    case 'cosine':
      return NoiseSchedule.cosine();
    case 'edm':
      return NoiseSchedule.edm({
        sigmaMin: spec.sigmaMin === undefined ? undefined : expectFiniteNumber(`${field}.sigmaMin`, spec.sigmaMin),
        sigmaMax: spec.sigmaMax === undefined ? undefined : expectFiniteNumber(`${field}.sigmaMax`, spec.sigmaMax),
      });
  }
}

/** The reference GMM parameter files: `schedule` is a string. */
function scheduleFromReferenceGmm(card: Record<string, unknown>): NoiseSchedule {
  const kind = expectOneOf('schedule', ['discrete', 'linear', 'cosine'] as const, card.schedule);
  if (kind === 'discrete') {
    const b = expectObject('ddpm_betas', card.ddpm_betas);
    expectOneOf('ddpm_betas.kind', ['linspace'] as const, b.kind);
    return NoiseSchedule.discrete({
      kind: 'linear',
      N: expectInteger('ddpm_betas.count', b.count, { min: 2 }),
      betaStart: expectFiniteNumber('ddpm_betas.start', b.start),
      betaEnd: expectFiniteNumber('ddpm_betas.end', b.end),
    });
  }
  if (kind === 'linear') {
    return NoiseSchedule.linear({
      beta0: expectFiniteNumber('beta_0', card.beta_0),
      beta1: expectFiniteNumber('beta_1', card.beta_1),
    });
  }
  return NoiseSchedule.cosine();
}

/** Parses a model card object (see the module doc); `file` is used in error messages. */
export function parseModelCard(card: unknown, file: string): ModelCard {
  try {
    const obj = expectObject('the model card', card);
    if (typeof obj.schedule === 'string') {
      const D = obj.D === undefined ? undefined : expectInteger('D', obj.D, { min: 1 });
      return { file, modelType: 'noise', schedule: scheduleFromReferenceGmm(obj), shape: D ? [D] : undefined };
    }
    const schedule = scheduleFromCard('schedule', expectObject('schedule', obj.schedule));
    const modelType = expectOneOf('modelType', MODEL_TYPES, obj.modelType ?? 'noise');
    let shape: number[] | undefined;
    if (obj.shape !== undefined) {
      if (!Array.isArray(obj.shape) || obj.shape.length === 0) throw invalidType('shape', 'a non-empty array of positive integers', obj.shape);
      shape = obj.shape.map((d, i) => expectInteger(`shape[${i}]`, d, { min: 1 }));
    }
    let dataRange: [number, number] | undefined;
    if (obj.dataRange !== undefined) {
      const r = expectFiniteArray('dataRange', obj.dataRange, { minLength: 2 });
      if (r.length !== 2 || !(r[1] > r[0])) throw invalidType('dataRange', 'a pair [low, high] with low < high', obj.dataRange);
      dataRange = [r[0], r[1]];
    }
    const name = typeof obj.name === 'string' ? obj.name : undefined;
    const conditioning =
      obj.conditioning === undefined ? undefined : conditioningFromCard(expectObject('conditioning', obj.conditioning));
    return { file, modelType, schedule, shape, dataRange, name, ...(conditioning ? { conditioning } : {}) };
  } catch (err) {
    if (err instanceof Error) err.message = `Invalid model card ${file}: ${err.message}`;
    throw err;
  }
}

/** Reads and parses the card of `modelPath` (its .json sibling, or `cardPath` when given). */
export function readModelCard(modelPath: string, cardPath: string = modelCardPath(modelPath)): ModelCard {
  let text: string;
  try {
    text = fs.readFileSync(cardPath, 'utf8');
  } catch (err) {
    throw new Error(
      `Cannot read the model card ${cardPath} (${(err as NodeJS.ErrnoException).code ?? String(err)}): ` +
        'a model needs a JSON card beside it giving its schedule and sample shape (see docs/usage.md)',
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`Invalid model card ${cardPath}: not valid JSON (${(err as Error).message})`);
  }
  return parseModelCard(parsed, cardPath);
}
