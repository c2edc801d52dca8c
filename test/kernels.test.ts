/**
 * The fused lincomb kernel (native/kernels/lincomb_cpu.cc through the `lincomb` binding)
 * against the plain formula out = sum_k c_k x_k computed in float64 here.
 *
 * Tolerance: the kernel computes in float32 (c_0 x_0, then + c_k x_k for k = 1..K-1), so each
 * element may differ from the float64 value by a few float32 roundings of the partial sums:
 *   |out - ref| <= 4 * 2^-24 * sum_k |c_k x_k|   (K <= 4 roundings of magnitude <= that sum).
 * For the 16-bit layouts the inputs/outputs are first rounded to bfloat16 / float16 here
 * exactly as the kernel's storage does (round to nearest even), then the same bound applies,
 * plus half an ulp of the 16-bit output for the input-cast layout.
 */
import { describe, expect, it } from 'vitest';
import { compilePlan } from '../lib/compile';
import { loadModel } from '../lib/model';
import { testingBinding } from './support/testing-addon';
import type { Plan } from '../lib/plan';
import { executePlanReference } from '../lib/reference';
import { randomArray } from '../lib/testing/random-array';
import { toBFloat16, toFloat16 } from '../lib/testing/rounding';
import { FIXTURES, goldenSchedule, loadGolden, loadGoldenModel } from './support/golden';
import * as path from 'path';

const EPS32 = 2 ** -24;
const SIZES = [1, 3, 1023, 2 ** 20 + 7];
const OFFSETS = [0, 1, 2, 3];

function checkAgainstFormula(out: Float32Array, inputs: Float32Array[], coefs: number[], round: (v: number) => number, outUlp = 0): void {
  let worst = 0;
  for (let i = 0; i < out.length; i++) {
    let ref = coefs[0] * inputs[0][i];
    let mag = Math.abs(ref);
    for (let k = 1; k < inputs.length; k++) {
      const v = coefs[k] * round(inputs[k][i]);
      ref += v;
      mag += Math.abs(v);
    }
    const bound = 4 * EPS32 * mag + outUlp * Math.abs(ref) + 1e-30;
    const err = Math.abs(out[i] - ref);
    if (!(err <= bound)) {
      throw new Error(`element ${i} of ${out.length}: got ${out[i]}, formula ${ref}, |diff| ${err} > bound ${bound}`);
    }
    worst = Math.max(worst, err / bound);
  }
  expect(worst).toBeLessThanOrEqual(1);
}

const COEFS = [0.75, -1.3125, 2.5e-3, 3.0000001];

describe('lincomb (CPU fused kernel) equals the formula', () => {
  const binding = testingBinding();
  for (const n of SIZES) {
    const offsets = n > 1e5 ? [0, 1] : OFFSETS;
    for (const offset of offsets) {
      it(`n = ${n}, offset ${offset} elements, 1 to 4 terms`, () => {
        const inputs = [0, 1, 2, 3].map((k) => randomArray(n, 17 + 31 * k + n));
        for (let terms = 1; terms <= 4; terms++) {
          const ins = inputs.slice(0, terms);
          const cs = COEFS.slice(0, terms);
          const out = binding.lincomb(ins, cs, { device: 'cpu', offset });
          expect(out).toBeInstanceOf(Float32Array);
          expect(out.length).toBe(n);
          checkAgainstFormula(out, ins, cs, (v) => v);
        }
      });
    }
  }

  for (const [dtype, round] of [
    ['bfloat16', toBFloat16],
    ['float16', toFloat16],
  ] as const) {
    it(`output-conversion layout: terms 1..3 stored as ${dtype} (n = 1023, offsets 0 and 1)`, () => {
      const inputs = [0, 1, 2].map((k) => randomArray(1023, 5 + k));
      for (const offset of [0, 1]) {
        const out = binding.lincomb(inputs, COEFS.slice(0, 3), { termDType: dtype, offset });
        checkAgainstFormula(out, inputs, COEFS.slice(0, 3), round);
      }
    });

    it(`input-cast layout: one float32 term written as ${dtype} (n = 1023 and 2^20+7)`, () => {
      for (const n of [1023, 2 ** 20 + 7]) {
        const x = randomArray(n, 99);
        const out = binding.lincomb([x], [0.37], { outDType: dtype, offset: n % 2 });
        let worst = 0;
        for (let i = 0; i < n; i++) {
          const want = round(Math.fround(Math.fround(0.37) * x[i])); // the kernel takes float coefficients
          worst = Math.max(worst, Math.abs(out[i] - want));
        }
        expect(worst).toBe(0); // the same float product, the same round-to-nearest-even
      }
    });
  }

  it('rejects bad arguments with errors naming the field', () => {
    const a = randomArray(4, 1);
    const thrown = (fn: () => unknown): Error => {
      try {
        fn();
      } catch (e) {
        return e as Error;
      }
      throw new Error('did not throw');
    };
    const empty = thrown(() => binding.lincomb([], []));
    expect(empty).toBeInstanceOf(RangeError);
    expect(empty.message).toBe('lincomb: inputs must hold 1 to 4 arrays (got 0)');
    expect(() => binding.lincomb([a, a, a, a, a], [1, 1, 1, 1, 1])).toThrow(/must hold 1 to 4 arrays \(got 5\)/);
    expect(() => binding.lincomb([a, a], [1])).toThrow(/coefs must have one coefficient per input \(2\), got 1/);
    expect(() => binding.lincomb([a, randomArray(5, 2)], [1, 2])).toThrow(/inputs\[1\] has 5 elements but inputs\[0\] has 4/);
    const nan = thrown(() => binding.lincomb([a], [NaN]));
    expect(nan).toBeInstanceOf(TypeError);
    expect(nan.message).toBe('lincomb: coefs[0] must be a finite number');
    expect(() => binding.lincomb([new Float64Array(4) as unknown as Float32Array], [1])).toThrow(/inputs\[0\] must be a Float32Array/);
    expect(() => binding.lincomb([a], [1], { offset: -1 })).toThrow(/offset must be an integer in \[0, 1024\]/);
    expect(() => binding.lincomb([a], [1], { device: 'tpu' })).toThrow(/device must be 'cpu', 'cuda' or 'cuda:N'/);
    expect(() => binding.lincomb([a, a], [1, 1], { termDType: 'float64' as never })).toThrow(/termDType must be/);
    expect(() => binding.lincomb([a, a], [1, 1], { outDType: 'float16' })).toThrow(/the first term|input-cast pass takes exactly one term/);
  });

  it("device 'cuda' fails with a clear error when this build or machine cannot run CUDA", () => {
    const info = binding.buildInfo();
    if (info.cuda && info.cudaDeviceCount > 0) return; // a GPU machine: scripts/gpu-check.js covers it
    expect(() => binding.lincomb([randomArray(8, 3)], [1], { device: 'cuda' })).toThrow(/lincomb: device 'cuda' is not available/);
    expect(() => binding.benchLincomb({ terms: 2, bytes: 1024, device: 'cuda' })).toThrow(/benchLincomb: device 'cuda' is not available/);
  });
});

describe('benchLincomb', () => {
  it('times the fused kernel and the LibTorch versions on the same tensors (no timing assertions)', () => {
    const r = testingBinding().benchLincomb({ terms: 3, bytes: 256 * 1024, iters: 3 });
    expect(r.terms).toBe(3);
    expect(r.elements).toBe(65536);
    expect(r.device).toBe('cpu');
    for (const k of ['fusedMs', 'torchOpsMs', 'torchExprMs', 'copyMs'] as const) expect(r[k]).toBeGreaterThan(0);
    // the fused result equals the LibTorch expression on the benchmark's own tensors
    expect(r.maxAbsDiff).toBeLessThan(1e-5);
    expect(() => testingBinding().benchLincomb({ terms: 5, bytes: 1024 })).toThrow(/terms must be an integer from 1 to 4/);
    expect(() => testingBinding().benchLincomb({ terms: 2, bytes: 6 })).toThrow(/bytes must be a multiple of 4/);
  });
});

describe('in-place updates inside a plan', () => {
  it('a lincomb whose destination is also a source (twice) equals the reference', async () => {
    const g = loadGolden('scire_discrete');
    const model = await loadModel(path.join(FIXTURES, 'models', 'gmm_D16_discrete.pt'));
    const gmm = loadGoldenModel(g).asModel();
    const base = compilePlan({ schedule: goldenSchedule('discrete'), steps: 4, solver: 'ddim' });
    // R1 = model output; then R0 = 0.5 R0 + 0.25 R1 - 0.125 R0 (dst = a source, used twice), R1 = 2 R1 in place
    const plan: Plan = {
      ...base,
      numRegs: 2,
      ops: [
        { op: 'eval', t: 500, tCont: 0.5, src: 0, inScale: 1, dst: 1, outX: 0, outM: 1 },
        { op: 'lincomb', dst: 0, terms: [[0.5, 0], [0.25, 1], [-0.125, 0]] },
        { op: 'lincomb', dst: 1, terms: [[2, 1]] },
        { op: 'eval', t: 100, tCont: 0.1, src: 0, inScale: 0.9, dst: 0, outX: 0.3, outM: -0.7 },
        { op: 'lincomb', dst: 0, terms: [[1, 0], [1, 1]] },
      ],
      final: { src: 0, scale: 1.5 },
      nfe: 2,
    };
    const x = Float32Array.from(randomArray(128, 7));
    const ref = executePlanReference(plan, { x: Float64Array.from(x), shape: [8, 16], model: gmm });
    const res = await model.execute(plan, { x, shape: [8, 16] });
    let err = 0;
    let scale = 0;
    for (let i = 0; i < 128; i++) {
      err = Math.max(err, Math.abs(res.data[i] - ref.x[i]));
      scale = Math.max(scale, Math.abs(ref.x[i]));
    }
    expect(err / scale).toBeLessThan(1e-5);
    model.dispose();
  });
});

describe('lincomb streaming path (out of place, traffic above 8 MiB: non-temporal AVX2 stores)', () => {
  // n = 2^21 + 5 floats (8 MiB per tensor) puts every term count above the kernel's 8 MiB
  // streaming threshold; offsets 1 and 3 misalign the destination, so each chunk has a scalar
  // head before the 32-byte aligned vector body and a scalar tail. The streaming loop must round
  // exactly like the scalar loop: c_0 x_0, then + c_k x_k for k = 1..K-1, each product and sum
  // rounded to float32 (coefficients are float32), no FMA. So the check is bit-equality.
  const binding = testingBinding();
  const n = 2 ** 21 + 5;
  const inputs = [0, 1, 2, 3].map((k) => randomArray(n, 101 + 13 * k));
  for (const offset of [1, 3]) {
    it(`n = ${n}, offset ${offset} elements, 1 to 4 terms: bit-identical to the float32 formula`, () => {
      for (let terms = 1; terms <= 4; terms++) {
        const cs = COEFS.slice(0, terms).map((c) => Math.fround(c));
        const out = binding.lincomb(inputs.slice(0, terms), COEFS.slice(0, terms), { device: 'cpu', offset });
        const want = new Float32Array(n);
        for (let i = 0; i < n; i++) {
          let v = Math.fround(cs[0] * inputs[0][i]);
          for (let k = 1; k < terms; k++) v = Math.fround(v + Math.fround(cs[k] * inputs[k][i]));
          want[i] = v;
        }
        const got = new Uint32Array(out.buffer, out.byteOffset, n);
        const ref = new Uint32Array(want.buffer);
        let mismatches = 0;
        let first = -1;
        for (let i = 0; i < n; i++) {
          if (got[i] !== ref[i]) {
            mismatches++;
            if (first < 0) first = i;
          }
        }
        expect(mismatches, `${terms} terms: first mismatch at ${first}: got ${out[first]}, want ${want[first]}`).toBe(0);
      }
    });
  }
});
