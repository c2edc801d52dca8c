/**
 * The testing addon build/Release/scire_testing.node (CMake target scire_testing, built by
 * `npm run build` next to scire.node): the shipped exports plus the test and benchmark
 * entries of native/testing/ (lincomb, benchLincomb, maskedLincomb, benchMaskedLincomb, the graph-cache policy probe, and the
 * Model methods benchForward, torchOpsStepper, runPlanOps). Models used with those methods
 * must be loaded through this binding (its loadModel), not through lib/native.ts.
 */
import * as fs from 'fs';
import * as path from 'path';
import { loadNativeFrom } from '../../lib/native';
import type { DeviceName, NativeBinding, NativeLincombBench, NativeLincombOptions, NativeModel } from '../../lib/native-types';
import type { Plan } from '../../lib/plan';

export const TESTING_ADDON = path.resolve(__dirname, '..', '..', 'build', 'Release', 'scire_testing.node');

export interface GraphCacheKeySpec {
  owner: number;
  plan: number;
  shape: number[];
  condShape?: number[];
  guided?: boolean;
  guidanceScale?: number;
  device?: number;
}

export interface GraphCachePolicyProbe {
  lookup(key: GraphCacheKeySpec, nowMs: number): { verdict: 'hit' | 'capture' | 'eager-failed' | 'eager-backoff'; id?: number; reason?: string };
  insert(key: GraphCacheKeySpec, slot: { id: number; bytes: number; failure?: string }): number[];
  recordTransientFailure(key: GraphCacheKeySpec, reason: string, nowMs: number): void;
  eraseOwner(owner: number): number[];
  count(): number;
  bytes(): number;
  backoffs(): number;
  isTransient(message: string): boolean;
}

export interface TestingModel extends NativeModel {
  benchForward(opts: { shape: number[]; t?: number; iters?: number; graph?: boolean; onJsThread?: boolean }): Promise<{
    eagerMs: number;
    graphMs: number | null;
    graphError: string | null;
    iters: number;
    threads: number;
  }>;
  runPlanOps(plan: Plan, opts: { x: Float32Array; shape: number[] }): Promise<Float32Array>;
}

/** The inpainting kernel's options (native/testing/kernel_bindings.cc maskedLincomb). */
export interface MaskedLincombOptions {
  mask: Float32Array;
  x0: Float32Array;
  noise: Float32Array;
  a: number;
  s: number;
  device?: DeviceName;
  offset?: number;
  inPlace?: boolean;
}

export interface MaskedLincombBench {
  terms: number;
  bytes: number;
  device: DeviceName;
  iters: number;
  threads: number;
  /** The fused masked pass. */
  maskedMs: number;
  /** The plain fused lincomb, then the correction as a second in-place pass. */
  twoPassMs: number;
  /** The plain fused lincomb alone (no correction). */
  plainMs: number;
  /** The masked arithmetic as LibTorch ops. */
  torchOpsMs: number;
  maxAbsDiff: number;
}

export interface TestingBinding extends NativeBinding {
  maskedLincomb(inputs: Float32Array[], coefs: number[], opts: MaskedLincombOptions): Float32Array;
  benchMaskedLincomb(opts: { terms: number; bytes: number; device?: DeviceName; iters?: number }): MaskedLincombBench;
  lincomb(inputs: Float32Array[], coefs: number[], opts?: NativeLincombOptions): Float32Array;
  benchLincomb(opts: { terms: number; bytes: number; device?: DeviceName; iters?: number }): NativeLincombBench;
  graphCachePolicyProbe(limits?: { maxEntries?: number; maxBytes?: number }): GraphCachePolicyProbe;
  batchBucket(n: number): number;
  cudaGraphCacheState(): { entries: number; bytes: number; maxEntries: number; maxBytes: number };
  loadModel(file: string, opts: { device: string; dtype: 'float32' | 'float16' | 'bfloat16' }): Promise<TestingModel>;
}

let cached: TestingBinding | undefined;

/** Loads the testing addon (once); a clear error when it was not built. */
export function testingBinding(): TestingBinding {
  if (cached) return cached;
  if (!fs.existsSync(TESTING_ADDON)) {
    throw new Error(`the testing addon ${TESTING_ADDON} is not built: run \`npm run build\` (cmake-js builds it next to scire.node)`);
  }
  cached = loadNativeFrom(TESTING_ADDON) as TestingBinding;
  return cached;
}
