// Entry points of the testing addon only (build/Release/scire_testing.node, target
// scire_testing of CMakeLists.txt; never in the shipped scire.node nor in the node-gyp build).
// They are listed in native/addon.cc's export table under SCIRE_TESTING_ADDON.
#pragma once

#include <napi.h>

#include "model.h"

namespace scire {

// kernel_bindings.cc: the fused kernels on host data, and their benchmark.
Napi::Value LincombJs(const Napi::CallbackInfo& info);
Napi::Value BenchLincombJs(const Napi::CallbackInfo& info);
Napi::Value MaskedLincombJs(const Napi::CallbackInfo& info);       // the inpainting kernel on host data
Napi::Value BenchMaskedLincombJs(const Napi::CallbackInfo& info);  // fused vs two passes vs LibTorch ops

// gpu_bench.cc: Model methods for benchmarks/gpu.js, benchmarks/speed.ts and the tests.
Napi::Value BenchForwardJs(const Napi::CallbackInfo& info, Model& model);
Napi::Value TorchOpsStepperJs(const Napi::CallbackInfo& info, Model& model);
Napi::Value RunPlanOpsJs(const Napi::CallbackInfo& info, Model& model);

// graph_cache_bindings.cc: the CUDA-graph cache policy driven with fake entries, and the
// process-wide cache's state.
Napi::Value GraphCachePolicyProbeJs(const Napi::CallbackInfo& info);
Napi::Value BatchBucketJs(const Napi::CallbackInfo& info);
Napi::Value CudaGraphCacheStateJs(const Napi::CallbackInfo& info);

}  // namespace scire
