// scire.node entry point: THE table of everything the addon exports. Every module-level
// function and every Model method is listed here, once.
//
// The same file, compiled with SCIRE_TESTING_ADDON, is the entry point of the testing addon
// (build/Release/scire_testing.node, target scire_testing of CMakeLists.txt): the shipped
// exports plus the test and benchmark entries of native/testing/. Tests and benchmarks that
// need those load it through test/support/testing-addon.ts.
#include <napi.h>

#include "abort_handle.h"
#include "addon_data.h"
#include "build_info.h"
#include "device_memory.h"
#include "executor.h"
#include "model.h"
#ifdef SCIRE_TESTING_ADDON
#include "testing/testing.h"
#endif

namespace {

struct ExportEntry {
  const char* name;
  Napi::Value (*fn)(const Napi::CallbackInfo& info);
};

const ExportEntry kExports[] = {
    {"buildInfo", scire::BuildInfoJs},                  // how the addon was built (build_info.h)
    {"cudaProbe", scire::CudaProbeJs},                  // CUDA runtime view, test kernel launch
    {"loadModel", scire::LoadModelJs},                  // -> Promise<Model> (model.h)
    {"createAbortHandle", scire::CreateAbortHandle},    // for execute's abortHandle (abort_handle.h)
    {"deviceMemory", scire::DeviceMemoryJs},            // free memory of a CUDA device (device_memory.h)
#ifdef SCIRE_TESTING_ADDON
    {"lincomb", scire::LincombJs},                      // fused kernel on host data
    {"benchLincomb", scire::BenchLincombJs},            // kernel vs LibTorch ops
    {"maskedLincomb", scire::MaskedLincombJs},          // the inpainting (masked) kernel on host data
    {"benchMaskedLincomb", scire::BenchMaskedLincombJs},  // masked kernel vs two passes vs LibTorch ops
    {"graphCachePolicyProbe", scire::GraphCachePolicyProbeJs},  // cache policy with fake entries
    {"batchBucket", scire::BatchBucketJs},              // the graph cache's batch buckets
    {"cudaGraphCacheState", scire::CudaGraphCacheStateJs},      // the process-wide graph cache
#endif
};

// Methods of Model.prototype (besides the accessors `info` and `disposed`).
const scire::ModelMethodEntry kModelMethods[] = {
    {"execute", scire::ExecuteJs},                      // a whole plan (executor.h)
    {"forward", scire::Model::ForwardJs},               // one forward on host data
    {"dispose", scire::Model::DisposeJs},               // reject pending work, free, end the thread
    {"clearCudaGraphs", scire::Model::ClearCudaGraphsJs},  // free this model's CUDA graphs
#ifdef SCIRE_TESTING_ADDON
    {"benchForward", scire::BenchForwardJs},            // the network alone, timed
    {"torchOpsStepper", scire::TorchOpsStepperJs},      // the plan op by op from JS (LibTorch ops)
    {"runPlanOps", scire::RunPlanOpsJs},                // the capturable loop, eagerly
#endif
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  for (const ExportEntry& e : kExports) exports.Set(e.name, Napi::Function::New(env, e.fn, e.name));
  scire::Model::Init(env, exports, kModelMethods, sizeof(kModelMethods) / sizeof(kModelMethods[0]));
#ifdef SCIRE_TESTING_ADDON
  scire::GetAddonData(env).testingAddon = true;
#endif
  return exports;
}

}  // namespace

NODE_API_MODULE(scire, Init)
