// Benchmark and test entries of the testing addon (build/Release/scire_testing.node, never in
// the shipped scire.node), Model methods listed in native/addon.cc's table:
//
//   model.benchForward({ shape, t?, iters?, graph?, onJsThread? })
//       -> Promise<{ eagerMs, graphMs, graphError, iters, threads }>
//     The network alone: milliseconds per forward(x, t) at `shape` (random x, t = 500 for every
//     element), measured over `iters` back-to-back calls after three warm-up calls, eagerly and
//     (graph: true, CUDA only) as one captured forward replayed `iters` times. graphMs x NFE is
//     the floor a whole-plan graph can reach. Timed with CUDA events on the GPU, the steady
//     clock on the CPU. Runs on the model's thread like every request, or (onJsThread: true)
//     synchronously on the JS thread, for comparison; `threads` is LibTorch's intra-op thread
//     count seen by the thread that ran it.
//
//   model.torchOpsStepper({ shape }) -> stepper
//     The plan stepped from JS with plain LibTorch ops, one native call per op (the way a
//     Python sampler drives PyTorch). Synchronous calls on the JS thread; kernels are queued
//     on the current stream and only result() waits for them:
//       stepper.init(x: Float32Array, initScale)                R[0] = initScale * x
//       stepper.eval(t, src, inScale, dst, outX, outM)          x_in = (inScale*R[src]).to(dtype);
//                                                               R[dst] = outX*x_in + outM*model(x_in, t)
//       stepper.lincomb(dst, coefs: number[], regs: number[])   R[dst] = sum coef*R[reg] (mul + add_ per term)
//       stepper.threshold(reg, ratio, maxVal)
//       stepper.result(src, scale) -> Float32Array              waits for the device
//       stepper.dispose()
//
//   model.runPlanOps(plan, { x, shape }) -> Promise<Float32Array>
//     The capturable executor loop (executor.h RunPlanOps) run once eagerly, on the model's
//     thread, with no host
//     synchronisation between ops: what a CUDA graph records. Tests compare it with
//     model.execute bit for bit on the CPU; on the GPU it is the eager run without the
//     executor's per-evaluation timing. Models with a cond input are not supported here.
//
#include <napi.h>
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cuda_graph.h"
#include "executor.h"
#include "errors.h"
#include "kernels/lincomb_tensor.h"
#include "kernels/threshold.h"
#include "model.h"
#include "plan.h"
#include "model_runtime.h"
#include "shape.h"
#include "testing.h"

#ifdef SCIRE_TORCH_HAS_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <torch/version.h>
#endif

namespace scire {
namespace {

std::vector<int64_t> ReadShape(const Napi::Object& opts, const std::string& where) {
  return ParseShape(opts.Get("shape"), where, "shape");
}

int ReadInt(const Napi::Object& opts, const char* key, int fallback, int lo, int hi, const std::string& where) {
  const Napi::Value v = opts.Get(key);
  if (v.IsUndefined()) return fallback;
  const double x = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : lo - 1.0;
  if (!(x >= lo && x <= hi) || std::floor(x) != x) {
    throw RangeErrorFor(where, key, "must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return static_cast<int>(x);
}

double ReadNumber(const Napi::Value& v, const std::string& where, const std::string& field) {
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue())) {
    throw TypeErrorFor(where, field, "a finite number");
  }
  return v.As<Napi::Number>().DoubleValue();
}

// ------------------------------------------------------------------ benchForward

/** Milliseconds of `iters` calls of fn, on the device's clock where there is one. */
template <typename F>
double TimeLoop(const at::Device& device, int iters, F&& fn) {
#ifdef SCIRE_TORCH_HAS_CUDA
  if (device.is_cuda()) {
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device.index()).stream();
    cudaEvent_t start = nullptr, stop = nullptr;
    C10_CUDA_CHECK(cudaEventCreate(&start));
    C10_CUDA_CHECK(cudaEventCreate(&stop));
    C10_CUDA_CHECK(cudaEventRecord(start, stream));
    for (int i = 0; i < iters; ++i) fn();
    C10_CUDA_CHECK(cudaEventRecord(stop, stream));
    C10_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    C10_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return ms;
  }
#endif
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) fn();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

class BenchForwardRequest : public Request {
 public:
  BenchForwardRequest(Napi::Env env, ModelPtr model, std::vector<int64_t> shape, double t, int iters, bool graph)
      : Request(env, "benchForward"), model_(std::move(model)), shape_(std::move(shape)), t_(t), iters_(iters),
        graph_(graph) {}

  void Run() override {
    threads_ = at::get_num_threads();
    c10::InferenceMode inference;
    std::lock_guard<std::mutex> lock(model_->mutex);
    ModelHandle& m = *model_;
    const at::Device device = m.device;
#ifdef SCIRE_TORCH_HAS_CUDA
    std::optional<c10::cuda::CUDAGuard> guard;
    if (device.is_cuda()) guard.emplace(device);
#endif
    at::Tensor x = at::randn(shape_, at::TensorOptions().dtype(at::kFloat)).to(device, m.dtype);
    at::Tensor t = at::full({shape_[0]}, t_, at::TensorOptions().dtype(at::kFloat).device(device));
    for (int i = 0; i < 3; ++i) (void)RunModel(m, x, t);
    eagerMs_ = TimeLoop(device, iters_, [&] { (void)RunModel(m, x, t); }) / iters_;
    if (!graph_) return;
#ifdef SCIRE_TORCH_HAS_CUDA
    if (!device.is_cuda()) {
      graphError_ = "the model is on the CPU";
      return;
    }
    const c10::cuda::CUDAStream caller = c10::cuda::getCurrentCUDAStream(device.index());
    const c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, device.index());
    caller.synchronize();
    auto graph = std::make_unique<at::cuda::CUDAGraph>();
    at::Tensor y;
    {
      c10::cuda::CUDAStreamGuard sg(side);
      (void)RunModel(m, x, t);  // warm-up on the capture stream
      side.synchronize();
      try {
#if TORCH_VERSION_MAJOR >= 2
        graph->capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
#else
        graph->capture_begin();
#endif
        y = RunModel(m, x, t);
        graph->capture_end();
      } catch (...) {
        graphError_ = CaptureCurrentException("benchForward").message;
        cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
        if (cudaStreamIsCapturing(side.stream(), &st) == cudaSuccess && st != cudaStreamCaptureStatusNone) {
          cudaGraph_t raw = nullptr;
          cudaStreamEndCapture(side.stream(), &raw);
          if (raw) cudaGraphDestroy(raw);
        }
        (void)cudaGetLastError();
        // Never destroyed: the allocator may still hold a filter pointing at it (cuda_graph.cc).
        (void)graph.release();
        return;
      }
      side.synchronize();
    }
    graph->replay();  // one untimed replay (the first launch uploads the graph)
    graphMs_ = TimeLoop(device, iters_, [&] { graph->replay(); }) / iters_;
    caller.synchronize();
#else
    graphError_ = "this addon was built against a LibTorch without CUDA";
#endif
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("threads", threads_);
    o.Set("eagerMs", eagerMs_);
    o.Set("graphMs", graphMs_ > 0 ? Napi::Value(Napi::Number::New(env, graphMs_)) : env.Null());
    o.Set("graphError", graphError_.empty() ? env.Null() : Napi::Value(Napi::String::New(env, graphError_)));
    o.Set("iters", iters_);
    return o;
  }

 private:
  ModelPtr model_;
  std::vector<int64_t> shape_;
  double t_;
  int iters_;
  bool graph_;
  int threads_ = 0;
  double eagerMs_ = 0, graphMs_ = 0;
  std::string graphError_;
};

}  // namespace

Napi::Value BenchForwardJs(const Napi::CallbackInfo& info, Model& model) {
  const std::string where = "benchForward";
  ModelPtr handle = model.Handle();
  if (info.Length() < 1 || !info[0].IsObject()) {
    throw TypeErrorFor(where, "opts", "an object { shape, t?, iters?, graph?, onJsThread? }");
  }
  const Napi::Object opts = info[0].As<Napi::Object>();
  std::vector<int64_t> shape = ReadShape(opts, where);
  const double t = opts.Get("t").IsUndefined() ? 500.0 : ReadNumber(opts.Get("t"), where, "t");
  const int iters = ReadInt(opts, "iters", 20, 1, 100000, where);
  const Napi::Value g = opts.Get("graph");
  if (!g.IsUndefined() && !g.IsBoolean()) throw TypeErrorFor(where, "graph", "a boolean");
  const Napi::Value js = opts.Get("onJsThread");
  if (!js.IsUndefined() && !js.IsBoolean()) throw TypeErrorFor(where, "onJsThread", "a boolean");
  auto request = std::make_shared<BenchForwardRequest>(info.Env(), std::move(handle), std::move(shape), t, iters,
                                                       g.IsBoolean() && g.As<Napi::Boolean>().Value());
  if (js.IsBoolean() && js.As<Napi::Boolean>().Value()) {
    // For comparison only: the same measurement run synchronously on the JS thread.
    auto deferred = Napi::Promise::Deferred::New(info.Env());
    request->Run();
    deferred.Resolve(request->Result(info.Env()));
    return deferred.Promise();
  }
  return model.Runtime().Submit(request);
}

namespace {

// ------------------------------------------------------------------ torchOpsStepper

struct StepperState {
  ModelPtr model;
  std::vector<int64_t> shape;
  std::vector<at::Tensor> R;
  at::Tensor t;  // float32 [B] on the device

  at::Tensor& Reg(const Napi::Value& v, const char* field, bool mustBeSet) {
    const double x = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(x >= 0 && x < static_cast<double>(R.size())) || std::floor(x) != x) {
      throw RangeErrorFor("torchOpsStepper", field, "must be a register index in [0, " + std::to_string(R.size()) + ")");
    }
    at::Tensor& r = R[static_cast<size_t>(x)];
    if (mustBeSet && !r.defined()) {
      throw RangeErrorFor("torchOpsStepper", field, "names register " + std::to_string(static_cast<int>(x)) +
                                                        " which was never written");
    }
    return r;
  }
};
using StepperPtr = std::shared_ptr<StepperState>;

StepperPtr Live(const StepperPtr& s) {
  if (!s->model) throw ScireError(ErrorKind::kError, "torchOpsStepper: the stepper was disposed");
  return s;
}

}  // namespace

Napi::Value TorchOpsStepperJs(const Napi::CallbackInfo& info, Model& model) {
  Napi::Env env = info.Env();
  const std::string where = "torchOpsStepper";
  auto s = std::make_shared<StepperState>();
  s->model = model.Handle();
  if (info.Length() < 1 || !info[0].IsObject()) throw TypeErrorFor(where, "opts", "an object { shape, numRegs? }");
  const Napi::Object opts = info[0].As<Napi::Object>();
  s->shape = ReadShape(opts, where);
  s->R.resize(static_cast<size_t>(ReadInt(opts, "numRegs", 8, 1, 64, where)));
  s->t = at::empty({s->shape[0]}, at::TensorOptions().dtype(at::kFloat).device(s->model->device));

  Napi::Object o = Napi::Object::New(env);
  o.Set("init", Napi::Function::New(env, [s](const Napi::CallbackInfo& info) -> Napi::Value {
    return GuardJs(info.Env(), "torchOpsStepper.init", [&]() -> Napi::Value {
      auto st = Live(s);
      if (info.Length() < 2 || !info[0].IsTypedArray() ||
          info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
        throw TypeErrorFor("torchOpsStepper.init", "x", "a Float32Array");
      }
      const Napi::Float32Array x = info[0].As<Napi::Float32Array>();
      const double scale = ReadNumber(info[1], "torchOpsStepper.init", "initScale");
      at::Tensor host = at::empty(st->shape, at::kFloat);
      if (host.numel() != static_cast<int64_t>(x.ElementLength())) {
        throw RangeErrorFor("torchOpsStepper.init", "x", "length does not match the stepper's shape");
      }
      std::memcpy(host.data_ptr<float>(), x.Data(), host.numel() * sizeof(float));
      c10::InferenceMode inference;
      st->R[0] = host.to(st->model->device).mul_(scale);
      return info.Env().Undefined();
    });
  }));
  o.Set("eval", Napi::Function::New(env, [s](const Napi::CallbackInfo& info) -> Napi::Value {
    return GuardJs(info.Env(), "torchOpsStepper.eval", [&]() -> Napi::Value {
      auto st = Live(s);
      const char* w = "torchOpsStepper.eval";
      if (info.Length() < 6) throw TypeErrorFor(w, "arguments", "(t, src, inScale, dst, outX, outM)");
      const double t = ReadNumber(info[0], w, "t");
      at::Tensor& src = st->Reg(info[1], "src", true);
      const double inScale = ReadNumber(info[2], w, "inScale");
      at::Tensor& dst = st->Reg(info[3], "dst", false);
      const double outX = ReadNumber(info[4], w, "outX");
      const double outM = ReadNumber(info[5], w, "outM");
      c10::InferenceMode inference;
      std::lock_guard<std::mutex> lock(st->model->mutex);
      const at::Tensor xIn = src * inScale;
      st->t.fill_(t);
      const at::Tensor raw = RunModel(*st->model, xIn.to(st->model->dtype), st->t).to(at::kFloat);
      dst = xIn * outX + raw * outM;
      return info.Env().Undefined();
    });
  }));
  o.Set("lincomb", Napi::Function::New(env, [s](const Napi::CallbackInfo& info) -> Napi::Value {
    return GuardJs(info.Env(), "torchOpsStepper.lincomb", [&]() -> Napi::Value {
      auto st = Live(s);
      const char* w = "torchOpsStepper.lincomb";
      if (info.Length() < 3 || !info[1].IsArray() || !info[2].IsArray()) {
        throw TypeErrorFor(w, "arguments", "(dst, coefs: number[], regs: number[])");
      }
      const Napi::Array coefs = info[1].As<Napi::Array>();
      const Napi::Array regs = info[2].As<Napi::Array>();
      if (coefs.Length() != regs.Length() || coefs.Length() < 1 || coefs.Length() > 4) {
        throw RangeErrorFor(w, "coefs", "must have 1 to 4 entries, one per register");
      }
      std::vector<kernels::Term> terms;
      for (uint32_t k = 0; k < coefs.Length(); ++k) {
        terms.push_back({static_cast<float>(ReadNumber(coefs.Get(k), w, "coefs[k]")), st->Reg(regs.Get(k), "regs[k]", true)});
      }
      at::Tensor& dst = st->Reg(info[0], "dst", false);
      c10::InferenceMode inference;
      if (!dst.defined()) dst = at::empty(st->shape, terms[0].tensor.options());
      kernels::LincombWithTorchOps(dst, terms);
      return info.Env().Undefined();
    });
  }));
  o.Set("threshold", Napi::Function::New(env, [s](const Napi::CallbackInfo& info) -> Napi::Value {
    return GuardJs(info.Env(), "torchOpsStepper.threshold", [&]() -> Napi::Value {
      auto st = Live(s);
      const char* w = "torchOpsStepper.threshold";
      if (info.Length() < 3) throw TypeErrorFor(w, "arguments", "(reg, ratio, maxVal)");
      at::Tensor& r = st->Reg(info[0], "reg", true);
      c10::InferenceMode inference;
      kernels::DynamicThreshold(r, ReadNumber(info[1], w, "ratio"), ReadNumber(info[2], w, "maxVal"));
      return info.Env().Undefined();
    });
  }));
  o.Set("result", Napi::Function::New(env, [s](const Napi::CallbackInfo& info) -> Napi::Value {
    return GuardJs(info.Env(), "torchOpsStepper.result", [&]() -> Napi::Value {
      auto st = Live(s);
      const char* w = "torchOpsStepper.result";
      if (info.Length() < 2) throw TypeErrorFor(w, "arguments", "(src, scale)");
      at::Tensor& r = st->Reg(info[0], "src", true);
      const double scale = ReadNumber(info[1], w, "scale");
      c10::InferenceMode inference;
      const at::Tensor host = (r * scale).to(at::kCPU).contiguous();
      Napi::Float32Array out = Napi::Float32Array::New(info.Env(), static_cast<size_t>(host.numel()));
      std::memcpy(out.Data(), host.data_ptr<float>(), host.numel() * sizeof(float));
      return out;
    });
  }));
  o.Set("dispose", Napi::Function::New(env, [s](const Napi::CallbackInfo& info) -> Napi::Value {
    s->R.clear();
    s->t = at::Tensor();
    s->model.reset();
    return info.Env().Undefined();
  }));
  return o;
}

namespace {

// ------------------------------------------------------------------ runPlanOps

class RunPlanOpsRequest : public Request {
 public:
  RunPlanOpsRequest(Napi::Env env, ModelPtr model, PlanSpec plan, at::Tensor x)
      : Request(env, "runPlanOps"), model_(std::move(model)), plan_(std::move(plan)), x_(std::move(x)) {}

 protected:
  void Run() override {
    c10::InferenceMode inference;
    std::lock_guard<std::mutex> lock(model_->mutex);
#ifdef SCIRE_TORCH_HAS_CUDA
    std::optional<c10::cuda::CUDAGuard> guard;
    if (model_->device.is_cuda()) guard.emplace(model_->device);
#endif
    PlanRunInputs in;
    in.x = x_.to(model_->device);
    out_ = RunPlanOps(*model_, plan_, in).to(at::kCPU).contiguous();
    x_ = at::Tensor();
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Float32Array out = Napi::Float32Array::New(env, static_cast<size_t>(out_.numel()));
    if (out_.numel() > 0) std::memcpy(out.Data(), out_.data_ptr<float>(), out_.numel() * sizeof(float));
    return out;
  }

 private:
  ModelPtr model_;
  PlanSpec plan_;
  at::Tensor x_, out_;
};

}  // namespace

Napi::Value RunPlanOpsJs(const Napi::CallbackInfo& info, Model& model) {
  const std::string where = "runPlanOps";
  ModelPtr handle = model.Handle();
  if (info.Length() < 2 || !info[1].IsObject()) throw TypeErrorFor(where, "opts", "an object { x, shape }");
  PlanSpec plan = ParsePlan(info[0]);
  const Napi::Object opts = info[1].As<Napi::Object>();
  const std::vector<int64_t> shape = ReadShape(opts, where);
  at::Tensor x = CopyFloat32(opts.Get("x"), where, "x", shape);
  auto request = std::make_shared<RunPlanOpsRequest>(info.Env(), std::move(handle), std::move(plan), std::move(x));
  return model.Runtime().Submit(request);
}

}  // namespace scire
