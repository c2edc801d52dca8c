#include "cuda_graph.h"

#include <torch/cuda.h>
#include <torch/version.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>

#include "errors.h"
#include "kernels/lincomb_tensor.h"
#include "kernels/threshold.h"

#ifdef SCIRE_TORCH_HAS_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

namespace scire {
namespace {

using Clock = std::chrono::steady_clock;
[[maybe_unused]] double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

/** FNV-1a over raw bytes. */
class Fnv1a {
 public:
  template <typename T>
  void Add(const T& value) {
    unsigned char bytes[sizeof(T)];
    std::memcpy(bytes, &value, sizeof(T));
    for (unsigned char b : bytes) {
      hash_ ^= b;
      hash_ *= 1099511628211ull;
    }
  }
  uint64_t value() const { return hash_; }

 private:
  uint64_t hash_ = 14695981039346656037ull;
};

}  // namespace

// ------------------------------------------------------------------ options

GraphMode ParseGraphMode(const Napi::Value& value, const std::string& where, const std::string& field) {
  if (value.IsUndefined()) return GraphMode::kAuto;
  if (value.IsBoolean()) return value.As<Napi::Boolean>().Value() ? GraphMode::kOn : GraphMode::kOff;
  if (value.IsString() && value.As<Napi::String>().Utf8Value() == "auto") return GraphMode::kAuto;
  std::string got = value.IsString() ? "'" + value.As<Napi::String>().Utf8Value() + "' of type string"
                                     : std::string("a value of type ") + (value.IsNumber() ? "number" : "object");
  throw ScireError(ErrorKind::kTypeError,
                   where + ": Expected 'auto', true or false for " + field + " but received " + got);
}

const char* GraphModeName(GraphMode mode) {
  switch (mode) {
    case GraphMode::kAuto: return "auto";
    case GraphMode::kOn: return "true";
    case GraphMode::kOff: return "false";
  }
  return "?";
}

bool CudaGraphsCompiled() {
#ifdef SCIRE_TORCH_HAS_CUDA
  return true;
#else
  return false;
#endif
}

// ------------------------------------------------------------------ the capturable loop

at::Tensor RunPlanOps(ModelHandle& model, const PlanSpec& plan, const PlanRunInputs& in, PlanRunHooks* hooks) {
  const at::Device device = in.x.device();
  const at::ScalarType modelType = model.dtype;
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(device);
  const std::vector<int64_t> shape = in.x.sizes().vec();
  const int64_t batch = shape[0];
  const float g = static_cast<float>(in.guidanceScale);

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
        kernels::FusedLincomb(reg(step.dst), terms);
        if (hooks && hooks->afterEval) hooks->afterEval(step);
        break;
      }
      case PlanStep::Kind::Lincomb: {
        std::vector<kernels::Term> terms;
        for (int k = 0; k < step.terms; ++k) terms.push_back({static_cast<float>(step.coef[k]), R[step.reg[k]]});
        kernels::FusedLincomb(reg(step.dst), terms);
        break;
      }
      case PlanStep::Kind::Threshold:
        kernels::DynamicThreshold(R[step.reg[0]], step.ratio, step.maxVal);
        break;
    }
  }
  at::Tensor out = at::empty(shape, f32);
  kernels::FusedLincomb(out, {{static_cast<float>(plan.finalScale), R[plan.finalSrc]}});
  return out;
}

uint64_t PlanFingerprint(const PlanSpec& plan) {
  Fnv1a h;
  h.Add(plan.numRegs);
  h.Add(plan.initScale);
  h.Add(plan.finalSrc);
  h.Add(plan.finalScale);
  h.Add(plan.nfe);
  h.Add(plan.steps.size());
  for (const PlanStep& s : plan.steps) {
    h.Add(static_cast<int>(s.kind));
    h.Add(s.t);
    h.Add(s.inScale);
    h.Add(s.outX);
    h.Add(s.outM);
    h.Add(s.src);
    h.Add(s.dst);
    h.Add(s.terms);
    for (int k = 0; k < s.terms; ++k) {
      h.Add(s.coef[k]);
      h.Add(s.reg[k]);
    }
    if (s.kind == PlanStep::Kind::Threshold) h.Add(s.reg[0]);
    h.Add(s.ratio);
    h.Add(s.maxVal);
  }
  return h.value();
}

// ------------------------------------------------------------------ the graph cache

namespace {

#ifdef SCIRE_TORCH_HAS_CUDA
/** A CUDAGraph that can return its capture pool to the allocator after a failed capture_end. */
struct PlanGraph : at::cuda::CUDAGraph {
  void BeginCapture() {
#if TORCH_VERSION_MAJOR >= 2
    // Thread-local mode: only this thread's unsafe CUDA calls invalidate the capture, so a
    // JS thread that touches CUDA meanwhile does not break it.
    capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
#else
    capture_begin();
#endif
  }
  // The allocator routes this capture's allocations through a filter that refers to this
  // object until endAllocateToPool; capture_end skips that call when it throws.
  void ReleasePoolRouting() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
    try {
      c10::cuda::CUDACachingAllocator::endAllocateToPool(static_cast<c10::DeviceIndex>(capture_dev_), mempool_id_);
    } catch (...) {
      // already ended by capture_end
    }
#endif
  }
};
#endif

/** What a captured graph depends on besides the model's weights. */
struct GraphKey {
  const ModelHandle* owner = nullptr;
  std::weak_ptr<ModelHandle> alive;  // the entry is dropped once the model is released
  uint64_t plan = 0;
  std::vector<int64_t> xShape, condShape;
  bool guided = false;
  double guidanceScale = 1.0;  // baked into the captured coefficients
  int deviceIndex = 0;
};

struct GraphEntry {
  explicit GraphEntry(GraphKey k) : key(std::move(k)) {}
  GraphKey key;
  std::string failure;  // non-empty: capture failed, run eagerly
#ifdef SCIRE_TORCH_HAS_CUDA
  std::unique_ptr<PlanGraph> graph;
#endif
  at::Tensor xStatic, condStatic, out;
  at::Tensor evalSums;  // the graph's per-evaluation output sums (when the capturing run asked for them)
};

std::mutex gCacheMutex;
std::vector<std::shared_ptr<GraphEntry>> gCache;

#ifdef SCIRE_TORCH_HAS_CUDA
// Graph objects whose capture threw: never destroyed, because the caching allocator (or the
// pinned-host allocator of newer LibTorch) may still hold a filter pointing at them. A few
// hundred bytes per failed (model, plan, shape), which is cached and never retried.
std::vector<std::unique_ptr<PlanGraph>> gFailedCaptures;
#endif

[[maybe_unused]] bool SameKey(const GraphKey& e, const GraphKey& k) {
  return e.owner == k.owner && e.plan == k.plan && e.xShape == k.xShape && e.condShape == k.condShape &&
         e.guided == k.guided && e.guidanceScale == k.guidanceScale && e.deviceIndex == k.deviceIndex;
}

// Removes entries whose model was released (the caller holds gCacheMutex). Synchronises the
// device first, so no replay still reads the memory being returned.
void DropEntries(const std::function<bool(const GraphEntry&)>& drop, size_t* count) {
  std::vector<std::shared_ptr<GraphEntry>> keep;
  for (auto& e : gCache) {
    if (drop(*e)) {
#ifdef SCIRE_TORCH_HAS_CUDA
      if (e->graph) {
        c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(e->key.deviceIndex));
        cudaDeviceSynchronize();
      }
#endif
      ++*count;
    } else {
      keep.push_back(e);
    }
  }
  gCache.swap(keep);
}

#ifdef SCIRE_TORCH_HAS_CUDA
/** Makes `waiter` wait for the work queued so far on `producer` (raw events: ATen's CUDAEvent
 *  pulls in CUDAContext.h, which needs the cuSPARSE / cuBLAS headers). */
void StreamWaits(const c10::cuda::CUDAStream& waiter, const c10::cuda::CUDAStream& producer) {
  cudaEvent_t event = nullptr;
  C10_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  const cudaError_t recorded = cudaEventRecord(event, producer.stream());
  const cudaError_t waited = recorded == cudaSuccess ? cudaStreamWaitEvent(waiter.stream(), event, 0) : recorded;
  cudaEventDestroy(event);  // released once the wait is satisfied
  C10_CUDA_CHECK(waited);
}

/** Ends a capture that did not reach a successful capture_end, leaving the stream usable. */
void AbortCapture(PlanGraph& graph, const c10::cuda::CUDAStream& stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream.stream(), &status) == cudaSuccess && status != cudaStreamCaptureStatusNone) {
    try {
      graph.capture_end();
    } catch (...) {
    }
  }
  status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream.stream(), &status) == cudaSuccess && status != cudaStreamCaptureStatusNone) {
    cudaGraph_t raw = nullptr;
    cudaStreamEndCapture(stream.stream(), &raw);
    if (raw != nullptr) cudaGraphDestroy(raw);
  }
  graph.ReleasePoolRouting();
  (void)cudaGetLastError();  // capture errors are not sticky; clear the last-error slot
}

/**
 * Warms up and captures the plan for `entry` (its key fields set). On success fills
 * graph/xStatic/condStatic/out; on failure sets entry.failure. Throws only for errors of the
 * eager warm-up run (which would fail eagerly too).
 */
void Capture(ModelHandle& model, const PlanSpec& plan, const PlanRunInputs& in, GraphEntry& entry, GraphRun& run) {
  const at::Device device = in.x.device();
  c10::cuda::CUDAGuard deviceGuard(device);
  const c10::cuda::CUDAStream caller = c10::cuda::getCurrentCUDAStream(device.index());
  const c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, device.index());
  StreamWaits(side, caller);
  {
    c10::cuda::CUDAStreamGuard streamGuard(side);
    entry.xStatic = in.x.clone();
    if (in.cond.defined()) entry.condStatic = in.cond.clone();
    if (in.evalSums.defined()) entry.evalSums = at::empty_like(in.evalSums);
    const PlanRunInputs statics{entry.xStatic, entry.condStatic, in.guided, in.guidanceScale, entry.evalSums};

    // Warm-up: lazy initialisation (cuDNN / cuBLAS handles and workspaces) and TorchScript's
    // profiling runs must happen before capture. The profiling executor settles after two
    // calls of the module; a plan with one evaluation is therefore run twice.
    const auto w0 = Clock::now();
    const int warmups = plan.nfe >= 2 ? 1 : 2;
    for (int i = 0; i < warmups; ++i) (void)RunPlanOps(model, plan, statics);
    side.synchronize();
    run.warmupMs = MsSince(w0);

    const auto c0 = Clock::now();
    auto graph = std::make_unique<PlanGraph>();
    try {
      graph->BeginCapture();
      entry.out = RunPlanOps(model, plan, statics);
      graph->capture_end();
      entry.graph = std::move(graph);
    } catch (...) {
      entry.failure = "capture failed: " + CaptureCurrentException("cudaGraph").message;
      AbortCapture(*graph, side);
      gFailedCaptures.push_back(std::move(graph));
      entry.out = at::Tensor();
    }
    if (entry.graph) side.synchronize();
    run.captureMs = MsSince(c0);
  }
  StreamWaits(caller, side);
  run.capturedNow = true;
}
#endif

}  // namespace

GraphRun RunPlanWithGraph(const ModelPtr& model, const PlanSpec& plan, const PlanRunInputs& in, GraphMode mode) {
  GraphRun run;
  auto eager = [&](const std::string& reason) {
    if (mode == GraphMode::kOn) {
      throw ScireError(ErrorKind::kError, "execute: cudaGraph is true but the plan cannot run as a CUDA graph: " + reason,
                       "ERR_SCIRE_CUDA_GRAPH");
    }
    run.fallbackReason = reason;
    run.out = RunPlanOps(*model, plan, in);
    return run;
  };
  if (mode == GraphMode::kOff) {
    run.fallbackReason = "cudaGraph is false";
    run.out = RunPlanOps(*model, plan, in);
    return run;
  }
  if (!in.x.device().is_cuda()) return eager("the model is on " + in.x.device().str() + ", not on a CUDA device");
#ifndef SCIRE_TORCH_HAS_CUDA
  return eager("this addon was built against a LibTorch without CUDA");
#else
  GraphKey key;
  key.owner = model.get();
  key.alive = model;
  key.plan = PlanFingerprint(plan);
  key.xShape = in.x.sizes().vec();
  if (in.cond.defined()) key.condShape = in.cond.sizes().vec();
  key.guided = in.guided;
  key.guidanceScale = in.guidanceScale;
  key.deviceIndex = in.x.device().index();

  std::shared_ptr<GraphEntry> entry;
  {
    std::lock_guard<std::mutex> lock(gCacheMutex);
    size_t dropped = 0;
    DropEntries([](const GraphEntry& e) { return e.key.alive.expired(); }, &dropped);
    for (auto& e : gCache) {
      if (SameKey(e->key, key)) entry = e;
    }
  }
  if (!entry) {
    entry = std::make_shared<GraphEntry>(key);
    Capture(*model, plan, in, *entry, run);
    std::lock_guard<std::mutex> lock(gCacheMutex);
    gCache.push_back(entry);
  }
  if (!entry->failure.empty()) return eager(entry->failure);

  c10::cuda::CUDAGuard deviceGuard(in.x.device());
  entry->xStatic.copy_(in.x, /*non_blocking=*/true);
  if (entry->condStatic.defined()) entry->condStatic.copy_(in.cond, /*non_blocking=*/true);
  entry->graph->replay();
  run.out = entry->out;
  run.evalSums = entry->evalSums;
  run.usedGraph = true;
  return run;
#endif
}

at::Tensor UploadToDevice(const at::Tensor& host, const at::Device& device) {
#ifdef SCIRE_TORCH_HAS_CUDA
  if (device.is_cuda()) {
    c10::cuda::CUDAGuard guard(device);
    at::Tensor pinned = at::empty(host.sizes(), host.options().pinned_memory(true));
    pinned.copy_(host);
    return pinned.to(device, /*non_blocking=*/true);
  }
#endif
  return host.to(device);
}

at::Tensor DownloadToHost(const at::Tensor& value) {
#ifdef SCIRE_TORCH_HAS_CUDA
  if (value.is_cuda()) {
    c10::cuda::CUDAGuard guard(value.device());
    at::Tensor pinned = at::empty(value.sizes(), value.options().device(at::kCPU).pinned_memory(true));
    pinned.copy_(value, /*non_blocking=*/true);
    c10::cuda::getCurrentCUDAStream(value.device().index()).synchronize();
    return pinned;
  }
#endif
  return value.to(at::kCPU).contiguous();
}

size_t ForgetGraphs(const ModelHandle* model) {
  std::lock_guard<std::mutex> lock(gCacheMutex);
  size_t dropped = 0;
  DropEntries([model](const GraphEntry& e) { return model == nullptr || e.key.owner == model || e.key.alive.expired(); },
              &dropped);
  return dropped;
}

size_t CachedGraphCount() {
  std::lock_guard<std::mutex> lock(gCacheMutex);
  return gCache.size();
}

}  // namespace scire
