// Parsing and naming of the `device` and `dtype` options ('cpu' | 'cuda' | 'cuda:N',
// 'float32' | 'float16' | 'bfloat16'), shared by the model and the executor.
#pragma once

#include <torch/types.h>

#include <string>

namespace scire {

// The allowed dtype names, for messages: "'float32', 'float16' or 'bfloat16'".
extern const char* const kAllowedDTypes;

// Throws ScireError (RangeError) naming `where` and the field when the value is unknown.
torch::ScalarType ParseDType(const std::string& where, const std::string& name);
std::string DTypeName(torch::ScalarType dtype);

// Parses 'cpu', 'cuda', 'cuda:N' (RangeError otherwise). Does not check availability.
torch::Device ParseDevice(const std::string& where, const std::string& name);
std::string DeviceName(const torch::Device& device);

// Throws ScireError when `device` cannot be used by this addon on this machine:
// `requested` is the name the caller gave (for messages).
// 'cuda' without a CUDA LibTorch or without a visible GPU, or 'cuda:N' past the last GPU.
void CheckDeviceUsable(const std::string& where, const torch::Device& device, const std::string& requested);

}  // namespace scire
