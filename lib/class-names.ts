/**
 * Class names of a classifier for `scire sample --class`: the "classes" array of the JSON card
 * beside the classifier (fmnist_timeclf.pt -> fmnist_timeclf.json; see models/README.md).
 *
 *   resolveClassLabel('sneaker', ['t-shirt', ..., 'sneaker', ...]) -> 7
 *   resolveClassLabel('7', undefined)                              -> 7 (checked against C when it runs)
 *
 * Names match case-insensitively, with spaces, '-' and '_' treated alike ("ankle boot" =
 * "ankle-boot"). A bad value is a RangeError naming the flag and listing the names.
 */
import * as fs from 'fs';
import { withCode } from './validate';

/** The card's class names, or undefined when the classifier has no card (or no "classes"). */
export function readClassNames(classifierPath: string): string[] | undefined {
  const cardPath = classifierPath.replace(/\.pt$/i, '') + '.json';
  let text: string;
  try {
    text = fs.readFileSync(cardPath, 'utf8');
  } catch {
    return undefined;
  }
  let card: unknown;
  try {
    card = JSON.parse(text);
  } catch (err) {
    throw new Error(`Invalid classifier card ${cardPath}: not valid JSON (${(err as Error).message})`);
  }
  const classes = (card as { classes?: unknown } | null)?.classes;
  if (classes === undefined) return undefined;
  if (!Array.isArray(classes) || classes.length === 0 || !classes.every((c) => typeof c === 'string' && c.length > 0)) {
    throw new Error(`Invalid classifier card ${cardPath}: "classes" must be a non-empty array of names`);
  }
  return classes as string[];
}

const normalise = (name: string): string => name.trim().toLowerCase().replace(/[\s_-]+/g, '-');

/** The class index of `value` (an integer, or a name from `names`). */
export function resolveClassLabel(value: string, names: readonly string[] | undefined, flag = '--class'): number {
  const listed = names ? ` (${names.map((n, i) => `${i} ${n}`).join(', ')})` : '';
  if (/^\d+$/.test(value.trim())) {
    const k = Number(value.trim());
    if (names && k >= names.length) {
      throw withCode(new RangeError(`${flag} must be a class index in [0, ${names.length}) or a class name${listed}, got '${value}'`), 'ERR_OUT_OF_RANGE');
    }
    return k;
  }
  const k = names ? names.findIndex((n) => normalise(n) === normalise(value)) : -1;
  if (k < 0) {
    const allowed = names ? `a class name or index${listed}` : 'a class index (the classifier has no card with "classes" to look names up in)';
    throw withCode(new RangeError(`${flag} must be ${allowed}, got '${value}'`), 'ERR_OUT_OF_RANGE');
  }
  return k;
}
