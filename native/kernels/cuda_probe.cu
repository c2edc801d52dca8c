#include "kernels/cuda_probe.h"

#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>

namespace {

__global__ void ProbeKernel(int* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = 3 * i + 1;
}

int Fail(ScireCudaProbe* probe, cudaError_t err, const char* what) {
  std::snprintf(probe->error, sizeof probe->error, "%s: %s (%s)", what, cudaGetErrorString(err), cudaGetErrorName(err));
  return static_cast<int>(err);
}

}  // namespace

extern "C" int scire_cuda_probe(ScireCudaProbe* probe) {
  std::memset(probe, 0, sizeof *probe);
  cudaRuntimeGetVersion(&probe->runtimeVersion);
  cudaDriverGetVersion(&probe->driverVersion);
  cudaError_t err = cudaGetDeviceCount(&probe->deviceCount);
  if (err != cudaSuccess) {
    probe->deviceCount = 0;
    cudaGetLastError();  // clear the sticky-free error state
    return Fail(probe, err, "cudaGetDeviceCount");
  }
  size_t used = 0;
  for (int d = 0; d < probe->deviceCount; ++d) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, d) != cudaSuccess) continue;
    int n = std::snprintf(probe->devices + used, sizeof probe->devices - used, "%s%s (sm_%d%d)", d ? "; " : "",
                          prop.name, prop.major, prop.minor);
    if (n < 0 || used + n >= sizeof probe->devices) break;
    used += n;
  }
  if (probe->deviceCount == 0) return Fail(probe, cudaErrorNoDevice, "no CUDA device");

  const int n = 1000;
  int* device_out = nullptr;
  int host_out[n];
  if ((err = cudaSetDevice(0)) != cudaSuccess) return Fail(probe, err, "cudaSetDevice(0)");
  if ((err = cudaMalloc(&device_out, n * sizeof(int))) != cudaSuccess) return Fail(probe, err, "cudaMalloc");
  ProbeKernel<<<(n + 255) / 256, 256>>>(device_out, n);
  err = cudaGetLastError();
  if (err == cudaSuccess) err = cudaMemcpy(host_out, device_out, n * sizeof(int), cudaMemcpyDeviceToHost);
  cudaFree(device_out);
  if (err != cudaSuccess) return Fail(probe, err, "probe kernel");
  for (int i = 0; i < n; ++i) {
    if (host_out[i] != 3 * i + 1) {
      std::snprintf(probe->error, sizeof probe->error, "probe kernel wrote %d at %d, expected %d", host_out[i], i, 3 * i + 1);
      return -1;
    }
  }
  probe->kernelOk = 1;
  return 0;
}
