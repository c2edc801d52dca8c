/**
 * The fused masked lincomb (native/kernels/masked_lincomb*: the inpainting correction fused
 * into a solver update) through the testing addon's maskedLincomb, against the formula
 *   out = (1 - m) * sum_k c_k x_k + m * (a x0 + s z)
 * in float64 here. Tolerance: the kernel rounds the sum (K roundings), a x0 + s z (3), and the
 * blend (3) in float32, so |out - ref| <= 8 * 2^-24 * ((1 - m) sum_k |c_k x_k| + m (|a x0| + |s z|)
 * + |ref|). Where m = 1 the result must be exactly float32(a x0 + s z) (0 * sum adds +-0).
 * The cost (one fused pass against the same work as two passes: the plain lincomb, then a
 * separate correction op) is printed, not asserted: timings on this shared machine are noisy
 * (benchmarks/masked-kernel.mjs measures it; docs/native.md has the numbers).
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureDistBuilt, ROOT } from './support/dist';
import { randomArray } from '../lib/testing/random-array';
import { testingBinding } from './support/testing-addon';

const EPS32 = 2 ** -24;
const SIZES = [1, 5, 1023, 2 ** 16 + 3];
const COEFS = [0.5, -1.25, 2, 0.75];

function maskOf(n: number, seed: number): Float32Array {
  const r = randomArray(n, seed);
  // a third known, a third unknown, a third in between
  return Float32Array.from(r, (v, i) => (i % 3 === 0 ? 1 : i % 3 === 1 ? 0 : Math.fround(Math.abs(v) % 1)));
}

describe('fused masked lincomb (CPU)', () => {
  const b = testingBinding();
  for (const n of SIZES) {
    for (const terms of [1, 2, 3, 4]) {
      it(`${terms} term(s), ${n} elements, out of place / in place / misaligned`, () => {
        const inputs = Array.from({ length: terms }, (_, k) => randomArray(n, 10 * terms + k));
        const coefs = COEFS.slice(0, terms);
        const mask = maskOf(n, 99);
        const x0 = randomArray(n, 7);
        const noise = randomArray(n, 8);
        const a = 0.8;
        const s = -0.35;
        for (const opts of [{}, { inPlace: true }, { offset: 1 }, { offset: 3, inPlace: true }]) {
          const out = b.maskedLincomb(inputs, coefs, { mask, x0, noise, a, s, ...opts });
          for (let i = 0; i < n; i++) {
            let sum = 0;
            let mag = 0;
            for (let k = 0; k < terms; k++) {
              sum += coefs[k] * inputs[k][i];
              mag += Math.abs(coefs[k] * inputs[k][i]);
            }
            const m = mask[i];
            const known = Math.fround(a) * x0[i] + Math.fround(s) * noise[i];
            const ref = (1 - m) * sum + m * known;
            if (m === 1) {
              if (out[i] !== Math.fround(Math.fround(Math.fround(a) * x0[i]) + Math.fround(Math.fround(s) * noise[i]))) {
                throw new Error(`element ${i}: known value ${out[i]} is not float32(a x0 + s z)`);
              }
              continue;
            }
            const bound = 8 * EPS32 * ((1 - m) * mag + m * (Math.abs(a * x0[i]) + Math.abs(s * noise[i])) + Math.abs(ref)) + 1e-30;
            if (!(Math.abs(out[i] - ref) <= bound)) {
              throw new Error(`element ${i} (${JSON.stringify(opts)}): got ${out[i]}, formula ${ref}, bound ${bound}`);
            }
          }
          // the inputs are untouched (in place works on the kernel's own copy)
          expect(inputs[0].length).toBe(n);
        }
      });
    }
  }

  it('refuses mismatched inputs with the field named', () => {
    const x = randomArray(8, 1);
    const ok = { mask: new Float32Array(8), x0: x, noise: x, a: 1, s: 0 };
    expect(() => b.maskedLincomb([x], [1], { ...ok, mask: new Float32Array(7) })).toThrow(/mask/);
    expect(() => b.maskedLincomb([x], [1], { ...ok, a: NaN })).toThrow(/\ba\b/);
    expect(() => b.maskedLincomb([x, x, x, x, x], [1, 1, 1, 1, 1], ok)).toThrow(/inputs/);
  });

  it('benchMaskedLincomb: the timed kernel is right; timings printed (benchmarks/masked-kernel.mjs)', () => {
    const rows: string[] = [];
    for (const terms of [2, 3]) {
      const r = b.benchMaskedLincomb({ terms, bytes: 16 << 20, iters: 7 });
      expect(r.maxAbsDiff).toBeLessThan(1e-5);
      rows.push(
        `${terms} terms, 16 MiB: masked ${r.maskedMs.toFixed(2)} ms, two passes ${r.twoPassMs.toFixed(2)} ms ` +
          `(x${(r.twoPassMs / r.maskedMs).toFixed(2)}), plain lincomb ${r.plainMs.toFixed(2)} ms, LibTorch ops ${r.torchOpsMs.toFixed(2)} ms ` +
          `(x${(r.torchOpsMs / r.maskedMs).toFixed(2)})`,
      );
      for (const k of ['maskedMs', 'twoPassMs', 'plainMs', 'torchOpsMs'] as const) expect(r[k]).toBeGreaterThan(0);
    }
    console.log(`masked lincomb (CPU, ${b.benchMaskedLincomb({ terms: 1, bytes: 4096, iters: 1 }).threads} threads):\n  ${rows.join('\n  ')}`);
  }, 120_000);

  it('benchmarks/masked-kernel.mjs prints its table (smoke: tiny sizes)', () => {
    ensureDistBuilt();
    const r = spawnSync(process.execPath, [path.join(ROOT, 'benchmarks', 'masked-kernel.mjs'), '--sizes', '64K', '--terms', '2,3', '--iters', '2'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const rows = r.stdout.split('\n').filter((l) => /^\| [23] \| 0\.0625 MiB \|/.test(l));
    expect(rows.length).toBe(2);
    // the last column: the timed kernel against the LibTorch expression
    for (const row of rows) expect(Number(row.split('|').at(-2))).toBeLessThan(1e-5);
  }, 60_000);
});
