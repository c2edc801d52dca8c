/**
 * The native addon's surface (scire.node), declared once and cast onto the loaded addon.
 * Everything here is implemented in native/; lib/native.ts loads it.
 */
import type { Plan } from './plan';

export type DeviceName = string; // 'cpu' | 'cuda' | 'cuda:N'
export type ModelDType = 'float32' | 'float16' | 'bfloat16';

export interface NativeModelInfo {
  path: string;
  device: DeviceName;
  dtype: ModelDType;
  parameterCount: number;
  /** Number of inputs forward() takes besides self (2 = (x, t), 3 = (x, t, cond)). */
  numInputs: number;
}

/** Progress reported once per network evaluation, from a thread-safe function. */
export interface NativeStepEvent {
  /** 1-based index of the evaluation just finished. */
  nfe: number;
  /** Total evaluations in the plan. */
  total: number;
  /** Model input time of that evaluation. */
  t: number;
}

export interface NativeExecuteOptions {
  /** x_T, float32, row-major, length = prod(shape). */
  x: Float32Array;
  shape: number[];
  /** Conditioning input for a model with forward(x, t, cond); shape condShape. */
  cond?: Float32Array;
  condShape?: number[];
  /** Unconditional input used for classifier-free guidance (same shape as cond). */
  uncond?: Float32Array;
  guidanceScale?: number;
  onStep?: (ev: NativeStepEvent) => void;
  /** Checked between evaluations; when aborted the promise rejects with name 'AbortError'. */
  signal?: AbortSignal;
}

export interface NativeExecuteResult {
  data: Float32Array;
  shape: number[];
  nfe: number;
  /** Milliseconds: total, in the network, in the solver ops. */
  timings: { totalMs: number; modelMs: number; solverMs: number; [k: string]: number | string };
}

export interface NativeModel {
  readonly info: NativeModelInfo;
  /** One forward on host data (tests/debugging): t is the model input time (scalar for the batch). */
  forward(x: Float32Array, shape: number[], t: number): Promise<Float32Array>;
  /** Run a whole Plan in a worker thread. */
  execute(plan: Plan, opts: NativeExecuteOptions): Promise<NativeExecuteResult>;
  /** Release the module (optional; the GC also releases it). */
  dispose(): void;
}

export interface NativeBuildInfo {
  version: string;
  torchVersion: string;
  cuda: boolean;
  cudaDeviceCount: number;
  buildSystem: 'cmake-js' | 'node-gyp';
}

export interface NativeBinding {
  buildInfo(): NativeBuildInfo;
  loadModel(path: string, opts: { device: DeviceName; dtype: ModelDType }): Promise<NativeModel>;
  /**
   * Kernel entry points for tests and benchmarks (synchronous, host data):
   * out = sum coef_k * inputs_k with the fused kernel on `device`.
   */
  lincomb(
    inputs: Float32Array[],
    coefs: number[],
    opts?: { device?: DeviceName; offset?: number },
  ): Float32Array;
}
