#include "device_dtype.h"

#include <torch/cuda.h>
#include <torch/version.h>

#include <regex>

#include "errors.h"

namespace scire {

const char* const kAllowedDTypes = "'float32', 'float16' or 'bfloat16'";

torch::ScalarType ParseDType(const std::string& where, const std::string& name) {
  if (name == "float32") return torch::kFloat32;
  if (name == "float16") return torch::kFloat16;
  if (name == "bfloat16") return torch::kBFloat16;
  throw RangeErrorFor(where, "dtype", "must be " + std::string(kAllowedDTypes) + " (got '" + name + "')");
}

std::string DTypeName(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat32: return "float32";
    case torch::kFloat16: return "float16";
    case torch::kBFloat16: return "bfloat16";
    default: return c10::toString(dtype);
  }
}

torch::Device ParseDevice(const std::string& where, const std::string& name) {
  static const std::regex kPattern("^(cpu|cuda)(:([0-9]{1,3}))?$");
  std::smatch m;
  if (!std::regex_match(name, m, kPattern) || (m[1] == "cpu" && m[2].matched)) {
    throw RangeErrorFor(where, "device", "must be 'cpu', 'cuda' or 'cuda:N' (got '" + name + "')");
  }
  if (m[1] == "cpu") return torch::Device(torch::kCPU);
  const int index = m[3].matched ? std::stoi(m[3].str()) : 0;
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

std::string DeviceName(const torch::Device& device) {
  if (device.is_cpu()) return "cpu";
  return device.str();  // "cuda:0"
}

void CheckDeviceUsable(const std::string& where, const torch::Device& device, const std::string& requested) {
  if (!device.is_cuda()) return;
#ifndef SCIRE_TORCH_HAS_CUDA
  throw ScireError(ErrorKind::kError,
                   where + ": device '" + requested + "' is not available: this addon is built against LibTorch " +
                       TORCH_VERSION + " without CUDA support (a CPU-only LibTorch). Use device 'cpu', or rebuild with a "
                       "CUDA LibTorch (see README.md, 'Using another LibTorch').",
                   "ERR_SCIRE_NO_CUDA");
#else
  const auto count = torch::cuda::device_count();
  if (count == 0) {
    throw ScireError(ErrorKind::kError,
                     where + ": device '" + requested +
                         "' is not available: LibTorch sees no CUDA device on this machine "
                         "(check the NVIDIA driver and CUDA_VISIBLE_DEVICES). Use device 'cpu'.",
                     "ERR_SCIRE_NO_CUDA");
  }
  if (device.index() >= static_cast<int64_t>(count)) {
    throw RangeErrorFor(where, "device", "'" + requested + "' does not exist: this machine has " +
                                             std::to_string(count) + " CUDA device(s), cuda:0 to cuda:" +
                                             std::to_string(count - 1));
  }
#endif
}

}  // namespace scire
