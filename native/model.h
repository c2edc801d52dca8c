// The TorchScript model handle.
//
// JS surface (see lib/native-types.ts, NativeModel):
//   loadModel(path, { device, dtype }) -> Promise<Model>    load + checks off the JS thread
//   model.info                         -> { path, device, dtype, parameterCount, numInputs }
//   model.forward(x, shape, t)         -> Promise<Float32Array>   one forward on host data
//   model.dispose()                    rejects queued and running requests (ERR_SCIRE_DISPOSED),
//                                      frees the model's CUDA graphs, ends its thread
//   model.clearCudaGraphs()            -> number of the model's cached graphs freed
//
// Every loaded model has its own thread (model_runtime.h): forward and execute requests are
// queued there in FIFO order, so only that thread ever runs the module and no lock is needed.
// Other native code reaches the module through
//   ModelPtr h = Model::FromValue(value)->Handle();   // TypeError / disposed Error otherwise
//   model.Runtime().Submit(request)                   // runs on the model's thread
// The JS methods of Model.prototype are listed in addon.cc's export table.
#pragma once

#include <napi.h>
#include <torch/script.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace scire {

struct ModelHandle {
  ModelHandle(torch::jit::Module m, torch::Device d, torch::ScalarType dt)
      : module(std::move(m)), device(d), dtype(dt) {}

  torch::jit::Module module;  // eval mode, parameters on `device` in `dtype`
  torch::Device device;
  torch::ScalarType dtype;
  std::string path;
  int numInputs = 0;          // forward() arguments besides self (2: x, t; 3: x, t, cond)
  int requiredInputs = 0;     // of those, the ones without a default value
  int64_t parameterCount = 0;
  // Held while running the module. Requests run one at a time on the model's thread anyway;
  // the lock orders them with the testing addon's entries that run the module elsewhere
  // (the JS-thread op stepper of native/testing/gpu_bench.cc).
  std::mutex mutex;
};
using ModelPtr = std::shared_ptr<ModelHandle>;

// THE call of the network: runs forward(x, t) (plus cond when given). x and t must already be
// on the model's device; t is a 1-D tensor of length x.size(0). Checks that the output is a
// Tensor shaped like x. Throws ScireError / c10::Error / std::exception. Called on the model's
// thread inside an InferenceMode guard, from the executor loop (one place) and model.forward.
torch::Tensor RunModel(ModelHandle& handle, const torch::Tensor& x, const torch::Tensor& t,
                       const torch::Tensor* cond = nullptr);

class ModelRuntime;
using ModelMethod = Napi::Value (*)(const Napi::CallbackInfo& info, class Model& model);
struct ModelMethodEntry {
  const char* name;
  ModelMethod method;
};

class Model : public Napi::ObjectWrap<Model> {
 public:
  // Defines the class with the methods of addon.cc's table and exports `Model`.
  static void Init(Napi::Env env, Napi::Object exports, const ModelMethodEntry* methods, size_t count);
  // Wraps a loaded handle into a new JS Model (JS thread).
  static Napi::Object NewInstance(Napi::Env env, ModelPtr handle);
  // The Model behind a JS value; throws a TypeError naming `field` when it is not one.
  static Model* FromValue(const Napi::Value& value, const char* field = "model");

  explicit Model(const Napi::CallbackInfo& info);
  ~Model() override;

  // The loaded module; throws an Error when dispose() was called.
  ModelPtr Handle() const;
  // The model's thread and request queue (model_runtime.h).
  ModelRuntime& Runtime() const { return *runtime_; }

  // Table entries (addon.cc).
  static Napi::Value ForwardJs(const Napi::CallbackInfo& info, Model& model);
  static Napi::Value DisposeJs(const Napi::CallbackInfo& info, Model& model);
  static Napi::Value ClearCudaGraphsJs(const Napi::CallbackInfo& info, Model& model);

 private:
  Napi::Value GetInfo(const Napi::CallbackInfo& info);
  Napi::Value GetDisposed(const Napi::CallbackInfo& info);

  ModelPtr handle_;
  std::shared_ptr<ModelRuntime> runtime_;
  Napi::ObjectReference info_;  // built once: model.info is stable
};

/** loadModel(path, { device, dtype }) (an export of addon.cc's table). */
Napi::Value LoadModelJs(const Napi::CallbackInfo& info);

}  // namespace scire
