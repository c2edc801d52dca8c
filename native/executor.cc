#include "executor.h"

#include <torch/cuda.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "abort_handle.h"
#include "cuda_graph.h"
#include "device_dtype.h"
#include "errors.h"
#include "exports.h"
#include "kernel_bindings.h"
#include "kernels/lincomb_tensor.h"
#include "kernels/threshold.h"
#include "model.h"
#include "plan.h"

namespace scire {
namespace {

constexpr const char* kWhere = "execute";

// ------------------------------------------------------------------ options (JS thread)

struct ExecuteInputs {
  at::Tensor x;                // CPU float32, `shape`
  std::vector<int64_t> shape;
  at::Tensor cond;             // CPU float32 or undefined
  at::Tensor uncond;           // CPU float32 or undefined (then no guidance)
  double guidanceScale = 1.0;
  GraphMode graphMode = GraphMode::kAuto;  // opts.cudaGraph (cuda_graph.h)
};

at::Tensor CopyFloat32(const Napi::Value& value, const std::string& field, const std::vector<int64_t>& shape) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw TypeErrorFor(kWhere, field, "a Float32Array");
  }
  auto array = value.As<Napi::Float32Array>();
  at::Tensor t = at::empty(shape, at::kFloat);
  if (t.numel() != static_cast<int64_t>(array.ElementLength())) {
    throw RangeErrorFor(kWhere, field, "has " + std::to_string(array.ElementLength()) + " elements but its shape needs " +
                                           std::to_string(t.numel()));
  }
  if (t.numel() > 0) std::memcpy(t.data_ptr<float>(), array.Data(), t.numel() * sizeof(float));
  return t;
}

std::vector<int64_t> ParseShapeOption(const Napi::Value& value, const std::string& field) {
  if (!value.IsArray()) throw TypeErrorFor(kWhere, field, "an array of positive integers");
  auto arr = value.As<Napi::Array>();
  if (arr.Length() == 0) throw RangeErrorFor(kWhere, field, "must have at least one dimension (got [])");
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value d = arr.Get(i);
    const double v = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : 0.0;
    if (!d.IsNumber() || !(v >= 1 && v <= 9.0e15) || std::floor(v) != v) {
      throw TypeErrorFor(kWhere, field + "[" + std::to_string(i) + "]", "a positive integer");
    }
    shape.push_back(static_cast<int64_t>(v));
  }
  return shape;
}

ExecuteInputs ParseInputs(const Napi::Object& opts, const ModelHandle& model) {
  ExecuteInputs in;
  in.graphMode = ParseGraphMode(opts.Get("cudaGraph"), kWhere, "opts.cudaGraph");
  in.shape = ParseShapeOption(opts.Get("shape"), "opts.shape");
  in.x = CopyFloat32(opts.Get("x"), "opts.x", in.shape);

  const Napi::Value cond = opts.Get("cond");
  const Napi::Value uncond = opts.Get("uncond");
  const Napi::Value scale = opts.Get("guidanceScale");
  if (!cond.IsUndefined()) {
    if (model.numInputs < 3) {
      throw ScireError(ErrorKind::kTypeError,
                       std::string(kWhere) + ": opts.cond was given but the model's forward takes (x, t) only",
                       "ERR_SCIRE_UNEXPECTED_COND");
    }
    const std::vector<int64_t> condShape = ParseShapeOption(opts.Get("condShape"), "opts.condShape");
    if (condShape[0] != in.shape[0]) {
      throw RangeErrorFor(kWhere, "opts.condShape[0]", "must equal the batch size shape[0] = " +
                                                           std::to_string(in.shape[0]) + " (got " +
                                                           std::to_string(condShape[0]) + ")");
    }
    in.cond = CopyFloat32(cond, "opts.cond", condShape);
    if (!uncond.IsUndefined()) {
      in.uncond = CopyFloat32(uncond, "opts.uncond", condShape);
      if (!scale.IsNumber() || !std::isfinite(scale.As<Napi::Number>().DoubleValue())) {
        throw TypeErrorFor(kWhere, "opts.guidanceScale", "a finite number when opts.uncond is given");
      }
      in.guidanceScale = scale.As<Napi::Number>().DoubleValue();
    } else if (!scale.IsUndefined()) {
      throw TypeErrorFor(kWhere, "opts.uncond", "a Float32Array (the unconditional input) when guidanceScale is given");
    }
  } else {
    if (model.requiredInputs >= 3) {
      throw ScireError(ErrorKind::kTypeError,
                       std::string(kWhere) + ": the model's forward takes (x, t, cond): opts.cond (a Float32Array) "
                                             "and opts.condShape are required",
                       "ERR_SCIRE_MISSING_COND");
    }
    if (!uncond.IsUndefined() || !scale.IsUndefined()) {
      throw TypeErrorFor(kWhere, "opts.cond", "a Float32Array when uncond / guidanceScale are given");
    }
  }
  return in;
}

// ------------------------------------------------------------------ shared run state

/** What the worker and the thread-safe-function callbacks share; touched on the JS thread only
 *  after the worker finished (or, for the abort flags, atomically). */
struct RunState {
  explicit RunState(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise::Deferred deferred;
  AbortFlagPtr userAbort;                 // from opts.abortHandle (may be null)
  AbortFlagPtr signalAbort;               // set by the 'abort' listener on opts.signal
  Napi::ObjectReference signal;           // opts.signal, to remove the listener at the end
  Napi::FunctionReference signalListener;
  AbortFlag stop;                         // set when onStep threw
  Napi::ThreadSafeFunction progress;      // valid when onStep was given
  bool hasProgress = false;
  Napi::Reference<Napi::Value> callbackError;  // what onStep threw
  bool callbackFailed = false;

  bool StopRequested() const {
    return stop.IsSet() || (userAbort && userAbort->IsSet()) || (signalAbort && signalAbort->IsSet());
  }

  // Removes the 'abort' listener from opts.signal (JS thread).
  void DetachSignal() {
    if (signal.IsEmpty()) return;
    Napi::Value remove = signal.Value().Get("removeEventListener");
    if (remove.IsFunction()) {
      remove.As<Napi::Function>().Call(signal.Value(), {Napi::String::New(signal.Env(), "abort"), signalListener.Value()});
    }
    signal.Reset();
    signalListener.Reset();
  }
};
using RunStatePtr = std::shared_ptr<RunState>;

struct StepEvent {
  int nfe;
  int total;
  double t;
  double tCont;
};

struct AbortedRun {};  // thrown inside the worker when the flag is seen

// ------------------------------------------------------------------ the worker

using Clock = std::chrono::steady_clock;
double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

class ExecuteWorker : public Napi::AsyncWorker {
 public:
  ExecuteWorker(Napi::Env env, ModelPtr model, PlanSpec plan, ExecuteInputs inputs, RunStatePtr state)
      : Napi::AsyncWorker(env, "scire.execute"),
        model_(std::move(model)),
        plan_(std::move(plan)),
        inputs_(std::move(inputs)),
        state_(std::move(state)),
        shape_(inputs_.shape) {}

 protected:
  void Execute() override {
    try {
      Run();
    } catch (const AbortedRun&) {
      aborted_ = true;
      SetError("aborted");
    } catch (...) {
      failure_ = CaptureCurrentException(kWhere);
      SetError(failure_.message);
    }
    inputs_ = ExecuteInputs();  // free the host copies now, not when the JS side collects
  }

  void OnOK() override { Settle(); }
  void OnError(const Napi::Error&) override { Settle(); }

 private:
  void Run() {
    c10::InferenceMode inference;
    std::lock_guard<std::mutex> lock(model_->mutex);
    const auto started = Clock::now();
    const at::Device device = model_->device;
    const bool cuda = device.is_cuda();
    const bool guided = inputs_.uncond.defined();
    if (inputs_.graphMode == GraphMode::kOn || (cuda && inputs_.graphMode == GraphMode::kAuto)) {
      return RunAsGraph(started);
    }

    // The eager path is the capturable loop (cuda_graph.h RunPlanOps) with this run's hooks:
    // the abort check before each evaluation, progress after it, the network timing.
    PlanRunInputs in;
    in.x = inputs_.x.to(device);
    in.guided = guided;
    in.guidanceScale = inputs_.guidanceScale;
    if (inputs_.cond.defined()) {
      const at::Tensor cond = guided ? at::cat({inputs_.uncond, inputs_.cond}) : inputs_.cond;
      in.cond = cond.to(device, model_->dtype).contiguous();
    }
    PlanRunHooks hooks;
    hooks.timeModel = true;
    hooks.beforeEval = [this] {
      if (state_->StopRequested()) throw AbortedRun();
    };
    hooks.afterEval = [this](const PlanStep& step) {
      ++nfe_;
      if (!state_->hasProgress) return;
      const StepEvent ev{nfe_, plan_.nfe, step.t, step.tCont};
      RunStatePtr state = state_;
      state_->progress.NonBlockingCall([state, ev](Napi::Env env, Napi::Function onStep) {
        DeliverStep(env, onStep, *state, ev);
      });
    };
    in.evalSums = EvalSumsBuffer(device);
    const at::Tensor out = RunPlanOps(*model_, plan_, in, &hooks);
    result_ = out.to(at::kCPU).contiguous();  // waits for the device
    ReadEvalSums(in.evalSums);
    CheckResultFinite();
    totalMs_ = MsSince(started);
    modelMs_ = hooks.modelMs;
  }

  // The whole plan as one CUDA graph (cuda_graph.h): x_T in and the result out through pinned
  // memory, no synchronisation in between. The network and the solver share one launch, so
  // modelMs / solverMs are not measured (NaN); step events are delivered after the run.
  void RunAsGraph(Clock::time_point started) {
    if (state_->StopRequested()) throw AbortedRun();
    const at::Device device = model_->device;
    PlanRunInputs in;
    in.x = UploadToDevice(inputs_.x, device);
    in.guided = inputs_.uncond.defined();
    in.guidanceScale = inputs_.guidanceScale;
    if (inputs_.cond.defined()) {
      const at::Tensor cond = in.guided ? at::cat({inputs_.uncond, inputs_.cond}) : inputs_.cond;
      in.cond = UploadToDevice(cond.contiguous(), device).to(model_->dtype).contiguous();
    }
    in.evalSums = EvalSumsBuffer(device);
    const GraphRun run = RunPlanWithGraph(model_, plan_, in, inputs_.graphMode);
    result_ = DownloadToHost(run.out);
    ReadEvalSums(run.usedGraph ? run.evalSums : in.evalSums);
    CheckResultFinite();
    totalMs_ = MsSince(started);
    modelMs_ = std::numeric_limits<double>::quiet_NaN();
    graphStatus_ = run.usedGraph ? (run.capturedNow ? "captured" : "replayed") : "eager";
    graphReason_ = run.fallbackReason;
    graphCaptureMs_ = run.capturedNow ? run.warmupMs + run.captureMs : 0.0;
    for (const PlanStep& step : plan_.steps) {
      if (step.kind != PlanStep::Kind::Eval) continue;
      ++nfe_;
      if (!state_->hasProgress) continue;
      const StepEvent ev{nfe_, plan_.nfe, step.t, step.tCont};
      RunStatePtr state = state_;
      state_->progress.NonBlockingCall([state, ev](Napi::Env env, Napi::Function onStep) {
        DeliverStep(env, onStep, *state, ev);
      });
    }
  }

  // One float64 per evaluation on the device (see PlanRunInputs::evalSums).
  at::Tensor EvalSumsBuffer(const at::Device& device) const {
    return at::zeros({std::max(plan_.nfe, 1)}, at::TensorOptions().dtype(at::kDouble).device(device));
  }

  // Reads the per-evaluation output sums once, after the run: the first non-finite one is the
  // first evaluation whose model output had a NaN or an infinity (nonFiniteEval_, 1-based).
  void ReadEvalSums(const at::Tensor& sums) {
    if (!sums.defined()) {
      nonFiniteEval_ = -1;  // not measured (a graph captured without them)
      return;
    }
    const at::Tensor host = sums.to(at::kCPU).contiguous();
    const double* v = host.data_ptr<double>();
    for (int k = 0; k < plan_.nfe && k < host.numel(); ++k) {
      if (!std::isfinite(v[k])) {
        nonFiniteEval_ = k + 1;
        return;
      }
    }
    nonFiniteEval_ = 0;
  }

  // Whether the result is finite, found here on the worker thread (a float64 sum of finite
  // float32 values cannot overflow) so that JS need not scan it.
  void CheckResultFinite() {
    resultFinite_ = result_.numel() == 0 || std::isfinite(result_.sum(at::kDouble).item<double>());
  }

  static void DeliverStep(Napi::Env env, Napi::Function onStep, RunState& state, const StepEvent& ev) {
    if (state.callbackFailed) return;
    Napi::Object o = Napi::Object::New(env);
    o.Set("nfe", ev.nfe);
    o.Set("total", ev.total);
    o.Set("t", ev.t);
    o.Set("tCont", ev.tCont);
    try {
      onStep.Call({o});
    } catch (const Napi::Error& e) {
      state.callbackFailed = true;
      state.callbackError = Napi::Persistent(static_cast<Napi::Value>(e.Value()));
      state.stop.Set();
    }
  }

  // Settles the promise after every queued step event (same FIFO queue), then releases the
  // thread-safe function so the event loop may exit.
  void Settle() {
    auto outcome = std::make_shared<Outcome>();
    outcome->aborted = aborted_;
    outcome->failed = !aborted_ && !failure_.message.empty();
    outcome->failure = failure_;
    outcome->result = std::move(result_);
    outcome->shape = shape_;
    outcome->nfe = nfe_;
    outcome->totalMs = totalMs_;
    outcome->modelMs = modelMs_;
    outcome->device = DeviceName(model_->device);
    outcome->graphStatus = graphStatus_;
    outcome->graphReason = graphReason_;
    outcome->graphCaptureMs = graphCaptureMs_;
    outcome->nonFiniteEval = nonFiniteEval_;
    outcome->resultFinite = resultFinite_;
    RunStatePtr state = state_;
    if (state->hasProgress) {
      const napi_status st = state->progress.NonBlockingCall(
          [state, outcome](Napi::Env env, Napi::Function) { Finish(env, *state, *outcome); });
      state->progress.Release();
      if (st == napi_ok) return;
    }
    Finish(Env(), *state, *outcome);
  }

  struct Outcome {
    bool aborted = false, failed = false;
    Failure failure;
    at::Tensor result;
    std::vector<int64_t> shape;
    int nfe = 0;
    double totalMs = 0, modelMs = 0;
    std::string device;
    std::string graphStatus = "off", graphReason;  // timings.cudaGraph / cudaGraphReason
    double graphCaptureMs = 0;
    int nonFiniteEval = -1;
    bool resultFinite = true;
  };

  static void Finish(Napi::Env env, RunState& state, Outcome& outcome) {
    Napi::HandleScope scope(env);
    try {
      state.DetachSignal();
    } catch (const Napi::Error&) {
      // a signal whose removeEventListener throws: nothing left to undo
    }
    if (state.callbackFailed) {
      state.deferred.Reject(state.callbackError.Value());
      state.callbackError.Reset();
    } else if (outcome.aborted) {
      state.deferred.Reject(MakeAbortError(env).Value());
    } else if (outcome.failed) {
      state.deferred.Reject(outcome.failure.ToJs(env).Value());
    } else {
      // Runs inside a thread-safe-function call or AsyncWorker::OnOK, which pass on only
      // Napi::Error: any other exception here would terminate the process, so reject instead.
      try {
        Resolve(env, state, outcome);
      } catch (const Napi::Error& e) {
        state.deferred.Reject(e.Value());
      } catch (...) {
        state.deferred.Reject(CaptureCurrentException(kWhere).ToJs(env).Value());
      }
    }
  }

  // Builds the result object and resolves the promise (JS thread).
  static void Resolve(Napi::Env env, RunState& state, Outcome& outcome) {
    const size_t n = static_cast<size_t>(outcome.result.numel());
    Napi::Float32Array data = Napi::Float32Array::New(env, n);
    if (n > 0) std::memcpy(data.Data(), outcome.result.data_ptr<float>(), n * sizeof(float));
    outcome.result = at::Tensor();
    Napi::Array shape = Napi::Array::New(env, outcome.shape.size());
    for (uint32_t i = 0; i < outcome.shape.size(); ++i) shape.Set(i, static_cast<double>(outcome.shape[i]));
    Napi::Object timings = Napi::Object::New(env);
    timings.Set("totalMs", outcome.totalMs);
    timings.Set("modelMs", outcome.modelMs);
    timings.Set("solverMs", std::isnan(outcome.modelMs) ? outcome.modelMs
                                                        : std::max(0.0, outcome.totalMs - outcome.modelMs));
    timings.Set("device", outcome.device);
    timings.Set("cudaGraph", outcome.graphStatus);
    if (!outcome.graphReason.empty()) timings.Set("cudaGraphReason", outcome.graphReason);
    if (outcome.graphStatus == "captured") timings.Set("cudaGraphCaptureMs", outcome.graphCaptureMs);
    Napi::Object result = Napi::Object::New(env);
    result.Set("data", data);
    result.Set("shape", shape);
    result.Set("nfe", outcome.nfe);
    // 1-based index of the first evaluation whose model output was not finite, 0 when all
    // were finite, -1 when not measured.
    result.Set("nonFiniteEval", outcome.nonFiniteEval);
    result.Set("finite", outcome.resultFinite);  // no NaN / Infinity in data
    result.Set("timings", timings);
    state.deferred.Resolve(result);
  }

  ModelPtr model_;
  PlanSpec plan_;
  ExecuteInputs inputs_;
  RunStatePtr state_;
  std::vector<int64_t> shape_;
  at::Tensor result_;
  int nfe_ = 0;
  double totalMs_ = 0, modelMs_ = 0;
  std::string graphStatus_ = "off", graphReason_;
  double graphCaptureMs_ = 0;
  int nonFiniteEval_ = -1;
  bool resultFinite_ = true;
  bool aborted_ = false;
  Failure failure_;
};

// ------------------------------------------------------------------ model.execute(plan, opts)

Napi::Value ExecuteJs(const Napi::CallbackInfo& info, Model& model) {
  Napi::Env env = info.Env();
  ModelPtr handle = model.Handle();
  if (info.Length() < 2 || !info[1].IsObject()) {
    throw TypeErrorFor(kWhere, "opts", "an object { x, shape, cond?, condShape?, uncond?, guidanceScale?, onStep?, signal?, abortHandle? }");
  }
  PlanSpec plan = ParsePlan(info[0]);
  const Napi::Object opts = info[1].As<Napi::Object>();
  ExecuteInputs inputs = ParseInputs(opts, *handle);

  auto state = std::make_shared<RunState>(env);
  const Napi::Value abortHandle = opts.Get("abortHandle");
  if (!abortHandle.IsUndefined()) state->userAbort = AbortFlagFromValue(abortHandle, "execute: opts.abortHandle");
  const Napi::Value onStep = opts.Get("onStep");
  if (!onStep.IsUndefined() && !onStep.IsFunction()) throw TypeErrorFor(kWhere, "opts.onStep", "a function");
  const Napi::Value signal = opts.Get("signal");
  if (!signal.IsUndefined()) {
    if (!signal.IsObject() || !signal.As<Napi::Object>().Get("addEventListener").IsFunction()) {
      throw TypeErrorFor(kWhere, "opts.signal", "an AbortSignal");
    }
    Napi::Object sig = signal.As<Napi::Object>();
    if (sig.Get("aborted").ToBoolean().Value()) {
      state->deferred.Reject(MakeAbortError(env).Value());
      return state->deferred.Promise();
    }
    auto flag = std::make_shared<AbortFlag>();
    Napi::Function listener = Napi::Function::New(env, [flag](const Napi::CallbackInfo&) { flag->Set(); }, "onAbort");
    sig.Get("addEventListener").As<Napi::Function>().Call(sig, {Napi::String::New(env, "abort"), listener});
    state->signalAbort = flag;
    state->signal = Napi::Persistent(sig);
    state->signalListener = Napi::Persistent(listener);
  }
  if (!onStep.IsUndefined()) {
    // Unlimited queue: NonBlockingCall never fails for a full queue and never blocks.
    state->progress = Napi::ThreadSafeFunction::New(env, onStep.As<Napi::Function>(), "scire.execute.onStep", 0, 1);
    state->hasProgress = true;
  }
  auto* worker = new ExecuteWorker(env, std::move(handle), std::move(plan), std::move(inputs), state);
  worker->Queue();
  return state->deferred.Promise();
}

void InitExecutorExports(Napi::Env env, Napi::Object exports) {
  exports.Set("createAbortHandle", Napi::Function::New(env, CreateAbortHandle, "createAbortHandle"));
  AddKernelBindings(env, exports);
}

[[maybe_unused]] const bool kExecuteRegistered = RegisterModelMethod("execute", &ExecuteJs);
[[maybe_unused]] const bool kExportsRegistered = RegisterExports(&InitExecutorExports);

}  // namespace

}  // namespace scire
