#!/usr/bin/env node
/*
 * Interim demo (until `npm run demo` runs the sampling CLI): loads the Gaussian-mixture
 * TorchScript model from test/fixtures, runs one forward through the native addon and
 * compares it with the exact formula from the model's JSON parameters.
 * Needs the compiled package (dist/) and the addon: `npm run demo` builds both first.
 */
'use strict';

const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const { loadModel } = require(path.join(ROOT, 'dist', 'model.js'));
const { nativeBinding, nativeBindingPath } = require(path.join(ROOT, 'dist', 'native.js'));
const { randn } = require(path.join(ROOT, 'dist', 'randn.js'));
const { GaussianMixtureNoiseModel } = require(path.join(ROOT, 'dist', 'testing', 'gmm.js'));

async function main() {
  const build = nativeBinding().buildInfo();
  console.log(`scire.node ${build.version} (${build.buildSystem}, LibTorch ${build.torchVersion}, ` +
    `CUDA kernels ${build.cuda ? `compiled for ${build.cudaArchitectures}` : 'not compiled'}, ` +
    `${build.cudaDeviceCount} CUDA device(s) visible) from ${path.relative(ROOT, nativeBindingPath())}`);

  const name = 'gmm_img1x4x4_discrete';
  const file = path.join(ROOT, 'test', 'fixtures', 'models', `${name}.pt`);
  const params = JSON.parse(fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'models', `${name}.json`), 'utf8'));
  const t0 = process.hrtime.bigint();
  const model = await loadModel(file, { device: 'cpu', dtype: 'float32' });
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(`loaded ${path.relative(ROOT, file)} in ${loadMs.toFixed(1)} ms: ${JSON.stringify(model.info)}`);

  const shape = [64, 1, 4, 4];
  const x = randn(shape, 0);
  const formula = new GaussianMixtureNoiseModel(params);
  console.log('t_input   forward ms   max|native - formula| / max|formula|');
  for (const t of [999, 500, 100, 10]) {
    const t1 = process.hrtime.bigint();
    const y = await model.forward(x, shape, t);
    const ms = Number(process.hrtime.bigint() - t1) / 1e6;
    const want = formula.noise(x, shape, t);
    let num = 0;
    let den = 0;
    for (let i = 0; i < y.length; i++) {
      num = Math.max(num, Math.abs(y[i] - want[i]));
      den = Math.max(den, Math.abs(want[i]));
    }
    const rel = num / den;
    console.log(`${String(t).padStart(7)}   ${ms.toFixed(2).padStart(10)}   ${rel.toExponential(2)}`);
    if (!(rel < 1e-5)) throw new Error(`native forward differs from the formula at t=${t}: ${rel}`);
  }
  model.dispose();
  console.log('demo ok');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
