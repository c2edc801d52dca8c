/**
 * Seeded standard-normal noise identical to PyTorch's CPU generator:
 *
 *   randn(shape, seed)  ===  torch.randn(shape, generator=torch.Generator().manual_seed(seed))
 *
 * bit for bit, for the default float32 dtype, as computed by PyTorch 1.13 on an x86 CPU
 * with AVX2 (what torch reports as "CPU capability usage: AVX2").
 *
 * PyTorch's CPU normal kernel has two paths:
 * - numel >= 16: draw numel float32 uniforms u = (next32 & (2^24-1)) / 2^24, then turn each
 *   block of 16 into normals by Box-Muller (lane j pairs u[j] with u[j+8]); if numel is
 *   not a multiple of 16, draw 16 fresh uniforms into the last 16 slots and transform that
 *   block again. The float32 log/sin/cos are the AVX2 Cephes polynomials.
 * - numel < 16: one float64 Box-Muller draw per element with the generator's cached second
 *   value (at::normal_distribution<double>), uniforms u = (next64 & (2^53-1)) / 2^53.
 */

import { Mt19937 } from './random/mt19937';
import { logAvx2, sinCosAvx2 } from './random/cephes-avx2';
import { withCode } from './validate';
import type { AbortSignalLike } from './native-types';

const VECTOR_PATH_MIN_NUMEL = 16;
const f = Math.fround;
const TWO_PI_F32 = f(2 * Math.PI);

/** `shape` as a validated list of dimensions and its element count. */
function checkedNumel(shape: readonly number[]): number {
  if (!Array.isArray(shape)) {
    throw withCode(new TypeError(`shape must be an array of positive integers, got ${typeof shape}`), 'ERR_INVALID_ARG_TYPE');
  }
  let numel = 1;
  shape.forEach((dim, i) => {
    if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 1) {
      throw withCode(new RangeError(`shape[${i}] must be a positive integer, got ${String(dim)}`), 'ERR_OUT_OF_RANGE');
    }
    numel *= dim;
  });
  if (numel > 2 ** 31 - 1) {
    throw withCode(new RangeError(`shape has ${numel} elements; at most 2^31 - 1 are supported`), 'ERR_OUT_OF_RANGE');
  }
  return numel;
}

/** The low 32 bits of a seed in [0, 2^64), the part PyTorch's mt19937 is seeded with. */
function checkedSeedLow32(seed: number | bigint): number {
  if (typeof seed === 'bigint') {
    if (seed < 0n || seed >= 1n << 64n) {
      throw withCode(new RangeError(`seed must be an integer in [0, 2^64), got ${seed}n`), 'ERR_OUT_OF_RANGE');
    }
    return Number(seed & 0xffffffffn);
  }
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0) {
    throw withCode(
      new RangeError(`seed must be a non-negative safe integer (or a bigint below 2^64), got ${String(seed)}`),
      'ERR_OUT_OF_RANGE',
    );
  }
  return seed % 2 ** 32;
}

/** A uniform float32 in [0, 1) from 24 random bits (at::uniform_real_distribution<float>). */
function uniformFloat32(engine: Mt19937): number {
  return (engine.nextUint32() & 0xffffff) * 2 ** -24;
}

/** A uniform float64 in [0, 1) from 53 of 64 random bits (at::uniform_real_distribution<double>). */
function uniformFloat64(engine: Mt19937): number {
  const high = engine.nextUint32();
  const low = engine.nextUint32();
  return ((high & 0x1fffff) * 2 ** 32 + low) * 2 ** -53;
}

/** Box-Muller over data[at..at+16) in place, as normal_fill_16_AVX2 (mean 0, std 1). */
function boxMuller16(data: Float32Array, at: number): void {
  for (let lane = 0; lane < 8; lane++) {
    const u1 = f(1 - data[at + lane]); // [0, 1) -> (0, 1] for the logarithm
    const u2 = data[at + lane + 8];
    const radius = f(Math.sqrt(f(-2 * logAvx2(u1))));
    const [sinTheta, cosTheta] = sinCosAvx2(f(TWO_PI_F32 * u2));
    // "+ 0" is the kernel's fused "* std + mean" with std = 1, mean = 0 (turns -0 into +0).
    data[at + lane] = f(radius * cosTheta) + 0;
    data[at + lane + 8] = f(radius * sinTheta) + 0;
  }
}

function fillVectorPath(data: Float32Array, engine: Mt19937): void {
  const numel = data.length;
  for (let i = 0; i < numel; i++) data[i] = uniformFloat32(engine);
  for (let i = 0; i + 16 <= numel; i += 16) boxMuller16(data, i);
  if (numel % 16 !== 0) {
    const tail = numel - 16;
    for (let i = 0; i < 16; i++) data[tail + i] = uniformFloat32(engine);
    boxMuller16(data, tail);
  }
}

function fillScalarPath(data: Float32Array, engine: Mt19937): void {
  let cached: number | undefined;
  for (let i = 0; i < data.length; i++) {
    if (cached !== undefined) {
      data[i] = cached + 0;
      cached = undefined;
      continue;
    }
    const u1 = uniformFloat64(engine);
    const u2 = uniformFloat64(engine);
    const radius = Math.sqrt(-2 * Math.log(1 - u2));
    const theta = 2 * Math.PI * u1;
    cached = radius * Math.sin(theta);
    data[i] = radius * Math.cos(theta) + 0;
  }
}

/**
 * Standard-normal float32 samples of the given shape, equal bit for bit to
 * `torch.randn(shape, generator=torch.Generator().manual_seed(seed))` (PyTorch 1.13, x86
 * AVX2 CPU kernels). `shape` entries must be positive integers; `seed` a non-negative safe
 * integer or a bigint below 2^64. Returns the values in row-major (C) order.
 */
export function randn(shape: readonly number[], seed: number | bigint): Float32Array {
  const numel = checkedNumel(shape);
  const engine = new Mt19937(checkedSeedLow32(seed));
  const data = new Float32Array(numel);
  if (numel >= VECTOR_PATH_MIN_NUMEL) fillVectorPath(data, engine);
  else fillScalarPath(data, engine);
  return data;
}

/** Element count above which the Sampler draws its noise with randnAsync (~30 ms of work). */
export const RANDN_ASYNC_THRESHOLD = 2 ** 18;
/** Elements generated between two yields to the event loop in randnAsync (~5-10 ms of work). */
export const RANDN_ASYNC_CHUNK = 2 ** 16;

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * randn without blocking the event loop: the same values, bit for bit, as randn(shape, seed),
 * drawn in chunks of `chunk` elements (a multiple of 16, default RANDN_ASYNC_CHUNK) with a
 * yield to the event loop (setImmediate) between chunks, so timers and I/O keep running
 * during a large draw. `signal` stops the draw between chunks (the promise rejects with
 * signal.reason wrapped in an AbortError).
 */
export async function randnAsync(
  shape: readonly number[],
  seed: number | bigint,
  options: { chunk?: number; signal?: AbortSignalLike } = {},
): Promise<Float32Array> {
  const numel = checkedNumel(shape);
  const engine = new Mt19937(checkedSeedLow32(seed));
  const data = new Float32Array(numel);
  if (numel < VECTOR_PATH_MIN_NUMEL) {
    fillScalarPath(data, engine);
    return data;
  }
  const chunk = Math.max(16, Math.floor((options.chunk ?? RANDN_ASYNC_CHUNK) / 16) * 16);
  const checkAbort = (): void => {
    if (options.signal?.aborted) {
      const err = new Error('The operation was aborted', { cause: options.signal.reason });
      err.name = 'AbortError';
      throw Object.assign(err, { code: 'ABORT_ERR' });
    }
  };
  // The same two passes as fillVectorPath: every uniform first (the engine's order), then
  // Box-Muller over whole blocks of 16, then the redrawn tail block.
  for (let start = 0; start < numel; start += chunk) {
    const end = Math.min(numel, start + chunk);
    for (let i = start; i < end; i++) data[i] = uniformFloat32(engine);
    await yieldToEventLoop();
    checkAbort();
  }
  const whole = numel - (numel % 16);
  for (let start = 0; start < whole; start += chunk) {
    const end = Math.min(whole, start + chunk);
    for (let i = start; i < end; i += 16) boxMuller16(data, i);
    await yieldToEventLoop();
    checkAbort();
  }
  if (numel % 16 !== 0) {
    const tail = numel - 16;
    for (let i = 0; i < 16; i++) data[tail + i] = uniformFloat32(engine);
    boxMuller16(data, tail);
  }
  return data;
}
