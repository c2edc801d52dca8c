/**
 * The data of a sampling job on the queue (JSON, as BullMQ stores it) and its translation
 * into what the Sampler takes.
 *
 *   { n: 4, seed: 7, steps: 6, output: 'png' }
 *   { shape: [4, 1, 28, 28], seed: '18446744073709551615', solver: 'dpmpp', order: 2, output: 'npy' }
 *   { n: 2, cond: [...], uncond: [...], guidanceScale: 3, output: 'f32' }
 *
 * Fields:
 *   n | shape        number of samples (the worker's sample shape), or the full batch shape
 *   seed             integer in [0, 2^53) or a decimal string below 2^64 (for larger seeds)
 *   tStart           start time of the solve
 *   cond, condShape, uncond, guidanceScale   conditioning (JSON arrays of numbers)
 *   output           'f32' (raw little-endian float32, default) | 'npy' | 'png'
 *   preset, steps, solver, algorithm, method, order, skip, denoiseToZero, lowerOrderFinal,
 *   tEnd, thresholding, rde, variant, finalCorrector, corrector, nsrShift, rho
 *                    solver options (those of compilePlan except schedule and modelType,
 *                    which belong to the worker's model, and tStart, a sample option here)
 *
 * Only the JSON-specific checks live here (known keys, n vs shape, arrays to Float32Array,
 * the output format, the worker's limits). Every solver option is checked by the Sampler's
 * constructor (compilePlan) and every sample option by sampler.sample(), with the package's
 * messages; the worker turns those TypeErrors / RangeErrors into unrecoverable job failures.
 */
import { createHash } from 'node:crypto';
import { OPTION_KEYS, type CompileOptions } from '../options';
import { expectShape, type SampleOptions } from '../sampler';
import {
  expectFiniteArray,
  expectInteger,
  expectKnownKeys,
  expectObject,
  expectOneOf,
  invalidType,
  outOfRange,
} from '../validate';

export type OutputFormat = 'f32' | 'npy' | 'png';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['f32', 'npy', 'png'];

/** Solver options a job may set (compilePlan's, less what belongs to the model). */
export const JOB_SOLVER_KEYS: readonly string[] = OPTION_KEYS.filter((k) => k !== 'schedule' && k !== 'modelType' && k !== 'tStart');
const JOB_SAMPLE_KEYS = ['n', 'shape', 'seed', 'tStart', 'cond', 'condShape', 'uncond', 'guidanceScale', 'output'];
export const JOB_KEYS: readonly string[] = [...JOB_SAMPLE_KEYS, ...JOB_SOLVER_KEYS];

/** What the client sends (the job's data). */
export interface SampleJobData {
  n?: number;
  shape?: number[];
  seed?: number | string;
  tStart?: number;
  cond?: number[];
  condShape?: number[];
  uncond?: number[];
  guidanceScale?: number;
  output?: OutputFormat;
  preset?: CompileOptions['preset'];
  steps?: number;
  solver?: CompileOptions['solver'];
  algorithm?: CompileOptions['algorithm'];
  method?: CompileOptions['method'];
  order?: number;
  skip?: CompileOptions['skip'];
  denoiseToZero?: boolean;
  lowerOrderFinal?: boolean;
  tEnd?: number;
  thresholding?: CompileOptions['thresholding'];
  rde?: CompileOptions['rde'];
  variant?: CompileOptions['variant'];
  finalCorrector?: boolean;
  corrector?: CompileOptions['corrector'];
  nsrShift?: number;
  rho?: number;
}

/** What the worker knows when it reads a job. */
export interface JobLimits {
  /** Shape of one sample (the model card's); needed for `n`, and enforced on `shape`. */
  sampleShape?: readonly number[];
  /** Most samples in one job (default 64). */
  maxSamples: number;
  /** Most bytes of float32 samples in one result (default 16 MiB). */
  maxResultBytes: number;
}

export const DEFAULT_MAX_JOB_SAMPLES = 64;
export const DEFAULT_MAX_RESULT_BYTES = 16 * 1024 * 1024;

/** A job read into Sampler terms. */
export interface ParsedJob {
  /** The solver options the job overrides (validated later by the Sampler constructor). */
  solver: Record<string, unknown>;
  /** The sample() options (validated by sample()). */
  sample: Pick<SampleOptions, 'shape' | 'seed' | 'tStart' | 'cond' | 'condShape' | 'uncond' | 'guidanceScale'>;
  output: OutputFormat;
}

function float32Field(field: string, value: unknown): Float32Array | undefined {
  if (value === undefined) return undefined;
  return Float32Array.from(expectFiniteArray(field, value));
}

/** seed: a number (checked by sample()) or a decimal string for seeds >= 2^53. */
function seedField(value: unknown): number | bigint | undefined {
  if (typeof value !== 'string') return value as number | undefined;
  if (!/^\d{1,20}$/.test(value)) throw invalidType('seed', 'an integer in [0, 2^64) (a decimal string for seeds >= 2^53)', value);
  const big = BigInt(value);
  if (big >= 1n << 64n) throw outOfRange('seed', 'an integer in [0, 2^64)', value);
  return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

/**
 * Reads a job's data. Throws a TypeError / RangeError in the package's message shape for
 * data that no worker can run (unknown field, n and shape together, a shape that is not the
 * model's, too many samples, a PNG of non-image samples, ...).
 */
export function parseJobData(data: unknown, limits: JobLimits): ParsedJob {
  const o = expectObject('job data', data);
  expectKnownKeys('job data', o, JOB_KEYS);
  const output = o.output === undefined ? 'f32' : expectOneOf('output', OUTPUT_FORMATS, o.output);

  let shape: number[];
  if (o.n !== undefined && o.shape !== undefined) {
    throw invalidType('shape', 'either n or shape, not both', o.shape);
  }
  if (o.shape !== undefined) {
    shape = expectShape('shape', o.shape);
    const ss = limits.sampleShape;
    if (ss && (shape.length !== ss.length + 1 || ss.some((d, i) => shape[i + 1] !== d))) {
      throw outOfRange('shape', `[n, ${ss.join(', ')}] (the model's sample shape)`, `[${shape.join(', ')}]`);
    }
  } else {
    const n = o.n === undefined ? 1 : expectInteger('n', o.n, { min: 1 });
    if (!limits.sampleShape) {
      throw invalidType('shape', 'a batch shape [n, ...sample] (this worker has no sample shape to go with n)', o.shape);
    }
    shape = [n, ...limits.sampleShape];
  }
  if (shape[0] > limits.maxSamples) {
    throw outOfRange(o.shape !== undefined ? 'shape[0]' : 'n', `at most ${limits.maxSamples} samples per job (the worker's maxSamples)`, shape[0]);
  }
  const bytes = shape.reduce((a, b) => a * b, 1) * 4;
  if (bytes > limits.maxResultBytes) {
    throw outOfRange('shape', `a batch of at most ${limits.maxResultBytes} bytes of float32 samples (the worker's maxResultBytes)`, `[${shape.join(', ')}] (${bytes} bytes)`);
  }
  if (output === 'png' && !(shape.length === 4 && (shape[1] === 1 || shape[1] === 3))) {
    throw outOfRange('output', "'png' only for image samples [n, 1 or 3, height, width] (use 'npy' or 'f32')", `'png' with shape [${shape.join(', ')}]`);
  }

  const solver: Record<string, unknown> = {};
  for (const key of JOB_SOLVER_KEYS) if (o[key] !== undefined) solver[key] = o[key];
  return {
    solver,
    output,
    sample: {
      shape,
      seed: seedField(o.seed),
      tStart: o.tStart as number | undefined,
      cond: float32Field('cond', o.cond),
      condShape: o.condShape as number[] | undefined,
      uncond: float32Field('uncond', o.uncond),
      guidanceScale: o.guidanceScale as number | undefined,
    },
  };
}

/** JSON with the keys of every object sorted: equal requests give equal strings. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * A job id derived from the request (same request, seed included -> same id): BullMQ adds a
 * job whose id already exists as a no-op, so a resubmitted request returns the stored result
 * instead of sampling again. 'scire-' + 32 hex digits of SHA-256 (BullMQ refuses integer ids).
 */
export function jobIdFor(data: SampleJobData): string {
  return 'scire-' + createHash('sha256').update(canonicalJson(data)).digest('hex').slice(0, 32);
}
