// JS entry points to the fused kernels, for tests and benchmarks (synchronous):
//
//   lincomb(inputs: Float32Array[], coefs: number[],
//           { device?: 'cpu'|'cuda'|'cuda:N', offset?: number,
//             termDType?: 'float32'|'float16'|'bfloat16', outDType?: ... }) -> Float32Array
//     out = sum_k coefs[k] * inputs[k] with the fused kernel on `device`. Every buffer is placed
//     `offset` elements past an aligned allocation (offset 1 makes the pointers misaligned for
//     16-byte vector loads). termDType stores inputs[1..] in a 16-bit type (the output-conversion
//     layout); outDType writes a 16-bit output from one float32 input (the input-cast layout).
//
//   benchLincomb({ terms, bytes, device?, iters? }) -> { fusedMs, torchOpsMs, torchExprMs, copyMs, ... }
//     medians over `iters` runs on tensors of `bytes` bytes each (float32): the fused kernel,
//     the same arithmetic as in-place LibTorch ops (mul_out + add_), the same arithmetic as a
//     plain LibTorch expression (c0*x0 + c1*x1 + ..., with temporaries), and a device copy of
//     one tensor (the bandwidth yardstick).
#pragma once

#include <napi.h>

namespace scire {

void AddKernelBindings(Napi::Env env, Napi::Object exports);

}  // namespace scire
