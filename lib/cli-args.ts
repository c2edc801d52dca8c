/**
 * Command line of `scire`: the flags, their help text, and parsing into typed options.
 * Anything wrong on the command line is a UsageError (the CLI prints it with the usage
 * text and exits with status 2).
 */
import { parseArgs } from 'node:util';
import {
  ALGORITHMS,
  MAX_STEPS,
  METHODS,
  MODEL_TYPES,
  RDE_MODES,
  SCIRE_CORRECTORS,
  SOLVERS,
  UNIPC_VARIANTS,
  type Algorithm,
  type Method,
  type ModelType,
  type RdeMode,
  type ScireCorrector,
  type SolverName,
  type UniPcVariant,
} from './options';
import { PRESETS, type Preset } from './presets/auto';
import { SKIP_TYPES, type SkipType } from './timesteps';
import type { DeviceName } from './native-types';

export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Prints what ended a command and returns its exit status: a UsageError with the usage text
 * (status 2), anything else as one line (status 1).
 */
export function reportCliError(err: unknown, usage: string): number {
  if (err instanceof UsageError) {
    process.stderr.write(`scire: ${err.message}\n\n${usage}\n`);
    return 2;
  }
  process.stderr.write(`scire: ${err instanceof Error ? err.message : String(err)}\n`);
  return 1;
}

export const USAGE = `Usage: scire <command> [flags]

Commands:
  sample   Sample a diffusion model and write the samples to a PNG grid or a .npy file
  inpaint  Fill in the masked-out part of an image (PNG in, PNG grid or .npy out)
  info     Print the build: package version, LibTorch version, CUDA on/off, visible GPUs
  worker   Sample the jobs of a BullMQ (Redis) queue: one process per device (needs bullmq)
  submit   Put a sampling request on the queue, wait for it, write the result

Run "scire <command> --help" for the flags of a command.`;

const list = (xs: readonly unknown[]): string => xs.join(' | ');

export const SAMPLE_USAGE = `Usage: scire sample [flags]

Samples a TorchScript diffusion model with SciRE-Solver (or DDIM / DPM-Solver++ / UniPC) and writes
the batch as a PNG grid (image-shaped samples, values mapped from the model's data range,
[-1, 1] by default) or as a .npy array (float32, any shape). The model's schedule, sample
shape and prediction type come from the JSON card next to it (model.pt -> model.json).
Defaults: the bundled Fashion-MNIST model, preset auto (the solver configuration measured
best for the schedule and NFE, lib/presets/auto-table.json) at 12 network evaluations, 64
samples. Any solver flag (or --preset none) turns the preset off; compilePlan's defaults are
then the paper's few-step recommendation (SciRE v1, multistep, order 3, NSR time steps).

Flags:
  --model <file.pt>     TorchScript model (default: the bundled models/fmnist_unet.pt; with --class
                        or --classes the bundled class-conditional models/fmnist_cond_unet.pt)
  --card <file.json>    Model card (default: the model path with .json)
  --steps <int>         Solver steps, 1 to ${MAX_STEPS} (default 12); the NFE, except singlestep_fixed
                        (floor(steps/order)*order)
  --preset <name>       auto | none (default auto unless a solver flag is given)
  --solver <name>       ${list(SOLVERS)} (default scire)
  --algorithm <name>    ${list(ALGORITHMS)} (scire only; default v1)
  --method <name>       ${list(METHODS)} (default multistep)
  --order <int>         1 | 2 | 3 (default 3 for scire, 2 for dpmpp, 1 for ddim)
  --skip <name>         ${list(SKIP_TYPES)}
                        (default nsr for scire, logsnr otherwise)
  --rde <name>          ${list(RDE_MODES)} (scire only; default faithful: the official
                        recursive difference)
  --corrector <name>    ${list(SCIRE_CORRECTORS)} (scire multistep only; default none): the
                        UniC-style corrector of docs/math.md section 9, no extra NFE
  --variant <name>      ${list(UNIPC_VARIANTS)} (unipc only; default bh1)
  --final-corrector     unipc only: also correct the last step (one more evaluation: NFE = steps + 1)
  --no-lower-order-final  Keep the full order in the last steps (default: lowered, see docs/math.md)
  --model-type <name>   ${list(MODEL_TYPES)} (default: the card's, else noise)
  --denoise-to-zero     Add a final data-prediction evaluation at the end time (+1 NFE)
  --class <name|index>  Sample this class of a class-conditional model (its card's "conditioning"),
                        e.g. --class sneaker or --class 7
  --classes             One row per class of a class-conditional model (-n samples per class)
  --guidance <g>        Classifier-free guidance scale with --class / --classes: a finite number
                        (default 3; 0: the unconditional model, 1: the conditional model alone)
  -n, --samples <int>   Number of samples, >= 1 (default 64; per class with --classes, default 8)
  --shape <dims>        Shape of one sample, e.g. 1,28,28 (default: the card's)
  --seed <int>          Seed of the starting noise, same as torch.manual_seed (default 0)
  --device <name>       cpu | cuda | cuda:N (default cpu)
  --dtype <name>        float32 | float16 | bfloat16 (default float32)
  --out <file>          Output: .png (grid) or .npy (default samples.png)
  --preview-every <K>   Also write <out>.preview.png: the data predictions x0 every K evaluations
                        (and at the last), one row per previewed evaluation, the first 8 samples
                        as columns (image-shaped samples only)
  --classifier <file.pt> Classifier guidance with a noise-aware classifier forward(x_t, t) -> logits
                        [B, C] (e.g. the bundled models/fmnist_timeclf.pt); needs --class
  --class <name|int>    The class to guide every sample toward: an index in [0, C) or a name from
                        the classifier's card (its .json "classes", e.g. sneaker)
  --classifier-scale <s> Classifier guidance scale (default 1; see docs/usage.md for the scale
                        the bundled classifier needs)
  -q, --quiet           No progress output
  -h, --help            Show this help`;

export const INPAINT_USAGE = `Usage: scire inpaint --image <in.png> --mask <mask.png> [flags]

Fills in the unknown part of an image with the model (lib/inpaint.ts): after every solver
step the known pixels are put back on the noised image alpha_t x0 + sigma_t noise (the same
noise as the start), and the result keeps them exactly. The image must have the model's
height and width (the bundled model: 28 x 28); colour is converted to the model's channels.
Mask: a PNG of the same size, WHITE = KEEP (known pixel), BLACK = GENERATE; gray levels blend
(mask value = gray / 255). Writes a PNG row: the input with the generated part blanked out,
then the samples; or a .npy of the samples (float32, [n, c, h, w], the model's data range).
Deterministic: the same --seed gives the same result.

Flags:
  --image <in.png>      The image (required)
  --mask <mask.png>     The mask, same size (required): white = keep, black = generate
  --out <file>          Output: .png (row of tiles) or .npy (default inpainted.png)
  -n, --samples <int>   Number of fillings of the image, >= 1 (default 8)
  --seed <int>          Seed of the noise, same as torch.manual_seed (default 0)
  --steps <int>         Solver steps, 1 to ${MAX_STEPS} (default 12; preset auto chooses the solver)
  --model <file.pt>     TorchScript model (default: the bundled models/fmnist_unet.pt)
  --card <file.json>    Model card (default: the model path with .json)
  --device <name>       cpu | cuda | cuda:N (default cpu)
  --dtype <name>        float32 | float16 | bfloat16 (default float32)
  -q, --quiet           No progress output
  -h, --help            Show this help`;

export const INFO_USAGE = `Usage: scire info [flags]

Prints the package version, the LibTorch version the addon was built with, whether CUDA
is compiled in, the number of visible GPUs and the build system.

Flags:
  --json       Print the same as one JSON object
  -h, --help   Show this help`;

export type Device = DeviceName;
export type DType = 'float32' | 'float16' | 'bfloat16';

export interface SampleArgs {
  command: 'sample';
  help: boolean;
  model?: string;
  card?: string;
  steps: number;
  preset?: Preset;
  solver?: SolverName;
  algorithm?: Algorithm;
  method?: Method;
  order?: 1 | 2 | 3;
  skip?: SkipType;
  rde?: RdeMode;
  corrector?: ScireCorrector;
  variant?: UniPcVariant;
  /** --final-corrector (undefined when absent). */
  finalCorrector?: true;
  /** --no-lower-order-final gives false (undefined when absent). */
  lowerOrderFinal?: false;
  modelType?: ModelType;
  denoiseToZero: boolean;
  samples: number;
  shape?: number[];
  seed: number | bigint;
  device: Device;
  dtype: DType;
  out: string;
  /** --class as given (a name or an index; resolved against the model card). */
  class?: string;
  /** --classes: one row per class. */
  classes: boolean;
  /** --guidance (undefined: the default, 3, when a class is asked for). */
  guidance?: number;
  /** Write a preview strip of the x0 predictions every K evaluations (undefined: none). */
  previewEvery?: number;
  /** Classifier guidance: the classifier file, the class (index or name, resolved with its card), the scale. */
  classifier?: string;
  classLabel?: string;
  classifierScale?: number;
  quiet: boolean;
}

export interface InpaintArgs {
  command: 'inpaint';
  help: boolean;
  image?: string;
  mask?: string;
  out: string;
  samples: number;
  seed: number | bigint;
  steps: number;
  model?: string;
  card?: string;
  device: Device;
  dtype: DType;
  quiet: boolean;
}

export interface InfoArgs {
  command: 'info';
  help: boolean;
  json: boolean;
}

export interface HelpArgs {
  command: 'help';
}

export type CliArgs = SampleArgs | InpaintArgs | InfoArgs | HelpArgs;

const DTYPES: readonly DType[] = ['float32', 'float16', 'bfloat16'];

/** A flag that takes one of `allowed` (undefined when absent). */
export function choice<T extends string>(flag: string, allowed: readonly T[], value: string | undefined): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`--${flag} must be one of ${list(allowed)}, got '${value}'`);
  }
  return value as T;
}

function integer(flag: string, value: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  const allowed = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
  if (!/^\d+$/.test(value.trim())) throw new UsageError(`--${flag} must be ${allowed}, got '${value}'`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`--${flag} must be ${allowed}, got '${value}'`);
  return n;
}

function seedValue(value: string | undefined): number | bigint {
  if (value === undefined) return 0;
  if (!/^\d+$/.test(value.trim())) throw new UsageError(`--seed must be a non-negative integer below 2^64, got '${value}'`);
  const big = BigInt(value.trim());
  if (big >= 1n << 64n) throw new UsageError(`--seed must be a non-negative integer below 2^64, got '${value}'`);
  return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

function shapeValue(value: string | undefined): number[] | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(/[,x]/);
  if (parts.some((p) => !/^\d+$/.test(p.trim()) || Number(p) < 1)) {
    throw new UsageError(`--shape must be positive integers separated by commas (e.g. 1,28,28), got '${value}'`);
  }
  return parts.map(Number);
}

/** --device: 'cpu' (default), 'cuda' or 'cuda:N' (also used by lib/cli-worker.ts). */
export function device(value: string | undefined): DeviceName {
  if (value === undefined) return 'cpu';
  if (!/^(cpu|cuda(:\d+)?)$/.test(value)) throw new UsageError(`--device must be cpu, cuda or cuda:N, got '${value}'`);
  return value as DeviceName;
}

function guidanceValue(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const g = Number(value);
  if (value.trim() === '' || !Number.isFinite(g)) throw new UsageError(`--guidance must be a finite number (e.g. 3), got '${value}'`);
  return g;
}

/** The default guidance scale of `scire sample --class` / `--classes`. */
export const DEFAULT_GUIDANCE = 3;

/** The default -n with --classes (samples per class). */
export const DEFAULT_SAMPLES_PER_CLASS = 8;

function out(value: string | undefined, fallback = 'samples.png'): string {
  if (value === undefined) return fallback;
  if (!/\.(png|npy)$/i.test(value)) throw new UsageError(`--out must name a .png or .npy file, got '${value}'`);
  return value;
}

/** What people type for a flag that has another name here. */
const FLAG_SYNONYMS: Record<string, string> = { nfe: 'steps', batch: 'samples', 'num-samples': 'samples', scheduler: 'solver', sampler: 'solver' };

/** Levenshtein distance (small strings only: flag names). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length];
}

/** ' (did you mean ...?)' for an unknown flag: its short form, a synonym or a close spelling; '' if none. */
export function flagHint(given: string, options: Record<string, { type: string; short?: string }>): string {
  const name = given.replace(/^-+/, '').split('=')[0];
  for (const [long, o] of Object.entries(options)) if (o.short === name) return ` (did you mean -${name}, i.e. --${long}?)`;
  const synonym = FLAG_SYNONYMS[name];
  if (synonym !== undefined && synonym in options) return ` (did you mean --${synonym}?)`;
  let best = '';
  let bestDistance = name.length <= 3 ? 2 : 3;
  for (const long of Object.keys(options)) {
    const d = editDistance(name, long);
    if (d < bestDistance) [best, bestDistance] = [long, d];
  }
  return best ? ` (did you mean --${best}?)` : '';
}

/**
 * Runs a parseArgs call, its errors (unknown flag, missing value, ...) turned into one-line
 * UsageErrors; an unknown flag is named with the closest flag of `options`.
 */
export function guarded<T>(parse: () => T, options: Record<string, { type: string; short?: string }> = {}): T {
  try {
    return parse();
  } catch (err) {
    const e = err as Error & { code?: string };
    const unknown = e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /'([^']+)'/.exec(String(e.message))?.[1] : undefined;
    if (unknown !== undefined) throw new UsageError(`unknown flag '${unknown}'${flagHint(unknown, options)}`);
    const message = String(e.message ?? err)
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean)
      .join(' ');
    throw new UsageError(message);
  }
}

/**
 * `--seed -1` / `-n -3`: parseArgs refuses a value that starts with a dash as ambiguous (its
 * message talks about '--seed=-XYZ'); a negative number after a flag that takes a value is
 * meant as its value, so it is joined to the flag and the flag's own check names the problem.
 */
function joinNegativeValues(args: string[], options: Record<string, { type: string; short?: string }>): string[] {
  const takesValue = new Map<string, string>();
  for (const [name, o] of Object.entries(options)) {
    if (o.type !== 'string') continue;
    takesValue.set(`--${name}`, name);
    if (o.short) takesValue.set(`-${o.short}`, name);
  }
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = takesValue.get(args[i]);
    const next = args[i + 1];
    if (name !== undefined && next !== undefined && /^-(\d|\.\d|Infinity|NaN)/.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else {
      out.push(args[i]);
    }
  }
  return out;
}

const SAMPLE_OPTIONS = {
  model: { type: 'string' },
  card: { type: 'string' },
  steps: { type: 'string' },
  solver: { type: 'string' },
  algorithm: { type: 'string' },
  method: { type: 'string' },
  order: { type: 'string' },
  preset: { type: 'string' },
  skip: { type: 'string' },
  rde: { type: 'string' },
  corrector: { type: 'string' },
  variant: { type: 'string' },
  'final-corrector': { type: 'boolean' },
  'no-lower-order-final': { type: 'boolean' },
  'model-type': { type: 'string' },
  'denoise-to-zero': { type: 'boolean' },
  samples: { type: 'string', short: 'n' },
  shape: { type: 'string' },
  seed: { type: 'string' },
  device: { type: 'string' },
  dtype: { type: 'string' },
  out: { type: 'string' },
  'preview-every': { type: 'string' },
  classifier: { type: 'string' },
  class: { type: 'string' },
  'classifier-scale': { type: 'string' },
  classes: { type: 'boolean' },
  guidance: { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

function finiteValue(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(n)) throw new UsageError(`--${flag} must be a finite number, got '${value}'`);
  return n;
}

function parseSample(args: string[]): SampleArgs {
  const { values, positionals } = guarded(() =>
    parseArgs({
      args: joinNegativeValues(args, SAMPLE_OPTIONS),
      strict: true,
      allowPositionals: true,
      options: SAMPLE_OPTIONS,
    }),
    SAMPLE_OPTIONS,
  );
  if (positionals.length > 0) throw new UsageError(`scire sample takes no positional arguments, got '${positionals[0]}'`);
  const order = integer('order', values.order, 1);
  if (order !== undefined && order > 3) throw new UsageError(`--order must be 1, 2 or 3, got '${values.order}'`);
  const classes = values.classes === true;
  if (classes && values.class !== undefined) {
    throw new UsageError(`--class and --classes exclude each other (--class ${values.class}: one class; --classes: a row per class)`);
  }
  if (values.class !== undefined && values.class.trim() === '') {
    throw new UsageError(`--class must be a class name or index of the model's card, got ''`);
  }
  const guidance = guidanceValue(values.guidance);
  if (guidance !== undefined && values.class === undefined && !classes) {
    throw new UsageError(`--guidance ${values.guidance} needs --class <name|index> or --classes (guidance steers towards a class)`);
  }
  // --class is the classifier's label with --classifier (classifier guidance), else the class of
  // a class-conditional model (classifier-free guidance, --guidance).
  if (values.classifier === undefined) {
    if (values['classifier-scale'] !== undefined) throw new UsageError('--classifier-scale needs --classifier <file.pt> (a noise-aware classifier)');
  } else {
    if (values.class === undefined) throw new UsageError('--classifier needs --class <name|int>: the class to guide the samples toward');
    if (guidance !== undefined) {
      throw new UsageError(
        `--guidance ${values.guidance} is classifier-free guidance of a class-conditional model; with --classifier the scale is --classifier-scale`,
      );
    }
  }
  return {
    command: 'sample',
    help: values.help === true,
    model: values.model,
    card: values.card,
    steps: integer('steps', values.steps, 1, MAX_STEPS) ?? 12,
    preset: choice('preset', PRESETS, values.preset),
    solver: choice('solver', SOLVERS, values.solver),
    algorithm: choice('algorithm', ALGORITHMS, values.algorithm),
    method: choice('method', METHODS, values.method),
    order: order as 1 | 2 | 3 | undefined,
    skip: choice('skip', SKIP_TYPES, values.skip),
    rde: choice('rde', RDE_MODES, values.rde),
    corrector: choice('corrector', SCIRE_CORRECTORS, values.corrector),
    variant: choice('variant', UNIPC_VARIANTS, values.variant),
    finalCorrector: values['final-corrector'] === true ? true : undefined,
    lowerOrderFinal: values['no-lower-order-final'] === true ? false : undefined,
    modelType: choice('model-type', MODEL_TYPES, values['model-type']),
    denoiseToZero: values['denoise-to-zero'] === true,
    samples: integer('samples', values.samples, 1) ?? (classes ? DEFAULT_SAMPLES_PER_CLASS : 64),
    shape: shapeValue(values.shape),
    seed: seedValue(values.seed),
    device: device(values.device),
    dtype: choice('dtype', DTYPES, values.dtype) ?? 'float32',
    out: out(values.out),
    previewEvery: integer('preview-every', values['preview-every'], 1),
    classifier: values.classifier,
    classLabel: values.class,
    classifierScale: finiteValue('classifier-scale', values['classifier-scale']),
    class: values.class,
    classes,
    guidance,
    quiet: values.quiet === true,
  };
}

const INPAINT_OPTIONS = {
  image: { type: 'string' },
  mask: { type: 'string' },
  out: { type: 'string' },
  samples: { type: 'string', short: 'n' },
  seed: { type: 'string' },
  steps: { type: 'string' },
  model: { type: 'string' },
  card: { type: 'string' },
  device: { type: 'string' },
  dtype: { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parseInpaint(args: string[]): InpaintArgs {
  const { values, positionals } = guarded(() =>
    parseArgs({ args: joinNegativeValues(args, INPAINT_OPTIONS), strict: true, allowPositionals: true, options: INPAINT_OPTIONS }),
    INPAINT_OPTIONS,
  );
  if (positionals.length > 0) throw new UsageError(`scire inpaint takes no positional arguments, got '${positionals[0]}'`);
  const help = values.help === true;
  if (!help && values.image === undefined) throw new UsageError('--image <in.png> is required');
  if (!help && values.mask === undefined) throw new UsageError('--mask <mask.png> is required (white = keep, black = generate)');
  for (const flag of ['image', 'mask'] as const) {
    const v = values[flag];
    if (v !== undefined && !/\.png$/i.test(v)) throw new UsageError(`--${flag} must name a .png file, got '${v}'`);
  }
  return {
    command: 'inpaint',
    help,
    image: values.image,
    mask: values.mask,
    out: out(values.out, 'inpainted.png'),
    samples: integer('samples', values.samples, 1) ?? 8,
    seed: seedValue(values.seed),
    steps: integer('steps', values.steps, 1, MAX_STEPS) ?? 12,
    model: values.model,
    card: values.card,
    device: device(values.device),
    dtype: choice('dtype', DTYPES, values.dtype) ?? 'float32',
    quiet: values.quiet === true,
  };
}

const INFO_OPTIONS = { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;

function parseInfo(args: string[]): InfoArgs {
  const { values, positionals } = guarded(() =>
    parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: INFO_OPTIONS,
    }),
    INFO_OPTIONS,
  );
  if (positionals.length > 0) throw new UsageError(`scire info takes no positional arguments, got '${positionals[0]}'`);
  return { command: 'info', help: values.help === true, json: values.json === true };
}

/** Parses argv (without node and the script). Throws UsageError. */
export function parseCommandLine(argv: string[]): CliArgs {
  const [command, ...rest] = argv;
  if (command === undefined) throw new UsageError('no command given (expected sample, inpaint or info)');
  if (command === '-h' || command === '--help' || command === 'help') return { command: 'help' };
  if (command === 'sample') return parseSample(rest);
  if (command === 'inpaint') return parseInpaint(rest);
  if (command === 'info') return parseInfo(rest);
  throw new UsageError(`unknown command '${command}' (expected sample, inpaint, info, worker or submit)`);
}
