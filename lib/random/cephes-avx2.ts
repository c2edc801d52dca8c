/**
 * The float32 logarithm and sine/cosine that PyTorch's AVX2 normal sampler uses
 * (the Cephes-style polynomials of avx_mathfun.h), emulated one lane at a time.
 *
 * Bit-exactness depends on the operation order *as compiled*: the Debian PyTorch 1.13
 * AVX2 kernels are built by GCC 12 with -mfma and default FP contraction, which fuses
 * each "multiply, then add" step of the polynomials into one FMA. The fused steps below
 * were read off the disassembly of that kernel compiled with the same compiler and flags
 * (and confirmed bit for bit against torch.randn on 2^20 samples); every other step
 * rounds to float32 after each operation.
 */

import { fma32, float32Bits, float32FromBits } from './float32-arith';

const f = Math.fround;

const SMALLEST_NORMAL_BITS = 0x00800000;
const EXPONENT_MASK = 0x7f800000;
const HALF_BITS = 0x3f000000;
const SQRT_HALF = f(0.707106781186547524);
const LOG_POLY = [
  7.0376836292e-2, -1.151461031e-1, 1.167699874e-1, -1.2420140846e-1, 1.4249322787e-1,
  -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
].map(f);
const LN2_LOW = f(-2.1219444e-4);
const LN2_HIGH = f(0.693359375);

/** log(x) for a float32 x > 0, as log256_ps computes it (NaN for x <= 0, as there). */
export function logAvx2(x: number): number {
  if (!(x > 0)) return NaN;
  // max(x, smallest normal): for positive floats the bit patterns order like the values.
  const bits = Math.max(float32Bits(x), SMALLEST_NORMAL_BITS);
  // x = m * 2^e with m in [0.5, 1); the exponent is converted to float exactly.
  let e = (bits >>> 23) - 127 + 1;
  let m = float32FromBits((bits & ~EXPONENT_MASK) | HALF_BITS);
  const belowSqrtHalf = m < SQRT_HALF;
  // if m < sqrt(1/2): e -= 1, m = 2m - 1; else m = m - 1 (all steps exact in float32)
  const addBack = belowSqrtHalf ? m : 0;
  m = f(m - 1);
  if (belowSqrtHalf) e -= 1;
  m = f(m + addBack);

  const z = f(m * m);
  let y = LOG_POLY[0];
  for (let k = 1; k < LOG_POLY.length; k++) y = fma32(y, m, LOG_POLY[k]);
  y = f(y * m);
  y = fma32(y, z, f(e * LN2_LOW));
  y = fma32(-z, 0.5, y);
  m = f(m + y);
  return fma32(e, LN2_HIGH, m);
}

const FOUR_OVER_PI = f(1.27323954473516);
const MINUS_PI_OVER_4_PART1 = f(-0.78515625);
const MINUS_PI_OVER_4_PART2 = f(-2.4187564849853515625e-4);
const MINUS_PI_OVER_4_PART3 = f(-3.77489497744594108e-8);
const COS_POLY = [2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2].map(f);
const SIN_POLY = [-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1].map(f);

/** [sin(x), cos(x)] for a float32 x, as sincos256_ps computes them. */
export function sinCosAvx2(x: number): [number, number] {
  const sinSignFromInput = x < 0 || Object.is(x, -0);
  const ax = Math.abs(x);
  // Octant index j, rounded up to even; the polynomial is evaluated at ax - j * pi/4.
  let j = Math.trunc(f(ax * FOUR_OVER_PI));
  j = (j + 1) & ~1;
  const flipSin = (j & 4) !== 0;
  const useSinPolyForSin = (j & 2) === 0;
  const flipCos = (~(j - 2) & 4) !== 0;

  // Cody-Waite reduction in three parts, each step one FMA.
  let r = fma32(j, MINUS_PI_OVER_4_PART1, ax);
  r = fma32(j, MINUS_PI_OVER_4_PART2, r);
  r = fma32(j, MINUS_PI_OVER_4_PART3, r);

  const z = f(r * r);
  const halfZ = f(z * 0.5);
  let cosPoly = fma32(COS_POLY[0], z, COS_POLY[1]);
  cosPoly = fma32(cosPoly, z, COS_POLY[2]);
  cosPoly = f(cosPoly * z);
  cosPoly = fma32(cosPoly, z, -halfZ);
  cosPoly = f(cosPoly + 1);

  let sinPoly = fma32(SIN_POLY[0], z, SIN_POLY[1]);
  sinPoly = fma32(sinPoly, z, SIN_POLY[2]);
  sinPoly = fma32(r, f(z * sinPoly), r);

  // Branch-free selection exactly as the vector code does it (keeps signed zeros equal).
  const sinFromSinPoly = useSinPolyForSin ? sinPoly : 0;
  const sinFromCosPoly = useSinPolyForSin ? 0 : cosPoly;
  const sinMagnitude = f(sinFromCosPoly + sinFromSinPoly);
  const cosMagnitude = f(f(sinPoly - sinFromSinPoly) + f(cosPoly - sinFromCosPoly));
  const sin = flipSin !== sinSignFromInput ? -sinMagnitude : sinMagnitude;
  const cos = flipCos ? -cosMagnitude : cosMagnitude;
  return [sin, cos];
}
