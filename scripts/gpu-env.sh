# shellcheck shell=bash
# gpu-env.sh: the common part of the GPU scripts (scripts/gpu-check.sh, gpu-check-build.sh,
# gpu-check-sampler.sh, benchmarks/gpu.sh). Sourced, not run; it defines functions and runs nothing:
#
#   gpu_node    NODE: the carried Node (vendor/node-v20.20.2-linux-x64-min.tar.xz) unpacked once into
#               $GPU_SHARED/node, or $NODE when set (its headers: $NODE_INCLUDE or <prefix>/include/node)
#   gpu_torch   the machine's python torch (TORCH_PKG, TORCH_LIB, TORCH_VERSION, TORCH_CUDA, TORCH_GPU),
#               TORCH_DIR for CMake and, unless WITH_CUDA=OFF, nvcc (NVCC, CUDA_ROOT, CUDACXX, CUDA_HOME)
#   gpu_addon   ADDON: scire_testing.node (scire.node + the test and benchmark entries) configured and built in $GPU_SHARED/build (configure skipped when the
#               options did not change, the build is incremental, so several scripts in one session
#               build once), or $ADDON when set (no build); then loaded once, with LD_LIBRARY_PATH
#               pointing at the pip torch's libraries when a plain load fails. Exports NODE and ADDON.
#
# Environment (defaults in brackets): PYTHON [python3]  WITH_CUDA [ON]  ARCHS [90-real;90-virtual]
#   JOBS [nproc]  TORCH_DIR [the pip torch's share/cmake/Torch]  NVCC [nvcc on PATH, /usr/local/cuda,
#   the pip nvidia packages]  NODE, NODE_INCLUDE, NODE_TARBALL  ADDON [unset: build]
#   GPU_SHARED [<repo>/_gpu_work/shared]  GPU_BUILD [$GPU_SHARED/build]
# The sourcing script sets ROOT (the repository) and may set GPU_TAG (log prefix), GPU_LOGS (where
# configure.log, build.log and load.log go) and define log() (used for messages) and die() (called on
# failure; else exit 1).
# GPU_STEP_LOG names the log of the step running now (for a script that copies only that one back).

: "${ROOT:?gpu-env.sh: set ROOT before sourcing}"
PYTHON=${PYTHON:-python3}
WITH_CUDA=${WITH_CUDA:-ON}
ARCHS=${ARCHS:-"90-real;90-virtual"}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 8)}
NODE_TARBALL=${NODE_TARBALL:-$ROOT/vendor/node-v20.20.2-linux-x64-min.tar.xz}
GPU_SHARED=${GPU_SHARED:-$ROOT/_gpu_work/shared}
GPU_BUILD=${GPU_BUILD:-$GPU_SHARED/build}
GPU_TAG=${GPU_TAG:-gpu}
GPU_LOGS=${GPU_LOGS:-$GPU_SHARED/logs}
GPU_STEP_LOG=""
mkdir -p "$GPU_SHARED" "$GPU_LOGS"

gpu_log() { if declare -F log >/dev/null; then log "$@"; else printf '[%s] %s\n' "$GPU_TAG" "$*"; fi; }
gpu_fail() {
  if declare -F die >/dev/null; then die "$@"; fi
  printf '[%s] FAILED: %s\n' "$GPU_TAG" "$*" >&2
  exit 1
}

gpu_node() {
  if [[ -n "${NODE:-}" ]]; then
    NODE_INCLUDE=${NODE_INCLUDE:-$(dirname "$(dirname "$NODE")")/include/node}
  else
    [[ -f "$NODE_TARBALL" ]] || gpu_fail "no Node: set NODE= or carry $NODE_TARBALL"
    local prefix="$GPU_SHARED/node" sum
    sum=$(sha256sum "$NODE_TARBALL" | cut -d' ' -f1)
    if [[ "$(cat "$prefix/.tarball" 2>/dev/null)" != "$sum" ]]; then
      rm -rf "$prefix"; mkdir -p "$prefix"
      tar -xJf "$NODE_TARBALL" -C "$prefix" --strip-components=1
      echo "$sum" >"$prefix/.tarball"
    fi
    NODE="$prefix/bin/node"
    NODE_INCLUDE="$prefix/include/node"
  fi
  "$NODE" --version >/dev/null 2>&1 || gpu_fail "node does not run: $NODE: $("$NODE" --version 2>&1 | head -2)"
  [[ -f "$NODE_INCLUDE/node_api.h" ]] || gpu_fail "node headers missing in $NODE_INCLUDE (set NODE_INCLUDE=)"
  export NODE
  gpu_log "node $("$NODE" --version) at $NODE"
}

gpu_torch() {
  local info
  info=$("$PYTHON" -c 'import os, torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available(), os.path.dirname(torch.__file__))' 2>"$GPU_LOGS/torch.log") \
    || gpu_fail "python '$PYTHON' cannot import torch (set PYTHON=): $(tail -n 3 "$GPU_LOGS/torch.log")"
  read -r TORCH_VERSION TORCH_CUDA TORCH_GPU TORCH_PKG <<<"$info"
  TORCH_LIB="$TORCH_PKG/lib"
  gpu_log "torch $TORCH_VERSION (CUDA $TORCH_CUDA, GPU visible: $TORCH_GPU) at $TORCH_PKG"
  # The pip torch's LibTorch; a torch without share/cmake (Debian's python3-torch, for a dry run)
  # leaves the choice to CMakeLists.txt (the system LibTorch) unless TORCH_DIR is set.
  if [[ -z "${TORCH_DIR:-}" && -f "$TORCH_PKG/share/cmake/Torch/TorchConfig.cmake" ]]; then
    TORCH_DIR="$TORCH_PKG/share/cmake/Torch"
  fi
  [[ -z "${TORCH_DIR:-}" || -f "$TORCH_DIR/TorchConfig.cmake" ]] || gpu_fail "no TorchConfig.cmake in '$TORCH_DIR' (set TORCH_DIR=)"
  [[ "$WITH_CUDA" == "OFF" ]] && return 0
  NVCC=${NVCC:-${CUDACXX:-$(command -v nvcc || true)}}
  local c
  for c in /usr/local/cuda/bin/nvcc "$TORCH_PKG"/../nvidia/cu*/bin/nvcc "$TORCH_PKG"/../nvidia/cuda_nvcc/bin/nvcc; do
    [[ -z "$NVCC" && -x "$c" ]] && NVCC=$c
  done
  [[ -n "$NVCC" && -x "$NVCC" ]] || gpu_fail "nvcc not found (set NVCC=, or WITH_CUDA=OFF for a dry run)"
  CUDA_ROOT=$(cd "$(dirname "$(readlink -f "$NVCC")")/.." && pwd -P)
  export CUDACXX="$NVCC" CUDA_HOME="$CUDA_ROOT" PATH="$CUDA_ROOT/bin:$PATH"
  gpu_log "nvcc $("$NVCC" --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p') at $NVCC"
}

# cmake configure with the options of this session; "$@": extra -D arguments (retries).
gpu_configure() {
  local gen=(-G "Unix Makefiles") torch=() cuda=() arch_list
  command -v ninja >/dev/null && gen=(-G Ninja)
  [[ -n "${TORCH_DIR:-}" ]] && torch=(-DTorch_DIR="$TORCH_DIR")
  if [[ "$WITH_CUDA" != "OFF" ]]; then
    arch_list=$(echo "$ARCHS" | tr ';' '\n' | sed -E 's/^([0-9]+)([0-9])[a-z]?(-real|-virtual)?$/\1.\2/' | sort -u | paste -sd';')
    export TORCH_CUDA_ARCH_LIST="$arch_list"
    cuda=(-DCMAKE_CUDA_COMPILER="$NVCC" -DCUDAToolkit_ROOT="$CUDA_ROOT" -DCUDA_TOOLKIT_ROOT_DIR="$CUDA_ROOT"
          -DTORCH_CUDA_ARCH_LIST="$arch_list" -DSCIRE_CUDA_ARCHITECTURES="$ARCHS")
  fi
  cmake -S "$ROOT" -B "$GPU_BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release ${torch[@]+"${torch[@]}"} \
    -DSCIRE_WITH_CUDA="$WITH_CUDA" -DNODE_INCLUDE_DIR="$NODE_INCLUDE" \
    -DNODE_ADDON_API_DIR="$ROOT/node_modules/node-addon-api" \
    -DPython_EXECUTABLE="$(command -v "$PYTHON")" -DPYTHON_EXECUTABLE="$(command -v "$PYTHON")" \
    ${cuda[@]+"${cuda[@]}"} "$@" >"$GPU_LOGS/configure.log" 2>&1
}

gpu_build() {
  [[ -f "$ROOT/node_modules/node-addon-api/napi.h" ]] || gpu_fail "missing node_modules/node-addon-api (carry it)"
  # Scripts started side by side wait for each other's build instead of building in the same folder.
  if command -v flock >/dev/null; then
    exec 9>"$GPU_SHARED/build.lock"
    flock 9
  fi
  gpu_configure_and_build
  if command -v flock >/dev/null; then exec 9>&-; fi
}

gpu_configure_and_build() {
  # The options that need a fresh configure; the sources are left to the incremental build.
  local key stamp="$GPU_BUILD/.scire-gpu-options"
  key="$ROOT|$WITH_CUDA|$ARCHS|${TORCH_DIR:-}|${NVCC:-}|$NODE_INCLUDE|$PYTHON"
  GPU_STEP_LOG=configure.log
  if [[ -f "$GPU_BUILD/CMakeCache.txt" && "$(cat "$stamp" 2>/dev/null)" == "$key" ]]; then
    gpu_log "configure: reusing $GPU_BUILD (same options)"
    : >"$GPU_LOGS/configure.log"
  else
    gpu_log "configure ($GPU_BUILD; WITH_CUDA=$WITH_CUDA, archs $ARCHS, Torch_DIR ${TORCH_DIR:-<CMakeLists default>})"
    rm -rf "$GPU_BUILD"
    if ! gpu_configure; then
      # Known retries: a host compiler newer than nvcc accepts; an old cmake_minimum_required in a dependency.
      local retry=()
      if grep -qiE "unsupported (GNU|clang|.*) version" "$GPU_LOGS/configure.log"; then
        export CUDAFLAGS="${CUDAFLAGS:-} -allow-unsupported-compiler"; gpu_log "retrying with CUDAFLAGS=$CUDAFLAGS"
      elif grep -q "Compatibility with CMake < 3.5" "$GPU_LOGS/configure.log"; then
        retry=(-DCMAKE_POLICY_VERSION_MINIMUM=3.5); gpu_log "retrying with CMAKE_POLICY_VERSION_MINIMUM=3.5"
      else
        tail -n 40 "$GPU_LOGS/configure.log" >&2; gpu_fail "cmake configure failed ($GPU_LOGS/configure.log)"
      fi
      rm -rf "$GPU_BUILD"
      gpu_configure ${retry[@]+"${retry[@]}"} || { tail -n 40 "$GPU_LOGS/configure.log" >&2; gpu_fail "cmake configure failed"; }
    fi
    echo "$key" >"$stamp"
    grep -E '^-- scire' "$GPU_LOGS/configure.log" | sed "s/^/[$GPU_TAG]   /" || true
  fi
  GPU_STEP_LOG=build.log
  gpu_log "build (-j$JOBS)"
  cmake --build "$GPU_BUILD" --parallel "$JOBS" >"$GPU_LOGS/build.log" 2>&1 || {
    grep -E 'error|Error' "$GPU_LOGS/build.log" | head -30 >&2; tail -n 20 "$GPU_LOGS/build.log" >&2
    gpu_fail "build failed ($GPU_LOGS/build.log)"
  }
  # The testing addon: the shipped exports plus the benchmark and test entries (lincomb,
  # benchForward, torchOpsStepper, the graph cache's state) that gpu.js and gpu-check.js use.
  ADDON=$(find "$GPU_BUILD" -name scire_testing.node -type f | head -1)
  [[ -n "$ADDON" ]] || gpu_fail "scire_testing.node was not produced"
  gpu_log "built $ADDON"
}

gpu_try_load() { "$NODE" -e 'console.log(JSON.stringify(require(process.argv[1]).buildInfo()))' "$ADDON" >"$GPU_LOGS/load.log" 2>&1; }

gpu_addon() {
  if [[ -n "${ADDON:-}" ]]; then
    [[ -f "$ADDON" ]] || gpu_fail "ADDON=$ADDON does not exist"
    gpu_log "using the addon built before: $ADDON"
  else
    gpu_build
  fi
  GPU_STEP_LOG=load.log
  if ! gpu_try_load; then
    gpu_log "plain load failed: $(head -c 400 "$GPU_LOGS/load.log")"
    local nvlibs
    nvlibs=$(ls -d "${TORCH_PKG:-/nonexistent}"/../nvidia/*/lib 2>/dev/null | tr '\n' ':' || true)
    export LD_LIBRARY_PATH="${TORCH_LIB:+$TORCH_LIB:}${nvlibs}${LD_LIBRARY_PATH:-}"
    gpu_try_load || { cat "$GPU_LOGS/load.log" >&2; gpu_fail "node cannot load $ADDON"; }
    gpu_log "loaded with LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  fi
  GPU_STEP_LOG=""
  export ADDON
  gpu_log "buildInfo: $(cat "$GPU_LOGS/load.log")"
}
