/**
 * Bounds on what one request may size, checked before any work starts.
 *
 * - steps: at most MAX_STEPS (10 000), far above any sensible use (the paper's few-step
 *   solvers use 10-50); compilePlan, the Sampler and the CLI all refuse more with a RangeError.
 * - elements per request (prod(shape)): at most the model's `maxElements` (a loadModel
 *   option, default DEFAULT_MAX_ELEMENTS = 2^28, i.e. 1 GiB per float32 tensor) and at most
 *   what fits in the free memory of the model's device: os.freemem() for the CPU, the
 *   addon's deviceMemory() (cudaMemGetInfo + the caching allocator's free blocks) for CUDA.
 *   Either refusal is an Error with code ERR_SCIRE_TOO_LARGE carrying the numbers.
 *
 * Requests below FREE_MEMORY_CHECK_MIN_BYTES (64 MiB) skip the free-memory query.
 *
 * The memory estimate counts the solver's own tensors (plan registers, the network input
 * and output, the host copies in and out); the network's activations come on top and are
 * not known here, so the check is a lower bound: it stops requests that cannot possibly fit
 * (a 784 M-element batch) before they draw noise for minutes and then fail in LibTorch.
 */
import * as os from 'node:os';
import { nativeBinding } from './native';
import type { DeviceName, NativeModel } from './native-types';
import type { Plan } from './plan';
import { expectInteger } from './validate';

export { MAX_STEPS } from './options';
/** Default per-model bound on prod(shape) of one request (2^28 elements: 1 GiB of float32). */
export const DEFAULT_MAX_ELEMENTS = 2 ** 28;
/** Hard bound on maxElements: the noise generator and a Float32Array index up to 2^31 - 1. */
export const MAX_ELEMENTS_LIMIT = 2 ** 31 - 1;

/**
 * Requests whose solver tensors need less than this are not checked against free memory (a
 * query per request would cost a syscall or a CUDA runtime call on the JS thread for nothing:
 * such a request fails, if at all, with LibTorch's own out-of-memory error).
 */
export const FREE_MEMORY_CHECK_MIN_BYTES = 64 * 2 ** 20;

const BYTES_PER_DTYPE: Record<string, number> = { float32: 4, float16: 2, bfloat16: 2 };

/** The limits of a loaded model (set by loadModel). */
export interface ModelLimits {
  maxElements: number;
}

const limitsOf = new WeakMap<object, ModelLimits>();

/** Validates the loadModel option maxElements (undefined: the default). */
export function resolveMaxElements(value: unknown): number {
  if (value === undefined) return DEFAULT_MAX_ELEMENTS;
  return expectInteger('maxElements', value, { min: 1, max: MAX_ELEMENTS_LIMIT });
}

/** Records the limits of a model object (loadModel calls this). */
export function setModelLimits(model: object, limits: ModelLimits): void {
  limitsOf.set(model, limits);
}

/** The limits of a model: those given to loadModel, else the defaults (duck-typed models too). */
export function modelLimits(model: object): ModelLimits {
  return limitsOf.get(model) ?? { maxElements: DEFAULT_MAX_ELEMENTS };
}

/** An Error with code ERR_SCIRE_TOO_LARGE and the numbers as properties. */
export class RequestTooLargeError extends Error {
  readonly code = 'ERR_SCIRE_TOO_LARGE';
  constructor(
    message: string,
    readonly requestedElements: number,
    readonly requestedBytes: number,
    readonly limitElements: number,
    readonly freeBytes: number | undefined,
    readonly device: string,
  ) {
    super(message);
    this.name = 'Error';
  }
}

/** What the memory check needs to know of a request. */
export interface RequestSize {
  /** prod(shape) of the batch. */
  elements: number;
  /** Registers of the plan. */
  numRegs: number;
  /** Classifier-free guidance doubles the network batch. */
  guided: boolean;
  /** The model's dtype name ('float32' default). */
  dtype?: string;
}

/**
 * Bytes the solver itself needs for a request: the float32 registers, the network input and
 * output in the model dtype (twice the batch under guidance), and on the host the input, its
 * native copy and the result (twice: native and JS). The network's activations are not counted.
 */
export function estimateRequestBytes(r: RequestSize): number {
  const dtypeBytes = BYTES_PER_DTYPE[r.dtype ?? 'float32'] ?? 4;
  const evalBatch = r.guided ? 2 : 1;
  const device = r.elements * (4 * r.numRegs + 2 * dtypeBytes * evalBatch + 4);
  const host = r.elements * 4 * 4;
  return device + host;
}

/** Free memory of a device in bytes: os.freemem() for the CPU, the addon's query for CUDA. */
export function freeMemory(device: DeviceName): number | undefined {
  if (!device.startsWith('cuda')) return os.freemem();
  try {
    return nativeBinding().deviceMemory(device).free;
  } catch {
    return undefined; // the check cannot be made; the native side reports a real failure
  }
}

const MiB = 1024 * 1024;
const fmtBytes = (b: number): string => (b >= 10 * MiB ? `${(b / MiB / 1024).toFixed(2)} GiB` : `${b} bytes`);

/**
 * Throws RequestTooLargeError when a request of `shape` on `model` with `plan` exceeds the
 * model's maxElements or the free memory of its device. Called before any noise is drawn.
 */
export function checkRequestSize(
  model: Partial<Pick<NativeModel, 'info'>> & object,
  shape: readonly number[],
  plan: Pick<Plan, 'numRegs'>,
  guided: boolean,
): void {
  const elements = shape.reduce((a, b) => a * b, 1);
  const { maxElements } = modelLimits(model);
  // A duck-typed model's info is trusted only as far as it is a string.
  const info = (model.info ?? {}) as { device?: unknown; dtype?: unknown };
  const device = (typeof info.device === 'string' ? info.device : 'cpu') as DeviceName;
  const dtype = typeof info.dtype === 'string' ? info.dtype : undefined;
  const bytes = estimateRequestBytes({ elements, numRegs: plan.numRegs, guided, dtype });
  const shapeText = `[${shape.join(', ')}]`;
  if (elements > maxElements) {
    throw new RequestTooLargeError(
      `Request too large: shape ${shapeText} has ${elements} elements, more than the model's maxElements = ${maxElements} ` +
        `(split the batch, or load the model with a larger maxElements, at most ${MAX_ELEMENTS_LIMIT})`,
      elements,
      bytes,
      maxElements,
      undefined,
      device,
    );
  }
  const free = bytes < FREE_MEMORY_CHECK_MIN_BYTES ? undefined : freeMemory(device);
  if (free !== undefined && bytes > free) {
    throw new RequestTooLargeError(
      `Request too large: shape ${shapeText} (${elements} elements) needs at least ${fmtBytes(bytes)} on ${device} ` +
        `for the solver's ${plan.numRegs} registers, the network input/output and the host copies, ` +
        `but only ${fmtBytes(free)} are free (split the batch)`,
      elements,
      bytes,
      maxElements,
      free,
      device,
    );
  }
}
