// CUDA masked linear combination (see masked_lincomb.h):
//   dst[i] = (1 - m[i]) * sum_k coef[k] * src_k[i] + m[i] * (a * x0[i] + s * z[i]).
//
// One grid-stride pass, as lincomb_cuda.cu: when every pointer is 16-byte aligned the body
// moves float4 packs (the last n % 4 elements one by one), otherwise element by element.
// dst may alias a source: each thread reads all inputs of its elements before writing them.
// No torch header: raw device pointers and a cudaStream_t.
#include "masked_lincomb.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace scire {
namespace kernels {
namespace {

constexpr int kThreads = 256;

struct MaskedArgs {
  const float* src[kMaxTerms];
  float coef[kMaxTerms];
  const float* mask;
  const float* x0;
  const float* noise;
  float a, s;
  float* dst;
  std::int64_t n;
};

template <int N>
__device__ __forceinline__ float MaskedOne(const MaskedArgs& p, std::int64_t i) {
  float v = p.coef[0] * p.src[0][i];
#pragma unroll
  for (int k = 1; k < N; ++k) v += p.coef[k] * p.src[k][i];
  const float m = p.mask[i];
  return (1.f - m) * v + m * (p.a * p.x0[i] + p.s * p.noise[i]);
}

template <int N, bool kVectorised>
__global__ void __launch_bounds__(kThreads) MaskedLincombKernel(MaskedArgs p) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  const std::int64_t tid = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  std::int64_t scalarStart = 0;
  if (kVectorised) {
    const std::int64_t packs = p.n / 4;
    for (std::int64_t q = tid; q < packs; q += stride) {
      float4 in[N];
#pragma unroll
      for (int k = 0; k < N; ++k) in[k] = reinterpret_cast<const float4*>(p.src[k])[q];
      const float4 m = reinterpret_cast<const float4*>(p.mask)[q];
      const float4 x0 = reinterpret_cast<const float4*>(p.x0)[q];
      const float4 z = reinterpret_cast<const float4*>(p.noise)[q];
      float4 v = make_float4(p.coef[0] * in[0].x, p.coef[0] * in[0].y, p.coef[0] * in[0].z, p.coef[0] * in[0].w);
#pragma unroll
      for (int k = 1; k < N; ++k) {
        v.x += p.coef[k] * in[k].x;
        v.y += p.coef[k] * in[k].y;
        v.z += p.coef[k] * in[k].z;
        v.w += p.coef[k] * in[k].w;
      }
      float4 out;
      out.x = (1.f - m.x) * v.x + m.x * (p.a * x0.x + p.s * z.x);
      out.y = (1.f - m.y) * v.y + m.y * (p.a * x0.y + p.s * z.y);
      out.z = (1.f - m.z) * v.z + m.z * (p.a * x0.z + p.s * z.z);
      out.w = (1.f - m.w) * v.w + m.w * (p.a * x0.w + p.s * z.w);
      reinterpret_cast<float4*>(p.dst)[q] = out;
    }
    scalarStart = packs * 4;
  }
  for (std::int64_t i = scalarStart + tid; i < p.n; i += stride) p.dst[i] = MaskedOne<N>(p, i);
}

bool Aligned16(const void* ptr) { return reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0; }

int GridFor(std::int64_t work, int device) {
  int sms = 0;
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || sms <= 0) sms = 80;
  const std::int64_t maxBlocks = static_cast<std::int64_t>(sms) * (2048 / kThreads);
  const std::int64_t wanted = (work + kThreads - 1) / kThreads;
  return static_cast<int>(std::max<std::int64_t>(1, std::min(maxBlocks, wanted)));
}

template <int N>
void Launch(const MaskedLincombJob& job, cudaStream_t stream, int device) {
  MaskedArgs p{};
  for (int k = 0; k < N; ++k) {
    p.src[k] = job.src[k];
    p.coef[k] = job.coef[k];
  }
  p.mask = job.mask;
  p.x0 = job.x0;
  p.noise = job.noise;
  p.a = job.a;
  p.s = job.s;
  p.dst = job.dst;
  p.n = job.n;
  bool vec = Aligned16(job.dst) && Aligned16(job.mask) && Aligned16(job.x0) && Aligned16(job.noise);
  for (int k = 0; k < N; ++k) vec = vec && Aligned16(job.src[k]);
  if (vec) {
    const std::int64_t work = std::max<std::int64_t>(job.n / 4, job.n % 4);
    MaskedLincombKernel<N, true><<<GridFor(work, device), kThreads, 0, stream>>>(p);
  } else {
    MaskedLincombKernel<N, false><<<GridFor(job.n, device), kThreads, 0, stream>>>(p);
  }
}

int Fail(const char* msg, char* err, std::size_t errLen) {
  if (err != nullptr && errLen > 0) std::snprintf(err, errLen, "%s", msg);
  return -1;
}

}  // namespace

int MaskedLincombCuda(const MaskedLincombJob& job, void* streamPtr, char* err, std::size_t errLen) {
  if (const char* bad = ValidateMaskedLincombJob(job)) return Fail(bad, err, errLen);
  if (job.n == 0) return 0;
  int device = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e == cudaSuccess) {
    cudaStream_t stream = static_cast<cudaStream_t>(streamPtr);
    switch (job.terms) {
      case 1: Launch<1>(job, stream, device); break;
      case 2: Launch<2>(job, stream, device); break;
      case 3: Launch<3>(job, stream, device); break;
      default: Launch<4>(job, stream, device); break;
    }
    e = cudaGetLastError();
  }
  if (e != cudaSuccess) {
    if (err != nullptr && errLen > 0) {
      std::snprintf(err, errLen, "CUDA error in the masked lincomb kernel: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
    }
    return static_cast<int>(e);
  }
  return 0;
}

}  // namespace kernels
}  // namespace scire
