#include "cuda_graph.h"

#include <torch/cuda.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>

#include "errors.h"
#include "executor.h"
#include "graph_cache.h"
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

/** A cached graph with its static input / output tensors (or a permanent failure record). */
struct GraphEntry : GraphSlotBase {
  std::weak_ptr<ModelHandle> alive;  // dropped once the model is released
  int deviceIndex = 0;
#ifdef SCIRE_TORCH_HAS_CUDA
  std::unique_ptr<PlanGraph> graph;
#endif
  at::Tensor xStatic, condStatic, out;
  at::Tensor evalSums;  // the graph's per-evaluation output sums (when the capturing run asked for them)
};

// One cache for the process (graphs of every model and environment), guarded by gCacheMutex.
std::mutex gCacheMutex;
// Limits: SCIRE_CUDA_GRAPH_MAX_ENTRIES (default 32) and SCIRE_CUDA_GRAPH_MAX_MB (default 4096),
// read once.
size_t EnvLimit(const char* name, size_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v, &end, 10);
  return (end != nullptr && *end == '\0') ? static_cast<size_t>(n) : fallback;
}
GraphCachePolicy& Cache() {
  // Never destroyed: no CUDA call from a static destructor at exit.
  static GraphCachePolicy* cache = new GraphCachePolicy(GraphCachePolicy::Limits{
      EnvLimit("SCIRE_CUDA_GRAPH_MAX_ENTRIES", 32), EnvLimit("SCIRE_CUDA_GRAPH_MAX_MB", 4096) << 20});
  return *cache;
}

#ifdef SCIRE_TORCH_HAS_CUDA
// Graph objects whose capture threw: never destroyed, because the caching allocator (or the
// pinned-host allocator of newer LibTorch) may still hold a filter pointing at them. A few
// hundred bytes per failed capture.
std::vector<std::unique_ptr<PlanGraph>>& FailedCaptures() {
  static auto* failed = new std::vector<std::unique_ptr<PlanGraph>>();
  return *failed;
}
#endif

[[maybe_unused]] double NowMs() {
  return std::chrono::duration<double, std::milli>(Clock::now().time_since_epoch()).count();
}

// Frees evicted / dropped entries: waits for the device first so that no replay still reads
// the memory being returned to the allocator. Called without gCacheMutex held.
void FreeEntries(std::vector<GraphSlotPtr> slots) {
#ifdef SCIRE_TORCH_HAS_CUDA
  for (const GraphSlotPtr& slot : slots) {
    const auto* entry = static_cast<const GraphEntry*>(slot.get());
    if (entry->graph) {
      c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(entry->deviceIndex));
      cudaDeviceSynchronize();
    }
  }
#endif
  slots.clear();
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

/** Bytes the caching allocator holds on `device` (all pools). */
int64_t ReservedBytes(int device) {
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
  return stats.reserved_bytes[0].current;  // index 0: StatType::AGGREGATE
}

/**
 * Warms up and captures the plan for `entry` from `in` (already padded to the bucket). On
 * success fills graph/xStatic/condStatic/out and bytes; on failure returns the reason
 * (entry.graph stays empty). Throws only for errors of the eager warm-up run (which would
 * fail eagerly too).
 */
std::string Capture(ModelHandle& model, const PlanSpec& plan, const PlanRunInputs& in, GraphEntry& entry,
                    GraphRun& run) {
  const at::Device device = in.x.device();
  c10::cuda::CUDAGuard deviceGuard(device);
  const c10::cuda::CUDAStream caller = c10::cuda::getCurrentCUDAStream(device.index());
  const c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, device.index());
  StreamWaits(side, caller);
  std::string failure;
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
    const int64_t reservedBefore = ReservedBytes(device.index());
    auto graph = std::make_unique<PlanGraph>();
    try {
      graph->BeginCapture();
      entry.out = RunPlanOps(model, plan, statics);
      graph->capture_end();
      entry.graph = std::move(graph);
    } catch (...) {
      failure = "capture failed: " + CaptureCurrentException("cudaGraph").message;
      AbortCapture(*graph, side);
      FailedCaptures().push_back(std::move(graph));
      entry.out = at::Tensor();
      entry.xStatic = at::Tensor();
      entry.condStatic = at::Tensor();
      entry.evalSums = at::Tensor();
    }
    if (entry.graph) {
      side.synchronize();
      // The graph's private pool (its intermediates and output) plus the static inputs.
      const int64_t pool = std::max<int64_t>(0, ReservedBytes(device.index()) - reservedBefore);
      entry.bytes = static_cast<size_t>(pool + entry.xStatic.nbytes() +
                                        (entry.condStatic.defined() ? entry.condStatic.nbytes() : 0));
    }
    run.captureMs = MsSince(c0);
  }
  StreamWaits(caller, side);
  run.capturedNow = true;
  return failure;
}

/** `t` with zero rows appended along dimension 0 up to `rows`. */
at::Tensor PadRows(const at::Tensor& t, int64_t rows) {
  if (t.size(0) == rows) return t;
  std::vector<int64_t> extra = t.sizes().vec();
  extra[0] = rows - t.size(0);
  return at::cat({t, at::zeros(extra, t.options())});
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
  // The graph is captured for the batch's bucket: pad x (and each half of a guided cond
  // batch) with zero rows, slice the result. Every plan op is per sample, so the padding
  // rows do not touch the real ones.
  const int64_t batch = in.x.size(0);
  const int64_t bucket = BatchBucket(batch);
  PlanRunInputs padded = in;
  if (bucket != batch) {
    padded.x = PadRows(in.x, bucket);
    if (in.cond.defined()) {
      padded.cond = in.guided ? at::cat({PadRows(in.cond.narrow(0, 0, batch), bucket),
                                         PadRows(in.cond.narrow(0, batch, batch), bucket)})
                              : PadRows(in.cond, bucket);
    }
  }
  const GraphCacheKey key = MakeGraphCacheKey(
      reinterpret_cast<uintptr_t>(model.get()), PlanFingerprint(plan), in.x.sizes().vec(),
      in.cond.defined() ? in.cond.sizes().vec() : std::vector<int64_t>{}, in.guided, in.guidanceScale,
      in.x.device().index());

  GraphCachePolicy::LookupResult found;
  std::vector<GraphSlotPtr> released;
  {
    std::lock_guard<std::mutex> lock(gCacheMutex);
    released = Cache().EraseIf([](const GraphSlotBase& s) { return static_cast<const GraphEntry&>(s).alive.expired(); });
    found = Cache().Lookup(key, NowMs());
  }
  FreeEntries(std::move(released));
  if (found.verdict == GraphCachePolicy::Verdict::kEagerFailed ||
      found.verdict == GraphCachePolicy::Verdict::kEagerBackoff) {
    return eager(found.reason);
  }
  std::shared_ptr<GraphEntry> entry;
  if (found.verdict == GraphCachePolicy::Verdict::kHit) {
    entry = std::static_pointer_cast<GraphEntry>(found.slot);
  } else {
    entry = std::make_shared<GraphEntry>();
    entry->alive = model;
    entry->deviceIndex = key.deviceIndex;
    const std::string failure = Capture(*model, plan, padded, *entry, run);
    std::vector<GraphSlotPtr> evicted;
    {
      std::lock_guard<std::mutex> lock(gCacheMutex);
      if (failure.empty()) {
        evicted = Cache().Insert(key, entry);
      } else if (IsTransientCaptureFailure(failure)) {
        Cache().RecordTransientFailure(key, failure, NowMs());  // retried after a backoff
      } else {
        auto record = std::make_shared<GraphEntry>();  // remembered: the next run goes eager at once
        record->alive = model;
        record->failure = failure;
        evicted = Cache().Insert(key, record);
      }
    }
    // `entry` may be among the evicted (alone above the byte budget): this run still uses it.
    FreeEntries(std::move(evicted));
    if (!failure.empty()) return eager(failure);
  }

  c10::cuda::CUDAGuard deviceGuard(in.x.device());
  entry->xStatic.copy_(padded.x, /*non_blocking=*/true);
  if (entry->condStatic.defined()) entry->condStatic.copy_(padded.cond, /*non_blocking=*/true);
  entry->graph->replay();
  run.out = bucket == batch ? entry->out : entry->out.narrow(0, 0, batch);
  run.evalSums = entry->evalSums;
  run.usedGraph = true;
  run.bucket = bucket;
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
  std::vector<GraphSlotPtr> dropped;
  {
    std::lock_guard<std::mutex> lock(gCacheMutex);
    dropped = Cache().EraseOwner(reinterpret_cast<uintptr_t>(model));
  }
  size_t graphs = 0;
  for (const GraphSlotPtr& slot : dropped) graphs += slot->failure.empty() ? 1 : 0;
  FreeEntries(std::move(dropped));
  return graphs;
}

GraphCacheStats GraphCacheState() {
  std::lock_guard<std::mutex> lock(gCacheMutex);
  GraphCacheStats stats;
  stats.entries = Cache().Count();
  stats.bytes = Cache().Bytes();
  stats.maxEntries = Cache().limits().maxEntries;
  stats.maxBytes = Cache().limits().maxBytes;
  return stats;
}

}  // namespace scire
