#include "model.h"

#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "addon_data.h"
#include "cuda_graph.h"
#include "device_dtype.h"
#include "errors.h"
#include "model_runtime.h"
#include "promise_worker.h"
#include "shape.h"

namespace scire {

namespace {

// Tags the External that carries a loaded handle into the Model constructor, so that
// `new Model(anything)` from JS is refused.
constexpr napi_type_tag kHandleTag = {0x3c9e61f04b2a4d17ULL, 0x9b0d2f7e55c1a864ULL};

// ------------------------------------------------------------------ load-time checks
void CheckModelFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ScireError(ErrorKind::kError, "loadModel: cannot open '" + path + "': no such file or not readable",
                     "ENOENT");
  }
  char magic[4] = {0, 0, 0, 0};
  in.read(magic, 4);
  const auto got = in.gcount();
  // A TorchScript archive (torch.jit.save) is a zip file: it starts with "PK\3\4".
  if (got < 4 || std::memcmp(magic, "PK\x03\x04", 4) != 0) {
    std::string what = got == 0 ? "the file is empty or a directory"
                       : (magic[0] == '{' || magic[0] == '[') ? "the file looks like JSON text"
                                                               : "the file is not a zip archive";
    throw ScireError(ErrorKind::kError,
                     "loadModel: '" + path + "' is not a TorchScript archive (" + what +
                         "); save the model with torch.jit.save(torch.jit.script(m) or torch.jit.trace(m, ...), path)",
                     "ERR_SCIRE_NOT_TORCHSCRIPT");
  }
}

std::string DescribeArguments(const std::vector<c10::Argument>& args) {
  std::string s;
  for (size_t i = 1; i < args.size(); ++i) {  // args[0] is self
    if (i > 1) s += ", ";
    s += args[i].name() + ": " + args[i].type()->str();
    if (args[i].default_value()) s += " = <default>";
  }
  return s;
}

// Reads forward()'s schema into the handle; a diffusion model takes (x, t) or (x, t, cond).
void InspectForward(ModelHandle& handle) {
  auto method = handle.module.find_method("forward");
  if (!method) {
    throw ScireError(ErrorKind::kError, "loadModel: '" + handle.path + "' has no forward() method",
                     "ERR_SCIRE_BAD_MODEL");
  }
  const auto& args = method->function().getSchema().arguments();
  int total = static_cast<int>(args.size()) - 1;
  int required = 0;
  for (size_t i = 1; i < args.size(); ++i) {
    if (!args[i].default_value()) ++required;
  }
  if (total < 2 || required > 3) {
    throw ScireError(ErrorKind::kError,
                     "loadModel: forward(" + DescribeArguments(args) + ") of '" + handle.path + "' takes " +
                         std::to_string(total) + " input(s) (" + std::to_string(required) +
                         " required); a diffusion model's forward must take (x, t) or (x, t, cond)",
                     "ERR_SCIRE_BAD_MODEL");
  }
  handle.numInputs = total;
  handle.requiredInputs = required;
}

class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, std::string path, std::string device_name, torch::Device device, torch::ScalarType dtype)
      : PromiseWorker(env, "loadModel"),
        path_(std::move(path)),
        device_name_(std::move(device_name)),
        device_(device),
        dtype_(dtype) {}

 protected:
  void Run() override {
    CheckModelFile(path_);
    CheckDeviceUsable("loadModel", device_, device_name_);
    torch::NoGradGuard no_grad;
    torch::jit::Module module;
    try {
      module = torch::jit::load(path_, device_);
    } catch (const c10::Error& e) {
      throw ScireError(ErrorKind::kError,
                       "loadModel: could not load '" + path_ + "' as a TorchScript module: " +
                           e.what_without_backtrace(),
                       "ERR_SCIRE_NOT_TORCHSCRIPT");
    } catch (const std::exception& e) {
      throw ScireError(ErrorKind::kError,
                       "loadModel: could not load '" + path_ + "' as a TorchScript module: " + e.what(),
                       "ERR_SCIRE_NOT_TORCHSCRIPT");
    }
    module.eval();
    module.to(device_, dtype_);
    auto handle = std::make_shared<ModelHandle>(std::move(module), device_, dtype_);
    handle->path = path_;
    InspectForward(*handle);
    for (const auto& p : handle->module.parameters(/*recurse=*/true)) handle->parameterCount += p.numel();
    handle_ = std::move(handle);
  }

  Napi::Value Resolve(Napi::Env env) override { return Model::NewInstance(env, std::move(handle_)); }

 private:
  std::string path_;
  std::string device_name_;
  torch::Device device_;
  torch::ScalarType dtype_;
  ModelPtr handle_;
};

// ------------------------------------------------------------------ forward on host data
class ForwardRequest : public Request {
 public:
  ForwardRequest(Napi::Env env, ModelPtr handle, at::Tensor x, double t)
      : Request(env, "forward"), handle_(std::move(handle)), x_(std::move(x)), t_(t) {}

 protected:
  void Run() override {
    c10::InferenceMode inference;
    std::lock_guard<std::mutex> lock(handle_->mutex);
    auto x = x_.to(handle_->device, handle_->dtype);
    // The model input time goes in as float32 whatever the model dtype (precision of t).
    auto t = torch::full({x_.size(0)}, t_, torch::TensorOptions().dtype(torch::kFloat32).device(handle_->device));
    at::Tensor raw;
    try {
      raw = RunModel(*handle_, x, t);
    } catch (...) {
      RethrowModelCallError({0, 0, t_, DescribeModelInputs(x, t, nullptr)});
    }
    out_ = raw.to(torch::kCPU, torch::kFloat32).contiguous();
  }

  void ReleaseInputs() override { x_ = at::Tensor(); }

  Napi::Value Result(Napi::Env env) override {
    auto out = Napi::Float32Array::New(env, static_cast<size_t>(out_.numel()));
    if (out_.numel() > 0) std::memcpy(out.Data(), out_.data_ptr<float>(), out_.numel() * sizeof(float));
    out_ = at::Tensor();
    return out;
  }

 private:
  ModelPtr handle_;  // keeps the module alive even if dispose() runs meanwhile
  at::Tensor x_;
  double t_;
  at::Tensor out_;
};

// Model.prototype methods: info.Data() is the table entry (addon.cc).
Napi::Value CallModelMethod(const Napi::CallbackInfo& info) {
  const auto* entry = static_cast<const ModelMethodEntry*>(info.Data());
  return GuardJs(info.Env(), entry->name, [&]() -> Napi::Value {
    return entry->method(info, *Model::FromValue(info.This(), "this"));
  });
}

}  // namespace

// ------------------------------------------------------------------ loadModel
Napi::Value LoadModelJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return GuardPromise(env, "loadModel", [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsString()) throw TypeErrorFor("loadModel", "path", "a string");
    std::string path = info[0].As<Napi::String>();
    std::string device = "cpu";
    std::string dtype = "float32";
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      if (!info[1].IsObject()) throw TypeErrorFor("loadModel", "options", "an object { device, dtype }");
      auto opts = info[1].As<Napi::Object>();
      Napi::Value d = opts.Get("device");
      if (!d.IsUndefined()) {
        if (!d.IsString()) throw TypeErrorFor("loadModel", "device", "a string: 'cpu', 'cuda' or 'cuda:N'");
        device = d.As<Napi::String>();
      }
      Napi::Value dt = opts.Get("dtype");
      if (!dt.IsUndefined()) {
        if (!dt.IsString()) throw TypeErrorFor("loadModel", "dtype", std::string("a string: ") + kAllowedDTypes);
        dtype = dt.As<Napi::String>();
      }
    }
    CheckIntraOpThreadsEnv();
    const torch::Device parsed_device = ParseDevice("loadModel", device);
    const torch::ScalarType parsed_dtype = ParseDType("loadModel", dtype);
    auto* worker = new LoadWorker(env, path, device, parsed_device, parsed_dtype);
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  });
}

// ------------------------------------------------------------------ RunModel
torch::Tensor RunModel(ModelHandle& handle, const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor* cond) {
  std::vector<torch::jit::IValue> inputs{x, t};
  if (cond != nullptr) inputs.emplace_back(*cond);
  if (static_cast<int>(inputs.size()) < handle.requiredInputs) {
    throw ScireError(ErrorKind::kError,
                     "the model's forward needs " + std::to_string(handle.requiredInputs) +
                         " inputs (x, t, cond) but only (x, t) were given",
                     "ERR_SCIRE_MISSING_COND");
  }
  if (static_cast<int>(inputs.size()) > handle.numInputs) {
    throw ScireError(ErrorKind::kError, "the model's forward takes no cond input", "ERR_SCIRE_UNEXPECTED_COND");
  }
  torch::jit::IValue out = handle.module.forward(std::move(inputs));
  if (!out.isTensor()) {
    throw ScireError(ErrorKind::kError,
                     "the model's forward returned " + std::string(out.tagKind()) + ", expected a Tensor shaped like x",
                     "ERR_SCIRE_BAD_MODEL_OUTPUT");
  }
  torch::Tensor y = out.toTensor();
  if (y.sizes() != x.sizes()) {
    throw ScireError(ErrorKind::kError,
                     "the model's output shape " + ShapeString(y.sizes()) + " differs from its input shape " +
                         ShapeString(x.sizes()) + "; a diffusion model must return a tensor shaped like x",
                     "ERR_SCIRE_BAD_MODEL_OUTPUT");
  }
  return y;
}

// ------------------------------------------------------------------ Model
void Model::Init(Napi::Env env, Napi::Object exports, const ModelMethodEntry* methods, size_t count) {
  Napi::Function ctor = DefineClass(env, "Model",
                                    {
                                        InstanceAccessor<&Model::GetInfo>("info"),
                                        InstanceAccessor<&Model::GetDisposed>("disposed"),
                                    });
  Napi::Object prototype = ctor.Get("prototype").As<Napi::Object>();
  for (size_t i = 0; i < count; ++i) {
    // The table is static: its entries outlive every environment.
    prototype.Set(methods[i].name, Napi::Function::New(env, CallModelMethod, methods[i].name,
                                                       const_cast<ModelMethodEntry*>(&methods[i])));
  }
  GetAddonData(env).modelConstructor = Napi::Persistent(ctor);
  exports.Set("Model", ctor);
}

Napi::Object Model::NewInstance(Napi::Env env, ModelPtr handle) {
  auto* holder = new ModelPtr(std::move(handle));
  auto token = Napi::External<ModelPtr>::New(env, holder, [](Napi::Env, ModelPtr* p) { delete p; });
  token.TypeTag(&kHandleTag);
  return GetAddonData(env).modelConstructor.New({token});
}

Model* Model::FromValue(const Napi::Value& value, const char* field) {
  Napi::Env env = value.Env();
  if (value.IsObject()) {
    Napi::Object obj = value.As<Napi::Object>();
    Napi::FunctionReference& ctor = GetAddonData(env).modelConstructor;
    if (!ctor.IsEmpty() && obj.InstanceOf(ctor.Value())) return Model::Unwrap(obj);
  }
  throw Napi::TypeError::New(env, std::string(field) + " must be a Model returned by loadModel()");
}

Model::Model(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Model>(info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsExternal() || !info[0].As<Napi::External<ModelPtr>>().CheckTypeTag(&kHandleTag)) {
    throw Napi::TypeError::New(env, "Model cannot be constructed directly: use loadModel(path, { device, dtype })");
  }
  handle_ = *info[0].As<Napi::External<ModelPtr>>().Data();
  Napi::Object o = Napi::Object::New(env);
  o.Set("path", handle_->path);
  o.Set("device", DeviceName(handle_->device));
  o.Set("dtype", DTypeName(handle_->dtype));
  o.Set("parameterCount", Napi::Number::New(env, static_cast<double>(handle_->parameterCount)));
  o.Set("numInputs", handle_->numInputs);
  o.Set("requiredInputs", handle_->requiredInputs);
  o.Freeze();
  info_ = Napi::Persistent(o);
  const size_t slash = handle_->path.find_last_of('/');
  runtime_ = GuardJs(env, "loadModel", [&] {
    return ModelRuntime::Start(env, slash == std::string::npos ? handle_->path : handle_->path.substr(slash + 1));
  });
}

Model::~Model() {
  // Garbage-collected (or the environment is going away): requests still pending finish and
  // settle first; the thread ends after them. Nothing may throw out of a destructor.
  try {
    if (runtime_) runtime_->OwnerGone();
  } catch (...) {
  }
}

ModelPtr Model::Handle() const {
  if (!handle_) {
    throw ScireError(ErrorKind::kError, "the model has been disposed (dispose() was called)", "ERR_SCIRE_DISPOSED");
  }
  return handle_;
}

Napi::Value Model::GetInfo(const Napi::CallbackInfo&) { return info_.Value(); }

Napi::Value Model::GetDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !handle_); }

Napi::Value Model::ForwardJs(const Napi::CallbackInfo& info, Model& model) {
  Napi::Env env = info.Env();
  return GuardPromise(env, "forward", [&]() -> Napi::Value {
    ModelPtr handle = model.Handle();
    if (info.Length() < 3) throw TypeErrorFor("forward", "arguments", "(x: Float32Array, shape: number[], t: number)");
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      throw TypeErrorFor("forward", "x", "a Float32Array");
    }
    const size_t length = info[0].As<Napi::Float32Array>().ElementLength();
    std::vector<int64_t> shape = ParseShape(info[1], "forward", "shape");
    if (ShapeNumel(shape) != static_cast<int64_t>(length)) {
      throw RangeErrorFor("forward", "shape", "has " + std::to_string(ShapeNumel(shape)) + " elements (" +
                                                  ShapeString(shape) + ") but x.length is " + std::to_string(length));
    }
    if (!info[2].IsNumber() || !std::isfinite(info[2].As<Napi::Number>().DoubleValue())) {
      throw TypeErrorFor("forward", "t", "a finite number (the model input time)");
    }
    at::Tensor x = CopyFloat32(info[0], "forward", "x", shape);
    auto request = std::make_shared<ForwardRequest>(env, std::move(handle), std::move(x),
                                                    info[2].As<Napi::Number>().DoubleValue());
    return model.Runtime().Submit(request);
  });
}

Napi::Value Model::DisposeJs(const Napi::CallbackInfo& info, Model& model) {
  if (model.handle_) {
    model.runtime_->Dispose(info.Env());
    ForgetGraphs(model.handle_.get());  // the model's CUDA graphs and their memory pools
    model.handle_.reset();
  }
  return info.Env().Undefined();
}

Napi::Value Model::ClearCudaGraphsJs(const Napi::CallbackInfo& info, Model& model) {
  const ModelPtr handle = model.Handle();
  // Synchronises the graphs' device: a CUDA error becomes a JS error, not a terminate.
  return GuardJs(info.Env(), "clearCudaGraphs", [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), static_cast<double>(ForgetGraphs(handle.get())));
  });
}

}  // namespace scire
