// Fused linear combination: dst[i] = sum_k coef[k] * src_k[i], one pass over memory.
//
// This header is shared by the g++-compiled CPU kernel (lincomb_cpu.cc), the
// nvcc-compiled CUDA kernel (lincomb_cuda.cu) and the executor. It deliberately uses
// no torch or std::string types, so the CUDA library never needs LibTorch headers and
// nothing ABI-sensitive crosses the nvcc / g++ boundary.
//
// Storage types. Registers are float32; the network may run in float16 / bfloat16.
// The kernels therefore accept exactly three storage layouts (arithmetic is always float):
//   plain        dst float32,        every src float32          (the lincomb op)
//   input cast   dst float16/bf16,   one float32 src            (x_in = inScale * R[src])
//   output conv. dst float32,        src[0] float32, src[1..] all float16/bf16
//                                    (R[dst] = outX*inScale*R[src] + outM*raw[, CFG halves])
#pragma once

#include <cstddef>
#include <cstdint>

namespace scire {
namespace kernels {

/** Maximum number of terms of one fused pass (the kernels are specialised for 1..4). */
constexpr int kMaxTerms = 4;

/** Storage type of one buffer; values match nothing outside this header. */
enum class Storage : int { Float32 = 0, Float16 = 1, BFloat16 = 2 };

inline const char* StorageName(Storage s) {
  switch (s) {
    case Storage::Float32: return "float32";
    case Storage::Float16: return "float16";
    case Storage::BFloat16: return "bfloat16";
  }
  return "unknown";
}

inline std::size_t StorageBytes(Storage s) { return s == Storage::Float32 ? 4 : 2; }

/** One fused pass. Pointers are element-0 addresses of contiguous buffers of n elements. */
struct LincombJob {
  int terms = 0;                          // 1..kMaxTerms
  const void* src[kMaxTerms] = {};        // may alias dst (in-place update is allowed)
  float coef[kMaxTerms] = {};
  Storage srcStorage = Storage::Float32;  // storage of src[1..terms-1]; src[0] is float32
  void* dst = nullptr;
  Storage dstStorage = Storage::Float32;
  std::int64_t n = 0;
};

/**
 * Checks the job against the layouts listed above. Returns nullptr when valid, else a
 * static message naming the problem (the callers turn it into a JS error).
 */
inline const char* ValidateLincombJob(const LincombJob& job) {
  if (job.terms < 1 || job.terms > kMaxTerms) return "terms must be between 1 and 4";
  if (job.n < 0) return "element count must be non-negative";
  if (job.n > 0) {
    if (job.dst == nullptr) return "destination pointer is null";
    for (int k = 0; k < job.terms; ++k)
      if (job.src[k] == nullptr) return "a source pointer is null";
  }
  const bool castOut = job.dstStorage != Storage::Float32;
  const bool castIn = job.srcStorage != Storage::Float32 && job.terms > 1;
  if (castOut && castIn) return "a pass cannot both read and write float16/bfloat16 buffers";
  if (castOut && job.terms != 1) return "the input-cast pass takes exactly one term";
  return nullptr;
}

/** CPU kernel (lincomb_cpu.cc): parallel over chunks with at::parallel_for. Never throws. */
const char* LincombCpu(const LincombJob& job);

/**
 * CUDA kernel (lincomb_cuda.cu), launched on `stream` (a cudaStream_t; nullptr = legacy
 * default stream) without synchronising. Returns 0 on success, else the cudaError_t of
 * the launch (or -1 for an invalid job) and writes a message into err[0..errLen).
 */
int LincombCuda(const LincombJob& job, void* stream, char* err, std::size_t errLen);

/**
 * Benchmark helpers (lincomb_cuda.cu). CudaTimeEnqueue calls enqueue(ctx) once to warm up,
 * then `iters` times between two CUDA events recorded on `stream`, and reports the median
 * milliseconds. enqueue returns 0 on success (it must put its work on `stream`).
 * CudaCopyAsync: cudaMemcpyAsync device-to-device on `stream` (the copy-bandwidth yardstick).
 */
int CudaTimeEnqueue(int (*enqueue)(void*), void* ctx, int iters, void* stream, double* medianMs,
                    char* err, std::size_t errLen);
int CudaCopyAsync(void* dst, const void* src, std::size_t bytes, void* stream, char* err,
                  std::size_t errLen);

}  // namespace kernels
}  // namespace scire
