/**
 * Inpainting through the API and the CLI on the bundled Fashion-MNIST model
 * (sample({ x0, mask }), `scire inpaint`), the PNG reader it uses, and the validation of its
 * inputs. The math of the correction is checked against the authors' code in
 * test/inpaint-golden.test.ts.
 *
 * Acceptance: on 4 Fashion-MNIST test images x 2 masks (left half known, centre 14x14
 * square unknown), max |out - x0| over the known pixels <= 1e-3 (the final composite makes it
 * exact), and the filled part is closer to the original than an unconditional sample's same
 * region (mean squared error below 0.85 times that of plain samples with the same seed;
 * measured 0.568 against 0.825), so the known part really steers the rest.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { deflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32, encodePng } from '../lib/image-io';
import { loadModel } from '../lib/model';
import type { NativeModel } from '../lib/native-types';
import { decodePng } from '../lib/png-read';
import { Sampler } from '../lib/sampler';
import { NoiseSchedule } from '../lib/schedule';
import { centreSquareMask, FASHION_MNIST_TEST_IMAGES, leftHalfMask, readFashionMnist } from '../lib/testing/fashion-mnist';
import { DIST_CLI, ROOT, ensureDistBuilt } from './support/dist';

const MODEL = path.join(ROOT, 'models', 'fmnist_unet.pt');
const schedule = NoiseSchedule.discrete({ kind: 'linear', N: 1000, betaStart: 1e-4, betaEnd: 0.02 });
const PER = 28 * 28;
const KNOWN_TOL = 1e-3;
let model: NativeModel;
let tmp: string;

beforeAll(async () => {
  model = await loadModel(MODEL, { device: 'cpu', dtype: 'float32' });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'scire-inpaint-'));
});
afterAll(() => {
  model?.dispose();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** x0 / mask batches: every (image, mask) task repeated `fills` times. */
function tasks(images: Float32Array, masks: Float32Array[], fills: number) {
  const count = images.length / PER;
  const n = count * masks.length * fills;
  const x0 = new Float32Array(n * PER);
  const mask = new Float32Array(n * PER);
  let s = 0;
  for (let k = 0; k < count; k++) {
    for (const m of masks) {
      for (let j = 0; j < fills; j++, s++) {
        x0.set(images.subarray(k * PER, (k + 1) * PER), s * PER);
        mask.set(m, s * PER);
      }
    }
  }
  return { x0, mask, n };
}

describe('sample({ x0, mask }) on the bundled model', () => {
  it('keeps the known pixels (<= 1e-3), fills the rest from them, same seed same result', async () => {
    const sampler = new Sampler({ model, schedule, steps: 12 });
    const images = readFashionMnist([0, 1, 2, 3]);
    const { x0, mask, n } = tasks(images, [leftHalfMask(), centreSquareMask(14)], 1);
    const out = await sampler.sample({ shape: [n, 1, 28, 28], seed: 5, x0, mask });
    expect(out.nfe).toBe(12);
    let worst = 0;
    let unknownDiff = 0;
    for (let i = 0; i < x0.length; i++) {
      if (mask[i] === 1) worst = Math.max(worst, Math.abs(out.data[i] - x0[i]));
      else unknownDiff = Math.max(unknownDiff, Math.abs(out.data[i] - x0[i]));
    }
    console.log(`inpaint: max |out - x0| over known pixels ${worst.toExponential(2)} (${n} samples, 12 NFE)`);
    expect(worst).toBeLessThanOrEqual(KNOWN_TOL);
    expect(unknownDiff).toBeGreaterThan(0.1); // the unknown part is generated, not copied

    // Guided: the filled region is closer to the original than the same region of plain samples.
    const plain = await sampler.sample({ shape: [n, 1, 28, 28], seed: 5 });
    let mseInpaint = 0;
    let msePlain = 0;
    let count = 0;
    for (let i = 0; i < x0.length; i++) {
      if (mask[i] !== 0) continue;
      mseInpaint += (out.data[i] - x0[i]) ** 2;
      msePlain += (plain.data[i] - x0[i]) ** 2;
      count++;
    }
    mseInpaint /= count;
    msePlain /= count;
    console.log(`inpaint: MSE of the filled region to the original ${mseInpaint.toFixed(3)}, of plain samples ${msePlain.toFixed(3)}`);
    // measured here: 0.568 against 0.825 (seed 5, 12 NFE, preset auto = UniPC bh2 2M)
    expect(mseInpaint).toBeLessThan(0.85 * msePlain);

    const again = await sampler.sample({ shape: [n, 1, 28, 28], seed: 5, x0, mask });
    expect(Buffer.from(again.data.buffer).equals(Buffer.from(out.data.buffer))).toBe(true);
    const other = await sampler.sample({ shape: [n, 1, 28, 28], seed: 6, x0, mask });
    expect(Buffer.from(other.data.buffer).equals(Buffer.from(out.data.buffer))).toBe(false);
  }, 120_000);

  it('one x0 and mask for every sample (prod(shape[1:]) values) equals them repeated', async () => {
    const sampler = new Sampler({ model, schedule, steps: 6, solver: 'dpmpp' });
    const image = readFashionMnist([7]);
    const mask = centreSquareMask(10);
    const shared = await sampler.sample({ shape: [3, 1, 28, 28], seed: 1, x0: image, mask });
    const { x0: x0s, mask: masks } = tasks(image, [mask], 3);
    const full = await sampler.sample({ shape: [3, 1, 28, 28], seed: 1, x0: x0s, mask: masks });
    expect(Buffer.from(shared.data.buffer).equals(Buffer.from(full.data.buffer))).toBe(true);
  }, 60_000);

  it('batches with other inpainting requests exactly as alone', async () => {
    const solo = new Sampler({ model, schedule, steps: 6 });
    const batched = new Sampler({ model, schedule, steps: 6, batching: { maxBatchSize: 8, maxWaitMs: 50 } });
    const imgs = readFashionMnist([3, 4]);
    const reqs = [0, 1].map((k) => ({ shape: [2, 1, 28, 28], seed: 10 + k, x0: imgs.subarray(k * PER, (k + 1) * PER).slice(), mask: k ? leftHalfMask() : centreSquareMask() }));
    const together = await Promise.all(reqs.map((r) => batched.sample(r)));
    expect(together[0].timings.batchRequests).toBe(2);
    for (const [k, r] of reqs.entries()) {
      const alone = await solo.sample(r);
      let d = 0;
      for (let i = 0; i < alone.data.length; i++) d = Math.max(d, Math.abs(alone.data[i] - together[k].data[i]));
      expect(d).toBeLessThan(1e-4); // the network's own batch-size dependence only
    }
  }, 60_000);

  it('validates x0 and mask with the field named', async () => {
    const sampler = new Sampler({ model, schedule, steps: 4 });
    const shape = [2, 1, 28, 28];
    const x0 = new Float32Array(2 * PER);
    const mask = leftHalfMask();
    await expect(sampler.sample({ shape, seed: 1, mask })).rejects.toThrow(TypeError);
    await expect(sampler.sample({ shape, seed: 1, mask })).rejects.toThrow(/the known image\) when mask is given for x0/);
    await expect(sampler.sample({ shape, seed: 1, x0, mask: mask.map((v) => v * 1.5) })).rejects.toThrow(/\[0, 1\] \(1 = known\) for mask\[\d+\] but received 1\.5/);
    await expect(sampler.sample({ shape, seed: 1, x0, mask: mask.map((v, i) => (i === 9 ? NaN : v)) })).rejects.toThrow(RangeError);
    await expect(sampler.sample({ shape, seed: 1, x0, mask: mask.map((v, i) => (i === 9 ? NaN : v)) })).rejects.toThrow(/mask\[9\]/);
    await expect(sampler.sample({ shape, seed: 1, x0, mask: mask.slice(1) })).rejects.toThrow(/1568 \(prod\(shape\)\) or 784 .* for mask\.length/);
    await expect(sampler.sample({ shape, seed: 1, x0: x0.slice(3), mask })).rejects.toThrow(/for x0\.length/);
    await expect(sampler.sample({ shape, seed: 1, x0: x0.map((v, i) => (i === 4 ? Infinity : v)), mask })).rejects.toThrow(/x0\[4\]/);
    await expect(sampler.sample({ shape, seed: 1, x0, mask: [1, 0] as never })).rejects.toThrow(/a Float32Array for mask/);
    await expect(sampler.sample({ shape, x: x0, mask })).rejects.toThrow(/for x0/);
    await expect(sampler.sample({ shape, seed: 1, x0, x: x0, mask })).rejects.toThrow(/no x together with seed or x0/);
    // x0 without a mask is img2img as before: it needs tStart < T
    await expect(sampler.sample({ shape, seed: 1, x0 })).rejects.toThrow(/img2img/);
    expect(() => new Sampler({ model, schedule, inpaint: true } as never)).toThrow(/sample\(\{ x0, mask \}\)/);
  });
});

/** A PNG from raw scanlines (filter byte included) for the reader's tests. */
function png(width: number, height: number, depth: number, colorType: number, scanlines: Uint8Array, extra: Array<[string, Uint8Array]> = [], interlace = 0): Uint8Array {
  const chunk = (type: string, data: Uint8Array): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), Buffer.from(data)]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body) >>> 0);
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = depth;
  ihdr[9] = colorType;
  ihdr[12] = interlace;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    ...extra.map(([t, d]) => chunk(t, d)),
    chunk('IDAT', deflateSync(scanlines)),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

describe('decodePng', () => {
  it('reads back what encodePng writes (gray and RGB), and converts channels', () => {
    const gray = { width: 5, height: 3, channels: 1 as const, pixels: Uint8Array.from({ length: 15 }, (_, i) => i * 17) };
    expect(decodePng(encodePng(gray), 1)).toEqual(gray);
    const rgb = { width: 2, height: 2, channels: 3 as const, pixels: Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 10, 10]) };
    expect(decodePng(encodePng(rgb), 3)).toEqual(rgb);
    expect(Array.from(decodePng(encodePng(rgb), 1).pixels)).toEqual([76, 150, 29, 10]); // BT.601 luma
    expect(Array.from(decodePng(encodePng(gray), 3).pixels.slice(0, 6))).toEqual([0, 0, 0, 17, 17, 17]);
  });

  it('undoes every row filter, reads 16-bit, low bit depths, palette and alpha', () => {
    // 3x2 gray, rows filtered Sub, Up / Average, Paeth on the same values 10 20 30 / 40 50 60
    const want = [10, 20, 30, 40, 50, 60];
    const sub = [1, 10, 10, 10];
    const up = [2, 40, 50, 60]; // row 1 filtered Up over row 0 = 10 20 30: 30 30 30
    up[1] = 30; up[2] = 30; up[3] = 30;
    expect(Array.from(decodePng(png(3, 2, 8, 0, Uint8Array.from([...sub, ...up])), 1).pixels)).toEqual(want);
    // Average: row 0 alone: out = src + floor(left/2); Paeth row 1: predictor picks up-left/up/left
    const avg0 = [3, 10, 20 - 5, 30 - 10];
    const paeth1 = [4, 40 - 10, 50 - 40, 60 - 50]; // a=left, b=up, c=upleft: x=0 -> b=10; x=1: p=40+20-10=50 -> |50-40|=10,|50-20|=30,|50-10|=40 -> a=40; x=2: p=50+30-20=60 -> a=50
    expect(Array.from(decodePng(png(3, 2, 8, 0, Uint8Array.from([...avg0, ...paeth1])), 1).pixels)).toEqual(want);
    // 16-bit gray + alpha: the high byte of gray, alpha ignored
    expect(Array.from(decodePng(png(2, 1, 16, 4, Uint8Array.from([0, 0x12, 0x34, 0xff, 0xff, 0xab, 0xcd, 0, 0])), 1).pixels)).toEqual([0x12, 0xab]);
    // 1-bit gray: 1 0 1 1 -> 255 0 255 255
    expect(Array.from(decodePng(png(4, 1, 1, 0, Uint8Array.from([0, 0b10110000])), 1).pixels)).toEqual([255, 0, 255, 255]);
    // 2-bit palette, RGBA 8-bit
    const plte = Uint8Array.from([0, 0, 0, 200, 100, 50, 9, 9, 9]);
    expect(Array.from(decodePng(png(3, 1, 2, 3, Uint8Array.from([0, 0b01100000]), [['PLTE', plte]]), 3).pixels)).toEqual([200, 100, 50, 9, 9, 9, 0, 0, 0]);
    expect(Array.from(decodePng(png(1, 1, 8, 6, Uint8Array.from([0, 1, 2, 3, 0])), 3).pixels)).toEqual([1, 2, 3]);
  });

  it('refuses what it cannot read with the input named', () => {
    expect(() => decodePng(Uint8Array.from([1, 2, 3]), 1, '--mask m.png')).toThrow(/^--mask m\.png: not a PNG file/);
    expect(() => decodePng(png(2, 2, 8, 0, new Uint8Array(6), [], 1), 1)).toThrow(/interlaced/);
    expect(() => decodePng(png(2, 1, 8, 0, Uint8Array.from([7, 1, 2])), 1)).toThrow(/bad row filter 7/);
    expect(() => decodePng(png(2, 2, 8, 0, new Uint8Array(3)), 1)).toThrow(/shorter than the image/);
    expect(() => decodePng(png(2, 1, 3, 0, new Uint8Array(2)), 1)).toThrow(/unsupported colour type 0 at bit depth 3/);
    expect(() => decodePng(png(1, 1, 8, 3, Uint8Array.from([0, 0])), 3)).toThrow(/PLTE/);
  });
});

describe('scire inpaint', () => {
  const run = (args: string[]) => spawnSync(process.execPath, [DIST_CLI, 'inpaint', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  const writeGray = (file: string, w: number, h: number, values: ArrayLike<number>): string => {
    fs.writeFileSync(file, encodePng({ width: w, height: h, channels: 1, pixels: Uint8Array.from(values) }));
    return file;
  };
  beforeAll(() => {
    ensureDistBuilt();
  });

  it('fills a Fashion-MNIST image: white = keep, the kept pixels are the input bytes', () => {
    expect(fs.existsSync(FASHION_MNIST_TEST_IMAGES)).toBe(true);
    const image = readFashionMnist([0]);
    const bytes = Array.from(image, (v) => Math.round((v + 1) * 127.5));
    const inFile = writeGray(path.join(tmp, 'in.png'), 28, 28, bytes);
    const maskFile = writeGray(path.join(tmp, 'mask.png'), 28, 28, Array.from(leftHalfMask(), (m) => m * 255));
    const out = path.join(tmp, 'out.png');
    const r = run(['--image', inFile, '--mask', maskFile, '--out', out, '-n', '3', '--seed', '2', '--steps', '8', '-q']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^3 inpaintings of .*in\.png \(392 of 784 values known\) -> .*out\.png: NFE 8/);
    const grid = decodePng(fs.readFileSync(out), 1);
    expect([grid.width, grid.height]).toEqual([4 * 30 + 2, 32]); // input + 3 samples, padding 2
    for (let tile = 1; tile <= 3; tile++) {
      for (let y = 0; y < 28; y++) {
        for (let x = 0; x < 14; x++) expect(grid.pixels[(2 + y) * grid.width + 2 + tile * 30 + x]).toBe(bytes[y * 28 + x]);
      }
    }
    // .npy output of the same run: the samples themselves
    const npy = path.join(tmp, 'out.npy');
    expect(run(['--image', inFile, '--mask', maskFile, '--out', npy, '-n', '3', '--seed', '2', '--steps', '8', '-q']).status).toBe(0);
    expect(fs.statSync(npy).size).toBe(128 + 3 * PER * 4);
  }, 120_000);

  it('refuses missing flags and a size mismatch with exit status 2', () => {
    const inFile = writeGray(path.join(tmp, 'a.png'), 28, 28, new Uint8Array(PER));
    const small = writeGray(path.join(tmp, 'small.png'), 14, 28, new Uint8Array(14 * 28));
    let r = run(['--image', inFile]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^scire: --mask <mask\.png> is required \(white = keep, black = generate\)/);
    r = run(['--image', inFile, '--mask', small]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--mask .*small\.png is 14x28 but --image .*a\.png is 28x28: they must be the same size/);
    r = run(['--image', small, '--mask', small]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--image .*small\.png is 14x28 but the model's samples are 28x28/);
    r = run(['--image', path.join(tmp, 'none.png'), '--mask', inFile]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--image .*none\.png: cannot read it \(ENOENT\)/);
    r = run(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/WHITE = KEEP/);
  }, 60_000);
});
