// A whole Plan as one CUDA graph.
//
// On a GPU the static plan lets the executor record every kernel of a solve (each network
// evaluation and each fused update) once and then launch them all with a single
// cudaGraphLaunch, which removes the per-kernel launch and host round-trip cost between
// network evaluations.
//
//   RunPlanOps        (executor.h) the executor loop without hooks: no host synchronisation,
//                     no callbacks, no timing, i.e. capturable.
//   RunPlanWithGraph  the graph path: pad the batch up to its bucket (graph_cache.h), look up
//                     (model, plan fingerprint, shapes, guidance, device) in the bounded LRU
//                     cache; on a miss warm up with one eager run on a side stream, capture
//                     RunPlanOps there into a CUDA graph and keep it with its static input /
//                     output tensors; then copy the caller's inputs into the static inputs,
//                     replay and slice the real rows out. When the capture fails for good
//                     (e.g. a model that synchronises with the host) the failure is cached
//                     with its reason; a transient failure (out of memory) is retried after a
//                     backoff; meanwhile, in mode 'auto', the plan runs eagerly.
//   ForgetGraphs      model.dispose() and model.clearCudaGraphs(): free a model's graphs.
//
// Everything that needs a CUDA LibTorch is compiled only when SCIRE_TORCH_HAS_CUDA is
// defined (CMakeLists.txt defines it when the LibTorch found has CUDA); without it
// CudaGraphsCompiled() is false and RunPlanWithGraph falls back (mode 'auto') or throws
// (mode true).
#pragma once

#include <napi.h>
#include <torch/script.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "executor.h"
#include "model.h"
#include "plan.h"

namespace scire {

/** The `cudaGraph` option: 'auto' (graph on CUDA, eager fallback), true (graph or error), false. */
enum class GraphMode { kAuto, kOn, kOff };

/** Reads opts.cudaGraph: undefined -> kAuto; 'auto' | true | false, else a TypeError naming `field`. */
GraphMode ParseGraphMode(const Napi::Value& value, const std::string& where, const std::string& field);
const char* GraphModeName(GraphMode mode);

/** True when this addon was compiled against a CUDA LibTorch (graphs can be captured). */
bool CudaGraphsCompiled();

/** A 64-bit fingerprint (FNV-1a) of every field of the plan that a run depends on. */
uint64_t PlanFingerprint(const PlanSpec& plan);

/** What RunPlanWithGraph did. */
struct GraphRun {
  at::Tensor out;              // float32 result on the device. When usedGraph it is the graph's
                               // static output: copy it before the next replay of the same graph
  bool usedGraph = false;      // the result came from a graph replay
  bool capturedNow = false;    // this call warmed up and captured the graph
  std::string fallbackReason;  // why the run was eager (empty when usedGraph)
  int64_t bucket = 0;          // the batch the graph was captured for (usedGraph)
  at::Tensor evalSums;         // when usedGraph: the graph's static evalSums (undefined if it has
                               // none); otherwise the caller's in.evalSums were written
  double warmupMs = 0;         // eager warm-up run (when capturedNow)
  double captureMs = 0;        // capture + instantiation (when capturedNow)
};

/**
 * Runs the plan as a CUDA graph (see the file comment). `model` must be on a CUDA device
 * for a graph; otherwise (or with mode kOff) the plan runs through RunPlanOps eagerly with
 * the reason recorded. Mode kOn turns every reason for not using a graph into an error.
 * The caller runs on the model's thread inside an InferenceMode guard and copies `out` before
 * the model's next run.
 */
GraphRun RunPlanWithGraph(const ModelPtr& model, const PlanSpec& plan, const PlanRunInputs& in, GraphMode mode);

/**
 * Host float32 tensor -> `device`. On a CUDA device the data is staged in pinned host memory
 * and copied asynchronously on the current stream; elsewhere a plain copy.
 */
at::Tensor UploadToDevice(const at::Tensor& host, const at::Device& device);

/**
 * Device tensor -> contiguous host tensor of the same dtype, through pinned host memory on a
 * CUDA device (asynchronous copy on the current stream, then a wait for that stream only).
 */
at::Tensor DownloadToHost(const at::Tensor& value);

/** Frees the cached graphs of one model (nullptr: of every model), after waiting for the
 *  device. Returns how many graphs (failure records not counted). */
size_t ForgetGraphs(const ModelHandle* model);

struct GraphCacheStats {
  size_t entries = 0;  // graphs and failure records
  size_t bytes = 0;    // graph memory held
  size_t maxEntries = 0, maxBytes = 0;
};
/** The process-wide cache's occupancy and limits (SCIRE_CUDA_GRAPH_MAX_ENTRIES, SCIRE_CUDA_GRAPH_MAX_MB). */
GraphCacheStats GraphCacheState();

}  // namespace scire
