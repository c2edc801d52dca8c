#!/usr/bin/env node
// Inpainting with the bundled Fashion-MNIST model: the picture of the README.
//
//   node examples/inpaint-fmnist.mjs [--out docs/inpaint-example.png] [--images 0,1,2,3]
//                                    [--fills 3] [--seed 0] [--steps 12]
//
// For each test image (Debian's dataset-fashion-mnist, t10k) two tasks: the left half known,
// and everything known but a 14x14 centre square. One row per task: the original, the input
// (the part to generate blanked to mid-gray), then `fills` inpaintings (different noise: one batch,
// sample({ x0, mask }) with x0 and mask per sample). Prints the largest |out - x0| over the
// known pixels (the result keeps them exactly: lib/inpaint.ts).
// Needs a built checkout (npm run build): it loads dist/ and dist/testing/.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const { loadModel, NoiseSchedule, Sampler } = require(path.join(ROOT, 'dist', 'index.js'));
const { encodePng, toImageGrid } = require(path.join(ROOT, 'dist', 'image-io.js'));
const { readFashionMnist, leftHalfMask, centreSquareMask } = require(path.join(ROOT, 'dist', 'testing', 'fashion-mnist.js'));

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'docs/inpaint-example.png' },
    images: { type: 'string', default: '0,1,2,3' },
    fills: { type: 'string', default: '3' },
    seed: { type: 'string', default: '0' },
    steps: { type: 'string', default: '12' },
  },
});
const indices = values.images.split(',').map(Number);
const fills = Number(values.fills);
const PER = 28 * 28;

const originals = readFashionMnist(indices);
const tasks = []; // { image, mask }
indices.forEach((_, k) => {
  const image = originals.subarray(k * PER, (k + 1) * PER);
  tasks.push({ image, mask: leftHalfMask() }, { image, mask: centreSquareMask(14) });
});

// One batch: `fills` samples per task, each with its task's x0 and mask.
const n = tasks.length * fills;
const x0 = new Float32Array(n * PER);
const mask = new Float32Array(n * PER);
tasks.forEach((t, k) => {
  for (let j = 0; j < fills; j++) {
    x0.set(t.image, (k * fills + j) * PER);
    mask.set(t.mask, (k * fills + j) * PER);
  }
});
const model = await loadModel(path.join(ROOT, 'models', 'fmnist_unet.pt'));
const schedule = NoiseSchedule.discrete({ kind: 'linear', N: 1000, betaStart: 1e-4, betaEnd: 0.02 });
const sampler = new Sampler({ model, schedule, steps: Number(values.steps) });
const out = await sampler.sample({ shape: [n, 1, 28, 28], seed: Number(values.seed), x0, mask });
model.dispose();

let worst = 0;
for (let i = 0; i < n * PER; i++) if (mask[i] === 1) worst = Math.max(worst, Math.abs(out.data[i] - x0[i]));

// Rows: original | input (unknown part mid-gray) | fills.
const cols = 2 + fills;
const tiles = new Float32Array(tasks.length * cols * PER);
tasks.forEach((t, k) => {
  const row = k * cols;
  tiles.set(t.image, row * PER);
  for (let i = 0; i < PER; i++) tiles[(row + 1) * PER + i] = t.mask[i] === 1 ? t.image[i] : 0;
  tiles.set(out.data.subarray(k * fills * PER, (k + 1) * fills * PER), (row + 2) * PER);
});
fs.mkdirSync(path.dirname(path.resolve(values.out)), { recursive: true });
fs.writeFileSync(values.out, encodePng(toImageGrid(tiles, [tasks.length * cols, 1, 28, 28], { cols })));
console.log(
  `${tasks.length} tasks x ${fills} fills (test images ${indices.join(', ')}) -> ${values.out}: NFE ${out.nfe}, ` +
    `${(out.timings.totalMs / 1000).toFixed(2)} s, max |out - x0| over known pixels ${worst.toExponential(2)} ` +
    `(solver ${out.solver.solver}${out.solver.preset ? `, preset auto: ${out.solver.presetRow?.name}` : ''})`,
);
