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
# Steps: unpack Node -> locate torch and nvcc -> cmake configure (SCIRE_WITH_CUDA=ON against
# the pip LibTorch, sm_90) -> build -> load -> scripts/gpu-check.js (kernel, golden float32,
# bfloat16/float16, progress/abort, CFG on the GPU) -> benchmarks/kernels.mjs (table last).
#
# Environment (defaults in brackets):
#   PYTHON [python3]      TORCH_DIR [from torch.utils.cmake_prefix_path]   NVCC [auto]
#   WITH_CUDA [ON]        EXPECT_GPU [1]: 0 = dry run on the CPU (e.g. WITH_CUDA=OFF, Debian LibTorch:
#                         TORCH_DIR=/usr/lib/x86_64-linux-gnu/cmake/Torch)
#   ARCHS [90-real;90-virtual]   JOBS [nproc]   WORK [<repo>/_gpu_work/kernels]   OUT [unset]
#   BENCH_ARGS [GPU: all sizes; dry run: --quick --sizes 64K,1M --iters 3]
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON=${PYTHON:-python3}
WITH_CUDA=${WITH_CUDA:-ON}
EXPECT_GPU=${EXPECT_GPU:-1}
ARCHS=${ARCHS:-"90-real;90-virtual"}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 8)}
WORK=${WORK:-$ROOT/_gpu_work/kernels}
NODE_TARBALL=${NODE_TARBALL:-$ROOT/vendor/node-v20.20.2-linux-x64-min.tar.xz}
DEVICE=cuda; [[ "$EXPECT_GPU" == "1" ]] || DEVICE=cpu
if [[ -z "${BENCH_ARGS+x}" ]]; then
  if [[ "$DEVICE" == cuda ]]; then BENCH_ARGS=""; else BENCH_ARGS="--quick --sizes 64K,1M --iters 3"; fi
fi
mkdir -p "$WORK"
LOGS="$WORK/logs"; mkdir -p "$LOGS"
T0=$(date +%s.%N)
el() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
log() { printf '[gpu-check +%ss] %s\n' "$(el)" "$*"; }
copy_out() { if [[ -n "${OUT:-}" && -d "${OUT:-}" ]]; then mkdir -p "$OUT/gpu-check" && cp -f "$LOGS"/* "$OUT/gpu-check/" 2>/dev/null || true; fi; }
die() { printf '\n[gpu-check] FAILED after %ss: %s\n' "$(el)" "$*" >&2; copy_out; exit 1; }
trap 'rc=$?; printf "\n[gpu-check] FAILED (rc=%s) at line %s: %s\n" "$rc" "$LINENO" "$BASH_COMMAND" >&2; copy_out; exit $rc' ERR

# ------------------------------------------------------------------ inputs and machine
for f in CMakeLists.txt native/executor.cc native/kernels/lincomb_cuda.cu scripts/gpu-check.js benchmarks/kernels.mjs \
         dist/compile.js dist/reference.js dist/native.js dist/testing/gmm.js node_modules/node-addon-api/napi.h \
         test/fixtures/models/gmm_D16_discrete.pt test/fixtures/models/cfg_model.pt test/fixtures/models/slow_model.pt \
         test/fixtures/golden/scire_discrete.json test/fixtures/dpmsolver_extra.json "$NODE_TARBALL"; do
  [[ -e "$f" ]] || die "missing input: $f (carry it with the working tree; see the header of this script)"
done
command -v cmake >/dev/null || die "cmake not found"
command -v "$PYTHON" >/dev/null || die "python '$PYTHON' not found (set PYTHON=)"
GEN=(); if command -v ninja >/dev/null; then GEN=(-G Ninja); fi
log "repo $ROOT; work $WORK; jobs $JOBS; WITH_CUDA=$WITH_CUDA EXPECT_GPU=$EXPECT_GPU device=$DEVICE; $(cmake --version | head -1)"
if command -v nvidia-smi >/dev/null; then
  timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1 | sed 's/^/[gpu-check]   /' || true
fi

# ------------------------------------------------------------------ node
NODE_PREFIX="$WORK/node"
rm -rf "$NODE_PREFIX"; mkdir -p "$NODE_PREFIX"
tar -xJf "$NODE_TARBALL" -C "$NODE_PREFIX" --strip-components=1
NODE="$NODE_PREFIX/bin/node"
"$NODE" --version >/dev/null 2>&1 || die "the carried node does not run: $("$NODE" --version 2>&1 | head -2)"
[[ -f "$NODE_PREFIX/include/node/node_api.h" ]] || die "node headers missing in $NODE_PREFIX/include/node"
log "node $("$NODE" --version)"

# ------------------------------------------------------------------ torch and CUDA
TORCH_INFO=$("$PYTHON" - <<'PY' 2>&1
import os, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
print("prefix", torch.utils.cmake_prefix_path)
print("torchlib", os.path.join(os.path.dirname(torch.__file__), "lib"))
PY
) || die "python cannot import torch: $TORCH_INFO"
echo "$TORCH_INFO" | sed 's/^/[gpu-check]   /'
TORCH_LIB=$(echo "$TORCH_INFO" | awk '$1=="torchlib"{print $2}')
TORCH_DIR=${TORCH_DIR:-$(echo "$TORCH_INFO" | awk '$1=="prefix"{print $2}')/Torch}
[[ -f "$TORCH_DIR/TorchConfig.cmake" ]] || die "no TorchConfig.cmake in '$TORCH_DIR' (set TORCH_DIR=)"
CUDA_ARGS=()
if [[ "$WITH_CUDA" != "OFF" ]]; then
  NVCC=${NVCC:-${CUDACXX:-$(command -v nvcc || true)}}
  for c in /usr/local/cuda/bin/nvcc "$TORCH_LIB"/../../nvidia/cu*/bin/nvcc "$TORCH_LIB"/../../nvidia/cuda_nvcc/bin/nvcc; do
    [[ -z "$NVCC" && -x "$c" ]] && NVCC=$c
  done
  [[ -n "$NVCC" && -x "$NVCC" ]] || die "nvcc not found (set NVCC=)"
  CUDA_ROOT=$(cd "$(dirname "$(readlink -f "$NVCC")")/.." && pwd -P)
  export CUDACXX="$NVCC" CUDA_HOME="$CUDA_ROOT" PATH="$CUDA_ROOT/bin:$PATH"
  TORCH_ARCH_LIST=$(echo "$ARCHS" | tr ';' '\n' | sed -E 's/^([0-9]+)([0-9])[a-z]?(-real|-virtual)?$/\1.\2/' | sort -u | paste -sd';')
  export TORCH_CUDA_ARCH_LIST="$TORCH_ARCH_LIST"
  CUDA_ARGS=(-DCMAKE_CUDA_COMPILER="$NVCC" -DCUDAToolkit_ROOT="$CUDA_ROOT" -DCUDA_TOOLKIT_ROOT_DIR="$CUDA_ROOT"
             -DTORCH_CUDA_ARCH_LIST="$TORCH_ARCH_LIST" -DSCIRE_CUDA_ARCHITECTURES="$ARCHS")
  log "nvcc $("$NVCC" --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p') at $NVCC; TORCH_CUDA_ARCH_LIST=$TORCH_ARCH_LIST"
fi

# ------------------------------------------------------------------ configure and build
BUILD="$WORK/build"
rm -rf "$BUILD"
configure() {
  cmake -S "$ROOT" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DTorch_DIR="$TORCH_DIR" \
    -DSCIRE_WITH_CUDA="$WITH_CUDA" -DNODE_INCLUDE_DIR="$NODE_PREFIX/include/node" \
    -DNODE_ADDON_API_DIR="$ROOT/node_modules/node-addon-api" \
    -DPython_EXECUTABLE="$(command -v "$PYTHON")" -DPYTHON_EXECUTABLE="$(command -v "$PYTHON")" \
    ${CUDA_ARGS[@]+"${CUDA_ARGS[@]}"} ${CMAKE_POLICY_VERSION_MINIMUM:+-DCMAKE_POLICY_VERSION_MINIMUM=$CMAKE_POLICY_VERSION_MINIMUM}
}
log "configure"
if ! configure >"$LOGS/configure.log" 2>&1; then
  if grep -qiE "unsupported (GNU|clang) version" "$LOGS/configure.log"; then
    export CUDAFLAGS="${CUDAFLAGS:-} -allow-unsupported-compiler"; log "retrying with CUDAFLAGS=$CUDAFLAGS"
  elif grep -q "Compatibility with CMake < 3.5" "$LOGS/configure.log"; then
    export CMAKE_POLICY_VERSION_MINIMUM=3.5; log "retrying with CMAKE_POLICY_VERSION_MINIMUM=3.5"
  else
    tail -n 40 "$LOGS/configure.log" >&2; die "cmake configure failed ($LOGS/configure.log)"
  fi
  rm -rf "$BUILD"
  configure >"$LOGS/configure.log" 2>&1 || { tail -n 40 "$LOGS/configure.log" >&2; die "cmake configure failed"; }
fi
grep -E '^-- scire' "$LOGS/configure.log" | sed 's/^/[gpu-check]   /' || true
log "build (-j$JOBS)"
cmake --build "$BUILD" --parallel "$JOBS" >"$LOGS/build.log" 2>&1 || { grep -E 'error' "$LOGS/build.log" | head -30 >&2; tail -n 20 "$LOGS/build.log" >&2; die "build failed ($LOGS/build.log)"; }
ADDON=$(find "$BUILD" -name scire.node -type f | head -1)
[[ -n "$ADDON" ]] || die "scire.node was not produced"
log "built $ADDON"

# ------------------------------------------------------------------ load (with the usual fallbacks)
try_load() { "$NODE" -e 'console.log(JSON.stringify(require(process.argv[1]).buildInfo()))' "$ADDON" >"$LOGS/load.log" 2>&1; }
if ! try_load; then
  log "plain load failed: $(head -c 400 "$LOGS/load.log")"
  NVLIBS=$(ls -d "$TORCH_LIB"/../../nvidia/*/lib 2>/dev/null | tr '\n' ':' || true)
  export LD_LIBRARY_PATH="$TORCH_LIB:${NVLIBS}${LD_LIBRARY_PATH:-}"
  try_load || { cat "$LOGS/load.log" >&2; die "node cannot load $ADDON"; }
  log "loaded with LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
fi
log "buildInfo: $(cat "$LOGS/load.log")"

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
