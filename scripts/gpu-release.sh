#!/usr/bin/env bash
# GPU half of a release (issue 11), on a machine with an NVIDIA GPU, CUDA nvcc and a pip
# PyTorch with CUDA, but no npm and no internet (scripts/gpu-env.sh finds Node and torch).
#
#   scripts/gpu-release.sh build [OUT]   the cudaNN binary archive (NN = the pip torch's CUDA major)
#                                        and OUT/manifest.json: scripts/release.js --no-pack
#                                        (plain CMake; default OUT: _gpu_work/release)
#   scripts/gpu-release.sh check DIR     the consumer path with the finished release DIR (made back on
#                                        the CPU machine by `npm run release -- --out DIR` after
#                                        copying OUT's files into DIR): unpacks DIR/scire-solver-*.tgz
#                                        into a new app's node_modules as npm does, runs its install
#                                        step with SCIRE_BINARY_HOST=file://DIR and a PATH with only
#                                        node, python3 (torch discovery) and basic tools, then samples
#                                        4 images from the bundled model on 'cuda' and on 'cpu'
#
# Needs in the checkout: vendor/node-v20.20.2-linux-x64-min.tar.xz, dist/, node_modules/node-addon-api.
# Env: PYTHON, ARCHS, JOBS, NODE, TORCH_DIR, NVCC, GPU_SHARED: see scripts/gpu-env.sh.
set -Eeuo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
GPU_TAG=gpu-release
# shellcheck source=scripts/gpu-env.sh
source "$ROOT/scripts/gpu-env.sh"

cmd=${1:-}
case "$cmd" in
  build)
    OUT=${2:-$ROOT/_gpu_work/release}
    gpu_node
    gpu_torch
    [[ "$TORCH_CUDA" =~ ^[0-9]+ ]] || gpu_fail "the torch of $PYTHON has no CUDA ($TORCH_CUDA)"
    variant="cuda${TORCH_CUDA%%.*}"
    SCIRE_CMAKE_ARGS="-DCUDAToolkit_ROOT=$CUDA_ROOT -DPython_EXECUTABLE=$(command -v "$PYTHON") -DSCIRE_CUDA_ARCHITECTURES=$ARCHS" \
      LIBTORCH="$TORCH_PKG" SCIRE_BUILD_JOBS="$JOBS" "$NODE" scripts/release.js --out "$OUT" --variants "$variant" --no-pack
    gpu_log "copy $OUT/*.tar.gz and $OUT/manifest.json into the release folder on the CPU machine, then run npm run release -- --out <that folder> there"
    ;;
  check)
    DIR=$(cd "${2:?usage: gpu-release.sh check DIR}" && pwd)
    gpu_node
    gpu_torch
    APP=$(mktemp -d /tmp/scire-gpu-app.XXXXXX)
    PKG="$APP/node_modules/scire-solver"
    mkdir -p "$PKG" "$APP/bin"
    tar -xzf "$DIR"/scire-solver-*.tgz -C "$PKG" --strip-components=1
    ln -s "$NODE" "$APP/bin/node"
    ln -s "$(command -v "$PYTHON")" "$APP/bin/python3"
    for t in sh bash env cat ls mkdir rm cp mv uname sed grep tar gzip dirname readlink; do
      p=$(command -v "$t" || true); [[ -n "$p" ]] && ln -s "$p" "$APP/bin/$t"
    done
    t0=$(date +%s.%N)
    (cd "$PKG" && env -i PATH="$APP/bin" HOME="$HOME" SCIRE_BINARY_HOST="file://$DIR" SCIRE_CACHE_DIR="$APP/cache" \
      "$NODE" scripts/install.js)
    gpu_log "install step: $(echo "$(date +%s.%N) - $t0" | bc 2>/dev/null || echo '?') s"
    cd "$APP"
    env -i PATH="$APP/bin" HOME="$HOME" "$NODE" -e '
      const { bundledModels, loadModel, Sampler, nativeAddonInfo } = require("scire-solver");
      (async () => {
        const { path, card } = bundledModels.fmnist;
        const run = async (device) => {
          const model = await loadModel(path, { device });
          const r = await new Sampler({ model, schedule: card.schedule, steps: 12 }).sample({ shape: [4, ...card.shape], seed: 0 });
          return { device: model.info.device, r };
        };
        const gpu = await run("cuda"), cpu = await run("cpu");
        let maxDiff = 0;
        for (let i = 0; i < cpu.r.data.length; i++) maxDiff = Math.max(maxDiff, Math.abs(gpu.r.data[i] - cpu.r.data[i]));
        console.log(JSON.stringify({ device: gpu.device, shape: gpu.r.shape, nfe: gpu.r.nfe, finite: gpu.r.data.every(Number.isFinite),
          maxAbsDiffVsCpu: maxDiff, timings: gpu.r.timings, addon: nativeAddonInfo() }, null, 1));
      })().catch((e) => { console.error(e); process.exit(1); });'
    env -i PATH="$APP/bin" HOME="$HOME" "$NODE" "$PKG/dist/cli.js" info
    ;;
  *)
    echo "usage: scripts/gpu-release.sh build [OUT] | check DIR" >&2
    exit 2
    ;;
esac
