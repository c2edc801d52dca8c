// deviceMemory(device): free and total memory of a CUDA device, for the request-size check
// of lib/limits.ts (which uses os.freemem() for the CPU).
//
//   deviceMemory('cuda:0') -> { device: 'cuda:0', free, total, cached }   (bytes)
//
// free = what cudaMemGetInfo reports free on the device plus what LibTorch's caching allocator
// holds reserved but unallocated (`cached`): memory a new request can use without the driver.
// Throws a RangeError for a device name that is not 'cuda' / 'cuda:N', an Error with code
// ERR_SCIRE_NO_CUDA when this addon's LibTorch has no CUDA or the device does not exist.
#include <napi.h>

#include <string>

#include "device_dtype.h"
#include "device_memory.h"
#include "errors.h"

#ifdef SCIRE_TORCH_HAS_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#endif

namespace scire {
namespace {
constexpr const char* kWhere = "deviceMemory";
}  // namespace

Napi::Value DeviceMemoryJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return GuardJs(env, kWhere, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsString()) throw TypeErrorFor(kWhere, "device", "a string: 'cuda' or 'cuda:N'");
    const std::string name = info[0].As<Napi::String>();
    const torch::Device device = ParseDevice(kWhere, name);
    if (!device.is_cuda()) {
      throw RangeErrorFor(kWhere, "device", "must be 'cuda' or 'cuda:N' (use os.freemem() for 'cpu'), got '" + name + "'");
    }
    CheckDeviceUsable(kWhere, device, name);
#ifdef SCIRE_TORCH_HAS_CUDA
    const c10::DeviceIndex index = device.has_index() ? device.index() : 0;
    c10::cuda::CUDAGuard guard(index);
    size_t freeBytes = 0, totalBytes = 0;
    const cudaError_t status = cudaMemGetInfo(&freeBytes, &totalBytes);
    if (status != cudaSuccess) {
      (void)cudaGetLastError();
      throw ScireError(ErrorKind::kError,
                       std::string(kWhere) + ": cudaMemGetInfo failed on " + name + ": " + cudaGetErrorString(status),
                       "ERR_SCIRE_CUDA");
    }
    // Reserved by the caching allocator but not handed out: usable by the next request.
    // Index 0 of the stat arrays is StatType::AGGREGATE (all pools) in every LibTorch; the
    // enum itself moved namespaces in 2.x, so it is not named here.
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
    const int64_t reserved = stats.reserved_bytes[0].current;
    const int64_t allocated = stats.allocated_bytes[0].current;
    const double cached = reserved > allocated ? static_cast<double>(reserved - allocated) : 0.0;
    Napi::Object o = Napi::Object::New(env);
    o.Set("device", "cuda:" + std::to_string(index));
    o.Set("free", static_cast<double>(freeBytes) + cached);
    o.Set("total", static_cast<double>(totalBytes));
    o.Set("cached", cached);
    return o;
#else
    // CheckDeviceUsable already refused CUDA for this build; kept for the compiler.
    throw ScireError(ErrorKind::kError, std::string(kWhere) + ": this addon was built without CUDA",
                     "ERR_SCIRE_NO_CUDA");
#endif
  });
}

}  // namespace scire
