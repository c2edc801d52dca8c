// CUDA fused linear combination (see lincomb.h): dst[i] = sum_k coef[k] * src_k[i].
//
// One grid-stride pass: each input is read once and the output written once, arithmetic in
// float whatever the storage type (as apex's multi_tensor_axpby and PyTorch's opmath_t).
// Two code paths, decided on the host:
//   vectorised  every pointer aligned to its 4-element pack (16 bytes for float32, 8 for
//               16-bit types): the body moves 4 elements per load/store, and the last
//               n % 4 elements are done one by one by the same kernel;
//   scalar      otherwise (e.g. a sub-view starting at an odd offset).
// This file includes no torch header: it takes raw device pointers and a cudaStream_t,
// so it builds the same against a CPU-only or a CUDA LibTorch.
#include "lincomb.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <vector>

namespace scire {
namespace kernels {
namespace {

constexpr int kPack = 4;        // elements per vector load / store
constexpr int kThreads = 256;   // threads per block

__device__ __forceinline__ float ToFloat(float v) { return v; }
__device__ __forceinline__ float ToFloat(__half v) { return __half2float(v); }
__device__ __forceinline__ float ToFloat(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T FromFloat(float v);
template <> __device__ __forceinline__ float FromFloat<float>(float v) { return v; }
template <> __device__ __forceinline__ __half FromFloat<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

/** kPack elements moved by one aligned load or store (16 bytes for float). */
template <typename T>
struct alignas(sizeof(T) * kPack) Pack {
  T v[kPack];
};

/** Kernel arguments, passed by value (coefficients included). */
struct Args {
  const void* src[kMaxTerms];
  float coef[kMaxTerms];
  void* dst;
  std::int64_t n;
};

// Element i of the combination; src[0] is float, src[1..N-1] are R.
template <int N, typename R>
__device__ __forceinline__ float CombineOne(const Args& a, std::int64_t i) {
  float acc = a.coef[0] * static_cast<const float*>(a.src[0])[i];
#pragma unroll
  for (int k = 1; k < N; ++k) acc += a.coef[k] * ToFloat(static_cast<const R*>(a.src[k])[i]);
  return acc;
}

template <int N, typename Out, typename R, bool kVectorised>
__global__ void __launch_bounds__(kThreads) LincombKernel(Args a) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  std::int64_t tid = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  std::int64_t scalarStart = 0;
  if (kVectorised) {
    const std::int64_t packs = a.n / kPack;
    for (std::int64_t p = tid; p < packs; p += stride) {
      // load every input pack first (N independent 16-byte loads in flight), then combine
      const Pack<float> in0 = static_cast<const Pack<float>*>(a.src[0])[p];
      Pack<R> in[N > 1 ? N - 1 : 1];
#pragma unroll
      for (int k = 1; k < N; ++k) in[k - 1] = static_cast<const Pack<R>*>(a.src[k])[p];
      Pack<Out> out;
#pragma unroll
      for (int j = 0; j < kPack; ++j) {
        float acc = a.coef[0] * in0.v[j];
#pragma unroll
        for (int k = 1; k < N; ++k) acc += a.coef[k] * ToFloat(in[k - 1].v[j]);
        out.v[j] = FromFloat<Out>(acc);
      }
      static_cast<Pack<Out>*>(a.dst)[p] = out;
    }
    scalarStart = packs * kPack;
  }
  for (std::int64_t i = scalarStart + tid; i < a.n; i += stride) {
    static_cast<Out*>(a.dst)[i] = FromFloat<Out>(CombineOne<N, R>(a, i));
  }
}

int Fail(cudaError_t e, const char* what, char* err, std::size_t errLen) {
  if (err != nullptr && errLen > 0) {
    std::snprintf(err, errLen, "CUDA error in %s: %s (%s)", what, cudaGetErrorString(e),
                  cudaGetErrorName(e));
  }
  return e == cudaSuccess ? -1 : static_cast<int>(e);
}

int FailMsg(const char* msg, char* err, std::size_t errLen) {
  if (err != nullptr && errLen > 0) std::snprintf(err, errLen, "%s", msg);
  return -1;
}

bool Aligned(const void* p, std::size_t bytes) {
  return reinterpret_cast<std::uintptr_t>(p) % bytes == 0;
}

// Blocks for n elements: enough to fill every SM once (grid-stride covers the rest).
int GridFor(std::int64_t work, int device) {
  static int smCount[64] = {};  // benign race: every writer stores the same value
  int sms = (device >= 0 && device < 64) ? smCount[device] : 0;
  if (sms == 0) {
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || sms <= 0)
      sms = 80;
    if (device >= 0 && device < 64) smCount[device] = sms;
  }
  const std::int64_t maxBlocks = static_cast<std::int64_t>(sms) * (2048 / kThreads);
  const std::int64_t wanted = (work + kThreads - 1) / kThreads;
  return static_cast<int>(std::max<std::int64_t>(1, std::min(maxBlocks, wanted)));
}

template <int N, typename Out, typename R>
void Launch(const LincombJob& job, cudaStream_t stream, int device) {
  Args a{};
  for (int k = 0; k < N; ++k) {
    a.src[k] = job.src[k];
    a.coef[k] = job.coef[k];
  }
  a.dst = job.dst;
  a.n = job.n;
  bool vec = Aligned(job.dst, sizeof(Pack<Out>)) && Aligned(job.src[0], sizeof(Pack<float>));
  for (int k = 1; k < N; ++k) vec = vec && Aligned(job.src[k], sizeof(Pack<R>));
  if (vec) {
    const std::int64_t work = std::max<std::int64_t>(job.n / kPack, job.n % kPack);
    LincombKernel<N, Out, R, true><<<GridFor(work, device), kThreads, 0, stream>>>(a);
  } else {
    LincombKernel<N, Out, R, false><<<GridFor(job.n, device), kThreads, 0, stream>>>(a);
  }
}

template <typename Out, typename R>
void DispatchTerms(const LincombJob& job, cudaStream_t stream, int device) {
  switch (job.terms) {
    case 1: return Launch<1, Out, R>(job, stream, device);
    case 2: return Launch<2, Out, R>(job, stream, device);
    case 3: return Launch<3, Out, R>(job, stream, device);
    default: return Launch<4, Out, R>(job, stream, device);
  }
}

}  // namespace

int LincombCuda(const LincombJob& job, void* streamPtr, char* err, std::size_t errLen) {
  if (const char* bad = ValidateLincombJob(job)) return FailMsg(bad, err, errLen);
  if (job.n == 0) return 0;
  int device = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e != cudaSuccess) return Fail(e, "cudaGetDevice", err, errLen);
  cudaStream_t stream = static_cast<cudaStream_t>(streamPtr);
  if (job.dstStorage == Storage::Float16) {
    DispatchTerms<__half, float>(job, stream, device);
  } else if (job.dstStorage == Storage::BFloat16) {
    DispatchTerms<__nv_bfloat16, float>(job, stream, device);
  } else if (job.terms == 1 || job.srcStorage == Storage::Float32) {
    DispatchTerms<float, float>(job, stream, device);
  } else if (job.srcStorage == Storage::Float16) {
    DispatchTerms<float, __half>(job, stream, device);
  } else {
    DispatchTerms<float, __nv_bfloat16>(job, stream, device);
  }
  e = cudaGetLastError();
  if (e != cudaSuccess) return Fail(e, "the lincomb kernel launch", err, errLen);
  return 0;
}

int CudaTimeEnqueue(int (*enqueue)(void*), void* ctx, int iters, void* streamPtr, double* medianMs,
                    char* err, std::size_t errLen) {
  cudaStream_t stream = static_cast<cudaStream_t>(streamPtr);
  cudaEvent_t start = nullptr, stop = nullptr;
  std::vector<double> ms;
  int rc = 0;
  cudaError_t e = cudaEventCreate(&start);
  if (e == cudaSuccess) e = cudaEventCreate(&stop);
  if (e != cudaSuccess) {
    rc = Fail(e, "cudaEventCreate", err, errLen);
  } else if ((rc = enqueue(ctx)) != 0) {  // warm-up (module load, allocator)
    FailMsg("the timed operation failed during warm-up", err, errLen);
  } else if ((e = cudaStreamSynchronize(stream)) != cudaSuccess) {
    rc = Fail(e, "cudaStreamSynchronize (warm-up)", err, errLen);
  } else {
    for (int i = 0; i < iters && rc == 0; ++i) {
      float t = 0.f;
      if ((e = cudaEventRecord(start, stream)) != cudaSuccess) { rc = Fail(e, "cudaEventRecord", err, errLen); break; }
      if ((rc = enqueue(ctx)) != 0) { FailMsg("the timed operation failed", err, errLen); break; }
      if ((e = cudaEventRecord(stop, stream)) != cudaSuccess) { rc = Fail(e, "cudaEventRecord", err, errLen); break; }
      if ((e = cudaEventSynchronize(stop)) != cudaSuccess) { rc = Fail(e, "cudaEventSynchronize", err, errLen); break; }
      if ((e = cudaEventElapsedTime(&t, start, stop)) != cudaSuccess) { rc = Fail(e, "cudaEventElapsedTime", err, errLen); break; }
      ms.push_back(t);
    }
  }
  if (start) cudaEventDestroy(start);
  if (stop) cudaEventDestroy(stop);
  if (rc == 0) {
    if (ms.empty()) return FailMsg("iters must be positive", err, errLen);
    std::sort(ms.begin(), ms.end());
    *medianMs = ms[ms.size() / 2];
  }
  return rc;
}

int CudaCopyAsync(void* dst, const void* src, std::size_t bytes, void* streamPtr, char* err,
                  std::size_t errLen) {
  cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice,
                                  static_cast<cudaStream_t>(streamPtr));
  return e == cudaSuccess ? 0 : Fail(e, "cudaMemcpyAsync", err, errLen);
}

}  // namespace kernels
}  // namespace scire
