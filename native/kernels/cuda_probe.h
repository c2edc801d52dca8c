// CUDA probe: what the addon's CUDA runtime sees, and whether the kernels compiled into
// this addon can run on GPU 0 (a tiny kernel is launched and its result checked; a GPU
// whose architecture the build does not cover fails with "no kernel image is available").
// Plain C interface: nvcc-compiled code and the g++-compiled addon share no C++ types.
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ScireCudaProbe {
  int runtimeVersion;  // e.g. 13000
  int driverVersion;   // 0 when no driver is installed
  int deviceCount;
  char devices[1024];  // "NVIDIA H100 80GB HBM3 (sm_90); ..."
  int kernelOk;        // 1: the probe kernel ran on device 0 and wrote the expected values
  char error[512];     // first CUDA error met, empty if none
} ScireCudaProbe;

// Fills *probe; never throws. Returns 0 when the kernel ran correctly, else a CUDA error
// code (or -1 for a wrong result) that is also described in probe->error.
int scire_cuda_probe(ScireCudaProbe* probe);

#ifdef __cplusplus
}
#endif
