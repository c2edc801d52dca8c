/**
 * Fashion-MNIST test images from Debian's dataset-fashion-mnist (IDX files, gzip), for the
 * inpainting example (examples/inpaint-fmnist.mjs) and its test. Not part of the npm package.
 */
import * as fs from 'node:fs';
import { gunzipSync } from 'node:zlib';

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
export const FASHION_MNIST_TEST_IMAGES = `${FASHION_MNIST_DIR}/t10k-images-idx3-ubyte.gz`;

/**
 * Images `indices` of an IDX image file as float32 [n, 1, 28, 28] in [-1, 1] (the bundled
 * model's data range: byte / 127.5 - 1, as models/train_fmnist.py).
 */
export function readFashionMnist(indices: readonly number[], file = FASHION_MNIST_TEST_IMAGES): Float32Array {
  const raw = gunzipSync(fs.readFileSync(file));
  if (raw.readUInt32BE(0) !== 2051) throw new Error(`${file}: not an IDX image file`);
  const count = raw.readUInt32BE(4);
  const h = raw.readUInt32BE(8);
  const w = raw.readUInt32BE(12);
  if (h !== 28 || w !== 28) throw new Error(`${file}: images are ${h}x${w}, expected 28x28`);
  const per = h * w;
  const out = new Float32Array(indices.length * per);
  indices.forEach((idx, k) => {
    if (!Number.isInteger(idx) || idx < 0 || idx >= count) throw new RangeError(`image index ${idx} is not in [0, ${count})`);
    for (let i = 0; i < per; i++) out[k * per + i] = raw[16 + idx * per + i] / 127.5 - 1;
  });
  return out;
}

/** 28x28 masks (1 = known): the left half known, or everything but a centre square of `side`. */
export function leftHalfMask(): Float32Array {
  const m = new Float32Array(28 * 28);
  for (let y = 0; y < 28; y++) for (let x = 0; x < 14; x++) m[y * 28 + x] = 1;
  return m;
}

export function centreSquareMask(side = 14): Float32Array {
  const m = new Float32Array(28 * 28).fill(1);
  const lo = (28 - side) >> 1;
  for (let y = lo; y < lo + side; y++) for (let x = lo; x < lo + side; x++) m[y * 28 + x] = 0;
  return m;
}
