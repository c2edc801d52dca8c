// Tensor-level entry to the fused lincomb kernels: checks the tensors, picks the CPU or CUDA
// kernel by device (the current CUDA stream of LibTorch when it has CUDA), and falls back to
// LibTorch ops for a device without a fused kernel (e.g. a CUDA LibTorch with the CUDA
// kernels not compiled). Errors are thrown as std::runtime_error with the kernel's message.
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace scire {
namespace kernels {

/** One term coef * tensor of a combination. */
struct Term {
  float coef;
  at::Tensor tensor;
};

/**
 * dst = sum_k terms[k].coef * terms[k].tensor in one pass. All tensors contiguous, on one
 * device, with dst.numel() elements. Storage layouts as in lincomb.h: terms[0] float32;
 * either dst float32 and terms[1..] one common dtype (float32/float16/bfloat16), or dst
 * float16/bfloat16 and a single float32 term. dst may be one of the terms' tensors.
 */
void FusedLincomb(const at::Tensor& dst, const std::vector<Term>& terms);

/** Same arithmetic written as LibTorch ops (the fallback, and the benchmark's contender). */
void LincombWithTorchOps(const at::Tensor& dst, const std::vector<Term>& terms);

/** True when a fused kernel exists for tensors on `device` in this build. */
bool HasFusedKernel(const at::Device& device);

/** The CUDA stream the kernels use on `device` (LibTorch's current stream), as a cudaStream_t. */
void* CurrentStream(const at::Device& device);

}  // namespace kernels
}  // namespace scire
