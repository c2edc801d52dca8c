#!/usr/bin/env bash
# GPU check of the Sampler API and the scire CLI on a machine with an NVIDIA GPU and a pip
# PyTorch with CUDA, but no Node.js and no internet. Builds scire.node with CMake against that
# PyTorch's LibTorch (CUDA on; scripts/gpu-env.sh, shared with the other GPU scripts, so a
# session that runs several of them builds once), then:
#   1. scire info                      (CUDA on, >= 1 GPU)
#   2. Sampler on 'cuda' with the GMM image model vs executePlanReference (float64), and
#      CUDA vs CPU on the same seed
#   3. scire sample --device cuda on the bundled model (when models/fmnist_unet.pt exists):
#      PNG grid, .npy equal to the CPU run within tolerance, bfloat16 vs float32
#
# Needs in the checkout: vendor/node-v20.20.2-linux-x64-min.tar.xz, node_modules/node-addon-api,
# dist/ (npm run build), test/fixtures/models. Env: PYTHON [python3], ARCHS [90-real;90-virtual],
# JOBS [nproc], WORK [/tmp/scire-gpu-sampler], OUT (results written there when set),
# FMNIST_MODEL [models/fmnist_unet.pt] (another export of the same network, with its .json),
# NODE / ADDON (use these instead of unpacking / building), WITH_CUDA, TORCH_DIR, NVCC, GPU_SHARED:
# see scripts/gpu-env.sh.
set -Eeuo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
T0=$(date +%s)
WORK=${WORK:-/tmp/scire-gpu-sampler}
RES=${OUT:-$WORK}/gpu-check-sampler
mkdir -p "$WORK" "$RES"
step() { echo "[gpu-sampler +$(( $(date +%s) - T0 ))s] $*"; }
GPU_TAG=gpu-sampler GPU_LOGS=$RES
# shellcheck source=scripts/gpu-env.sh
source "$ROOT/scripts/gpu-env.sh"
log() { step "$@"; }

nvidia-smi -L || true
gpu_node
gpu_torch
gpu_addon
export SCIRE_NATIVE_PATH="$ADDON"

step "scire info"
"$NODE" dist/cli.js info | tee "$RES/info.txt"
grep -Eq '^CUDA +on' "$RES/info.txt"

step "Sampler on cuda (GMM image model)"
cat > "$WORK/sampler-check.js" <<'JS'
'use strict';
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const root = process.cwd();
const { Sampler, NoiseSchedule, loadModel, compilePlan, executePlanReference, randn } = require(path.join(root, 'dist/index.js'));
const { GaussianMixtureNoiseModel } = require(path.join(root, 'dist/testing/gmm.js'));
const maxDiff = (a, b) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };
(async () => {
  const models = path.join(root, 'test/fixtures/models');
  const gmm = new GaussianMixtureNoiseModel(JSON.parse(fs.readFileSync(path.join(models, 'gmm_img1x4x4_discrete.json'), 'utf8')));
  const schedule = NoiseSchedule.discrete({ kind: 'linear' });
  const shape = [512, 1, 4, 4];
  const cpu = new Sampler({ model: await loadModel(path.join(models, 'gmm_img1x4x4_discrete.pt'), { device: 'cpu' }), schedule });
  const gpu = new Sampler({ model: await loadModel(path.join(models, 'gmm_img1x4x4_discrete.pt'), { device: 'cuda' }), schedule });
  const ref = executePlanReference(compilePlan({ schedule, steps: 12 }), { x: randn(shape, 42), shape, model: gmm.asModel() });
  const g = await gpu.sample({ shape, seed: 42 });
  const g2 = await gpu.sample({ shape, seed: 42 });
  const c = await cpu.sample({ shape, seed: 42 });
  console.log(`  cuda vs float64 reference max|diff| ${maxDiff(g.data, ref.x).toExponential(2)}; cuda vs cpu ${maxDiff(g.data, c.data).toExponential(2)}; ` +
    `cuda run twice ${maxDiff(g.data, g2.data)}; nfe ${g.nfe}; timings ${JSON.stringify(g2.timings, (k, v) => (typeof v === 'number' ? +v.toFixed(2) : v))}`);
  assert(maxDiff(g.data, ref.x) < 2e-4, 'cuda sampler vs reference (float32; 4e-5 measured on the CPU for this batch)');
  const x0 = randn(shape, 5).map((v) => v * 0.1);
  const i2i = await gpu.sample({ shape, seed: 1, x0, tStart: 0.3 });
  const i2iCpu = await cpu.sample({ shape, seed: 1, x0, tStart: 0.3 });
  console.log(`  img2img tStart 0.3: cuda vs cpu ${maxDiff(i2i.data, i2iCpu.data).toExponential(2)}, nfe ${i2i.nfe}`);
  assert(maxDiff(i2i.data, i2iCpu.data) < 1e-4, 'img2img cuda vs cpu');
  await assert.rejects(gpu.sample({ shape, seed: 2, signal: AbortSignal.abort() }), { name: 'AbortError' });
  // In flight, op by op (no CUDA graph) so that progress events arrive while the solve runs.
  // A GPU evaluation of this model takes microseconds, so the solve may finish first: reported, not asserted.
  const ac = new AbortController();
  let seen = 0;
  const inflight = await gpu.sample({ shape: [200000, 1, 4, 4], seed: 2, cudaGraph: false, signal: ac.signal, onStep: (e) => { seen = e.nfe; ac.abort(); } })
    .then((r) => `finished (${r.nfe} NFE) before the abort landed`, (e) => e.name);
  console.log(`  abort in flight on cuda after ${seen} progress event(s): ${inflight}`);
  const graphed = await gpu.sample({ shape, seed: 42, cudaGraph: true });
  const eager = await gpu.sample({ shape, seed: 42, cudaGraph: false });
  console.log(`  cudaGraph true vs false max|diff| ${maxDiff(graphed.data, eager.data)}; default vs false ${maxDiff(g.data, eager.data)}`);
  console.log('SAMPLER CHECK PASSED');
})().catch((e) => { console.error('SAMPLER CHECK FAILED:', e); process.exit(1); });
JS
"$NODE" "$WORK/sampler-check.js" 2>&1 | tee "$RES/sampler-check.log"

FMNIST_MODEL=${FMNIST_MODEL:-models/fmnist_unet.pt}
if [[ -f "$FMNIST_MODEL" ]]; then
  step "scire sample on cuda ($FMNIST_MODEL)"
  M=(--model "$FMNIST_MODEL")
  "$NODE" dist/cli.js sample "${M[@]}" --device cuda --out "$RES/samples_cuda.png" 2>&1 | tail -2 | tee "$RES/cli-cuda.txt"
  "$NODE" dist/cli.js sample "${M[@]}" --device cuda -n 64 -q --out "$WORK/cuda.npy" | tee -a "$RES/cli-cuda.txt"
  # bfloat16 needs a network whose forward keeps to its parameters' dtype: reported, not fatal.
  "$NODE" dist/cli.js sample "${M[@]}" --device cuda --dtype bfloat16 -n 64 -q --out "$WORK/cuda_bf16.npy" 2>&1 | tail -1 | tee -a "$RES/cli-cuda.txt" || true
  "$NODE" dist/cli.js sample "${M[@]}" --device cpu -n 64 -q --out "$WORK/cpu.npy" | tee -a "$RES/cli-cuda.txt"
  "$NODE" dist/cli.js sample "${M[@]}" --device cuda -n 1024 -q --out "$WORK/cuda_1024.npy" | tee -a "$RES/cli-cuda.txt"
  "$NODE" -e '
    const fs = require("fs");
    const load = (f) => { const b = fs.readFileSync(f); const h = b.readUInt16LE(8); return new Float32Array(b.buffer.slice(b.byteOffset + 10 + h, b.byteOffset + b.length)); };
    const dir = process.argv[1];
    const [g, c] = ["cuda", "cpu"].map((n) => load(dir + "/" + n + ".npy"));
    let m = 0;
    for (let i = 0; i < g.length; i++) m = Math.max(m, Math.abs(g[i] - c[i]));
    console.log(`  fmnist 64 samples, 12 NFE: cuda vs cpu max|diff| ${m.toExponential(2)}`);
    if (fs.existsSync(dir + "/cuda_bf16.npy")) {
      const bf = load(dir + "/cuda_bf16.npy");
      let s = 0, n2 = 0;
      for (let i = 0; i < g.length; i++) { s += (bf[i] - g[i]) ** 2; n2 += g[i] ** 2; }
      console.log(`  bf16 vs fp32 relative RMS ${Math.sqrt(s / n2).toExponential(2)}`);
    }
  ' "$WORK" | tee -a "$RES/cli-cuda.txt"
fi
step "done"
