// CPU masked linear combination (see masked_lincomb.h): one read of every input, one write of
// the output, in parallel over chunks (at::parallel_for), arithmetic in float.
//
// dst may be one of the sources (the state update R[x] = R[x] + ...). Each element is read
// from every buffer before it is written, so the loop is correct under that aliasing; it is
// written without __restrict__, and GCC vectorises it behind a run-time overlap check (the
// aliased case then takes the scalar version; corrections are one pass per solver step).
#include "masked_lincomb.h"

#include <ATen/Parallel.h>

#include <exception>

namespace scire {
namespace kernels {
namespace {

constexpr std::int64_t kGrain = 1 << 15;  // elements per parallel chunk (as lincomb_cpu.cc)

template <int N>
void MaskedRange(const MaskedLincombJob& job, std::int64_t begin, std::int64_t end) {
  const float* s0 = job.src[0];
  const float* s1 = job.src[N > 1 ? 1 : 0];
  const float* s2 = job.src[N > 2 ? 2 : 0];
  const float* s3 = job.src[N > 3 ? 3 : 0];
  const float c0 = job.coef[0], c1 = job.coef[1], c2 = job.coef[2], c3 = job.coef[3];
  const float* m = job.mask;
  const float* x0 = job.x0;
  const float* z = job.noise;
  const float a = job.a, s = job.s;
  float* d = job.dst;
  for (std::int64_t i = begin; i < end; ++i) {
    float v = c0 * s0[i];
    if (N > 1) v += c1 * s1[i];
    if (N > 2) v += c2 * s2[i];
    if (N > 3) v += c3 * s3[i];
    const float known = a * x0[i] + s * z[i];
    d[i] = (1.f - m[i]) * v + m[i] * known;
  }
}

template <int N>
void Run(const MaskedLincombJob& job) {
  at::parallel_for(0, job.n, kGrain, [&](std::int64_t begin, std::int64_t end) { MaskedRange<N>(job, begin, end); });
}

}  // namespace

const char* MaskedLincombCpu(const MaskedLincombJob& job) {
  if (const char* bad = ValidateMaskedLincombJob(job)) return bad;
  if (job.n == 0) return nullptr;
  try {
    switch (job.terms) {
      case 1: Run<1>(job); break;
      case 2: Run<2>(job); break;
      case 3: Run<3>(job); break;
      default: Run<4>(job); break;
    }
  } catch (const std::exception&) {
    return "the CPU masked lincomb kernel failed in a worker thread";
  }
  return nullptr;
}

}  // namespace kernels
}  // namespace scire
