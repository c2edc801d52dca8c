// CPU fused linear combination (see lincomb.h): one read of each input, one write of the
// output, in parallel over chunks (at::parallel_for), arithmetic in float.
//
// Vectorisation. The all-float32 layout (every lincomb op) is a plain elementwise loop over
// __restrict__ sources (see RunFloat for how an in-place update keeps that valid), built
// twice: for the default target (16-byte SSE vectors) and for AVX2, picked at run time.
// Out of place with traffic above kStreamBytes, the AVX2 build instead runs an intrinsics
// loop with non-temporal stores (FloatStreamAvx2; bit-identical results).
// The 16-bit layouts (the eval input cast and output conversion) work on blocks of kBlock
// elements: every source block is folded into a local accumulator, then stored; all loads
// of a block come before its stores, so those loops vectorise without alias checks too.
// `-fopt-info-vec` on this file reports the loops vectorised (32-byte in the AVX2 build).
#include "lincomb.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#endif

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
// Used for the 16-bit layouts (the eval input cast and output conversion).
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

// ---------------------------------------------------------------- the all-float32 layout
// Every solver update is all float32, so it gets a plain elementwise loop with __restrict__
// sources, which GCC vectorises without alias checks. To keep `restrict` honest when dst is
// one of the sources (an in-place update), that term is taken out of the source list and
// read through dst itself:  d[i] = cSelf * d[i] + sum_k c_k * s_k[i],  with no s_k == d.
// The loop also exists in an AVX2 build, chosen at run time (the default x86-64 target only
// has 16-byte SSE vectors). ISO C++ mode forms no FMA, so both builds round identically.
template <int N, bool kSelf>
__attribute__((always_inline)) inline void FloatRange(float* d, const float* __restrict__ s0,
                                                       const float* __restrict__ s1, const float* __restrict__ s2,
                                                       const float* __restrict__ s3, const float* c, float cSelf,
                                                       std::int64_t begin, std::int64_t end) {
  const float c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
  for (std::int64_t i = begin; i < end; ++i) {
    float v = kSelf ? cSelf * d[i] : c0 * s0[i];
    if (kSelf && N > 0) v += c0 * s0[i];
    if (N > 1) v += c1 * s1[i];
    if (N > 2) v += c2 * s2[i];
    if (N > 3) v += c3 * s3[i];
    d[i] = v;
  }
}

template <int N, bool kSelf>
void FloatRangeDefault(float* d, const float* const* s, const float* c, float cSelf, std::int64_t b, std::int64_t e) {
  FloatRange<N, kSelf>(d, s[0], s[1], s[2], s[3], c, cSelf, b, e);
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define SCIRE_LINCOMB_AVX2 1
template <int N, bool kSelf>
__attribute__((target("avx2"))) void FloatRangeAvx2(float* d, const float* const* s, const float* c, float cSelf,
                                                    std::int64_t b, std::int64_t e) {
  FloatRange<N, kSelf>(d, s[0], s[1], s[2], s[3], c, cSelf, b, e);
}
bool HasAvx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}

// Out of place and far above the last-level cache, an ordinary store first reads the
// destination line (read-for-ownership), so the pass would move K + 2 tensor sizes instead
// of K + 1. This variant writes d with non-temporal stores (_mm256_stream_ps) once d is
// 32-byte aligned (scalar head and tail through FloatRange), then fences the chunk's
// streamed stores (_mm_sfence) before the worker returns. The vector body multiplies and
// adds in the scalar loop's order (c0*s0 + c1*s1 + ..., one rounding each, no FMA), so the
// result is bit-identical to FloatRange's. Only for kSelf == false (d is no source).
template <int N>
__attribute__((target("avx2"))) void FloatStreamAvx2(float* d, const float* const* s, const float* c, float,
                                                     std::int64_t b, std::int64_t e) {
  const float* __restrict__ s0 = s[0];
  const float* __restrict__ s1 = s[1];
  const float* __restrict__ s2 = s[2];
  const float* __restrict__ s3 = s[3];
  std::int64_t i = b;
  const std::int64_t misaligned = static_cast<std::int64_t>((reinterpret_cast<std::uintptr_t>(d + i) & 31) / 4);
  const std::int64_t head = std::min(e, i + (misaligned == 0 ? 0 : 8 - misaligned));
  FloatRange<N, false>(d, s0, s1, s2, s3, c, 0.f, i, head);
  i = head;
  const __m256 c0 = _mm256_set1_ps(c[0]), c1 = _mm256_set1_ps(c[1]);
  const __m256 c2 = _mm256_set1_ps(c[2]), c3 = _mm256_set1_ps(c[3]);
  for (; i + 8 <= e; i += 8) {
    __m256 v = _mm256_mul_ps(c0, _mm256_loadu_ps(s0 + i));
    if (N > 1) v = _mm256_add_ps(v, _mm256_mul_ps(c1, _mm256_loadu_ps(s1 + i)));
    if (N > 2) v = _mm256_add_ps(v, _mm256_mul_ps(c2, _mm256_loadu_ps(s2 + i)));
    if (N > 3) v = _mm256_add_ps(v, _mm256_mul_ps(c3, _mm256_loadu_ps(s3 + i)));
    _mm256_stream_ps(d + i, v);
  }
  FloatRange<N, false>(d, s0, s1, s2, s3, c, 0.f, i, e);
  _mm_sfence();
}
#endif

using FloatRangeFn = void (*)(float*, const float* const*, const float*, float, std::int64_t, std::int64_t);

// Streaming pays off once the pass's traffic clearly exceeds the last-level cache; below
// that, d is likely still cached (and read next), so ordinary stores are kept.
constexpr std::int64_t kStreamBytes = 8 << 20;  // (K + 1) * n * 4 bytes moved by one pass

// The streaming variant for n sources out of place, or nullptr where there is none.
FloatRangeFn StreamFloatRangeFor(int n, const float* d, std::int64_t elements) {
#ifdef SCIRE_LINCOMB_AVX2
  if (!HasAvx2() || (reinterpret_cast<std::uintptr_t>(d) & 3) != 0) return nullptr;
  if (static_cast<std::int64_t>(n + 1) * elements * 4 < kStreamBytes) return nullptr;
  switch (n) {
    case 1: return &FloatStreamAvx2<1>;
    case 2: return &FloatStreamAvx2<2>;
    case 3: return &FloatStreamAvx2<3>;
    case 4: return &FloatStreamAvx2<4>;
  }
#else
  (void)n, (void)d, (void)elements;
#endif
  return nullptr;
}

template <int N, bool kSelf>
FloatRangeFn PickFloatRange() {
#ifdef SCIRE_LINCOMB_AVX2
  if (HasAvx2()) return &FloatRangeAvx2<N, kSelf>;
#endif
  return &FloatRangeDefault<N, kSelf>;
}

FloatRangeFn FloatRangeFor(int n, bool self) {
  switch (n) {
    case 0: return self ? PickFloatRange<0, true>() : nullptr;
    case 1: return self ? PickFloatRange<1, true>() : PickFloatRange<1, false>();
    case 2: return self ? PickFloatRange<2, true>() : PickFloatRange<2, false>();
    case 3: return self ? PickFloatRange<3, true>() : PickFloatRange<3, false>();
    default: return self ? PickFloatRange<4, true>() : PickFloatRange<4, false>();
  }
}

void RunFloat(const LincombJob& job) {
  float* d = static_cast<float*>(job.dst);
  const float* s[kMaxTerms] = {nullptr, nullptr, nullptr, nullptr};
  float c[kMaxTerms] = {0.f, 0.f, 0.f, 0.f};
  float cSelf = 0.f;
  bool self = false;
  int n = 0;
  for (int k = 0; k < job.terms; ++k) {
    const float* src = static_cast<const float*>(job.src[k]);
    if (src == d) {  // in place: read through d (equal terms would add up, as in the formula)
      cSelf = self ? cSelf + job.coef[k] : job.coef[k];
      self = true;
    } else {
      s[n] = src;
      c[n++] = job.coef[k];
    }
  }
  const FloatRangeFn stream = self ? nullptr : StreamFloatRangeFor(n, d, job.n);
  const FloatRangeFn fn = stream ? stream : FloatRangeFor(n, self);
  at::parallel_for(0, job.n, kGrain, [&](std::int64_t begin, std::int64_t end) { fn(d, s, c, cSelf, begin, end); });
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
      RunFloat(job);
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
