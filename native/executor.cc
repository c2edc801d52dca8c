#include "executor.h"

#include <torch/cuda.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "abort_handle.h"
#include "cuda_graph.h"
#include "device_dtype.h"
#include "errors.h"
#include "kernels/lincomb_tensor.h"
#include "kernels/masked_lincomb_tensor.h"
#include "kernels/threshold.h"
#include "model.h"
#include "model_runtime.h"
#include "plan.h"
#include "shape.h"

namespace scire {

// ------------------------------------------------------------------ the executor loop

namespace {

// ClassifierGradient with the evaluation named in the error of a failing classifier.
at::Tensor ClassifierCall(const ClassifierGuidance& clf, const at::Tensor& x, const at::Tensor& t, int evaluation,
                          int total, double tInput) {
  const std::string where = "classifier guidance at evaluation " + std::to_string(evaluation) + " of " +
                            std::to_string(total) + " (t = " + std::to_string(tInput) + "): ";
  try {
    return ClassifierGradient(clf, x, t);
  } catch (const ScireError& e) {
    throw ScireError(e.kind(), where + e.what(), e.code(), e.details());
  } catch (const c10::Error& e) {
    throw ScireError(ErrorKind::kError, where + "the classifier's forward failed: " + e.what_without_backtrace(),
                     "ERR_SCIRE_CLASSIFIER_CALL");
  } catch (const std::exception& e) {
    throw ScireError(ErrorKind::kError, where + "the classifier's forward failed: " + e.what(), "ERR_SCIRE_CLASSIFIER_CALL");
  }
}

}  // namespace

at::Tensor RunPlanOps(ModelHandle& model, const PlanSpec& plan, const PlanRunInputs& in, PlanRunHooks* hooks) {
  const at::Device device = in.x.device();
  const at::ScalarType modelType = model.dtype;
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(device);
  const std::vector<int64_t> shape = in.x.sizes().vec();
  const int64_t batch = shape[0];
  const float g = static_cast<float>(in.guidanceScale);

  if (plan.usesInpaint && !in.known.mask.defined()) {
    throw std::runtime_error("execute: the plan inpaints but the run has no inpainting inputs");
  }
  std::vector<at::Tensor> R(plan.numRegs);
  auto reg = [&](int i) -> const at::Tensor& {
    if (!R[i].defined()) R[i] = at::empty(shape, f32);
    return R[i];
  };
  // R[0] = initScale * x_T, out of place: the input stays untouched (it is a graph's static input).
  kernels::FusedLincomb(reg(0), {{static_cast<float>(plan.initScale), in.x}});

  // Network inputs, allocated once: x_in in the model dtype ([x; x] when guided), t in float32.
  std::vector<int64_t> evalShape = shape;
  if (in.guided) evalShape[0] = 2 * batch;
  const at::Tensor xIn = at::empty(evalShape, f32.dtype(modelType));
  const at::Tensor tIn = at::empty({evalShape[0]}, f32);
  const std::vector<at::Tensor> xInHalves =
      in.guided ? std::vector<at::Tensor>{xIn.narrow(0, 0, batch), xIn.narrow(0, batch, batch)}
                : std::vector<at::Tensor>{xIn};
  const at::Tensor* cond = in.cond.defined() ? &in.cond : nullptr;
  int evaluation = 0;  // 1-based index of the current evaluation
  int done = 0;        // ops run so far
  if (hooks && hooks->afterOp) hooks->afterOp(0, R);

  for (const PlanStep& step : plan.steps) {
    switch (step.kind) {
      case PlanStep::Kind::Eval: {
        if (hooks && hooks->beforeEval) hooks->beforeEval();
        const at::Tensor& src = R[step.src];
        for (const at::Tensor& half : xInHalves) kernels::FusedLincomb(half, {{static_cast<float>(step.inScale), src}});
        tIn.fill_(step.t);
        const bool timed = hooks && hooks->timeModel;
        if (timed && device.is_cuda()) torch::cuda::synchronize(device.index());
        const auto m0 = std::chrono::steady_clock::now();
        ++evaluation;
        at::Tensor raw;
        try {
          raw = RunModel(model, xIn, tIn, cond);
        } catch (...) {
          RethrowModelCallError({evaluation, plan.nfe, step.t, DescribeModelInputs(xIn, tIn, cond)});
        }
        if (timed) {
          if (device.is_cuda()) torch::cuda::synchronize(device.index());
          hooks->modelMs += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - m0).count();
        }
        // Non-finite check without a host sync: the evaluation's output sum (float64, so no
        // finite output overflows it) stays on the device until the caller reads them all.
        if (in.evalSums.defined()) in.evalSums.select(0, evaluation - 1).copy_(raw.sum(at::kDouble));
        if (raw.scalar_type() != at::kFloat && raw.scalar_type() != modelType) raw = raw.to(at::kFloat);
        raw = raw.contiguous();
        // R[dst] = outX * x_in + outM * raw with x_in = inScale * R[src], in one pass; under
        // guidance raw = uncond + g * (cond - uncond) is folded into the coefficients.
        const float cx = static_cast<float>(step.outX * step.inScale);
        const float cm = static_cast<float>(step.outM);
        std::vector<kernels::Term> terms;
        if (!(cx == 0.f && raw.scalar_type() == at::kFloat)) terms.push_back({cx, src});
        if (in.guided) {
          terms.push_back({cm * (1.f - g), raw.narrow(0, 0, batch)});
          terms.push_back({cm * g, raw.narrow(0, batch, batch)});
        } else {
          terms.push_back({cm, raw});
        }
        at::Tensor grad;  // kept alive until the lincomb below has read it
        if (in.classifier != nullptr) {
          // The classifier sees the network's input x_in (in float32 whatever the model dtype).
          const at::Tensor xc = xIn.scalar_type() == at::kFloat ? xIn : src.mul(step.inScale);
          grad = ClassifierCall(*in.classifier, xc, tIn, evaluation, plan.nfe, step.t);
          // The fused kernel takes the terms after the first in one dtype: a 16-bit network's.
          if (grad.scalar_type() != raw.scalar_type()) grad = grad.to(raw.scalar_type());
          terms.push_back({static_cast<float>(in.classifier->scale * step.gradCoef), grad});
        }
        kernels::FusedLincomb(reg(step.dst), terms);
        if (hooks && hooks->afterEval) hooks->afterEval(step);
        break;
      }
      case PlanStep::Kind::Lincomb: {
        std::vector<kernels::Term> terms;
        for (int k = 0; k < step.terms; ++k) terms.push_back({static_cast<float>(step.coef[k]), R[step.reg[k]]});
        if (step.inpaint) {
          // the inpainting correction fused into the same pass (kernels/masked_lincomb.h)
          kernels::FusedMaskedLincomb(reg(step.dst), terms, in.known, static_cast<float>(step.inpaintA),
                                      static_cast<float>(step.inpaintS));
        } else {
          kernels::FusedLincomb(reg(step.dst), terms);
        }
        break;
      }
      case PlanStep::Kind::Inpaint: {
        const at::Tensor& r = R[step.reg[0]];
        kernels::FusedMaskedLincomb(r, {{1.f, r}}, in.known, static_cast<float>(step.inpaintA),
                                    static_cast<float>(step.inpaintS));
        break;
      }
      case PlanStep::Kind::Threshold:
        kernels::DynamicThreshold(R[step.reg[0]], step.ratio, step.maxVal);
        break;
    }
    ++done;
    if (hooks && hooks->afterOp) hooks->afterOp(done, R);
  }
  at::Tensor out = at::empty(shape, f32);
  if (plan.finalInpaint) {
    kernels::FusedMaskedLincomb(out, {{static_cast<float>(plan.finalScale), R[plan.finalSrc]}}, in.known,
                                static_cast<float>(plan.finalA), static_cast<float>(plan.finalS));
  } else {
    kernels::FusedLincomb(out, {{static_cast<float>(plan.finalScale), R[plan.finalSrc]}});
  }
  return out;
}

namespace {

constexpr const char* kWhere = "execute";

using Clock = std::chrono::steady_clock;
double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// ------------------------------------------------------------------ options (JS thread)

struct ExecuteInputs {
  at::Tensor x;                // CPU float32, `shape`
  std::vector<int64_t> shape;
  at::Tensor cond;             // CPU float32 or undefined
  at::Tensor uncond;           // CPU float32 or undefined (then no guidance)
  double guidanceScale = 1.0;
  GraphMode graphMode = GraphMode::kAuto;  // opts.cudaGraph (cuda_graph.h)
  // opts.intermediates: the snapshots ('x': plan.states, 'x0': the evaluations' data
  // predictions) copied to the host and delivered with the step events; empty when not asked.
  std::vector<PlanSnapshot> snapshots;
  // opts.inpaint: CPU float32 tensors shaped like x (undefined without inpainting).
  kernels::KnownRegion known;
  // opts.classifier / classLabels / classifierScale: classifier guidance (labels on the CPU
  // until the run moves them to the device); classifier.model is null without it.
  ClassifierGuidance classifier;
};

// opts.inpaint = { x0, mask, noise }: Float32Arrays of prod(shape) values, mask in [0, 1] and
// x0, noise finite (lib/execute.ts checks the same with the same field names).
kernels::KnownRegion ParseInpaint(const Napi::Value& v, const std::vector<int64_t>& shape) {
  if (!v.IsObject() || v.IsArray() || v.IsFunction()) {
    throw TypeErrorFor(kWhere, "opts.inpaint", "an object { x0, mask, noise } of Float32Arrays");
  }
  const Napi::Object o = v.As<Napi::Object>();
  kernels::KnownRegion known;
  known.x0 = CopyFloat32(o.Get("x0"), kWhere, "opts.inpaint.x0", shape);
  known.mask = CopyFloat32(o.Get("mask"), kWhere, "opts.inpaint.mask", shape);
  known.noise = CopyFloat32(o.Get("noise"), kWhere, "opts.inpaint.noise", shape);
  if (!known.mask.ge(0).logical_and(known.mask.le(1)).all().item<bool>()) {  // NaN fails both
    throw RangeErrorFor(kWhere, "opts.inpaint.mask", "must hold numbers in [0, 1] (1 = known)");
  }
  if (!known.x0.isfinite().all().item<bool>()) throw RangeErrorFor(kWhere, "opts.inpaint.x0", "must hold finite numbers");
  if (!known.noise.isfinite().all().item<bool>()) throw RangeErrorFor(kWhere, "opts.inpaint.noise", "must hold finite numbers");
  return known;
}

// opts.classifier, classLabels, classifierScale (lib/execute.ts checks them first with the
// package's messages; these checks keep a direct call of the addon safe).
void ParseClassifier(const Napi::Object& opts, const ModelHandle& model, ExecuteInputs& in) {
  const Napi::Value clf = opts.Get("classifier");
  const Napi::Value labels = opts.Get("classLabels");
  const Napi::Value scale = opts.Get("classifierScale");
  if (clf.IsUndefined()) {
    if (!labels.IsUndefined() || !scale.IsUndefined()) {
      throw TypeErrorFor(kWhere, "opts.classifier", "a Model (loadModel) when classLabels / classifierScale are given");
    }
    return;
  }
  ModelPtr handle = Model::FromValue(clf, "execute: opts.classifier")->Handle();
  if (handle->device != model.device) {
    throw TypeErrorFor(kWhere, "opts.classifier", "a model on the network's device (" + DeviceName(model.device) +
                                                      "), not on " + DeviceName(handle->device));
  }
  if (in.uncond.defined()) {
    throw TypeErrorFor(kWhere, "opts.classifier",
                       "absent when classifier-free guidance (uncond / guidanceScale) is given: the two guidance "
                       "types are exclusive, as in the authors' model_wrapper");
  }
  if (!labels.IsTypedArray() || labels.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    throw TypeErrorFor(kWhere, "opts.classLabels", "an Int32Array (one label per batch element) when opts.classifier is given");
  }
  const Napi::Int32Array arr = labels.As<Napi::Int32Array>();
  if (static_cast<int64_t>(arr.ElementLength()) != in.shape[0]) {
    throw RangeErrorFor(kWhere, "opts.classLabels.length", "must equal the batch size shape[0] = " +
                                                               std::to_string(in.shape[0]) + " (got " +
                                                               std::to_string(arr.ElementLength()) + ")");
  }
  at::Tensor y = at::empty({in.shape[0]}, at::kLong);
  int64_t* yp = y.data_ptr<int64_t>();
  int64_t maxLabel = 0;
  for (size_t i = 0; i < arr.ElementLength(); ++i) {
    if (arr[i] < 0) {
      throw RangeErrorFor(kWhere, "opts.classLabels[" + std::to_string(i) + "]",
                          "must be a non-negative class index (got " + std::to_string(arr[i]) + ")");
    }
    yp[i] = arr[i];
    maxLabel = std::max<int64_t>(maxLabel, arr[i]);
  }
  if (!scale.IsUndefined() && (!scale.IsNumber() || !std::isfinite(scale.As<Napi::Number>().DoubleValue()))) {
    throw TypeErrorFor(kWhere, "opts.classifierScale", "a finite number");
  }
  in.classifier.model = std::move(handle);
  in.classifier.labels = y;
  in.classifier.maxLabel = maxLabel;
  in.classifier.scale = scale.IsUndefined() ? 1.0 : scale.As<Napi::Number>().DoubleValue();
}

// opts.intermediates ('x' | 'x0'): which marks of the plan ParsePlan reads.
PlanMarks ParseMarks(const Napi::Value& v) {
  if (v.IsUndefined()) return PlanMarks::kNone;
  const std::string mode = v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
  if (mode == "x") return PlanMarks::kStates;
  if (mode == "x0") return PlanMarks::kX0;
  throw TypeErrorFor(kWhere, "opts.intermediates", "one of 'x', 'x0'");
}

// The snapshots of the plan the run reports for those marks.
std::vector<PlanSnapshot> SnapshotsFor(PlanMarks marks, const PlanSpec& plan) {
  if (marks == PlanMarks::kNone) return {};
  if (marks == PlanMarks::kStates) {
    if (plan.states.empty()) {
      throw ScireError(ErrorKind::kError, std::string(kWhere) + ": opts.intermediates 'x' needs a plan that marks its states (plan.states)",
                       "ERR_SCIRE_NO_INTERMEDIATES");
    }
    return plan.states;
  }
  if (!plan.hasX0) {
    throw ScireError(ErrorKind::kError, std::string(kWhere) + ": opts.intermediates 'x0' needs x0 terms on every eval op of the plan",
                     "ERR_SCIRE_NO_INTERMEDIATES");
  }
  return plan.x0;
}

ExecuteInputs ParseInputs(const Napi::Object& opts, const ModelHandle& model) {
  ExecuteInputs in;
  in.graphMode = ParseGraphMode(opts.Get("cudaGraph"), kWhere, "opts.cudaGraph");
  in.shape = ParseShape(opts.Get("shape"), kWhere, "opts.shape");
  in.x = CopyFloat32(opts.Get("x"), kWhere, "opts.x", in.shape);
  const Napi::Value inpaint = opts.Get("inpaint");
  if (!inpaint.IsUndefined()) in.known = ParseInpaint(inpaint, in.shape);

  const Napi::Value cond = opts.Get("cond");
  const Napi::Value uncond = opts.Get("uncond");
  const Napi::Value scale = opts.Get("guidanceScale");
  if (!cond.IsUndefined()) {
    if (model.numInputs < 3) {
      throw ScireError(ErrorKind::kTypeError,
                       std::string(kWhere) + ": opts.cond was given but the model's forward takes (x, t) only",
                       "ERR_SCIRE_UNEXPECTED_COND");
    }
    const std::vector<int64_t> condShape = ParseShape(opts.Get("condShape"), kWhere, "opts.condShape");
    if (condShape[0] != in.shape[0]) {
      throw RangeErrorFor(kWhere, "opts.condShape[0]", "must equal the batch size shape[0] = " +
                                                           std::to_string(in.shape[0]) + " (got " +
                                                           std::to_string(condShape[0]) + ")");
    }
    in.cond = CopyFloat32(cond, kWhere, "opts.cond", condShape);
    if (!uncond.IsUndefined()) {
      in.uncond = CopyFloat32(uncond, kWhere, "opts.uncond", condShape);
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
  ParseClassifier(opts, model, in);
  return in;
}

struct StepEvent {
  int nfe;
  int total;
  double t;
  double tCont;
  at::Tensor x;  // CPU float32 snapshot (intermediates) or undefined
};

// ------------------------------------------------------------------ the request

class ExecuteRequest : public Request {
 public:
  ExecuteRequest(Napi::Env env, ModelPtr model, PlanSpec plan, ExecuteInputs inputs)
      : Request(env, kWhere), model_(std::move(model)), plan_(std::move(plan)), inputs_(std::move(inputs)),
        shape_(inputs_.shape) {}

  // ---- JS thread, before Submit
  void SetOnStep(const Napi::Function& fn) { onStep_ = Napi::Persistent(fn); }
  void WatchAbortHandle(const AbortFlagPtr& flag) {
    SetUserAbort(flag);
    handleFlag_ = flag;
    std::weak_ptr<Request> weak = weak_from_this();
    handleListener_ = flag->AddListener([weak] {
      if (auto self = weak.lock()) self->AbortFromJs();
    });
  }
  void WatchSignal(Napi::Env env, const Napi::Object& signal) {
    std::weak_ptr<Request> weak = weak_from_this();
    Napi::Function listener = Napi::Function::New(
        env,
        [weak](const Napi::CallbackInfo&) {
          if (auto self = weak.lock()) self->AbortFromJs();
        },
        "onAbort");
    signal.Get("addEventListener").As<Napi::Function>().Call(signal, {Napi::String::New(env, "abort"), listener});
    signal_ = Napi::Persistent(signal);
    signalListener_ = Napi::Persistent(listener);
  }

 protected:
  // ---- owner thread
  void Run() override {
    c10::InferenceMode inference;
    const auto started = Clock::now();
    const at::Device device = model_->device;
    const bool snapshots = !inputs_.snapshots.empty();
    const bool inpaint = inputs_.known.mask.defined();
    const bool guidedByClassifier = inputs_.classifier.model != nullptr;
    if (guidedByClassifier && device.is_cuda() && inputs_.graphMode == GraphMode::kAuto) {
      graphStatus_ = "eager";
      graphReason_ = "classifier guidance runs autograd between evaluations";
    } else if (!snapshots && !inpaint && (inputs_.graphMode == GraphMode::kOn || (device.is_cuda() && inputs_.graphMode == GraphMode::kAuto))) {
      return RunAsGraph(started);
    }
    if (!guidedByClassifier && snapshots && device.is_cuda() && inputs_.graphMode == GraphMode::kAuto) {
      graphStatus_ = "eager";
      graphReason_ = "intermediates are copied to the host between ops";
    } else if (inpaint && device.is_cuda() && inputs_.graphMode == GraphMode::kAuto) {
      graphStatus_ = "eager";
      graphReason_ = "inpainting runs op by op (its inputs are no graph inputs)";
    }
    // The eager path is the executor loop with this run's hooks: the abort check before each
    // evaluation, progress after it, the network timing.
    PlanRunInputs in;
    in.x = inputs_.x.to(device);
    in.guided = inputs_.uncond.defined();
    in.guidanceScale = inputs_.guidanceScale;
    if (inputs_.cond.defined()) {
      const at::Tensor cond = in.guided ? at::cat({inputs_.uncond, inputs_.cond}) : inputs_.cond;
      in.cond = cond.to(device, model_->dtype).contiguous();
    }
    PlanRunHooks hooks;
    hooks.timeModel = true;
    hooks.beforeEval = [this] {
      if (StopRequested()) throw AbortedRun();
    };
    hooks.afterEval = [this](const PlanStep& step) { ReportStep(step); };
    if (snapshots) hooks.afterOp = [this](int done, const std::vector<at::Tensor>& R) { ReportSnapshots(done, R); };
    if (inpaint) {
      in.known.mask = inputs_.known.mask.to(device);
      in.known.x0 = inputs_.known.x0.to(device);
      in.known.noise = inputs_.known.noise.to(device);
    }
    in.evalSums = EvalSumsBuffer(device);
    ClassifierGuidance classifier;
    if (guidedByClassifier) {
      classifier = inputs_.classifier;
      // Moved outside inference mode: the labels are an index the backward pass of gather keeps.
      c10::InferenceMode normalTensors(false);
      classifier.labels = classifier.labels.to(device);
      in.classifier = &classifier;
    }
    const at::Tensor out = RunPlanOps(*model_, plan_, in, &hooks);
    result_ = out.to(at::kCPU).contiguous();  // waits for the device
    ReadEvalSums(in.evalSums);
    CheckResultFinite();
    totalMs_ = MsSince(started);
    modelMs_ = hooks.modelMs;
  }

  void ReleaseInputs() override { inputs_ = ExecuteInputs(); }

  // ---- JS thread
  Napi::Value OverrideError(Napi::Env env) override {
    return callbackError_.IsEmpty() ? Napi::Value() : callbackError_.Value();
  }

  Napi::Value Result(Napi::Env env) override {
    const size_t n = static_cast<size_t>(result_.numel());
    Napi::Float32Array data = Napi::Float32Array::New(env, n);
    if (n > 0) std::memcpy(data.Data(), result_.data_ptr<float>(), n * sizeof(float));
    result_ = at::Tensor();
    Napi::Array shape = Napi::Array::New(env, shape_.size());
    for (uint32_t i = 0; i < shape_.size(); ++i) shape.Set(i, static_cast<double>(shape_[i]));
    Napi::Object timings = Napi::Object::New(env);
    timings.Set("totalMs", totalMs_);
    timings.Set("modelMs", modelMs_);
    timings.Set("solverMs", std::isnan(modelMs_) ? modelMs_ : std::max(0.0, totalMs_ - modelMs_));
    timings.Set("device", DeviceName(model_->device));
    timings.Set("cudaGraph", graphStatus_);
    if (!graphReason_.empty()) timings.Set("cudaGraphReason", graphReason_);
    if (graphStatus_ == "captured") timings.Set("cudaGraphCaptureMs", graphCaptureMs_);
    Napi::Object result = Napi::Object::New(env);
    result.Set("data", data);
    result.Set("shape", shape);
    result.Set("nfe", nfe_);
    // 1-based index of the first evaluation whose model output was not finite, 0 when all
    // were finite, -1 when not measured.
    result.Set("nonFiniteEval", nonFiniteEval_);
    result.Set("finite", resultFinite_);  // no NaN / Infinity in data
    result.Set("timings", timings);
    return result;
  }

  void ReleaseJs(bool canCallJs) override {
    if (handleFlag_) {
      handleFlag_->RemoveListener(handleListener_);
      handleFlag_.reset();
    }
    if (canCallJs && !signal_.IsEmpty()) {
      try {
        Napi::Env env = signal_.Env();
        Napi::HandleScope scope(env);
        Napi::Value remove = signal_.Value().Get("removeEventListener");
        if (remove.IsFunction()) {
          remove.As<Napi::Function>().Call(signal_.Value(), {Napi::String::New(env, "abort"), signalListener_.Value()});
        }
      } catch (...) {
        // a signal whose removeEventListener throws: nothing left to undo
      }
    }
    signal_.Reset();
    signalListener_.Reset();
    onStep_.Reset();
    callbackError_.Reset();
  }

 private:
  // The whole plan as one CUDA graph (cuda_graph.h): x_T in and the result out through pinned
  // memory, no synchronisation in between. The network and the solver share one launch, so
  // modelMs / solverMs are not measured (NaN); step events are delivered after the run.
  void RunAsGraph(Clock::time_point started) {
    if (StopRequested()) throw AbortedRun();
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
      if (step.kind == PlanStep::Kind::Eval) ReportStep(step);
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

  // Whether the result is finite, found here on the owner thread (a float64 sum of finite
  // float32 values cannot overflow) so that JS need not scan it.
  void CheckResultFinite() {
    resultFinite_ = result_.numel() == 0 || std::isfinite(result_.sum(at::kDouble).item<double>());
  }

  // Owner thread: copies the snapshots due after `done` ops to the host (one device sync
  // each, paid only with intermediates) and queues them as step events.
  void ReportSnapshots(int done, const std::vector<at::Tensor>& R) {
    const std::vector<PlanSnapshot>& snaps = inputs_.snapshots;
    for (; nextSnapshot_ < snaps.size() && snaps[nextSnapshot_].after == done; ++nextSnapshot_) {
      const PlanSnapshot& snap = snaps[nextSnapshot_];
      std::vector<kernels::Term> terms;
      for (int k = 0; k < snap.terms; ++k) terms.push_back({static_cast<float>(snap.coef[k]), R[snap.reg[k]]});
      const at::Tensor x = at::empty(shape_, R[0].options());
      kernels::FusedLincomb(x, terms);
      StepEvent ev{nfe_, plan_.nfe, snap.t, snap.tCont, x.to(at::kCPU).contiguous()};
      PostToJs([this, ev](Napi::Env env) { DeliverStep(env, ev); });
    }
  }

  // Owner thread: counts the evaluation and queues its step event for onStep (with
  // intermediates the snapshots are the step events instead).
  void ReportStep(const PlanStep& step) {
    ++nfe_;
    if (!hasOnStep_ || !inputs_.snapshots.empty()) return;
    const StepEvent ev{nfe_, plan_.nfe, step.t, step.tCont, at::Tensor()};
    PostToJs([this, ev](Napi::Env env) { DeliverStep(env, ev); });  // PostToJs keeps `this` alive
  }

  // JS thread: calls onStep; a throw stops the run and becomes the promise's rejection.
  void DeliverStep(Napi::Env env, const StepEvent& ev) {
    if (!callbackError_.IsEmpty() || onStep_.IsEmpty()) return;
    Napi::HandleScope scope(env);
    Napi::Object o = Napi::Object::New(env);
    o.Set("nfe", ev.nfe);
    o.Set("total", ev.total);
    o.Set("t", ev.t);
    o.Set("tCont", ev.tCont);
    if (ev.x.defined()) {
      const size_t n = static_cast<size_t>(ev.x.numel());
      Napi::Float32Array x = Napi::Float32Array::New(env, n);
      if (n > 0) std::memcpy(x.Data(), ev.x.data_ptr<float>(), n * sizeof(float));
      o.Set("x", x);
    }
    try {
      onStep_.Call({o});
    } catch (const Napi::Error& e) {
      callbackError_ = Napi::Persistent(static_cast<Napi::Value>(e.Value()));
      RequestStop();
    }
  }

 public:
  bool hasOnStep_ = false;  // set before Submit (read on the owner thread)

 private:
  ModelPtr model_;
  PlanSpec plan_;
  ExecuteInputs inputs_;
  std::vector<int64_t> shape_;
  // owner thread, then JS thread after the completion
  at::Tensor result_;
  int nfe_ = 0;
  size_t nextSnapshot_ = 0;
  double totalMs_ = 0, modelMs_ = 0;
  std::string graphStatus_ = "off", graphReason_;
  double graphCaptureMs_ = 0;
  int nonFiniteEval_ = -1;
  bool resultFinite_ = true;
  // JS thread
  Napi::FunctionReference onStep_;
  Napi::Reference<Napi::Value> callbackError_;
  Napi::ObjectReference signal_;
  Napi::FunctionReference signalListener_;
  AbortFlagPtr handleFlag_;
  uint64_t handleListener_ = 0;
};

}  // namespace

// ------------------------------------------------------------------ model.execute(plan, opts)

Napi::Value ExecuteJs(const Napi::CallbackInfo& info, Model& model) {
  Napi::Env env = info.Env();
  ModelPtr handle = model.Handle();
  if (info.Length() < 2 || !info[1].IsObject()) {
    throw TypeErrorFor(kWhere, "opts", "an object { x, shape, cond?, condShape?, uncond?, guidanceScale?, classifier?, classLabels?, classifierScale?, onStep?, intermediates?, inpaint?, signal?, abortHandle?, cudaGraph? }");
  }
  const Napi::Object opts = info[1].As<Napi::Object>();
  const PlanMarks marks = ParseMarks(opts.Get("intermediates"));
  PlanSpec plan = ParsePlan(info[0], marks);
  ExecuteInputs inputs = ParseInputs(opts, *handle);
  inputs.snapshots = SnapshotsFor(marks, plan);
  if (plan.usesInpaint && !inputs.known.mask.defined()) {
    throw TypeErrorFor(kWhere, "opts.inpaint", "an object { x0, mask, noise } for a plan that inpaints (compiled with inpaint: true)");
  }
  if (!plan.usesInpaint && inputs.known.mask.defined()) {
    throw TypeErrorFor(kWhere, "opts.inpaint", "absent for a plan without inpainting (compile it with inpaint: true)");
  }
  if (inputs.known.mask.defined() && inputs.graphMode == GraphMode::kOn) {
    throw TypeErrorFor(kWhere, "opts.cudaGraph", "'auto' or false when opts.inpaint is given");
  }
  if (inputs.classifier.model) {
    for (size_t i = 0; i < plan.steps.size(); ++i) {
      if (plan.steps[i].kind == PlanStep::Kind::Eval && !plan.steps[i].hasGradCoef) {
        throw TypeErrorFor(kWhere, "plan.ops[" + std::to_string(i) + "].gradCoef",
                           "a finite number when opts.classifier is given (compile the plan with compilePlan)");
      }
    }
    if (inputs.graphMode == GraphMode::kOn) {
      throw TypeErrorFor(kWhere, "opts.cudaGraph", "'auto' or false when opts.classifier is given");
    }
  }

  AbortFlagPtr userAbort;
  const Napi::Value abortHandle = opts.Get("abortHandle");
  if (!abortHandle.IsUndefined()) userAbort = AbortFlagFromValue(abortHandle, "execute: opts.abortHandle");
  const Napi::Value onStep = opts.Get("onStep");
  if (!onStep.IsUndefined() && !onStep.IsFunction()) throw TypeErrorFor(kWhere, "opts.onStep", "a function");
  if (!inputs.snapshots.empty()) {
    if (onStep.IsUndefined()) throw TypeErrorFor(kWhere, "opts.onStep", "a function when opts.intermediates is given");
    if (inputs.graphMode == GraphMode::kOn) {
      throw TypeErrorFor(kWhere, "opts.cudaGraph", "'auto' or false when opts.intermediates is given");
    }
  }
  const Napi::Value signal = opts.Get("signal");
  if (!signal.IsUndefined() && (!signal.IsObject() || !signal.As<Napi::Object>().Get("addEventListener").IsFunction())) {
    throw TypeErrorFor(kWhere, "opts.signal", "an AbortSignal");
  }
  const bool alreadyAborted = (userAbort && userAbort->IsSet()) ||
                              (!signal.IsUndefined() && signal.As<Napi::Object>().Get("aborted").ToBoolean().Value());
  if (alreadyAborted) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Reject(MakeAbortError(env).Value());
    return deferred.Promise();
  }

  auto request = std::make_shared<ExecuteRequest>(env, handle, std::move(plan), std::move(inputs));
  if (userAbort) request->WatchAbortHandle(userAbort);
  if (!signal.IsUndefined()) request->WatchSignal(env, signal.As<Napi::Object>());
  if (!onStep.IsUndefined()) {
    request->SetOnStep(onStep.As<Napi::Function>());
    request->hasOnStep_ = true;
  }
  return model.Runtime().Submit(request);
}

}  // namespace scire
