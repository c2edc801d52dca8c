#!/usr/bin/env bash
# gpu-check.sh: build scire.node with CUDA on a GPU machine and check the native executor and
# the fused kernels there (issue 4). The machine needs no Node and no internet.
#
#   bash scripts/gpu-check.sh          (from anywhere; logs under $WORK/logs, copied to $OUT)
#
# Needs, besides the tracked files of the repository (carry the ignored ones):
#   vendor/node-v20.20.2-linux-x64-min.tar.xz   Node binary + include/node (bash scripts/pack-node.sh)
#   dist/                                        the compiled TypeScript (npx tsc -p tsconfig.json)
#   node_modules/node-addon-api/                 napi.h
# and on the machine: python3 with a CUDA PyTorch 2.x (its LibTorch is used), nvcc, cmake,
# a C++ compiler, ninja (or make).
#
# Steps (the first five in scripts/gpu-env.sh, shared with the other GPU scripts): unpack Node ->
# locate torch and nvcc -> cmake configure (SCIRE_WITH_CUDA=ON against the pip LibTorch, sm_90) ->
# build (once per session, in _gpu_work/shared/build) -> load -> scripts/gpu-check.js (kernel, golden float32,
# bfloat16/float16, progress/abort, CFG on the GPU) -> benchmarks/kernels.mjs (table last).
#
# Environment (defaults in brackets):
#   PYTHON [python3]      TORCH_DIR [the pip torch's share/cmake/Torch]   NVCC [auto]
#   WITH_CUDA [ON]        EXPECT_GPU [1]: 0 = dry run on the CPU (e.g. WITH_CUDA=OFF, Debian LibTorch:
#                         TORCH_DIR=/usr/lib/x86_64-linux-gnu/cmake/Torch)
#   ARCHS [90-real;90-virtual]   JOBS [nproc]   WORK [<repo>/_gpu_work/kernels]   OUT [unset]
#   NODE, ADDON [unset]: a Node and a scire_testing.node (scire.node + the test entries) to use instead of unpacking and building
#   GPU_SHARED [<repo>/_gpu_work/shared]: the unpacked Node and the build, shared by the GPU scripts
#   BENCH_ARGS [GPU: all sizes; dry run: --quick --sizes 64K,1M --iters 3]
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
EXPECT_GPU=${EXPECT_GPU:-1}
WORK=${WORK:-$ROOT/_gpu_work/kernels}
DEVICE=cuda; [[ "$EXPECT_GPU" == "1" ]] || DEVICE=cpu
if [[ -z "${BENCH_ARGS+x}" ]]; then
  if [[ "$DEVICE" == cuda ]]; then BENCH_ARGS=""; else BENCH_ARGS="--quick --sizes 64K,1M --iters 3"; fi
fi
mkdir -p "$WORK"
LOGS="$WORK/logs"; mkdir -p "$LOGS"
GPU_TAG=gpu-check GPU_LOGS=$LOGS
# shellcheck source=scripts/gpu-env.sh
source "$ROOT/scripts/gpu-env.sh"
T0=$(date +%s.%N)
el() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
log() { printf '[gpu-check +%ss] %s\n' "$(el)" "$*"; }
copy_out() { if [[ -n "${OUT:-}" && -d "${OUT:-}" ]]; then mkdir -p "$OUT/gpu-check" && cp -f "$LOGS"/* "$OUT/gpu-check/" 2>/dev/null || true; fi; }
die() { printf '\n[gpu-check] FAILED after %ss: %s\n' "$(el)" "$*" >&2; copy_out; exit 1; }
trap 'rc=$?; printf "\n[gpu-check] FAILED (rc=%s) at line %s: %s\n" "$rc" "$LINENO" "$BASH_COMMAND" >&2; copy_out; exit $rc' ERR

# ------------------------------------------------------------------ inputs and machine
for f in CMakeLists.txt native/executor.cc native/kernels/lincomb_cuda.cu scripts/gpu-check.js benchmarks/kernels.mjs benchmarks/support/kernel-bench-args.mjs \
         dist/compile.js dist/reference.js dist/native.js dist/testing/gmm.js dist/testing/rounding.js dist/testing/random-array.js dist/testing/golden-cases.js \
         node_modules/node-addon-api/napi.h \
         test/fixtures/models/gmm_D16_discrete.pt test/fixtures/models/cfg_model.pt test/fixtures/models/slow_model.pt \
         test/fixtures/golden/scire_discrete.json test/fixtures/dpmsolver_extra.json; do
  [[ -e "$f" ]] || die "missing input: $f (carry it with the working tree; see the header of this script)"
done
command -v cmake >/dev/null || die "cmake not found"
command -v "$PYTHON" >/dev/null || die "python '$PYTHON' not found (set PYTHON=)"
log "repo $ROOT; work $WORK; jobs $JOBS; WITH_CUDA=$WITH_CUDA EXPECT_GPU=$EXPECT_GPU device=$DEVICE; $(cmake --version | head -1)"
if command -v nvidia-smi >/dev/null; then
  timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1 | sed 's/^/[gpu-check]   /' || true
fi

# ------------------------------------------------------------------ node, torch, nvcc, build, load (scripts/gpu-env.sh)
gpu_node
gpu_torch
gpu_addon

# ------------------------------------------------------------------ checks, then the benchmark
log "checks on $DEVICE (scripts/gpu-check.js)"
CHECK_RC=0
ADDON="$ADDON" DEVICE="$DEVICE" timeout 600 "$NODE" "$ROOT/scripts/gpu-check.js" 2>&1 | tee "$LOGS/checks.log" || CHECK_RC=$?
log "kernel benchmark on $DEVICE (benchmarks/kernels.mjs $BENCH_ARGS)"
# shellcheck disable=SC2086
SCIRE_NATIVE_PATH="$ADDON" timeout 600 "$NODE" "$ROOT/benchmarks/kernels.mjs" --device "$DEVICE" --json "$LOGS/kernels.json" $BENCH_ARGS \
  >"$LOGS/kernels.txt" 2>"$LOGS/kernels.err" || { cat "$LOGS/kernels.err" >&2; die "benchmark failed"; }
copy_out
echo
grep -E '^  (ok|FAIL) ' "$LOGS/checks.log" | sed -E 's/^  (ok  |FAIL) ([^:]+): (.{0,110}).*/  \1 \2: \3/' || true
grep -E 'GPU CHECK' "$LOGS/checks.log" || true
echo
cat "$LOGS/kernels.txt"
log "done (checks rc=$CHECK_RC)"
exit "$CHECK_RC"
