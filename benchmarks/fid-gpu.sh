#!/usr/bin/env bash
# The Frechet-distance benchmark (benchmarks/fid.ts) on a machine with an NVIDIA GPU, for the
# full solver x NFE grid with 2000 samples per configuration (on a 2-core CPU it takes hours).
# Same code as on the CPU: fid.ts compiled to JS, the public Sampler, the native executor
# (built there with CUDA against the machine's pip PyTorch), fid.py for the scores.
#
#   bash benchmarks/fid-gpu.sh prepare     here (needs the Debian dataset and /usr/bin/python3):
#       compiles fid.ts and lib/ to benchmarks/results/tmp/js, saves the reference statistics
#       (test-set features, 2000-train-image floor) to benchmarks/results/tmp/fid-ref.pt, copies
#       the Node tarball ($NODE_TARBALL) to benchmarks/results/tmp/node.tar.xz
#   bash benchmarks/fid-gpu.sh run         on the GPU machine (no Node, no internet, no dataset);
#       carry benchmarks/results/tmp and node_modules/node-addon-api. Results go to $OUT
#       (fid.md, fid.svg, fid.json: FD on the main grid; accuracy-fmnist-gpu.md/.svg/.json: the
#       whole solver grid on the UNet, batch 64, fine solution at 500 NFE, ACCURACY=0 skips it;
#       full/fid.*: FD on the whole grid, as far as the deadline allows) or $WORK/results (WORK defaults to /tmp/scire-fid-gpu).
#
# Environment: PYTHON [python3]  ARCHS [90-real;90-virtual]  JOBS [nproc]  NODE, ADDON, WITH_CUDA, TORCH_DIR, NVCC: scripts/gpu-env.sh  SAMPLES [2000]  NFES [5,6,8,10,12,15,20,50] (FD)
#              SOLVERS [main grid, then all]  CHUNK [2000]  MODEL [models/fmnist_unet.pt]  DEADLINE [300]
set -Eeuo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TMP="$ROOT/benchmarks/results/tmp"
T0=$(date +%s)
log() { echo "[fid-gpu +$(( $(date +%s) - T0 ))s] $*"; }

if [[ "${1:-}" == "prepare" ]]; then
  mkdir -p "$TMP"
  NODE_TARBALL=${NODE_TARBALL:-/tmp/nodepack/node-v20.20.2-linux-x64-min.tar.xz}
  cp -f "$NODE_TARBALL" "$TMP/node.tar.xz"
  rm -rf "$TMP/js"
  npx tsc --outDir "$TMP/js" --rootDir . --target ES2022 --module commonjs --moduleResolution node --types node \
    --strict --esModuleInterop --skipLibCheck benchmarks/fid.ts benchmarks/accuracy.ts
  # preset 'auto' reads its table next to the compiled lib/presets/auto.js
  cp lib/presets/auto-table.json "$TMP/js/lib/presets/"
  /usr/bin/python3 benchmarks/fid.py --save-ref-stats "$TMP/fid-ref.pt" --train-ref "${SAMPLES:-2000}"
  log "prepared $TMP: $(ls "$TMP" | tr '\n' ' ')"
  exit 0
fi
[[ "${1:-}" == "run" ]] || { echo "usage: bash benchmarks/fid-gpu.sh prepare|run" >&2; exit 2; }

PYTHON=${PYTHON:-python3}
JOBS=${JOBS:-$(nproc)}
WORK="${WORK:-/tmp/scire-fid-gpu}"
RESULTS=${OUT:-$WORK/results}
mkdir -p "$WORK" "$RESULTS"
MODEL=${MODEL:-$ROOT/models/fmnist_unet.pt}
for f in "$TMP/js/benchmarks/fid.js" "$TMP/fid-ref.pt" node_modules/node-addon-api/napi.h "$MODEL" models/fmnist_classifier.pt; do
  [[ -e "$f" ]] || { echo "missing $f (run 'prepare' here and carry it)" >&2; exit 1; }
done

# Node (the prepared tarball), torch, nvcc, the build (shared with the other GPU scripts: built once
# per session in _gpu_work/shared/build) and the load: scripts/gpu-env.sh. NODE= / ADDON= skip them.
NODE_TARBALL="$TMP/node.tar.xz" GPU_TAG=fid-gpu GPU_LOGS="$WORK"
# shellcheck source=scripts/gpu-env.sh
source "$ROOT/scripts/gpu-env.sh"
gpu_node
gpu_torch
gpu_addon

# Three stages, each cut off at the deadline (DEADLINE seconds after the start, default 300:
# device time is short): FD on the main grid, the accuracy grid, then FD on the rest of the grid.
left() { echo $(( ${DEADLINE:-300} - ( $(date +%s) - T0 ) )); }
MAIN="SciRE v1 3M (nsr),SciRE v1 2M (nsr),SciRE v2 3M (nsr),SciRE v1 3S-fixed (nsr),SciRE v1 3M (time-uniform),DPM-Solver++ 2M (logsnr),DPM-Solver++ 3M (logsnr),DDIM (logsnr),UniPC bh2 2M (logsnr),UniPC bh1 3M (logsnr),SciRE v1 2M + corrector (time-quadratic),auto (preset)"
fid() {  # fid <timeout s> <solvers> <out dir>
  mkdir -p "$3"
  SCIRE_NATIVE_PATH="$ADDON" timeout "$1" "$NODE" "$TMP/js/benchmarks/fid.js" --root "$ROOT" --device cuda --python "$PYTHON" \
    --model "$MODEL" --ref-stats "$TMP/fid-ref.pt" --py-threads "$(( JOBS / 2 ))" --samples "${SAMPLES:-2000}" \
    --chunk "${CHUNK:-2000}" --nfes "${NFES:-5,6,8,10,12,15,20,50}" --solvers "$2" --work "$WORK/samples" --out "$3" \
    >/dev/null 2>>"$WORK/stages.log"
}
T=$(left); (( T > 150 )) && T=150
fid "$T" "${SOLVERS:-$MAIN}" "$RESULTS" && log "FD (main grid) done" || log "FD (main grid) stopped: rc $?"
if [[ "${ACCURACY:-1}" == "1" ]] && (( $(left) > 20 )); then
  T=$(left); (( T > 90 )) && T=90
  SCIRE_NATIVE_PATH="$ADDON" timeout "$T" "$NODE" "$TMP/js/benchmarks/accuracy.js" --part fmnist --device cuda --grid full \
    --batch "${ACC_BATCH:-64}" --fine-nfe "${FINE_NFE:-500}" --tag -gpu --model "$MODEL" --out "$RESULTS" >/dev/null 2>>"$WORK/stages.log" \
    && log "accuracy done" || log "accuracy stopped: rc $?"
fi
if [[ -z "${SOLVERS:-}" ]] && (( $(left) > 20 )); then
  fid "$(left)" all "$RESULTS/full" && log "FD (whole grid) done" || log "FD (whole grid) stopped: rc $?"
fi
grep -v "CUDAGraph\|^$" "$WORK/stages.log" | tail -20 || true
log "end"
