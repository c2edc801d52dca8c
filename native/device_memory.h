// deviceMemory(device) -> { device, free, total, cached }: free memory of a CUDA device for the
// request-size check of lib/limits.ts (see device_memory.cc).
#pragma once

#include <napi.h>

namespace scire {

Napi::Value DeviceMemoryJs(const Napi::CallbackInfo& info);

}  // namespace scire
