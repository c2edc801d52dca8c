/**
 * executePlanReference: the float64 reference executor of a Plan (the contract in plan.ts),
 * with a plain JS model function. It is the oracle for the native executor and runs the
 * golden-vector tests without any native build.
 *
 *   model(x, shape, tInput) -> Float64Array (same length): the network on the whole batch at
 *   model input time tInput (the same for every batch element).
 *
 * Classifier guidance (inputs.classifier, classLabels, classifierScale): the classifier is a
 * JS function returning the gradient itself,
 *   classifier(x, shape, tInput, labels) -> grad_x sum_b log p(labels[b] | x_b, tInput)
 * (same length as x), called with the network's input x_in of every eval op; R[dst] gets
 * classifierScale * op.gradCoef * grad added (lib/plan.ts).
 */
import { planUsesInpaint } from './inpaint';
import { expectIntermediatesMode, planSnapshots, type IntermediatesMode, type Snapshot } from './intermediates';
import type { Plan } from './plan';
import { checkPlan } from './plan-check';
import { firstNonFinite, nonFiniteModelOutput, nonFiniteResult } from './result-check';
import { describeValue, expectFiniteNumber, expectFunction, expectInteger, expectObject, invalidType, outOfRange } from './validate';

export type ReferenceModel = (x: Float64Array, shape: number[], tInput: number) => Float64Array | Float32Array | number[];
/** grad_x sum_b log p(labels[b] | x_b, tInput), same length as x. */
export type ReferenceClassifier = (
  x: Float64Array,
  shape: number[],
  tInput: number,
  labels: number[],
) => Float64Array | Float32Array | number[];

export interface ReferenceInputs {
  /** x_T, row-major, length prod(shape). */
  x: Float64Array | Float32Array | number[];
  /** [B, ...dims]; the leading dimension is the batch (used by thresholding). */
  shape: number[];
  model: ReferenceModel;
  /** Record the states x_t ('x') or the data predictions ('x0'): lib/intermediates.ts. */
  intermediates?: IntermediatesMode;
  /** Classifier guidance: the gradient of the log-probability of the labels (see above). */
  classifier?: ReferenceClassifier;
  /** One label (a non-negative integer) per batch element, or one for all; needs classifier. */
  classLabels?: number | number[];
  /** Guidance scale s (default 1); needs classifier. */
  classifierScale?: number;
  /**
   * The inputs of an inpainting plan (compilePlan({ ..., inpaint: true }), lib/inpaint.ts), each
   * prod(shape) values: x0 the known data, mask in [0, 1] (1 = known), noise the run's
   * starting noise z. Required by such a plan, refused by any other.
   */
  inpaint?: ReferenceInpaint;
}

export interface ReferenceInpaint {
  x0: Float64Array | Float32Array | number[];
  mask: Float64Array | Float32Array | number[];
  noise: Float64Array | Float32Array | number[];
}

/** One recorded intermediate (float64, shaped like the sample). */
export interface ReferenceIntermediate {
  /** Evaluations done when it was read. */
  nfe: number;
  t: number;
  tCont: number;
  x: Float64Array;
}

export interface ReferenceResult {
  x: Float64Array;
  nfe: number;
  /** Model input time of every evaluation, in order. */
  evalTimes: number[];
  /** With inputs.intermediates: the snapshots in order. */
  intermediates?: ReferenceIntermediate[];
}

function checkShape(shape: unknown): number[] {
  if (!Array.isArray(shape) || shape.length < 1) throw invalidType('shape', 'a non-empty array of positive integers [B, ...dims]', shape);
  shape.forEach((d, i) => {
    if (!(typeof d === 'number' && Number.isInteger(d) && d >= 1)) throw invalidType(`shape[${i}]`, 'a positive integer', d);
  });
  return shape as number[];
}

function toFloat64(field: string, x: unknown, length: number): Float64Array {
  if (!(x instanceof Float64Array || x instanceof Float32Array || Array.isArray(x))) {
    throw invalidType(field, 'a Float64Array, Float32Array or number[]', x);
  }
  if (x.length !== length) throw outOfRange(`${field}.length`, `prod(shape) = ${length}`, x.length);
  const out = Float64Array.from(x as ArrayLike<number>);
  for (let i = 0; i < out.length; i++) {
    if (!Number.isFinite(out[i])) throw invalidType(`${field}[${i}]`, 'a finite number', (x as ArrayLike<unknown>)[i]);
  }
  return out;
}

/** torch.quantile(v, q) with the default linear interpolation (v is sorted in place). */
function quantileLinear(v: Float64Array, q: number): number {
  v.sort();
  const pos = q * (v.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, v.length - 1);
  return v[lo] + (pos - lo) * (v[hi] - v[lo]);
}

/** Dynamic thresholding per batch element (DPM-Solver's dynamic_thresholding_fn). */
export function dynamicThreshold(x: Float64Array, batch: number, ratio: number, maxVal: number): void {
  const per = x.length / batch;
  const abs = new Float64Array(per);
  for (let b = 0; b < batch; b++) {
    const off = b * per;
    for (let i = 0; i < per; i++) abs[i] = Math.abs(x[off + i]);
    // s = max(quantile(|x0|, ratio), maxVal);  x0 = clamp(x0, -s, s) / s
    const s = Math.max(quantileLinear(abs, ratio), maxVal);
    for (let i = 0; i < per; i++) x[off + i] = Math.min(Math.max(x[off + i], -s), s) / s;
  }
}

/** The inpainting inputs as float64 (null for a plan without inpainting); checks both ways. */
function inpaintInputs(plan: Plan, value: unknown, size: number): { x0: Float64Array; mask: Float64Array; noise: Float64Array } | null {
  const uses = planUsesInpaint(plan);
  if (value === undefined) {
    if (uses) throw invalidType('inpaint', 'an object { x0, mask, noise } for a plan compiled with inpaint: true', value);
    return null;
  }
  if (!uses) throw invalidType('inpaint', 'no inpaint inputs for a plan without inpainting (compile it with inpaint: true)', value);
  const o = expectObject('inpaint', value);
  const mask = toFloat64('inpaint.mask', o.mask, size);
  for (let i = 0; i < size; i++) {
    if (!(mask[i] >= 0 && mask[i] <= 1)) throw outOfRange(`inpaint.mask[${i}]`, 'a number in [0, 1]', mask[i]);
  }
  return { x0: toFloat64('inpaint.x0', o.x0, size), mask, noise: toFloat64('inpaint.noise', o.noise, size) };
}

/** The checked classifier-guidance inputs, or undefined when no classifier is given. */
function referenceGuidance(
  inp: Record<string, unknown>,
  batch: number,
): { classifier: ReferenceClassifier; labels: number[]; scale: number } | undefined {
  if (inp.classifier === undefined) {
    for (const k of ['classLabels', 'classifierScale']) {
      if (inp[k] !== undefined) throw invalidType(k, `no ${k} without classifier`, inp[k]);
    }
    return undefined;
  }
  const classifier = expectFunction('classifier', inp.classifier) as ReferenceClassifier;
  const scale = inp.classifierScale === undefined ? 1 : expectFiniteNumber('classifierScale', inp.classifierScale);
  const raw = inp.classLabels;
  if (raw === undefined) throw invalidType('classLabels', 'an integer or an array of integers (one per batch element) when classifier is given', raw);
  let labels: number[];
  if (Array.isArray(raw)) {
    if (raw.length !== batch) throw outOfRange('classLabels.length', `the batch size shape[0] = ${batch} (or give one integer for all)`, raw.length);
    labels = raw.map((v, i) => expectInteger(`classLabels[${i}]`, v, { min: 0 }));
  } else {
    labels = new Array<number>(batch).fill(expectInteger('classLabels', raw, { min: 0 }));
  }
  return { classifier, labels, scale };
}

export function executePlanReference(plan: Plan, inputs: ReferenceInputs): ReferenceResult {
  const inp = expectObject('inputs', inputs);
  const mode = inp.intermediates === undefined ? undefined : expectIntermediatesMode('intermediates', inp.intermediates);
  const shape = checkShape(inp.shape);
  const size = shape.reduce((a, b) => a * b, 1);
  const x0 = toFloat64('x', inp.x, size);
  const model = expectFunction('model', inp.model) as ReferenceModel;
  const guidance = referenceGuidance(inp, shape[0]);
  checkPlan(plan, mode, { gradCoef: guidance !== undefined });
  const known = inpaintInputs(plan, inp.inpaint, size);
  // out = (1 - m) out + m (a x0 + s z), in place.
  const correct = (out: Float64Array, c: { a: number; s: number }): void => {
    if (!known) throw new Error('internal: inpainting inputs missing');
    const { x0: k, mask: m, noise: z } = known;
    for (let i = 0; i < size; i++) out[i] = (1 - m[i]) * out[i] + m[i] * (c.a * k[i] + c.s * z[i]);
  };

  const R: Array<Float64Array | null> = new Array(plan.numRegs).fill(null);
  R[0] = x0.map((v) => plan.initScale * v);
  const evalTimes: number[] = [];
  const get = (r: number): Float64Array => R[r] as Float64Array; // checkPlan guarantees it is written

  const snapshots: Snapshot[] = mode ? planSnapshots(plan, mode) : [];
  const recorded: ReferenceIntermediate[] = [];
  let nextSnap = 0;
  const takeSnapshots = (done: number): void => {
    while (nextSnap < snapshots.length && snapshots[nextSnap].after === done) {
      const snap = snapshots[nextSnap++];
      const x = new Float64Array(size);
      for (const [c, r] of snap.terms) {
        const v = get(r);
        for (let i = 0; i < size; i++) x[i] += c * v[i];
      }
      recorded.push({ nfe: evalTimes.length, t: snap.t, tCont: snap.tCont, x });
    }
  };
  takeSnapshots(0);

  for (const [opIndex, op] of plan.ops.entries()) {
    if (op.op === 'eval') {
      const src = get(op.src);
      const xIn = src.map((v) => op.inScale * v);
      const raw = model(Float64Array.from(xIn), shape.slice(), op.t);
      const n = evalTimes.length;
      if (!raw || typeof (raw as ArrayLike<number>).length !== 'number' || raw.length !== size) {
        throw outOfRange(`model output (evaluation ${n}, t = ${op.t})`, `an array of length prod(shape) = ${size}`, raw);
      }
      const out = new Float64Array(size);
      for (let i = 0; i < size; i++) {
        const m = raw[i];
        if (!Number.isFinite(m)) {
          // The same error (ERR_SCIRE_NON_FINITE) as the Sampler's check of the native executor.
          throw nonFiniteModelOutput(n + 1, plan.nfe, op.t, `: model output[${i}] is ${describeValue(m)}`, '');
        }
        out[i] = op.outX * xIn[i] + op.outM * m;
      }
      if (guidance) {
        const grad = guidance.classifier(Float64Array.from(xIn), shape.slice(), op.t, guidance.labels.slice());
        if (!grad || typeof (grad as ArrayLike<number>).length !== 'number' || grad.length !== size) {
          throw outOfRange(`classifier output (evaluation ${n + 1}, t = ${op.t})`, `an array of length prod(shape) = ${size}`, grad);
        }
        const c = guidance.scale * (op.gradCoef as number);
        for (let i = 0; i < size; i++) {
          if (!Number.isFinite(grad[i])) {
            throw invalidType(`classifier output (evaluation ${n + 1}, t = ${op.t})[${i}]`, 'a finite number', grad[i]);
          }
          out[i] += c * grad[i];
        }
      }
      R[op.dst] = out;
      evalTimes.push(op.t);
    } else if (op.op === 'lincomb') {
      const out = new Float64Array(size);
      for (const [c, r] of op.terms) {
        const v = get(r);
        for (let i = 0; i < size; i++) out[i] += c * v[i];
      }
      if (op.inpaint) correct(out, op.inpaint);
      R[op.dst] = out;
    } else if (op.op === 'inpaint') {
      const out = Float64Array.from(get(op.reg));
      correct(out, op);
      R[op.reg] = out;
    } else {
      dynamicThreshold(get(op.reg), shape[0], op.ratio, op.maxVal);
    }
    takeSnapshots(opIndex + 1);
  }
  const result = get(plan.final.src).map((v) => plan.final.scale * v);
  if (plan.final.inpaint) correct(result, plan.final.inpaint);
  const bad = firstNonFinite(result);
  if (bad >= 0) throw nonFiniteResult(bad, result[bad], true, '');
  return { x: result, nfe: evalTimes.length, evalTimes, ...(mode ? { intermediates: recorded } : {}) };
}
