/**
 * Option and input validation: small predicates that either return the checked value or
 * throw an error whose message always has the same shape:
 *
 *   Expected <what was allowed> for <field> but received <value> (<type>)
 *
 * e.g. "Expected one of 'v1', 'v2' for algorithm but received 'v3' (string)".
 *
 * Error classes follow Node's own conventions:
 *   - TypeError  for a value of the wrong type or not in an allowed set of names
 *                (Node's ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE),
 *   - RangeError for a number of the right type outside its allowed range
 *                (Node's ERR_OUT_OF_RANGE).
 *
 * Each error also carries Node's `code` for its kind: ERR_INVALID_ARG_TYPE (TypeError),
 * ERR_OUT_OF_RANGE (RangeError), ERR_INVALID_ARG_VALUE (an unknown option name).
 *
 * Every module of the package validates user input through these helpers, so messages stay
 * uniform. `field` is the option path as the user wrote it (e.g. "thresholding.ratio").
 */

/** Short description of a received value: `'v3' (string)`, `4 (number)`, `undefined`, `[3 items] (array)`. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return `'${value.length > 60 ? value.slice(0, 57) + '...' : value}' (string)`;
    case 'number':
      return `${String(value)} (number)`;
    case 'bigint':
      return `${String(value)}n (bigint)`;
    case 'boolean':
      return `${String(value)} (boolean)`;
    case 'function':
      return `function ${(value as { name?: string }).name || '(anonymous)'} (function)`;
    case 'symbol':
      return `${String(value)} (symbol)`;
    default:
      break;
  }
  if (Array.isArray(value)) return `[${value.length} items] (array)`;
  if (ArrayBuffer.isView(value)) {
    const name = (value as object).constructor?.name ?? 'TypedArray';
    const len = (value as unknown as { length?: number }).length;
    return `${name}(${len ?? '?'}) (${name})`;
  }
  const ctor = (value as object).constructor?.name;
  return `an object (${ctor && ctor !== 'Object' ? ctor : 'object'})`;
}

/** Formats a list of allowed values: `'v1', 'v2'` or `1, 2, 3`. */
export function formatAllowed(allowed: readonly unknown[]): string {
  return allowed.map((a) => (typeof a === 'string' ? `'${a}'` : String(a))).join(', ');
}

/** The one error message shape of the package. */
export function expectedMessage(field: string, expected: string, value: unknown): string {
  return `Expected ${expected} for ${field} but received ${describeValue(value)}`;
}

/** Sets `code` on an error (as Node's own argument errors have) and returns it. */
export function withCode<E extends Error>(error: E, code: string): E & { code: string } {
  return Object.assign(error, { code });
}

/** A TypeError in the package's message shape (code ERR_INVALID_ARG_TYPE). */
export function invalidType(field: string, expected: string, value: unknown): TypeError {
  return withCode(new TypeError(expectedMessage(field, expected, value)), 'ERR_INVALID_ARG_TYPE');
}

/** A RangeError in the package's message shape (code ERR_OUT_OF_RANGE). */
export function outOfRange(field: string, expected: string, value: unknown): RangeError {
  return withCode(new RangeError(expectedMessage(field, expected, value)), 'ERR_OUT_OF_RANGE');
}

export function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

/** `value` must be one of `allowed` (compared with ===). */
export function expectOneOf<T extends string | number | boolean>(field: string, allowed: readonly T[], value: unknown): T {
  if (!(allowed as readonly unknown[]).includes(value)) {
    throw invalidType(field, `one of ${formatAllowed(allowed)}`, value);
  }
  return value as T;
}

export interface NumberBounds {
  /** Inclusive lower bound. */
  min?: number;
  /** Inclusive upper bound. */
  max?: number;
  /** Exclusive lower bound. */
  above?: number;
  /** Exclusive upper bound. */
  below?: number;
}

function boundsText(b: NumberBounds): string {
  const parts: string[] = [];
  if (b.min !== undefined) parts.push(`>= ${b.min}`);
  if (b.above !== undefined) parts.push(`> ${b.above}`);
  if (b.max !== undefined) parts.push(`<= ${b.max}`);
  if (b.below !== undefined) parts.push(`< ${b.below}`);
  return parts.join(' and ');
}

function inBounds(v: number, b: NumberBounds): boolean {
  if (b.min !== undefined && !(v >= b.min)) return false;
  if (b.max !== undefined && !(v <= b.max)) return false;
  if (b.above !== undefined && !(v > b.above)) return false;
  if (b.below !== undefined && !(v < b.below)) return false;
  return true;
}

/** A finite number within optional bounds. Wrong type / NaN / Infinity: TypeError; out of bounds: RangeError. */
export function expectFiniteNumber(field: string, value: unknown, bounds: NumberBounds = {}): number {
  const range = boundsText(bounds);
  const what = range ? `a finite number ${range}` : 'a finite number';
  if (!isFiniteNumber(value)) throw invalidType(field, what, value);
  if (!inBounds(value, bounds)) throw outOfRange(field, what, value);
  return value;
}

/** An integer within optional bounds. */
export function expectInteger(field: string, value: unknown, bounds: NumberBounds = {}): number {
  const range = boundsText(bounds);
  const what = range ? `an integer ${range}` : 'an integer';
  if (!isFiniteNumber(value) || !Number.isInteger(value)) throw invalidType(field, what, value);
  if (!inBounds(value, bounds)) throw outOfRange(field, what, value);
  return value;
}

export function expectBoolean(field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw invalidType(field, 'a boolean', value);
  return value;
}

export function expectObject(field: string, value: unknown): Record<string, unknown> {
  if (!isPlainObject(value)) throw invalidType(field, 'an object', value);
  return value;
}

export function expectFunction(field: string, value: unknown): (...args: never[]) => unknown {
  if (typeof value !== 'function') throw invalidType(field, 'a function', value);
  return value as (...args: never[]) => unknown;
}

/**
 * A non-empty array (or typed array) of finite numbers; returns a Float64Array copy.
 * The first bad element is named in the message: "betas[17]".
 */
export function expectFiniteArray(field: string, value: unknown, opts: { minLength?: number } = {}): Float64Array {
  const minLength = opts.minLength ?? 1;
  const isArrayLike = Array.isArray(value) || value instanceof Float64Array || value instanceof Float32Array;
  if (!isArrayLike) throw invalidType(field, 'an array of finite numbers', value);
  const arr = value as ArrayLike<unknown>;
  if (arr.length < minLength) {
    throw outOfRange(`${field}.length`, `an array of at least ${minLength} finite numbers`, arr.length);
  }
  const out = new Float64Array(arr.length);
  for (let i = 0; i < arr.length; i++) {
    const v = arr[i];
    if (!isFiniteNumber(v)) throw invalidType(`${field}[${i}]`, 'a finite number', v);
    out[i] = v;
  }
  return out;
}

/** Rejects keys of `obj` that are not in `known` (catches misspelt options). */
export function expectKnownKeys(field: string, obj: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(obj)) {
    if (obj[key] === undefined) continue;
    if (!known.includes(key)) {
      throw withCode(
        new TypeError(`Expected only the options ${formatAllowed(known)} in ${field} but received unknown option '${key}'`),
        'ERR_INVALID_ARG_VALUE',
      );
    }
  }
}

/** Throws `err()` when `condition` is false (for cross-field checks). */
export function ensure(condition: boolean, err: () => Error): void {
  if (!condition) throw err();
}
