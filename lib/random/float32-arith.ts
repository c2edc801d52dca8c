/**
 * Single-precision arithmetic emulated with float64, bit for bit.
 *
 * A float32 add, subtract, multiply or square root is `Math.fround` of the float64 result
 * (float64 has more than 2*24+2 significand bits, so the double rounding is harmless).
 * A fused multiply-add needs care: a*b is exact in float64, but a*b + c may round twice.
 * `fma32` computes the float64 sum and its exact error (TwoSum) and only corrects the
 * one case where the second rounding can go wrong: a float64 sum sitting exactly on the
 * midpoint between two float32 neighbours while the exact sum lies off it.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float32 adjacent to `x` (a float32 value) in the direction of `toward`. */
function adjacentFloat32(x: number, toward: number): number {
  if (x === 0) return toward > 0 ? 2 ** -149 : -(2 ** -149);
  f32[0] = x;
  const awayFromZero = (toward > x) === (x > 0);
  u32[0] = awayFromZero ? u32[0] + 1 : u32[0] - 1;
  return f32[0];
}

/** Correctly rounded float32 result of a*b + c for float32 inputs a, b, c. */
export function fma32(a: number, b: number, c: number): number {
  const product = a * b; // exact: 24 + 24 significant bits fit in 53
  const sum = product + c;
  const rounded = Math.fround(sum);
  if (rounded === sum || !Number.isFinite(sum)) return rounded;
  // TwoSum: sum + error === product + c exactly.
  const bVirtual = sum - product;
  const error = product - (sum - bVirtual) + (c - bVirtual);
  if (error === 0) return rounded;
  const neighbour = adjacentFloat32(rounded, sum);
  const midpoint = (rounded + neighbour) / 2; // exact in float64
  if (sum !== midpoint) return rounded;
  // The float64 sum is a tie; the exact sum lies on the side of `error`.
  const exactAboveMidpoint = error > 0;
  return exactAboveMidpoint === neighbour > rounded ? neighbour : rounded;
}

/** Reinterprets the bits of a float32 value as an unsigned 32-bit integer. */
export function float32Bits(x: number): number {
  f32[0] = x;
  return u32[0];
}

/** Reinterprets an unsigned 32-bit integer as a float32 value. */
export function float32FromBits(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0];
}
