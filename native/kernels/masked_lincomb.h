// Masked linear combination: the inpainting correction fused into a lincomb (lib/inpaint.ts),
//
//   dst[i] = (1 - m[i]) * sum_k coef[k] * src_k[i] + m[i] * (a * x0[i] + s * z[i]),
//
// one pass over memory: each source, the mask, x0 and z are read once and dst is written once
// (K + 4 tensor sizes moved, against K + 1 for the plain lincomb plus 4 for a separate
// correction pass that would read dst again). All buffers float32 (solver registers and the
// run's inputs); dst may alias a source (in-place state update). Like lincomb.h, no torch or
// std::string types, so the CUDA library needs no LibTorch headers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lincomb.h"

namespace scire {
namespace kernels {

/** One masked pass. Pointers are element-0 addresses of contiguous float32 buffers of n elements. */
struct MaskedLincombJob {
  int terms = 0;                     // 1..kMaxTerms
  const float* src[kMaxTerms] = {};  // may alias dst
  float coef[kMaxTerms] = {};
  const float* mask = nullptr;       // m in [0, 1] (checked where it enters: JS and the executor)
  const float* x0 = nullptr;         // the known data
  const float* noise = nullptr;      // z, the run's starting noise
  float a = 0.f, s = 0.f;            // known value a * x0 + s * z
  float* dst = nullptr;
  std::int64_t n = 0;
};

/** nullptr when the job is valid, else a static message naming the problem. */
inline const char* ValidateMaskedLincombJob(const MaskedLincombJob& job) {
  if (job.terms < 1 || job.terms > kMaxTerms) return "terms must be between 1 and 4";
  if (job.n < 0) return "element count must be non-negative";
  if (job.n > 0) {
    if (job.dst == nullptr) return "destination pointer is null";
    if (job.mask == nullptr || job.x0 == nullptr || job.noise == nullptr) return "a mask, x0 or noise pointer is null";
    for (int k = 0; k < job.terms; ++k)
      if (job.src[k] == nullptr) return "a source pointer is null";
  }
  return nullptr;
}

/** CPU kernel (masked_lincomb_cpu.cc), parallel over chunks. Never throws. */
const char* MaskedLincombCpu(const MaskedLincombJob& job);

/**
 * CUDA kernel (masked_lincomb_cuda.cu), launched on `stream` (a cudaStream_t) without
 * synchronising. Returns 0 on success, else the cudaError_t of the launch (or -1 for an
 * invalid job) and writes a message into err[0..errLen).
 */
int MaskedLincombCuda(const MaskedLincombJob& job, void* stream, char* err, std::size_t errLen);

}  // namespace kernels
}  // namespace scire
