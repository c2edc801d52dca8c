/**
 * executePlan: run a compiled Plan on a loaded model with the native executor.
 *
 *   const { data, nfe, timings } = await executePlan(model, plan, { x, shape, onStep, signal });
 *
 * The whole solver loop runs in C++ on the model's own thread (native/executor.cc,
 * native/model_runtime.h; no libuv pool thread is held while it waits or runs): registers are
 * float32 tensors on the model's device, every lincomb is one fused kernel pass, the input
 * scaling / dtype cast and the output conversion are fused around each network call.
 * Here, on the JS thread, the options are checked with the package's messages, the plan is
 * checked (checkPlan), an AbortSignal is wired to a native abort handle, and a native
 * rejection gets the caller's stack.
 */
import { withCallerStack } from './model';
import { asModelError } from './result-check';
import { nativeBinding } from './native';
import type { AbortSignalLike, NativeExecuteOptions, NativeInpaintInputs, NativeExecuteResult, NativeModel, NativeStepEvent } from './native-types';
import type { Plan } from './plan';
import { checkPlan } from './plan-check';
import { planUsesInpaint } from './inpaint';
import { expectIntermediatesMode } from './intermediates';
import { onAbort } from './serving/signals';
import {
  expectFiniteNumber,
  expectFunction,
  expectInteger,
  expectKnownKeys,
  expectObject,
  invalidType,
  outOfRange,
} from './validate';

/** The options of executePlan: those of the native execute, with an AbortSignal only (no abortHandle). */
export type ExecuteOptions = Omit<NativeExecuteOptions, 'abortHandle'>;

const OPTION_KEYS = [
  'x', 'shape', 'cond', 'condShape', 'uncond', 'guidanceScale', 'classifier', 'classLabels', 'classifierScale',
  'onStep', 'intermediates', 'inpaint', 'signal', 'cudaGraph',
];

function expectShape(field: string, value: unknown): number[] {
  if (!Array.isArray(value) || value.length === 0) throw invalidType(field, 'a non-empty array of positive integers', value);
  return value.map((d, i) => expectInteger(`${field}[${i}]`, d, { min: 1 }));
}

function expectFloat32(field: string, value: unknown, length: number, lengthOf: string): Float32Array {
  if (!(value instanceof Float32Array)) throw invalidType(field, 'a Float32Array', value);
  if (value.length !== length) throw outOfRange(`${field}.length`, `${length} (the number of elements of ${lengthOf})`, value.length);
  return value;
}

const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** The Error an aborted run rejects with. */
export function abortError(signal?: AbortSignalLike): Error {
  const err = new Error('The operation was aborted', signal?.reason === undefined ? undefined : { cause: signal.reason });
  err.name = 'AbortError';
  return Object.assign(err, { code: 'ABORT_ERR' });
}

/** Checks the options and returns them as the native executor takes them (without signal). */
export function resolveExecuteOptions(options: unknown): NativeExecuteOptions {
  const o = expectObject('execute options', options);
  expectKnownKeys('execute options', o, OPTION_KEYS);
  const shape = expectShape('shape', o.shape);
  const out: NativeExecuteOptions = { x: expectFloat32('x', o.x, numel(shape), 'shape'), shape };
  if (o.cond === undefined) {
    for (const k of ['condShape', 'uncond', 'guidanceScale']) {
      if (o[k] !== undefined) throw invalidType(k, `no ${k} without cond`, o[k]);
    }
  } else {
    const condShape = expectShape('condShape', o.condShape);
    if (condShape[0] !== shape[0]) throw outOfRange('condShape[0]', `the batch size shape[0] = ${shape[0]}`, condShape[0]);
    out.cond = expectFloat32('cond', o.cond, numel(condShape), 'condShape');
    out.condShape = condShape;
    if (o.uncond !== undefined) {
      out.uncond = expectFloat32('uncond', o.uncond, numel(condShape), 'condShape');
      if (o.guidanceScale === undefined) throw invalidType('guidanceScale', 'a finite number when uncond is given', o.guidanceScale);
      out.guidanceScale = expectFiniteNumber('guidanceScale', o.guidanceScale);
    } else if (o.guidanceScale !== undefined) {
      throw invalidType('uncond', 'a Float32Array like cond when guidanceScale is given', o.uncond);
    }
  }
  resolveClassifierOptions(o, out);
  if (o.onStep !== undefined) out.onStep = expectFunction('onStep', o.onStep) as (e: NativeStepEvent) => void;
  if (o.cudaGraph !== undefined) {
    if (o.cudaGraph !== 'auto' && o.cudaGraph !== true && o.cudaGraph !== false) {
      throw invalidType('cudaGraph', "'auto', true or false", o.cudaGraph);
    }
    out.cudaGraph = o.cudaGraph;
  }
  if (o.intermediates !== undefined) {
    out.intermediates = expectIntermediatesMode('intermediates', o.intermediates);
    if (out.cudaGraph === true) throw invalidType('cudaGraph', "'auto' or false when intermediates is given", o.cudaGraph);
  }
  if (out.classifier !== undefined && out.cudaGraph === true) {
    throw invalidType('cudaGraph', "'auto' or false when classifier is given (autograd runs between evaluations)", o.cudaGraph);
  }
  if (o.inpaint !== undefined) {
    out.inpaint = resolveInpaintInputs(o.inpaint, numel(shape));
    if (out.cudaGraph === true) throw invalidType('cudaGraph', "'auto' or false when inpaint is given", o.cudaGraph);
  }
  return out;
}

/** opts.inpaint: { x0, mask, noise }, float32 of `length` values; mask in [0, 1], all finite. */
function resolveInpaintInputs(value: unknown, length: number): NativeInpaintInputs {
  const o = expectObject('inpaint', value);
  expectKnownKeys('inpaint', o, ['x0', 'mask', 'noise']);
  const out: NativeInpaintInputs = {
    x0: expectFloat32('inpaint.x0', o.x0, length, 'shape'),
    mask: expectFloat32('inpaint.mask', o.mask, length, 'shape'),
    noise: expectFloat32('inpaint.noise', o.noise, length, 'shape'),
  };
  for (const k of ['x0', 'noise'] as const) {
    const v = out[k];
    for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) throw outOfRange(`inpaint.${k}[${i}]`, 'a finite number', v[i]);
  }
  const m = out.mask;
  for (let i = 0; i < m.length; i++) if (!(m[i] >= 0 && m[i] <= 1)) throw outOfRange(`inpaint.mask[${i}]`, 'a number in [0, 1]', m[i]);
  return out;
}

/**
 * classifier / classLabels / classifierScale: a loaded classifier, one non-negative integer
 * label per batch element (an Int32Array, an array, or one integer for the whole batch) and a
 * finite scale. The upper bound of a label is the classifier's number of classes C, known only
 * once it runs: the executor rejects a label >= C with a RangeError (ERR_OUT_OF_RANGE).
 */
function resolveClassifierOptions(o: Record<string, unknown>, out: NativeExecuteOptions): void {
  if (o.classifier === undefined) {
    for (const k of ['classLabels', 'classifierScale']) {
      if (o[k] !== undefined) throw invalidType(k, `no ${k} without classifier`, o[k]);
    }
    return;
  }
  const clf = o.classifier as NativeModel;
  if (typeof clf !== 'object' || clf === null || typeof clf.execute !== 'function') {
    throw invalidType('classifier', 'a loaded classifier (await loadModel(path)) whose forward(x, t) returns logits [B, C]', o.classifier);
  }
  if (out.uncond !== undefined) {
    throw invalidType(
      'classifier',
      'no classifier together with classifier-free guidance (uncond / guidanceScale): the two guidance types are exclusive, as in the authors\' model_wrapper',
      'a classifier',
    );
  }
  out.classifier = clf;
  out.classLabels = resolveClassLabels(o.classLabels, out.shape[0]);
  if (o.classifierScale !== undefined) out.classifierScale = expectFiniteNumber('classifierScale', o.classifierScale);
}

/** classLabels as an Int32Array of length `batch` (see resolveClassifierOptions). */
export function resolveClassLabels(value: unknown, batch: number): Int32Array {
  const expected = `an integer >= 0 or an array / Int32Array of ${batch} of them (one per batch element) when classifier is given`;
  if (typeof value === 'number') {
    return new Int32Array(batch).fill(expectInteger('classLabels', value, { min: 0, max: 2 ** 31 - 1 }));
  }
  if (!(Array.isArray(value) || value instanceof Int32Array)) throw invalidType('classLabels', expected, value);
  if (value.length !== batch) throw outOfRange('classLabels.length', `the batch size shape[0] = ${batch} (or one integer for all)`, value.length);
  const labels = new Int32Array(batch);
  for (let i = 0; i < batch; i++) labels[i] = expectInteger(`classLabels[${i}]`, value[i], { min: 0, max: 2 ** 31 - 1 });
  return labels;
}

/** Runs `plan` on `model` (from loadModel) and resolves with the final sample. */
export async function executePlan(
  model: Pick<NativeModel, 'execute'>,
  plan: Plan,
  options: ExecuteOptions,
): Promise<NativeExecuteResult> {
  const callSite = new Error('executePlan call site');
  Error.captureStackTrace(callSite, executePlan);
  if (typeof model !== 'object' || model === null || typeof model.execute !== 'function') {
    throw invalidType('model', 'a loaded model (await loadModel(path))', model);
  }
  const native = resolveExecuteOptions(options);
  checkPlan(plan, undefined, { gradCoef: native.classifier !== undefined });
  // An inpainting plan needs its inputs, and inputs for a plan without corrections would be ignored.
  const uses = planUsesInpaint(plan);
  if (uses && !native.inpaint) throw invalidType('inpaint', 'an object { x0, mask, noise } for a plan compiled with inpaint: true', undefined);
  if (!uses && native.inpaint) throw invalidType('inpaint', 'no inpaint inputs for a plan without inpainting (compile it with inpaint: true)', options.inpaint);
  // Chosen: an error rather than a silent no-op (the snapshots would be copied for nobody).
  if (native.intermediates !== undefined && native.onStep === undefined) {
    throw invalidType('onStep', 'a function when intermediates is given', undefined);
  }
  const signal = (options as { signal?: unknown }).signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidType('signal', 'an AbortSignal', signal);
  if (signal?.aborted) throw abortError(signal);

  const handle = signal ? nativeBinding().createAbortHandle() : undefined;
  // One shared listener per signal (lib/serving/signals.ts): a signal given to many
  // concurrent runs does not trip Node's MaxListenersExceededWarning.
  let unsubscribe = (): void => undefined;
  if (signal && handle) {
    unsubscribe = onAbort(signal, () => handle.abort());
    native.abortHandle = handle;
  }
  try {
    return await model.execute(plan, native);
  } catch (e) {
    if (e instanceof Error && e.name === 'AbortError') throw withCallerStack(abortError(signal), callSite);
    // A duck-typed model that rejects with a string or a plain object: the value is kept as the cause.
    throw withCallerStack(asModelError(e), callSite);
  } finally {
    unsubscribe();
  }
}
