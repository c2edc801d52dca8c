/**
 * Class conditioning for a class-conditional model (its card's "conditioning", lib/model-card.ts):
 * class names or indices -> the `cond` / `uncond` / `guidanceScale` that Sampler.sample takes.
 *
 *   const { path, card } = bundledModels.fmnistCond;
 *   const sampler = new Sampler({ model: await loadModel(path), schedule: card.schedule, steps: 12 });
 *   await sampler.sample({ shape: [4, ...card.shape!], seed: 0, ...classGuidance(card, ['sneaker', 7, 7, 0], 3) });
 *
 * cond row b is the one-hot row of sample b's class; uncond is the one-hot row of the null
 * class ("no label") for every sample. With guidance scale g the executor evaluates both and
 * uses raw = uncond_out + g (cond_out - uncond_out): g = 0 samples the unconditional model,
 * g = 1 the conditional one (then no uncond pass is made), g > 1 trades variety for
 * samples that look more like their class.
 */
import type { ClassConditioning, ModelCard } from './model-card';
import { expectFiniteNumber, formatAllowed, invalidType, outOfRange, withCode } from './validate';

/** What Sampler.sample needs for class-conditional sampling (spread into its options). */
export interface ClassGuidance {
  cond: Float32Array;
  condShape: [number, number];
  /** The null-class rows; absent when guidanceScale is 1 (the conditional model alone). */
  uncond?: Float32Array;
  guidanceScale?: number;
}

/** Lower case, letters and digits only: 'Ankle boot', 'ankle-boot' and 'ankle_boot' all read 'ankleboot'. */
function normalise(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** The conditioning of a card, or a TypeError naming `field` when the model is not class-conditional. */
export function conditioningOf(card: ModelCard | ClassConditioning, field = 'model'): ClassConditioning {
  if ('kind' in card && card.kind === 'one-hot') return card;
  const c = (card as ModelCard).conditioning;
  if (!c) {
    throw withCode(
      new TypeError(
        `Expected a class-conditional model (a card with a "conditioning" entry naming the classes) for ${field}, ` +
          `but the card ${(card as ModelCard).file} has none`,
      ),
      'ERR_INVALID_ARG_TYPE',
    );
  }
  return c;
}

/**
 * A class given as its index (a number, or a string of digits) or its name, matched without
 * case and punctuation against the whole name or one of its '/'-separated parts ('t-shirt',
 * 'top' and 'T-shirt/top' all name 't-shirt/top'). Anything else: an error naming `field`
 * and the allowed values.
 */
export function resolveClass(conditioning: ClassConditioning, value: string | number, field = 'class'): number {
  const { classes } = conditioning;
  const allowed = `a class index 0..${classes.length - 1} or a class name (${formatAllowed(classes)})`;
  if (typeof value === 'number' || (typeof value === 'string' && /^\s*-?\d+\s*$/.test(value))) {
    const k = Number(value);
    if (!Number.isInteger(k)) throw invalidType(field, allowed, value);
    if (k < 0 || k >= classes.length) throw outOfRange(field, allowed, value);
    return k;
  }
  if (typeof value !== 'string') throw invalidType(field, allowed, value);
  const key = normalise(value);
  const matches = key === '' ? [] : classes.flatMap((name, k) =>
    normalise(name) === key || name.split('/').some((part) => normalise(part) === key) ? [k] : [],
  );
  if (matches.length !== 1) throw invalidType(field, allowed, value);
  return matches[0];
}

/** One-hot cond rows [indices.length, size] for class (or null-class) indices. */
export function oneHotRows(conditioning: ClassConditioning, indices: readonly number[]): Float32Array {
  const { size } = conditioning;
  const rows = new Float32Array(indices.length * size);
  indices.forEach((k, b) => {
    if (!Number.isInteger(k) || k < 0 || k >= size) throw outOfRange(`indices[${b}]`, `an integer from 0 to ${size - 1}`, k);
    rows[b * size + k] = 1;
  });
  return rows;
}

/**
 * cond (one row per sample, in order), uncond (the null class) and the guidance scale for
 * `classes` (names or indices, one per sample; null: the null class, i.e. no class).
 * guidanceScale 1 gives cond alone.
 */
export function classGuidance(
  card: ModelCard | ClassConditioning,
  classes: ReadonlyArray<string | number | null>,
  guidanceScale = 1,
): ClassGuidance {
  const conditioning = conditioningOf(card);
  if (!Array.isArray(classes) || classes.length === 0) {
    throw invalidType('classes', 'a non-empty array of class names or indices (or null: no class), one per sample', classes);
  }
  const g = expectFiniteNumber('guidanceScale', guidanceScale);
  const indices = classes.map((c, b) => (c === null ? conditioning.nullIndex : resolveClass(conditioning, c, `classes[${b}]`)));
  const cond = oneHotRows(conditioning, indices);
  const condShape: [number, number] = [indices.length, conditioning.size];
  if (g === 1) return { cond, condShape };
  const uncond = oneHotRows(conditioning, indices.map(() => conditioning.nullIndex));
  return { cond, condShape, uncond, guidanceScale: g };
}
