// scire.node entry point: the export table only. Modules outside this list add their
// exports through RegisterExports (exports.h) and Model methods through
// RegisterModelMethod (model.h).
#include <napi.h>

#include "build_info.h"
#include "exports.h"
#include "model.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  scire::InitBuildInfo(env, exports);  // buildInfo(), cudaProbe()
  scire::Model::Init(env, exports);    // Model, loadModel()
  scire::InitRegisteredExports(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(scire, Init)
