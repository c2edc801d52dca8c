/**
 * Reference roundings to the 16-bit float formats, for checking what a model or kernel computes
 * in bfloat16 / float16 (tests and scripts/gpu-check.js).
 */

/** Rounds a number to bfloat16 (the top 16 bits of its float32, round to nearest even). */
export function toBFloat16(v: number): number {
  const bits = new Uint32Array(new Float32Array([v]).buffer)[0];
  const rounded = (bits + 0x7fff + ((bits >>> 16) & 1)) & 0xffff0000;
  return new Float32Array(new Uint32Array([rounded >>> 0]).buffer)[0];
}

/** Rounds a number to IEEE float16 (round to nearest even; |v| well inside the float16 range). */
export function toFloat16(v: number): number {
  const x = Math.fround(v);
  if (x === 0) return x;
  const e = Math.max(Math.floor(Math.log2(Math.abs(x))), -14);
  const quantum = 2 ** (e - 10);
  const q = x / quantum;
  let r = Math.round(q);
  if (Math.abs(q - Math.trunc(q)) === 0.5) r = 2 * Math.round(q / 2); // ties to even
  return r * quantum;
}
