/**
 * The options of compilePlan: their types, defaults and validation.
 *
 * compilePlan({ schedule, steps }) alone gives the paper's few-step recommendation:
 * SciRE-Solver v1, multistep, order 3, NSR time steps (k = 3.1), lower-order final steps,
 * noise-prediction model, faithful recursive difference estimation.
 */
import { MAX_STEPS } from './bounds';
import type { ModelType } from './plan-builder';
import { applyPreset, type AutoChoice, type Preset } from './presets/auto';
import type { NoiseSchedule } from './schedule';
import { SKIP_TYPES, type SkipType } from './timesteps';
import {
  expectBoolean,
  expectFiniteNumber,
  expectInteger,
  expectKnownKeys,
  expectObject,
  expectOneOf,
  invalidType,
  outOfRange,
} from './validate';

export type SolverName = 'scire' | 'ddim' | 'dpmpp' | 'unipc';
export type Algorithm = 'v1' | 'v2';
export type Method = 'multistep' | 'singlestep_agile' | 'singlestep_fixed';
export type RdeMode = 'faithful' | 'consistent';
/** UniPC's B(h): 'bh1' = h, 'bh2' = e^h - 1 (Zhao et al. 2023, section 3.2). */
export type UniPcVariant = 'bh1' | 'bh2';
/** SciRE only: the UniC-style corrector of docs/math.md section 9 ('none' = the official solver). */
export type ScireCorrector = 'none' | 'faithful' | 'consistent';
export type { SkipType, ModelType };

export const SOLVERS: readonly SolverName[] = ['scire', 'ddim', 'dpmpp', 'unipc'];
export const ALGORITHMS: readonly Algorithm[] = ['v1', 'v2'];
export const METHODS: readonly Method[] = ['multistep', 'singlestep_agile', 'singlestep_fixed'];
export const MODEL_TYPES: readonly ModelType[] = ['noise', 'x_start', 'v', 'score'];
export const RDE_MODES: readonly RdeMode[] = ['faithful', 'consistent'];
export const UNIPC_VARIANTS: readonly UniPcVariant[] = ['bh1', 'bh2'];
export const SCIRE_CORRECTORS: readonly ScireCorrector[] = ['none', 'faithful', 'consistent'];
export { MAX_STEPS } from './bounds';

/** Dynamic thresholding of data predictions (Imagen; DPM-Solver's dynamic_thresholding_fn). */
export interface Thresholding {
  /** Quantile of |x0| per sample, in (0, 1] (default 0.995). */
  ratio: number;
  /** Lower bound of the threshold s, > 0 (default 1). */
  maxVal: number;
}

export interface CompileOptions {
  schedule: NoiseSchedule;
  /**
   * 'auto': the solver fields (solver, algorithm, method, order, skip, rde, corrector, variant,
   * finalCorrector, lowerOrderFinal) are chosen per schedule and NFE from lib/presets/auto-table.json
   * (lib/presets/auto.ts); they may then not be given. Default: none (the official SciRE defaults).
   */
  preset?: Preset;
  /** Number of steps, an integer in [order, MAX_STEPS = 10 000] (NFE budget; see docs/math.md for the exact NFE of each method). */
  steps: number;
  /** Default 'scire'. */
  solver?: SolverName;
  /** SciRE only: 'v1' (noise prediction, NSR variable) or 'v2' (data prediction, 1/NSR). Default 'v1'. */
  algorithm?: Algorithm;
  /** Default 'multistep'. */
  method?: Method;
  /** 1, 2 or 3. Default 3 for scire, 2 for dpmpp, 1 (only) for ddim. */
  order?: 1 | 2 | 3;
  /** Time steps. Default 'nsr' for scire, 'logsnr' for ddim and dpmpp. */
  skip?: SkipType;
  /** What the network predicts. Default 'noise'. */
  modelType?: ModelType;
  /** Add one final data-prediction evaluation at tEnd (one extra NFE). Default false. */
  denoiseToZero?: boolean;
  /** Lower the order of the last steps (see docs/math.md for the exact rule). Default true. */
  lowerOrderFinal?: boolean;
  /** Start time (default schedule.T). */
  tStart?: number;
  /** End time (default schedule.eps). */
  tEnd?: number;
  /** Dynamic thresholding of every data prediction. */
  thresholding?: Partial<Thresholding>;
  /** SciRE only: 'faithful' (the official coefficients, default) or 'consistent' (exact Taylor coefficients). */
  rde?: RdeMode;
  /** UniPC only: B(h) = h ('bh1', default, as the authors' code) or e^h - 1 ('bh2'). */
  variant?: UniPcVariant;
  /**
   * UniPC only: also correct the last step (UniC after the final predictor), which costs one
   * more evaluation at tEnd (NFE = steps + 1). Default false, as the authors' code.
   */
  finalCorrector?: boolean;
  /**
   * SciRE multistep only: correct every step with the evaluation the next step needs anyway
   * (UniC idea, no extra NFE; docs/math.md section 9). 'faithful' uses the official phi / ratio
   * damping in the corrector, 'consistent' the exact quadrature weights. Default 'none'.
   */
  corrector?: ScireCorrector;
  /** k of the 'nsr' time steps (default 3.1). */
  nsrShift?: number;
  /** rho of the 'karras' time steps (default 7). */
  rho?: number;
  /**
   * Inpainting (lib/inpaint.ts): the plan corrects the known region of the state after every
   * step and composites the result with x0; it then needs inpainting inputs (x0, mask, noise)
   * to run. Default false (the plan is unchanged).
   */
  inpaint?: boolean;
}

/** Every option resolved to a value: what solvers receive (in SolverContext.options). */
export interface ResolvedOptions {
  schedule: NoiseSchedule;
  solver: SolverName;
  /** null unless solver is 'scire'. */
  algorithm: Algorithm | null;
  method: Method;
  order: 1 | 2 | 3;
  steps: number;
  skip: SkipType;
  modelType: ModelType;
  denoiseToZero: boolean;
  lowerOrderFinal: boolean;
  tStart: number;
  tEnd: number;
  thresholding: Thresholding | null;
  /** null unless solver is 'scire'. */
  rde: RdeMode | null;
  /** null unless solver is 'unipc'. */
  variant: UniPcVariant | null;
  /** false unless solver is 'unipc'. */
  finalCorrector: boolean;
  /** 'none' unless solver is 'scire'. */
  corrector: ScireCorrector;
  nsrShift: number;
  rho: number;
  /** What preset 'auto' chose (null without a preset). */
  auto: AutoChoice | null;
}

export const OPTION_KEYS: readonly (keyof CompileOptions)[] = [
  'schedule',
  'preset',
  'steps',
  'solver',
  'algorithm',
  'method',
  'order',
  'skip',
  'modelType',
  'denoiseToZero',
  'lowerOrderFinal',
  'tStart',
  'tEnd',
  'thresholding',
  'rde',
  'variant',
  'finalCorrector',
  'corrector',
  'nsrShift',
  'rho',
];

const SCHEDULE_FUNCTIONS = ['logAlpha', 'alpha', 'sigma', 'nsr', 'inverseNsr', 'lambda', 'inverseLambda', 'modelTime'] as const;

/** A NoiseSchedule made by the factories, or a user object with the same members. */
export function expectSchedule(field: string, value: unknown): NoiseSchedule {
  if (typeof value !== 'object' || value === null) {
    throw invalidType(field, 'a NoiseSchedule (e.g. NoiseSchedule.discrete({ kind: \'linear\' }))', value);
  }
  const s = value as Record<string, unknown>;
  for (const fn of SCHEDULE_FUNCTIONS) {
    if (typeof s[fn] !== 'function') throw invalidType(`${field}.${fn}`, 'a function', s[fn]);
  }
  expectOneOf(`${field}.kind`, ['discrete', 'linear', 'cosine', 'edm'], s.kind);
  expectFiniteNumber(`${field}.T`, s.T, { above: 0 });
  expectFiniteNumber(`${field}.eps`, s.eps, { above: 0 });
  const domain = expectObject(`${field}.domain`, s.domain);
  expectFiniteNumber(`${field}.domain.min`, domain.min, { min: 0 });
  expectFiniteNumber(`${field}.domain.max`, domain.max, { above: domain.min as number });
  return value as NoiseSchedule;
}

export function resolveOptions(options: CompileOptions): ResolvedOptions {
  expectKnownKeys('compilePlan options', expectObject('compilePlan options', options), OPTION_KEYS as readonly string[]);
  const { options: applied, choice: auto } = applyPreset(options);
  const o = applied as unknown as Record<string, unknown>;
  const schedule = expectSchedule('schedule', o.schedule);
  const solver = o.solver === undefined ? 'scire' : expectOneOf('solver', SOLVERS, o.solver);
  const isScire = solver === 'scire';

  if (!isScire && o.algorithm !== undefined) {
    throw invalidType('algorithm', `no algorithm with solver '${solver}' (algorithm applies to solver 'scire' only)`, o.algorithm);
  }
  if (!isScire && o.rde !== undefined) {
    throw invalidType('rde', `no rde with solver '${solver}' (rde applies to solver 'scire' only)`, o.rde);
  }
  const isUnipc = solver === 'unipc';
  for (const key of ['variant', 'finalCorrector'] as const) {
    if (!isUnipc && o[key] !== undefined) {
      throw invalidType(key, `no ${key} with solver '${solver}' (${key} applies to solver 'unipc' only)`, o[key]);
    }
  }
  if (!isScire && o.corrector !== undefined) {
    throw invalidType('corrector', `no corrector with solver '${solver}' (corrector applies to solver 'scire' only; UniPC always corrects)`, o.corrector);
  }
  const variant = isUnipc ? (o.variant === undefined ? 'bh1' : expectOneOf('variant', UNIPC_VARIANTS, o.variant)) : null;
  const finalCorrector = isUnipc && o.finalCorrector !== undefined ? expectBoolean('finalCorrector', o.finalCorrector) : false;
  const corrector = isScire && o.corrector !== undefined ? expectOneOf('corrector', SCIRE_CORRECTORS, o.corrector) : 'none';
  const algorithm = isScire ? (o.algorithm === undefined ? 'v1' : expectOneOf('algorithm', ALGORITHMS, o.algorithm)) : null;
  const rde = isScire ? (o.rde === undefined ? 'faithful' : expectOneOf('rde', RDE_MODES, o.rde)) : null;
  const method = o.method === undefined ? 'multistep' : expectOneOf('method', METHODS, o.method);
  if (isUnipc && method !== 'multistep') {
    throw invalidType('method', `'multistep' with solver 'unipc' (UniPC is a multistep method)`, method);
  }
  if (corrector !== 'none' && method !== 'multistep') {
    throw invalidType('method', `'multistep' with corrector '${corrector}' (the SciRE corrector reuses the next step's evaluation)`, method);
  }

  const allowedOrders: readonly (1 | 2 | 3)[] = solver === 'ddim' ? [1] : [1, 2, 3];
  const defaultOrder = solver === 'scire' || solver === 'unipc' ? 3 : solver === 'dpmpp' ? 2 : 1;
  const order = o.order === undefined ? defaultOrder : expectOneOf('order', allowedOrders, o.order);

  const steps = expectInteger('steps', o.steps, { min: 1, max: MAX_STEPS });
  if (steps < order) throw outOfRange('steps', `an integer >= order (${order})`, steps);

  const skip = o.skip === undefined ? (isScire ? 'nsr' : 'logsnr') : expectOneOf('skip', SKIP_TYPES, o.skip);
  const modelType = o.modelType === undefined ? 'noise' : expectOneOf('modelType', ['noise', 'x_start', 'v', 'score'] as const, o.modelType);
  if (modelType === 'v' && schedule.kind === 'edm') {
    throw invalidType('modelType', `one of 'noise', 'x_start', 'score' with an EDM schedule ('v' needs alpha^2 + sigma^2 = 1)`, modelType);
  }
  const denoiseToZero = o.denoiseToZero === undefined ? false : expectBoolean('denoiseToZero', o.denoiseToZero);
  const lowerOrderFinal = o.lowerOrderFinal === undefined ? true : expectBoolean('lowerOrderFinal', o.lowerOrderFinal);

  const { min: dMin, max: dMax } = schedule.domain;
  const tStart = o.tStart === undefined ? schedule.T : expectFiniteNumber('tStart', o.tStart, { above: 0, max: dMax });
  const tEnd =
    o.tEnd === undefined
      ? schedule.eps
      : expectFiniteNumber('tEnd', o.tEnd, dMin > 0 ? { min: dMin } : { above: 0 });
  if (!(tEnd < tStart)) throw outOfRange('tEnd', `a number < tStart (${tStart})`, tEnd);

  const nsrShift = o.nsrShift === undefined ? 3.1 : expectFiniteNumber('nsrShift', o.nsrShift, { above: 0 });
  const rho = o.rho === undefined ? 7 : expectFiniteNumber('rho', o.rho, { above: 0 });
  if (skip === 'karras') {
    const b = schedule.sigmaBounds;
    if (!b) {
      throw invalidType('skip', `one of ${SKIP_TYPES.filter((s) => s !== 'karras').map((s) => `'${s}'`).join(', ')} ('karras' needs a schedule with sigmaBounds; ${schedule.kind} has none)`, skip);
    }
    const sMax = schedule.nsr(tStart);
    const sMin = schedule.nsr(tEnd);
    const slack = 1e-12;
    if (!(sMax <= b.max * (1 + slack))) {
      throw outOfRange('tStart', `a time whose sigma (NSR) is <= sigmaBounds.max = ${b.max} for skip 'karras' (its sigma is ${sMax})`, tStart);
    }
    if (!(sMin >= b.min * (1 - slack))) {
      throw outOfRange('tEnd', `a time whose sigma (NSR) is >= sigmaBounds.min = ${b.min} for skip 'karras' (its sigma is ${sMin})`, tEnd);
    }
  }

  let thresholding: Thresholding | null = null;
  if (o.thresholding !== undefined) {
    const th = expectObject('thresholding', o.thresholding);
    expectKnownKeys('thresholding', th, ['ratio', 'maxVal']);
    thresholding = {
      ratio: th.ratio === undefined ? 0.995 : expectFiniteNumber('thresholding.ratio', th.ratio, { above: 0, max: 1 }),
      maxVal: th.maxVal === undefined ? 1 : expectFiniteNumber('thresholding.maxVal', th.maxVal, { above: 0 }),
    };
  }

  return {
    schedule,
    solver,
    algorithm,
    method,
    order,
    steps,
    skip,
    modelType,
    denoiseToZero,
    lowerOrderFinal,
    tStart,
    tEnd,
    thresholding,
    rde,
    variant,
    finalCorrector,
    corrector,
    nsrShift,
    rho,
    auto,
  };
}
