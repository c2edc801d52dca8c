// buildInfo(): how this addon was built and what it can use (see NativeBuildInfo in
// lib/native-types.ts). cudaProbe(): the CUDA runtime's view and a test launch of a
// compiled kernel on GPU 0 (only meaningful when built with CUDA kernels).
#pragma once

#include <napi.h>

namespace scire {

Napi::Value BuildInfoJs(const Napi::CallbackInfo& info);
Napi::Value CudaProbeJs(const Napi::CallbackInfo& info);

}  // namespace scire
