/** Deterministic pseudo-random float32 numbers in [-2, 2) (xorshift32), for kernel tests and scripts/gpu-check.js. */
export function randomArray(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s / 2 ** 32) * 4 - 2;
  }
  return out;
}
