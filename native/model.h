// The TorchScript model handle.
//
// JS surface (see lib/native-types.ts, NativeModel):
//   loadModel(path, { device, dtype }) -> Promise<Model>    load + checks off the JS thread
//   model.info                         -> { path, device, dtype, parameterCount, numInputs }
//   model.forward(x, shape, t)         -> Promise<Float32Array>   one forward on host data
//   model.dispose()                    releases the module (pending work keeps it alive)
//
// For other native code (the plan executor):
//   ModelPtr h = Model::FromValue(value)->Handle();   // TypeError / disposed Error otherwise
//   std::lock_guard<std::mutex> lock(h->mutex);       // one user of the module at a time
//   h->module.forward(...)  with tensors on h->device in h->dtype
// and extra JS methods are added with RegisterModelMethod (see below), so that new
// features do not have to edit this file.
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
  std::mutex mutex;           // hold while running the module
};
using ModelPtr = std::shared_ptr<ModelHandle>;

// Runs forward(x, t) (plus cond when given) in inference mode. x and t must already be on
// the model's device; t is a 1-D tensor of length x.size(0). Checks that the output is a
// Tensor shaped like x. Throws ScireError / c10::Error / std::exception. Caller holds
// handle.mutex and an InferenceMode guard.
torch::Tensor RunModel(ModelHandle& handle, const torch::Tensor& x, const torch::Tensor& t,
                       const torch::Tensor* cond = nullptr);

class Model : public Napi::ObjectWrap<Model> {
 public:
  // Defines the class and exports `Model` and `loadModel`.
  static void Init(Napi::Env env, Napi::Object exports);
  // Wraps a loaded handle into a new JS Model (JS thread).
  static Napi::Object NewInstance(Napi::Env env, ModelPtr handle);
  // The Model behind a JS value; throws a TypeError naming `field` when it is not one.
  static Model* FromValue(const Napi::Value& value, const char* field = "model");

  explicit Model(const Napi::CallbackInfo& info);

  // The loaded module; throws an Error when dispose() was called.
  ModelPtr Handle() const;

 private:
  Napi::Value GetInfo(const Napi::CallbackInfo& info);
  Napi::Value GetDisposed(const Napi::CallbackInfo& info);
  Napi::Value Forward(const Napi::CallbackInfo& info);
  void Dispose(const Napi::CallbackInfo& info);

  ModelPtr handle_;
  Napi::ObjectReference info_;  // built once: model.info is stable
};

// Extension hook: a JS method added to Model.prototype, implemented elsewhere.
//   static const bool kRegistered = scire::RegisterModelMethod("execute", &Execute);
// where  Napi::Value Execute(const Napi::CallbackInfo& info, scire::Model& model);
// Register from a namespace-scope static initializer (before the addon is loaded).
using ModelMethod = Napi::Value (*)(const Napi::CallbackInfo& info, Model& model);
bool RegisterModelMethod(const char* name, ModelMethod method);

}  // namespace scire
