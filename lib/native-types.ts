/**
 * The native addon's surface (scire.node), declared once and cast onto the loaded addon.
 * Everything here is implemented in native/; lib/native.ts loads it.
 */
import type { Plan } from './plan';

/** A LibTorch device: the CPU, the current CUDA device, or CUDA device N. */
export type DeviceName = 'cpu' | 'cuda' | `cuda:${number}`;
export type ModelDType = 'float32' | 'float16' | 'bfloat16';

export interface NativeModelInfo {
  path: string;
  device: DeviceName;
  dtype: ModelDType;
  parameterCount: number;
  /** Number of inputs forward() takes besides self (2 = (x, t), 3 = (x, t, cond)). */
  numInputs: number;
  /** Of those, the ones without a default value. */
  requiredInputs: number;
}

/** Progress reported once per network evaluation, from a thread-safe function. */
export interface NativeStepEvent {
  /** 1-based index of the evaluation just finished. */
  nfe: number;
  /** Total evaluations in the plan. */
  total: number;
  /** Model input time of that evaluation. */
  t: number;
  /** The solver's continuous time of that evaluation (the eval op's tCont). */
  tCont?: number;
  /**
   * With opts.intermediates: the snapshot (float32, shaped like the request) — the state x_t
   * ('x') or the evaluation's data prediction ('x0'); then nfe counts the evaluations done
   * when it was read (0 for x_T) and t / tCont are the snapshot's times.
   */
  x?: Float32Array;
}

/**
 * The part of the standard AbortSignal this package uses. Declared here so that the typings
 * need neither @types/node nor the DOM library; an AbortController's signal fits it.
 */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** A cancellation flag shared with a running plan (createAbortHandle()). */
export interface NativeAbortHandle {
  abort(): void;
  readonly aborted: boolean;
}

export interface NativeInpaintInputs {
  x0: Float32Array;
  mask: Float32Array;
  noise: Float32Array;
}

export interface NativeExecuteOptions {
  /** x_T: float32, row-major, length = prod(shape). */
  x: Float32Array;
  /** Sample shape; shape[0] is the batch. */
  shape: number[];
  /** Conditioning input of a model with forward(x, t, cond); condShape[0] must equal shape[0]. */
  cond?: Float32Array;
  condShape?: number[];
  /** Unconditional input for classifier-free guidance (same shape as cond); needs guidanceScale. */
  uncond?: Float32Array;
  /** Guidance scale g: raw = uncond + g * (cond - uncond). Valid only with uncond. */
  guidanceScale?: number;
  /**
   * Classifier guidance (lib/plan.ts): a loaded classifier forward(x, t) -> logits [B, C] on
   * the model's device; not together with uncond (classifier-free guidance). The run is op by
   * op (no CUDA graph) and every eval op of the plan needs gradCoef.
   */
  classifier?: NativeModel;
  /** One class index in [0, C) per batch element (length shape[0]); needs classifier. */
  classLabels?: Int32Array;
  /** Classifier guidance scale s (default 1): eps' = eps - s sigma_t grad_x log p(y | x_t). */
  classifierScale?: number;
  /** Called once per network evaluation (never blocks the sampling thread). */
  onStep?: (ev: NativeStepEvent) => void;
  /**
   * 'x' | 'x0' (lib/intermediates.ts): onStep is called once per snapshot instead, with
   * ev.x a host copy of it. Needs onStep; runs op by op (no CUDA graph). Default: none.
   */
  intermediates?: 'x' | 'x0';
  /**
   * The inputs of an inpainting plan (compilePlan({ ..., inpaint: true }), lib/inpaint.ts), each
   * float32 of prod(shape) values: x0 the known data, mask in [0, 1] (1 = known), noise the
   * run's starting noise z. Required by such a plan, refused by any other. Runs op by op (no
   * CUDA graph).
   */
  inpaint?: NativeInpaintInputs;
  /**
   * Checked between evaluations; an aborted run rejects with an Error named 'AbortError'.
   * A request aborted while still queued behind others rejects at once and never runs.
   */
  signal?: AbortSignalLike;
  /** Alternative to `signal`: a handle from createAbortHandle(), checked the same way. */
  abortHandle?: NativeAbortHandle;
  /**
   * Run the whole plan as one CUDA graph (native/cuda_graph.h). 'auto' (default): on a CUDA
   * device, falling back to op-by-op execution with timings.cudaGraphReason when the model
   * cannot be captured; true: a graph or an error; false: op by op. timings.cudaGraph says
   * what happened: 'captured' | 'replayed' | 'eager' | 'off'. With a graph, onStep events
   * arrive after the run and the signal is checked before it. See docs/gpu.md.
   */
  cudaGraph?: 'auto' | boolean;
}

export interface NativeExecuteResult {
  data: Float32Array;
  shape: number[];
  nfe: number;
  /**
   * 1-based index of the first evaluation whose model output held NaN or Infinity, 0 when
   * every output was finite, -1 when not measured (one float64 sum per evaluation is kept on
   * the device and read once after the run). The Sampler turns it into ERR_SCIRE_NON_FINITE.
   */
  nonFiniteEval?: number;
  /** False when data holds NaN or Infinity (checked on the worker thread). */
  finite?: boolean;
  /** Milliseconds: total, in the network, in the solver ops. */
  timings: { totalMs: number; modelMs: number; solverMs: number; [k: string]: number | string };
}

export interface NativeModel {
  readonly info: NativeModelInfo;
  /** One forward on host data (tests/debugging): t is the model input time (scalar for the batch). */
  forward(x: Float32Array, shape: number[], t: number): Promise<Float32Array>;
  /**
   * Run a whole Plan on the model's own native thread. Requests to one model run one at a
   * time in FIFO order; other models run side by side; no libuv pool thread is held while a
   * request waits or runs.
   */
  execute(plan: Plan, opts: NativeExecuteOptions): Promise<NativeExecuteResult>;
  /**
   * Release the module (optional; the GC also releases it). Queued and running requests
   * reject with code ERR_SCIRE_DISPOSED (a running forward is abandoned, never waited for),
   * the model's CUDA graphs are freed and its thread ends.
   */
  dispose(): void;
  /** Free this model's cached CUDA graphs (and their memory); returns how many. */
  clearCudaGraphs(): number;
  /** True after dispose(). */
  readonly disposed: boolean;
}

export interface NativeBuildInfo {
  version: string;
  /** 'cpu' or 'cudaNN' (CUDA major NN): the LibTorch the addon was built against (CMake builds; absent from node-gyp builds). */
  variant?: string;
  torchVersion: string;
  cuda: boolean;
  cudaDeviceCount: number;
  buildSystem: 'cmake-js' | 'node-gyp';
  /** CUDA architectures of the compiled kernels, comma-separated ('' without CUDA). */
  cudaArchitectures: string;
  /** Whether the LibTorch the addon links has CUDA (models can run on 'cuda'). */
  torchCuda: boolean;
  /** True for the testing addon scire_testing.node (tests and benchmarks only). */
  testing: boolean;
}

/** cudaProbe(): the CUDA runtime's view and a test launch of a compiled kernel on GPU 0. */
export interface NativeCudaProbe {
  /** Built with CUDA kernels. */
  compiled: boolean;
  runtimeVersion: number;
  driverVersion: number;
  deviceCount: number;
  /** 'NVIDIA H100 80GB HBM3 (sm_90); ...' */
  devices: string;
  /** The probe kernel ran on device 0 and wrote the expected values. */
  kernelOk: boolean;
  /** First CUDA error met ('' if none). */
  error: string;
}

export interface NativeBinding {
  buildInfo(): NativeBuildInfo;
  cudaProbe(): NativeCudaProbe;
  loadModel(path: string, opts: { device: DeviceName; dtype: ModelDType }): Promise<NativeModel>;
  /** A fresh abort handle for NativeExecuteOptions.abortHandle. */
  createAbortHandle(): NativeAbortHandle;
  /**
   * Free and total memory of a CUDA device in bytes ('cuda' | 'cuda:N'; free includes the
   * caching allocator's unused blocks). Throws ERR_SCIRE_NO_CUDA without a usable CUDA device.
   */
  deviceMemory(device: DeviceName): { device: DeviceName; free: number; total: number; cached: number };
}

/**
 * Options of the testing addon's lincomb(inputs, coefs, opts) (build/Release/scire_testing.node,
 * test/support/testing-addon.ts): out = sum coef_k * inputs_k with the fused kernel.
 */
export interface NativeLincombOptions {
  device?: DeviceName;
  /** Place every buffer this many elements past an aligned allocation (1 = misaligned). */
  offset?: number;
  /** Storage of inputs[1..] (the eval output-conversion layout); inputs[0] stays float32. */
  termDType?: ModelDType;
  /** Storage of the output, from a single float32 input (the eval input-cast layout). */
  outDType?: ModelDType;
}

/** The testing addon's benchLincomb result: medians over `iters` runs, one tensor = `bytes` bytes of float32. */
export interface NativeLincombBench {
  terms: number;
  bytes: number;
  elements: number;
  device: DeviceName;
  iters: number;
  threads: number;
  /** The fused kernel (reads `terms` tensors, writes one). */
  fusedMs: number;
  /** Same arithmetic as in-place LibTorch ops: mul_out then add_(t, alpha) per term. */
  torchOpsMs: number;
  /** Same arithmetic as a plain expression c0*x0 + c1*x1 + ... (temporaries). */
  torchExprMs: number;
  /** One device copy of a tensor (cudaMemcpyAsync on GPU, copy_ on CPU). */
  copyMs: number;
  /** max |fused - expression| on the benchmark's tensors. */
  maxAbsDiff: number;
}
