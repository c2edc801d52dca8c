// CPU fused linear combination (see lincomb.h): one read of each input, one write of the
// output, in parallel over chunks (at::parallel_for), arithmetic in float.
//
// Vectorisation. The inner loop works on blocks of kBlock elements: first every source
// block is folded into a local accumulator, then the accumulator is stored. Because all
// loads of a block happen before its stores, the loops vectorise at -O3 without runtime
// alias checks and without `__restrict__`, which would be wrong here: the plan allows
// dst to be one of the sources (an in-place update such as x = a*x + b*m).
// `-fopt-info-vec` on this file reports the accumulate and store loops as vectorised.
#include "lincomb.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <exception>

namespace scire {
namespace kernels {
namespace {

constexpr std::int64_t kBlock = 16;          // elements per register block (4 SSE / 2 AVX registers)
constexpr std::int64_t kGrain = 1 << 15;     // elements per parallel chunk (128 KiB of float)

template <typename T>
inline float ToFloat(T v) {
  return static_cast<float>(v);
}
template <typename T>
inline T FromFloat(float v) {
  return static_cast<T>(v);
}

// dst[i] = sum_k coef[k] * src_k[i] for i in [begin, end). src[0] is float; src[1..] are R.
template <int N, typename Out, typename R>
void LincombRange(const LincombJob& job, std::int64_t begin, std::int64_t end) {
  const float* s0 = static_cast<const float*>(job.src[0]);
  const R* s[kMaxTerms] = {};
  for (int k = 1; k < N; ++k) s[k] = static_cast<const R*>(job.src[k]);
  float c[kMaxTerms];
  for (int k = 0; k < N; ++k) c[k] = job.coef[k];
  Out* d = static_cast<Out*>(job.dst);

  float acc[kBlock];
  for (std::int64_t i = begin; i < end; i += kBlock) {
    const std::int64_t len = std::min(kBlock, end - i);
    if (len == kBlock) {
      for (std::int64_t j = 0; j < kBlock; ++j) acc[j] = c[0] * s0[i + j];
      if (N > 1) for (std::int64_t j = 0; j < kBlock; ++j) acc[j] += c[1] * ToFloat(s[1][i + j]);
      if (N > 2) for (std::int64_t j = 0; j < kBlock; ++j) acc[j] += c[2] * ToFloat(s[2][i + j]);
      if (N > 3) for (std::int64_t j = 0; j < kBlock; ++j) acc[j] += c[3] * ToFloat(s[3][i + j]);
      for (std::int64_t j = 0; j < kBlock; ++j) d[i + j] = FromFloat<Out>(acc[j]);
    } else {  // the tail of the chunk
      for (std::int64_t j = 0; j < len; ++j) {
        float v = c[0] * s0[i + j];
        for (int k = 1; k < N; ++k) v += c[k] * ToFloat(s[k][i + j]);
        d[i + j] = FromFloat<Out>(v);
      }
    }
  }
}

template <int N, typename Out, typename R>
void RunParallel(const LincombJob& job) {
  at::parallel_for(0, job.n, kGrain, [&](std::int64_t begin, std::int64_t end) {
    LincombRange<N, Out, R>(job, begin, end);
  });
}

template <typename Out, typename R>
void DispatchTerms(const LincombJob& job) {
  switch (job.terms) {
    case 1: return RunParallel<1, Out, R>(job);
    case 2: return RunParallel<2, Out, R>(job);
    case 3: return RunParallel<3, Out, R>(job);
    default: return RunParallel<4, Out, R>(job);
  }
}

}  // namespace

const char* LincombCpu(const LincombJob& job) {
  if (const char* bad = ValidateLincombJob(job)) return bad;
  if (job.n == 0) return nullptr;
  try {
    if (job.dstStorage == Storage::Float16) {
      DispatchTerms<c10::Half, float>(job);
    } else if (job.dstStorage == Storage::BFloat16) {
      DispatchTerms<c10::BFloat16, float>(job);
    } else if (job.terms == 1 || job.srcStorage == Storage::Float32) {
      DispatchTerms<float, float>(job);
    } else if (job.srcStorage == Storage::Float16) {
      DispatchTerms<float, c10::Half>(job);
    } else {
      DispatchTerms<float, c10::BFloat16>(job);
    }
  } catch (const std::exception&) {
    // at::parallel_for rethrows worker exceptions; the loops above throw none.
    return "the CPU lincomb kernel failed in a worker thread";
  }
  return nullptr;
}

}  // namespace kernels
}  // namespace scire
