// CPU masked linear combination (see masked_lincomb.h): one read of every input, one write of
// the output, in parallel over chunks (at::parallel_for), arithmetic in float.
//
// dst may be one of the sources (the state update R[x] = R[x] + ...). As in lincomb_cpu.cc,
// that term is taken out of the source list and read through dst itself,
//   d[i] = (1 - m[i]) * (cSelf * d[i] + sum_k c_k s_k[i]) + m[i] * (a x0[i] + s z[i]),
// so every other pointer (sources, mask, x0, z: separate tensors) is __restrict__ and GCC
// vectorises the loop without alias checks (`-fopt-info-vec`: 16-byte vectors, 32-byte in the
// AVX2 build), in place too.
#include "masked_lincomb.h"

#include <ATen/Parallel.h>

#include <exception>

namespace scire {
namespace kernels {
namespace {

constexpr std::int64_t kGrain = 1 << 15;  // elements per parallel chunk (as lincomb_cpu.cc)

// restrict is honoured on parameters: the loop lives in a function whose inputs are all
// __restrict__ parameters (d is not: it may be read, at index i only, through kSelf).
template <int N, bool kSelf>
__attribute__((always_inline)) inline void MaskedLoop(float* d, const float* __restrict__ s0, const float* __restrict__ s1,
                                                      const float* __restrict__ s2, const float* __restrict__ s3,
                                                      const float* __restrict__ m, const float* __restrict__ x0,
                                                      const float* __restrict__ z, const float* c, float cSelf, float a,
                                                      float s, std::int64_t begin, std::int64_t end) {
  const float c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
  for (std::int64_t i = begin; i < end; ++i) {
    float v = kSelf ? cSelf * d[i] : c0 * s0[i];
    if (kSelf && N > 0) v += c0 * s0[i];
    if (N > 1) v += c1 * s1[i];
    if (N > 2) v += c2 * s2[i];
    if (N > 3) v += c3 * s3[i];
    const float known = a * x0[i] + s * z[i];
    d[i] = (1.f - m[i]) * v + m[i] * known;
  }
}

// The loop for the default target (SSE) and, as in lincomb_cpu.cc, an AVX2 build picked at
// run time. ISO C++ mode forms no FMA, so both round identically.
template <int N, bool kSelf>
void MaskedRange(float* d, const float* const* src, const float* c, float cSelf, const MaskedLincombJob& job,
                 std::int64_t begin, std::int64_t end) {
  MaskedLoop<N, kSelf>(d, src[0], src[1], src[2], src[3], job.mask, job.x0, job.noise, c, cSelf, job.a, job.s, begin, end);
}

using RangeFn = void (*)(float*, const float* const*, const float*, float, const MaskedLincombJob&, std::int64_t,
                         std::int64_t);

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
template <int N, bool kSelf>
__attribute__((target("avx2"))) void MaskedRangeAvx2(float* d, const float* const* src, const float* c, float cSelf,
                                                     const MaskedLincombJob& job, std::int64_t begin, std::int64_t end) {
  MaskedLoop<N, kSelf>(d, src[0], src[1], src[2], src[3], job.mask, job.x0, job.noise, c, cSelf, job.a, job.s, begin, end);
}
bool HasAvx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}
template <int N, bool kSelf>
RangeFn Pick() {
  return HasAvx2() ? &MaskedRangeAvx2<N, kSelf> : &MaskedRange<N, kSelf>;
}
#else
template <int N, bool kSelf>
RangeFn Pick() {
  return &MaskedRange<N, kSelf>;
}
#endif

RangeFn RangeFor(int n, bool self) {
  switch (n) {
    case 0: return Pick<0, true>();
    case 1: return self ? Pick<1, true>() : Pick<1, false>();
    case 2: return self ? Pick<2, true>() : Pick<2, false>();
    case 3: return self ? Pick<3, true>() : Pick<3, false>();
    default: return self ? Pick<4, true>() : Pick<4, false>();
  }
}

}  // namespace

const char* MaskedLincombCpu(const MaskedLincombJob& job) {
  if (const char* bad = ValidateMaskedLincombJob(job)) return bad;
  if (job.n == 0) return nullptr;
  // Split the terms into the one read through dst (in place) and the others.
  float* d = job.dst;
  const float* src[kMaxTerms] = {d, d, d, d};  // unused slots are never read
  float c[kMaxTerms] = {0.f, 0.f, 0.f, 0.f};
  float cSelf = 0.f;
  bool self = false;
  int n = 0;
  for (int k = 0; k < job.terms; ++k) {
    if (job.src[k] == d) {  // equal terms add up, as in the formula
      cSelf = self ? cSelf + job.coef[k] : job.coef[k];
      self = true;
    } else {
      src[n] = job.src[k];
      c[n++] = job.coef[k];
    }
  }
  const RangeFn fn = RangeFor(n, self);
  try {
    at::parallel_for(0, job.n, kGrain, [&](std::int64_t begin, std::int64_t end) { fn(d, src, c, cSelf, job, begin, end); });
  } catch (const std::exception&) {
    return "the CPU masked lincomb kernel failed in a worker thread";
  }
  return nullptr;
}

}  // namespace kernels
}  // namespace scire
