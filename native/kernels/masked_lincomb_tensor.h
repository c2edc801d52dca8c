// Tensor-level entry to the masked lincomb kernels (masked_lincomb.h): the inpainting
// correction fused into a lincomb. Checks the tensors, picks the CPU or CUDA kernel by device
// (LibTorch's current CUDA stream), and falls back to LibTorch ops where no fused kernel exists.
// Errors are thrown as std::runtime_error with the kernel's message.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "lincomb_tensor.h"

namespace scire {
namespace kernels {

/** The known region of an inpainting run: mask m in [0, 1], data x0, noise z (float32, like dst). */
struct KnownRegion {
  at::Tensor mask, x0, noise;
};

/**
 * dst = (1 - m) * sum_k terms[k].coef * terms[k].tensor + m * (a * x0 + s * z), one pass.
 * Every tensor float32, contiguous, on dst's device, with dst.numel() elements; dst may be one
 * of the terms' tensors.
 */
void FusedMaskedLincomb(const at::Tensor& dst, const std::vector<Term>& terms, const KnownRegion& known, float a,
                        float s);

/** Same arithmetic written as LibTorch ops (the fallback, and the benchmark's contender). */
void MaskedLincombWithTorchOps(const at::Tensor& dst, const std::vector<Term>& terms, const KnownRegion& known, float a,
                               float s);

}  // namespace kernels
}  // namespace scire
