import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { randn, randnAsync } from '../lib/randn';
import { fma32 } from '../lib/random/float32-arith';
import { logAvx2, sinCosAvx2 } from '../lib/random/cephes-avx2';

interface RandnCase {
  seed: string;
  shape: number[];
  numel: number;
  bits?: number[];
  first_bits?: number[];
  last_bits?: number[];
  sum_float64?: number;
}

/** Reference values written by test/fixtures/make_randn.py with Debian's PyTorch 1.13. */
const fixture = JSON.parse(
  readFileSync(join(__dirname, 'fixtures', 'randn.json'), 'utf8'),
) as { torch_version: string; cpu_capability: string; cases: RandnCase[] };

function bitsOf(values: Float32Array): number[] {
  return Array.from(new Uint32Array(values.buffer, values.byteOffset, values.length));
}

function seedArgument(seed: string): number | bigint {
  const big = BigInt(seed);
  return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

describe('randn matches torch.randn bit for bit', () => {
  it('fixture covers small, odd, exact-multiple and large sizes', () => {
    expect(fixture.cases.length).toBeGreaterThanOrEqual(8);
    const sizes = fixture.cases.map((c) => c.numel);
    for (const n of [1, 2, 7, 15, 16, 17, 100, 105, 3136]) expect(sizes).toContain(n);
  });

  for (const c of fixture.cases) {
    it(`seed ${c.seed}, shape [${c.shape.join(', ')}]`, () => {
      const values = randn(c.shape, seedArgument(c.seed));
      expect(values.length).toBe(c.numel);
      const bits = bitsOf(values);
      if (c.bits) {
        expect(bits).toEqual(c.bits);
      } else {
        expect(bits.slice(0, c.first_bits!.length)).toEqual(c.first_bits);
        expect(bits.slice(bits.length - c.last_bits!.length)).toEqual(c.last_bits);
        let sum = 0;
        for (const v of values) sum += v; // same index order as the fixture script
        expect(sum).toBe(c.sum_float64);
      }
    });
  }
});

describe('randn seeds', () => {
  it('is deterministic: the same seed gives identical output', () => {
    expect(bitsOf(randn([2, 3, 8, 8], 7))).toEqual(bitsOf(randn([2, 3, 8, 8], 7)));
  });

  it('accepts a number or a bigint for the same seed', () => {
    expect(bitsOf(randn([40], 2 ** 40 + 3))).toEqual(bitsOf(randn([40], 2n ** 40n + 3n)));
  });

  it('different seeds give different noise', () => {
    expect(bitsOf(randn([32], 1))).not.toEqual(bitsOf(randn([32], 2)));
  });

  it('has roughly standard-normal moments on a large draw (|mean| < 0.01, |var - 1| < 0.02)', () => {
    const x = randn([65536], 2024);
    let mean = 0;
    for (const v of x) mean += v;
    mean /= x.length;
    let variance = 0;
    for (const v of x) variance += (v - mean) ** 2;
    variance /= x.length;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(variance - 1)).toBeLessThan(0.02);
  });
});

describe('randn input validation', () => {
  it.each([
    [[4, 0], /shape\[1\] must be a positive integer, got 0/],
    [[-3], /shape\[0\] must be a positive integer, got -3/],
    [[2, 2.5], /shape\[1\] must be a positive integer, got 2.5/],
    [[Number.NaN], /shape\[0\] must be a positive integer, got NaN/],
    [[1, 2, '3' as unknown as number], /shape\[2\] must be a positive integer, got 3/],
  ])('rejects shape %j', (shape, message) => {
    expect(() => randn(shape, 0)).toThrow(RangeError);
    expect(() => randn(shape, 0)).toThrow(message);
  });

  it('rejects a non-array shape', () => {
    expect(() => randn(5 as unknown as number[], 0)).toThrow(TypeError);
  });

  it('rejects a shape with more than 2^31 - 1 elements', () => {
    expect(() => randn([65536, 65536], 0)).toThrow(/at most 2\^31 - 1/);
  });

  it.each([-1, 1.5, 2 ** 53, Number.NaN, Infinity])('rejects number seed %s', (seed) => {
    expect(() => randn([4], seed)).toThrow(RangeError);
    expect(() => randn([4], seed)).toThrow(/seed must be a non-negative safe integer/);
  });

  it.each([-1n, 2n ** 64n])('rejects bigint seed %s', (seed) => {
    expect(() => randn([4], seed)).toThrow(/seed must be an integer in \[0, 2\^64\)/);
  });

  it('accepts the extreme seeds 0 and 2^64 - 1', () => {
    expect(randn([3], 0).length).toBe(3);
    expect(randn([3], 2n ** 64n - 1n).length).toBe(3);
  });
});

describe('float32 helpers behind the AVX2 path', () => {
  it('fma32 rounds once where a float64 sum would land on a float32 tie', () => {
    // 1.5 * (1 + 2^-23) = 1.5 + 3 * 2^-24 is a float32 tie; the tiny addend decides it.
    expect(fma32(1.5, 1 + 2 ** -23, -(2 ** -80))).toBe(1.5 + 2 ** -23);
    expect(fma32(1.5, 1 + 2 ** -23, 2 ** -80)).toBe(1.5 + 2 ** -22);
    // (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24 is a tie too: exact ties go to even.
    expect(fma32(1 + 2 ** -12, 1 + 2 ** -12, 0)).toBe(1 + 2 ** -11);
    expect(fma32(1 + 2 ** -12, 1 + 2 ** -12, 2 ** -80)).toBe(1 + 2 ** -11 + 2 ** -23);
    expect(fma32(-(1 + 2 ** -12), 1 + 2 ** -12, -(2 ** -80))).toBe(-(1 + 2 ** -11 + 2 ** -23));
  });

  it('logAvx2 is within 3e-7 absolute of log on (0, 1] and NaN for x <= 0', () => {
    for (let x = 2 ** -24; x <= 1; x *= 1.37) {
      const xf = Math.fround(x);
      expect(Math.abs(logAvx2(xf) - Math.log(xf))).toBeLessThan(3e-7 * Math.max(1, -Math.log(xf)));
    }
    expect(logAvx2(1)).toBe(0);
    expect(logAvx2(0)).toBeNaN();
  });

  it('sinCosAvx2 is within 2e-7 of sin/cos on [0, 2pi]', () => {
    for (let k = 0; k <= 1000; k++) {
      const t = Math.fround((2 * Math.PI * k) / 1000);
      const [s, c] = sinCosAvx2(t);
      expect(Math.abs(s - Math.sin(t))).toBeLessThan(2e-7);
      expect(Math.abs(c - Math.cos(t))).toBeLessThan(2e-7);
    }
  });
});

describe('randnAsync: the same values without blocking the event loop', () => {
  // Chunk sizes that split the draw at awkward places (16 = one Box-Muller block, 48, the default).
  for (const chunk of [16, 48, undefined]) {
    it(`equals the torch.randn fixtures bit for bit (chunk ${chunk ?? 'default'})`, async () => {
      for (const c of fixture.cases) {
        const values = await randnAsync(c.shape, seedArgument(c.seed), { chunk });
        const bits = bitsOf(values);
        if (c.bits) {
          expect(bits, `seed ${c.seed} shape [${c.shape}]`).toEqual(c.bits);
        } else {
          expect(bits.slice(0, c.first_bits!.length)).toEqual(c.first_bits);
          expect(bits.slice(bits.length - c.last_bits!.length)).toEqual(c.last_bits);
        }
      }
    });
  }

  it('equals randn on a large odd size and keeps the event loop ticking during the draw', async () => {
    const shape = [3, 200_003]; // 600 009 values (10 chunks): not a multiple of 16
    const expected = randn(shape, 7);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const values = await randnAsync(shape, 7);
    clearInterval(timer);
    expect(Buffer.compare(Buffer.from(values.buffer), Buffer.from(expected.buffer))).toBe(0);
    // 20 yields (10 chunks, two passes): a blocking draw would let the 1 ms timer fire at most once.
    expect(ticks).toBeGreaterThanOrEqual(3);
  }, 60_000);

  it('stops between chunks when the signal aborts', async () => {
    const controller = new AbortController();
    const draw = randnAsync([4_000_000], 1, { signal: controller.signal });
    setImmediate(() => controller.abort(new Error('stop')));
    await expect(draw).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('validates like randn', async () => {
    await expect(randnAsync([2, -1], 0)).rejects.toThrow(RangeError);
    await expect(randnAsync([4], -1)).rejects.toThrow(/seed must be a non-negative safe integer/);
  });
});
