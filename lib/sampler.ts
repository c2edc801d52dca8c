/**
 * Sampler: the API a Node service uses.
 *
 *   const model = await loadModel('fmnist_unet.pt');
 *   const sampler = new Sampler({ model, schedule: NoiseSchedule.discrete({ kind: 'linear' }), steps: 12 });
 *   const out = await sampler.sample({ shape: [16, 1, 28, 28], seed: 42 });
 *   // out.data: Float32Array (row-major, out.shape), out.nfe, out.timings
 *
 * Every solver option is validated once, in the constructor (by compiling the plan for the
 * default start time); a sample() call only checks its own inputs. Plans depend on the solver
 * options and the start time only, so they are compiled once per tStart and cached.
 *
 * Starting noise (seed given): randn(shape, seed), bit-identical to
 * torch.randn(shape, generator=torch.Generator().manual_seed(seed)). VP schedules start from
 * x_T = noise (the official code's prior N(0, I)); EDM starts from x_T = sigma(tStart) noise.
 *
 * img2img (x0 given): the data x0 is noised to the start time exactly as the official code's
 * add_noise does,  x_tStart = alpha_tStart x0 + sigma_tStart noise,  and solved from there.
 *
 * Inpainting (x0 and mask given; lib/inpaint.ts): the solve starts the same way, at tStart
 * (default T, where x_T is practically pure noise), and after every step the known region
 * (mask 1) is put back on alpha_t x0 + sigma_t noise with the same noise; the result is
 * composited with x0, so its known region is x0. Deterministic: same seed, same result.
 *
 * Serving: every solve goes through the model's request queue, shared by all Samplers on the
 * model (lib/serving: priority, abort while queued, maxQueue, and dynamic batching when the
 * `batching` option is on). See docs/usage.md, "Serving many requests".
 */
import { compilePlan } from './compile';
import { describeSolver, PRESET_FIELDS, type SolverReport } from './presets/auto';
import { abortError, resolveExecuteOptions, type ExecuteOptions } from './execute';
import { withCallerStack } from './model';
import type { CompileOptions } from './options';
import { expectIntermediatesMode } from './intermediates';
import type { AbortSignalLike, NativeExecuteOptions, NativeInpaintInputs, NativeModel, NativeStepEvent } from './native-types';
import type { Plan } from './plan';
import { checkRequestSize } from './limits';
import { randn, randnAsync, RANDN_ASYNC_THRESHOLD } from './randn';
import { checkFiniteResult, NON_FINITE_MODES, type NonFiniteMode } from './result-check';
import type { NoiseSchedule } from './schedule';
import { batchKey, type ExecuteItem, type ServedResult } from './serving/batcher';
import { servingQueue } from './serving/model';
import { resolveBatching, resolveMaxQueue, resolvePriority, type BatchingOptions, type ResolvedBatching } from './serving/options';
import {
  expectFiniteNumber,
  expectFunction,
  expectInteger,
  expectKnownKeys,
  expectObject,
  expectOneOf,
  invalidType,
  outOfRange,
} from './validate';

/** What the Sampler needs of a model: a loaded network (loadModel) that runs plans. */
export type SamplerModel = Pick<NativeModel, 'info' | 'execute'>;

/**
 * Solver options of the Sampler: those of compilePlan, with steps defaulting to 12 and preset
 * defaulting to 'auto' when no solver field is given (preset 'none': the official SciRE defaults).
 */
export type SamplerOptions = Omit<CompileOptions, 'steps'> & {
  model: SamplerModel;
  /** Number of steps (default 12: the paper's few-step recommendation). */
  steps?: number;
  /**
   * Dynamic batching (default off): concurrent requests of this Sampler (and of other
   * Samplers with equal solver options on the same model) that fit together are solved as
   * one batch. true takes the defaults { maxBatchSize: 64, maxWaitMs: 0 }.
   */
  batching?: boolean | BatchingOptions;
  /**
   * Backpressure: a sample() call is rejected with ERR_SCIRE_QUEUE_FULL when this many
   * requests already wait on the model's queue (shared by every Sampler on the model).
   * Default Infinity; loadModel's maxQueue applies too.
   */
  maxQueue?: number;
  /**
   * Classifier guidance (the authors' model_wrapper(guidance_type="classifier")): a loaded
   * noise-aware classifier forward(x_t, t) -> logits [B, C] on the model's device; every
   * sample() call then gives classLabels. The noise prediction becomes
   * eps - classifierScale * sigma_t * grad_x log p(y | x_t, t). See docs/usage.md.
   */
  classifier?: SamplerModel;
  /** Classifier guidance scale s (default 1; needs classifier). */
  classifierScale?: number;
};

/** Progress of one network evaluation. */
export interface SampleStepEvent {
  /** 1-based index of the evaluation just finished. */
  nfe: number;
  /** Total evaluations of the solve. */
  total: number;
  /** Model input time of that evaluation. */
  t: number;
  /** The solver's continuous time of that evaluation. */
  tCont: number;
  /**
   * Only with sample({ intermediates }): a copy (float32, shaped like the request) of the state
   * x_t ('x') or of the evaluation's data prediction x0 ('x0'). Then onStep is called once per
   * intermediate, nfe counts the evaluations done when it was read (0 for x_T), and t / tCont
   * are its times. See docs/usage.md "Intermediates".
   */
  x?: Float32Array;
}

export interface SampleOptions {
  /** Shape of the batch, e.g. [n, c, h, w]; the leading dimension is the batch. */
  shape: number[];
  /**
   * Seed of the starting noise (non-negative safe integer or bigint < 2^64). When neither
   * seed nor x is given a random seed is drawn and returned in the result.
   */
  seed?: number | bigint;
  /** The starting state x_T itself (float32, row-major, prod(shape) values); excludes seed and x0. */
  x?: Float32Array;
  /**
   * img2img: data to start from (prod(shape) values), noised with the seed to tStart.
   * With mask: the known data of inpainting (prod(shape) values, or prod(shape[1:]) for the
   * same image in every sample).
   */
  x0?: Float32Array;
  /**
   * Inpainting: 1 where x0 is known (kept), 0 where the sample is generated; values in
   * between blend. prod(shape) values, or prod(shape[1:]) for one mask for every sample.
   * Needs x0; tStart may then be T (the default) too. See docs/usage.md "Inpainting".
   */
  mask?: Float32Array;
  /** Start time of the solve (default: the constructor's tStart, else schedule.T); img2img needs tStart < T. */
  tStart?: number;
  /** Conditioning input for a model with forward(x, t, cond). */
  cond?: Float32Array;
  /** Shape of cond (default [shape[0], cond.length / shape[0]]). */
  condShape?: number[];
  /** Unconditional input for classifier-free guidance (same shape as cond). */
  uncond?: Float32Array;
  /** Classifier-free guidance scale g: raw = uncond + g (cond - uncond). Needs cond and uncond. */
  guidanceScale?: number;
  /**
   * With a Sampler given a classifier (required then): the class of each sample, an integer in
   * [0, C) per batch element (array or Int32Array of length shape[0]) or one for all.
   */
  classLabels?: number | number[] | Int32Array;
  /** Called after every network evaluation (with intermediates: once per intermediate). */
  onStep?: (event: SampleStepEvent) => void;
  /**
   * 'x': hand onStep every solver state x_t the authors' sample(..., return_intermediate=True)
   * records; 'x0': the data prediction of every evaluation. As event.x; needs onStep.
   * Default: none (no copies).
   */
  intermediates?: 'x' | 'x0';
  /**
   * Cancels the request: while it waits in the queue it is rejected at once (AbortError)
   * and never runs; while it runs, at once too (its slice of a batch is dropped, and the
   * solve stops at the next evaluation when no other request needs it).
   */
  signal?: AbortSignalLike;
  /** Queue priority: higher runs first, first come first served within a priority (default 0). */
  priority?: number;
  /** 'auto' (default) | true | false: the whole solve as one CUDA graph on a GPU (see executePlan). */
  cudaGraph?: 'auto' | boolean;
  /**
   * 'error' (default): reject with ERR_SCIRE_NON_FINITE, naming the first evaluation, when a
   * model output or the result holds NaN or Infinity; 'keep': resolve with the values as they are.
   */
  nonFinite?: NonFiniteMode;
}

export interface SampleTimings {
  /** Wall time of the whole sample() call. */
  totalMs: number;
  /** Waiting in the model's queue (from submit to the start of the solve it ran in). */
  queueMs: number;
  /** Samples in the solve this request ran in: its own batch, or a dynamic batch with others. */
  batchSize: number;
  /** Requests in that solve (1 when it ran alone). */
  batchRequests: number;
  /** Compiling the plan (0 when it came from the cache). */
  compileMs: number;
  /** Drawing the starting noise. */
  noiseMs: number;
  /** The executor: all of the solve (of the whole batch when batched). */
  executeMs: number;
  /** Inside the network, as the executor measured it (NaN when it does not: a CUDA-graph run). */
  modelMs: number;
  /** Solver ops, as the executor measured it (NaN when it does not: a CUDA-graph run). */
  solverMs: number;
}

export interface SampleResult {
  /** The samples, float32, row-major. */
  data: Float32Array;
  shape: number[];
  /** Network evaluations made (one per eval op; a guided evaluation counts once). */
  nfe: number;
  /** The solver that ran (what preset 'auto' chose, when it chose). */
  solver: SolverReport;
  timings: SampleTimings;
  /** The seed of the starting noise (undefined when x was given). */
  seed?: number | bigint;
  /** The start time used. */
  tStart: number;
}

const SAMPLE_KEYS = ['shape', 'seed', 'x', 'x0', 'mask', 'tStart', 'cond', 'condShape', 'uncond', 'guidanceScale', 'classLabels', 'onStep', 'intermediates', 'signal', 'cudaGraph', 'nonFinite', 'priority'];
const MAX_CACHED_PLANS = 16;
const DEFAULT_STEPS = 12;

/** A batch shape: a non-empty array of positive integers (also used by lib/scaleout for job data). */
export function expectShape(field: string, value: unknown): number[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw invalidType(field, 'a non-empty array of positive integers (e.g. [4, 1, 28, 28])', value);
  }
  return value.map((d, i) => expectInteger(`${field}[${i}]`, d, { min: 1 }));
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function expectFloat32Data(field: string, value: unknown, length: number, lengthOf: string): Float32Array {
  if (!(value instanceof Float32Array)) throw invalidType(field, 'a Float32Array', value);
  if (value.length !== length) {
    throw outOfRange(`${field}.length`, `${length} (the number of elements of ${lengthOf})`, value.length);
  }
  return value;
}

/**
 * x0 and mask of an inpainting request, each prod(shape) values or prod(shape[1:]) (one image
 * or mask for every sample, repeated here): mask values in [0, 1], x0 finite.
 */
function inpaintInputs(x0Value: unknown, maskValue: unknown, shape: number[]): { x0: Float32Array; mask: Float32Array; noise?: Float32Array } {
  const count = numel(shape);
  const per = numel(shape.slice(1));
  const perSample = (field: string, value: unknown): Float32Array => {
    if (!(value instanceof Float32Array)) throw invalidType(field, 'a Float32Array', value);
    if (value.length === count) return value;
    if (value.length !== per) {
      throw outOfRange(`${field}.length`, `${count} (prod(shape)) or ${per} (prod(shape[1:]): one for every sample)`, value.length);
    }
    const out = new Float32Array(count);
    for (let b = 0; b < shape[0]; b++) out.set(value, b * per);
    return out;
  };
  const mask = perSample('mask', maskValue);
  const x0 = perSample('x0', x0Value);
  const m = maskValue as Float32Array;
  for (let i = 0; i < m.length; i++) if (!(m[i] >= 0 && m[i] <= 1)) throw outOfRange(`mask[${i}]`, 'a number in [0, 1] (1 = known)', m[i]);
  const k = x0Value as Float32Array;
  for (let i = 0; i < k.length; i++) if (!Number.isFinite(k[i])) throw outOfRange(`x0[${i}]`, 'a finite number', k[i]);
  return { x0, mask };
}

function expectSeed(value: unknown): number | bigint {
  if (typeof value === 'bigint') {
    if (value < 0n || value >= 1n << 64n) throw outOfRange('seed', 'an integer in [0, 2^64)', value);
    return value;
  }
  return expectInteger('seed', value, { min: 0, max: Number.MAX_SAFE_INTEGER });
}

/** A random seed in [0, 2^53) for calls that give neither seed nor x. */
function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 21) * 2 ** 32 + Math.floor(Math.random() * 2 ** 32);
}

export class Sampler {
  readonly model: SamplerModel;
  readonly schedule: NoiseSchedule;
  /** The solver options as given (steps defaulted), without model. */
  readonly options: Readonly<Omit<CompileOptions, 'schedule'>>;
  /** Dynamic batching (undefined: off). */
  readonly batching: Readonly<ResolvedBatching> | undefined;
  /** This Sampler's queue limit (Infinity: none). */
  readonly maxQueue: number;
  /** Classifier guidance: the classifier (undefined: none) and its scale. */
  readonly classifier: SamplerModel | undefined;
  readonly classifierScale: number;
  /** Compiled plans by start time and inpainting (key: `${tStart}` or `${tStart}|inpaint`). */
  private readonly plans = new Map<string, Plan>();
  private readonly defaultTStart: number;

  constructor(options: SamplerOptions) {
    const o = expectObject('Sampler options', options);
    const model = o.model as SamplerModel | undefined;
    if (typeof model !== 'object' || model === null || typeof model.execute !== 'function') {
      throw invalidType('model', 'a loaded model (await loadModel(path))', model);
    }
    if (model.info !== undefined && (typeof model.info !== 'object' || model.info === null)) {
      throw invalidType('model.info', 'an object { device, dtype, numInputs } or undefined', model.info);
    }
    if (o.inpaint !== undefined) {
      throw invalidType('inpaint', 'no inpaint option on the Sampler (inpaint per request: sample({ x0, mask }))', o.inpaint);
    }
    const { model: _model, batching, maxQueue, classifier, classifierScale, ...solverOptions } = options;
    this.batching = resolveBatching(batching);
    this.maxQueue = resolveMaxQueue(maxQueue);
    if (classifier === undefined) {
      if (classifierScale !== undefined) throw invalidType('classifierScale', 'no classifierScale without classifier', classifierScale);
    } else if (typeof classifier !== 'object' || classifier === null || typeof classifier.execute !== 'function') {
      throw invalidType('classifier', 'a loaded classifier (await loadModel(path)) whose forward(x, t) returns logits [B, C]', classifier);
    } else if (classifier === model) {
      throw invalidType('classifier', 'a classifier model other than the network itself', 'the network');
    } else if (classifier.info?.device !== undefined && model.info?.device !== undefined && classifier.info.device !== model.info.device) {
      throw invalidType('classifier', `a classifier on the model's device (${model.info.device})`, `a classifier on ${classifier.info.device}`);
    }
    this.classifier = classifier;
    this.classifierScale = classifierScale === undefined ? 1 : expectFiniteNumber('classifierScale', classifierScale);
    const compileOptions: CompileOptions = { ...solverOptions, steps: solverOptions.steps ?? DEFAULT_STEPS };
    // preset 'auto' is the Sampler's default unless a solver field or a preset is given.
    if (compileOptions.preset === undefined && !PRESET_FIELDS.some((f) => compileOptions[f] !== undefined)) compileOptions.preset = 'auto';
    // Compiling the default plan validates every solver option now, with the messages of compilePlan.
    const plan = compilePlan(compileOptions);
    this.model = model;
    this.schedule = compileOptions.schedule;
    const { schedule: _schedule, ...rest } = compileOptions;
    this.options = Object.freeze(rest);
    this.defaultTStart = compileOptions.tStart ?? this.schedule.T;
    this.plans.set(String(this.defaultTStart), plan);
  }

  /** The plan for a start time, with inpainting or not (compiled on first use, then cached). */
  planFor(tStart: number = this.defaultTStart, inpaint = false): Plan {
    const key = inpaint ? `${tStart}|inpaint` : String(tStart);
    const cached = this.plans.get(key);
    if (cached) {
      // Refresh its place in the insertion order (least recently used leaves first).
      this.plans.delete(key);
      this.plans.set(key, cached);
      return cached;
    }
    const plan: Plan = compilePlan({ schedule: this.schedule, ...this.options, tStart, ...(inpaint ? { inpaint: true } : {}) });
    if (this.plans.size >= MAX_CACHED_PLANS) {
      const oldest = this.plans.keys().next().value as string;
      this.plans.delete(oldest);
    }
    this.plans.set(key, plan);
    return plan;
  }

  /** Runs the solver on a batch and resolves with the samples. */
  async sample(options: SampleOptions): Promise<SampleResult> {
    const started = performance.now();
    const callSite = new Error('sample call site');
    Error.captureStackTrace(callSite, this.sample);
    const o = expectObject('sample options', options);
    expectKnownKeys('sample options', o, SAMPLE_KEYS);
    const shape = expectShape('shape', o.shape);
    const count = numel(shape);

    if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw invalidType('signal', 'an AbortSignal', o.signal);
    const signal = o.signal as AbortSignal | undefined;
    if (signal?.aborted) throw abortError(signal);
    const onStep = o.onStep === undefined ? undefined : (expectFunction('onStep', o.onStep) as (e: SampleStepEvent) => void);
    const priority = resolvePriority(o.priority);
    const intermediates = o.intermediates === undefined ? undefined : expectIntermediatesMode('intermediates', o.intermediates);
    // An error rather than a silent no-op: nobody would receive the copies.
    if (intermediates && !onStep) throw invalidType('onStep', 'a function when intermediates is given', o.onStep);

    const isInpaint = o.mask !== undefined;
    if (isInpaint && o.x0 === undefined) {
      throw invalidType('x0', 'a Float32Array (the known image) when mask is given', o.x0);
    }
    const tStart = this.resolveTStart(o);
    const isImg2Img = o.x0 !== undefined;
    if (o.x !== undefined && (o.seed !== undefined || isImg2Img)) {
      throw invalidType(
        'x',
        'no x together with seed or x0 (x is the starting state itself; for img2img give x0 and seed)',
        o.x,
      );
    }
    const known = isInpaint ? inpaintInputs(o.x0, o.mask, shape) : undefined;

    const cached = this.plans.has(isInpaint ? `${tStart}|inpaint` : String(tStart));
    const tCompile = performance.now();
    const plan = this.planFor(tStart, isInpaint);
    const compileMs = cached ? 0 : performance.now() - tCompile;
    const nonFinite = o.nonFinite === undefined ? 'error' : expectOneOf('nonFinite', NON_FINITE_MODES, o.nonFinite);
    // Before any work: the request must fit the model's maxElements and the device's free memory.
    checkRequestSize(this.model, shape, plan, o.uncond !== undefined);

    const tNoise = performance.now();
    let x: Float32Array;
    let seed: number | bigint | undefined;
    if (o.x !== undefined) {
      x = expectFloat32Data('x', o.x, count, 'shape');
    } else {
      seed = o.seed === undefined ? randomSeed() : expectSeed(o.seed);
      // Large draws yield to the event loop between chunks (same values as randn).
      const noise = count >= RANDN_ASYNC_THRESHOLD ? await randnAsync(shape, seed, { signal }) : randn(shape, seed);
      if (known) {
        // The start and every correction use the same noise (lib/inpaint.ts).
        x = this.addNoise(known.x0, noise, tStart);
        known.noise = noise;
      } else {
        x = isImg2Img ? this.addNoise(expectFloat32Data('x0', o.x0, count, 'shape'), noise, tStart) : this.priorSample(noise, tStart);
      }
    }
    const noiseMs = performance.now() - tNoise;

    const execOptions: ExecuteOptions = { x, shape, ...this.conditioning(o, shape), ...this.guidanceByClassifier(o) };
    if (o.cudaGraph !== undefined) execOptions.cudaGraph = o.cudaGraph as ExecuteOptions['cudaGraph'];
    if (intermediates) execOptions.intermediates = intermediates;
    if (known) execOptions.inpaint = known as NativeInpaintInputs;
    let stepEvents: ((ev: NativeStepEvent) => void) | undefined;
    if (onStep) {
      const evalTimes = plan.ops.flatMap((op) => (op.op === 'eval' ? [op.tCont] : []));
      stepEvents = (ev: NativeStepEvent) =>
        onStep({
          nfe: ev.nfe,
          total: ev.total,
          t: ev.t,
          tCont: ev.tCont ?? evalTimes[ev.nfe - 1],
          ...(ev.x !== undefined ? { x: ev.x } : {}),
        });
    }

    let result: ServedResult;
    try {
      result = await this.submit(plan, resolveExecuteOptions(execOptions), { signal, onStep: stepEvents, priority });
    } catch (e) {
      throw withCallerStack(e, callSite);
    }
    if (nonFinite === 'error') checkFiniteResult(result, plan.ops.flatMap((op) => (op.op === 'eval' ? [op.t] : [])));
    return {
      data: result.data,
      shape: result.shape ?? shape,
      nfe: result.nfe ?? plan.nfe,
      solver: describeSolver(plan.meta),
      seed,
      tStart,
      timings: {
        totalMs: performance.now() - started,
        queueMs: result.timings.queueMs,
        batchSize: result.timings.batchSize,
        batchRequests: result.timings.batchRequests,
        compileMs,
        noiseMs,
        executeMs: result.timings.runMs,
        modelMs: Number(result.timings?.modelMs ?? NaN),
        solverMs: Number(result.timings?.solverMs ?? NaN),
      },
    };
  }

  /**
   * Queues one solve on the model's shared queue (lib/serving): batched with compatible
   * requests when batching is on, alone otherwise.
   */
  private submit(
    plan: Plan,
    options: NativeExecuteOptions,
    extra: { signal?: AbortSignal; onStep?: (ev: NativeStepEvent) => void; priority: number },
  ): Promise<ServedResult> {
    const item: ExecuteItem = {
      plan,
      options,
      size: options.shape[0],
      priority: extra.priority,
      ...(extra.signal ? { signal: extra.signal } : {}),
      ...(extra.onStep ? { onStep: extra.onStep } : {}),
      ...(this.batching ? { batch: { key: batchKey(plan, options, this.model.info?.dtype ?? ''), ...this.batching } } : {}),
    };
    const limit = this.maxQueue < Infinity ? { maxQueue: this.maxQueue, of: "the Sampler's maxQueue" } : undefined;
    return servingQueue(this.model).submit(item, limit);
  }

  /**
   * The forward process of the schedule applied to data, as the official add_noise:
   *   x_t = alpha_t x0 + sigma_t noise.
   */
  addNoise(x0: Float32Array, noise: Float32Array, t: number): Float32Array {
    const alpha = this.schedule.alpha(t);
    const sigma = this.schedule.sigma(t);
    const out = new Float32Array(x0.length);
    for (let i = 0; i < x0.length; i++) out[i] = alpha * x0[i] + sigma * noise[i];
    return out;
  }

  /** x_T from standard-normal noise: the noise itself for VP schedules, sigma_T noise for EDM. */
  private priorSample(noise: Float32Array, tStart: number): Float32Array {
    if (this.schedule.kind !== 'edm') return noise;
    const sigma = this.schedule.sigma(tStart);
    for (let i = 0; i < noise.length; i++) noise[i] *= sigma;
    return noise;
  }

  private resolveTStart(o: Record<string, unknown>): number {
    const T = this.schedule.T;
    const tEnd = this.options.tEnd ?? this.schedule.eps;
    const img2img = o.x0 !== undefined && o.mask === undefined; // with a mask, tStart = T is fine
    if (o.tStart === undefined) {
      if (img2img && !(this.defaultTStart < T)) {
        throw invalidType('tStart', `a start time < T (${T}) for img2img (x0 given)`, o.tStart);
      }
      return this.defaultTStart;
    }
    const tStart = expectFiniteNumber('tStart', o.tStart, { above: tEnd, max: this.schedule.domain.max });
    if (img2img && !(tStart < T)) {
      throw outOfRange('tStart', `a number < T (${T}) for img2img (x0 given without mask)`, tStart);
    }
    return tStart;
  }

  /** classifier / classLabels / classifierScale for the executor (which checks the labels). */
  private guidanceByClassifier(o: Record<string, unknown>): Partial<ExecuteOptions> {
    if (this.classifier === undefined) {
      if (o.classLabels !== undefined) {
        throw invalidType('classLabels', 'no classLabels: this Sampler has no classifier (new Sampler({ ..., classifier }))', o.classLabels);
      }
      return {};
    }
    if (o.classLabels === undefined) {
      throw invalidType('classLabels', 'the class of each sample (an integer, or one per batch element) for a Sampler with a classifier', o.classLabels);
    }
    return {
      classifier: this.classifier as NativeModel,
      classLabels: o.classLabels as Int32Array,
      classifierScale: this.classifierScale,
    };
  }

  /**
   * cond / uncond / guidanceScale for the executor (which checks them): condShape defaults to
   * [batch, cond.length / batch], and a model without a cond input is refused here.
   */
  private conditioning(o: Record<string, unknown>, shape: number[]): Partial<ExecuteOptions> {
    const { cond, condShape, uncond, guidanceScale } = o as Partial<ExecuteOptions>;
    if (cond === undefined) return { condShape, uncond, guidanceScale }; // the executor rejects these without cond
    const numInputs = this.model.info?.numInputs;
    if (numInputs !== undefined && numInputs < 3) {
      throw invalidType('cond', `no cond for this model: its forward takes (x, t) only (${numInputs} inputs)`, cond);
    }
    if (condShape !== undefined || !(cond instanceof Float32Array)) return { cond, condShape, uncond, guidanceScale };
    if (cond.length % shape[0] !== 0) {
      throw outOfRange('cond.length', `a multiple of the batch size ${shape[0]} (or give condShape)`, cond.length);
    }
    return { cond, condShape: [shape[0], cond.length / shape[0]], uncond, guidanceScale };
  }
}
