#include "build_info.h"

#include <torch/cuda.h>
#include <torch/version.h>

#include "addon_data.h"
#include "errors.h"

#ifdef SCIRE_WITH_CUDA
#include "kernels/cuda_probe.h"
#endif

#define SCIRE_STRINGIFY_(x) #x
#define SCIRE_STRINGIFY(x) SCIRE_STRINGIFY_(x)

namespace scire {

Napi::Value BuildInfoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return GuardJs(env, "buildInfo", [&]() -> Napi::Value {
    Napi::Object o = Napi::Object::New(env);
#ifdef SCIRE_VERSION
    o.Set("version", SCIRE_STRINGIFY(SCIRE_VERSION));
#else
    o.Set("version", "unknown");
#endif
    o.Set("torchVersion", TORCH_VERSION);
#ifdef SCIRE_VARIANT
    o.Set("variant", SCIRE_VARIANT);  // set by CMakeLists.txt: "cpu" | "cudaNN"
#endif
#ifdef SCIRE_WITH_CUDA
    o.Set("cuda", true);
    o.Set("cudaArchitectures", SCIRE_CUDA_ARCHITECTURES);
#else
    o.Set("cuda", false);
    o.Set("cudaArchitectures", "");
#endif
#ifdef SCIRE_TORCH_HAS_CUDA
    o.Set("torchCuda", true);
#else
    o.Set("torchCuda", false);
#endif
    // Devices usable for models: what LibTorch sees (0 with a CPU-only LibTorch).
    o.Set("cudaDeviceCount", Napi::Number::New(env, static_cast<double>(torch::cuda::device_count())));
#ifdef SCIRE_BUILD_SYSTEM_CMAKE
    o.Set("buildSystem", "cmake-js");
#else
    o.Set("buildSystem", "node-gyp");
#endif
    // The testing addon (scire_testing.node) carries the test and benchmark entries too.
    o.Set("testing", GetAddonData(env).testingAddon);
    return o;
  });
}

Napi::Value CudaProbeJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
#ifdef SCIRE_WITH_CUDA
  ScireCudaProbe probe;
  scire_cuda_probe(&probe);
  o.Set("compiled", true);
  o.Set("runtimeVersion", probe.runtimeVersion);
  o.Set("driverVersion", probe.driverVersion);
  o.Set("deviceCount", probe.deviceCount);
  o.Set("devices", std::string(probe.devices));
  o.Set("kernelOk", probe.kernelOk != 0);
  o.Set("error", std::string(probe.error));
#else
  o.Set("compiled", false);
  o.Set("runtimeVersion", 0);
  o.Set("driverVersion", 0);
  o.Set("deviceCount", 0);
  o.Set("devices", "");
  o.Set("kernelOk", false);
  o.Set("error", "this addon was built without CUDA kernels");
#endif
  return o;
}

}  // namespace scire
