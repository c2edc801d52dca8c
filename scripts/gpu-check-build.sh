#!/usr/bin/env bash
# GPU check of the foundation on a machine with an NVIDIA GPU and a pip PyTorch 2.x with
# CUDA, but possibly no Node.js and no internet: builds scire.node with plain CMake against
# that PyTorch's LibTorch (CUDA kernels on; scripts/gpu-env.sh, shared with the other GPU scripts,
# so a session that runs several of them builds once), then loads it and checks buildInfo, the CUDA
# probe kernel, GMM forwards on 'cuda' against the formula and the CPU, and error paths.
#
# Needs in the checkout: vendor/node-v20.20.2-linux-x64-min.tar.xz (official node binary +
# include/node), node_modules/node-addon-api, dist/ (npm run build), test/fixtures/models.
# Env: PYTHON [python3], ARCHS [90-real;90-virtual], JOBS [nproc], WORK [/tmp/scire-gpu-check],
#      OUT (if set, logs are written there), NODE / ADDON (use these instead of unpacking / building),
#      WITH_CUDA, TORCH_DIR, NVCC, GPU_SHARED: see scripts/gpu-env.sh.
set -Eeuo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
T0=$(date +%s)
WORK=${WORK:-/tmp/scire-gpu-check}
LOGS=${OUT:-$WORK}/gpu-check-build
mkdir -p "$WORK" "$LOGS"
step() { echo "[gpu-check +$(( $(date +%s) - T0 ))s] $*"; }
GPU_TAG=gpu-check GPU_LOGS=$LOGS
# shellcheck source=scripts/gpu-env.sh
source "$ROOT/scripts/gpu-env.sh"
log() { step "$@"; }

nvidia-smi -L || true
gpu_node
gpu_torch
gpu_addon

step "checks ($ADDON)"
cat > "$WORK/check.js" <<'JS'
'use strict';
const assert = require('assert');
const path = require('path');
const fs = require('fs');
const root = process.cwd();
const b = require(process.env.ADDON);
const { GaussianMixtureNoiseModel } = require(path.join(root, 'dist/testing/gmm.js'));
const { randn } = require(path.join(root, 'dist/randn.js'));
const rel = (a, w) => { let n = 0, d = 0; for (let i = 0; i < w.length; i++) { n = Math.max(n, Math.abs(a[i] - w[i])); d = Math.max(d, Math.abs(w[i])); } return n / d; };
const maxDiff = (a, c) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - c[i])); return m; };
async function rejects(p, re, what) {
  try { await p; } catch (e) { assert.match(e.message, re, what); console.log(`  ok  ${what}: ${e.name}: ${e.message.split('\n')[0].slice(0, 160)}`); return; }
  throw new Error(`${what}: did not reject`);
}
(async () => {
  const info = b.buildInfo();
  console.log('buildInfo', JSON.stringify(info));
  assert(info.cuda && info.torchCuda && info.cudaDeviceCount >= 1, 'CUDA build with a visible GPU');
  const probe = b.cudaProbe();
  console.log('cudaProbe', JSON.stringify(probe));
  assert(probe.kernelOk, 'probe kernel ran');
  const models = path.join(root, 'test/fixtures/models');
  const name = 'gmm_img1x4x4_discrete';
  const gmm = new GaussianMixtureNoiseModel(JSON.parse(fs.readFileSync(path.join(models, name + '.json'), 'utf8')));
  const cpu = await b.loadModel(path.join(models, name + '.pt'), { device: 'cpu', dtype: 'float32' });
  const gpu = await b.loadModel(path.join(models, name + '.pt'), { device: 'cuda', dtype: 'float32' });
  console.log('info', JSON.stringify(gpu.info));
  assert.strictEqual(gpu.info.device, 'cuda:0');
  for (const B of [8, 4096]) {
    const shape = [B, 1, 4, 4];
    for (const t of [999, 400, 20]) {
      const x = randn(shape, t + B);
      const t1 = process.hrtime.bigint();
      const yg = await gpu.forward(x, shape, t);
      const ms = Number(process.hrtime.bigint() - t1) / 1e6;
      const yc = await cpu.forward(x, shape, t);
      const e = rel(yg, gmm.noise(x, shape, t));
      console.log(`  B=${B} t=${t}: cuda vs formula rel ${e.toExponential(2)}, cuda vs cpu max|diff| ${maxDiff(yg, yc).toExponential(2)}, ${ms.toFixed(2)} ms`);
      assert(e < 1e-5, 'cuda forward vs formula');
    }
  }
  for (const dtype of ['float16', 'bfloat16']) {
    const m = await b.loadModel(path.join(models, 'affine_model.pt'), { device: 'cuda', dtype });
    const x = randn([4, 8], 1);
    const y = await m.forward(x, [4, 8], 0.25);
    const e = rel(y, Array.from(x, (v) => 2 * v + 0.25));
    console.log(`  affine ${dtype} on cuda: rel ${e.toExponential(2)}`);
    assert(e < 1e-2 && e > 0);
  }
  await rejects(b.loadModel(path.join(models, name + '.pt'), { device: 'cuda:7', dtype: 'float32' }), /device 'cuda:7' does not exist/, 'cuda:7');
  const bad = await b.loadModel(path.join(models, 'bad_output_shape.pt'), { device: 'cuda', dtype: 'float32' });
  await rejects(bad.forward(new Float32Array(32), [2, 16], 1), /output shape \[2, 1\] differs/, 'output shape on cuda');
  await rejects(gpu.forward(new Float32Array(10), [2, 5], 1), /forward: /, 'TorchScript runtime error on cuda');
  console.log('GPU CHECK PASSED');
})().catch((e) => { console.error('GPU CHECK FAILED:', e); process.exit(1); });
JS
ADDON="$ADDON" "$NODE" "$WORK/check.js" 2>&1 | tee "$LOGS/check.log"
step "done"
