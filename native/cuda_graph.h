// A whole Plan as one CUDA graph.
//
// On a GPU the static plan lets the executor record every kernel of a solve (each network
// evaluation and each fused update) once and then launch them all with a single
// cudaGraphLaunch, which removes the per-kernel launch and host round-trip cost between
// network evaluations.
//
//   RunPlanOps        runs a plan on the current stream of the tensors' device with no host
//                     synchronisation, no callbacks and no timing: the capturable loop (on
//                     the CPU it is an ordinary eager run, which is how it is tested here).
//   RunPlanWithGraph  the graph path: look up (model, plan fingerprint, shapes, guidance,
//                     device) in a cache; on a miss warm up with one eager run on a side
//                     stream, capture RunPlanOps there into a CUDA graph and keep it with its
//                     static input / output tensors; then copy the caller's inputs into the
//                     static inputs and replay. When the capture fails (e.g. a model that
//                     synchronises with the host) the failure is cached with its reason and,
//                     in mode 'auto', the plan runs eagerly instead.
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

/** The network inputs of a run, already on the model's device. */
struct PlanRunInputs {
  at::Tensor x;               // x_T, float32, contiguous (R[0] = initScale * x)
  at::Tensor cond;            // undefined, or the model's cond input in the model dtype
                              // (the [uncond; cond] batch when guided)
  bool guided = false;        // classifier-free guidance: evaluate [x; x] with cond
  double guidanceScale = 1.0;
  at::Tensor evalSums;        // optional float64 [nfe] on the device: evaluation k writes the sum
                              // of its model output to [k - 1] (non-finite iff the output is)
};

/**
 * Runs every op of `plan` with the executor's kernels (fused lincomb, threshold, RunModel)
 * on the current stream, without any host synchronisation, and returns the result
 * final.scale * R[final.src] as a new float32 tensor on the device. The caller holds
 * model.mutex and an InferenceMode guard. The arithmetic (terms and their order) is the
 * executor's, so an eager run of the executor and a replay of this loop use the same kernels
 * on the same data.
 *
 * The executor's eager path is this same loop with `hooks`: its abort check before each
 * evaluation, its progress report after it, and the network timing (which synchronises the
 * device around each forward, so a run with hooks->timeModel is not capturable).
 */
struct PlanRunHooks {
  std::function<void()> beforeEval;                // e.g. throw when the run was aborted
  std::function<void(const PlanStep&)> afterEval;  // e.g. report progress
  bool timeModel = false;                          // add each forward's wall time to modelMs
  double modelMs = 0;
};
at::Tensor RunPlanOps(ModelHandle& model, const PlanSpec& plan, const PlanRunInputs& in,
                      PlanRunHooks* hooks = nullptr);

/** A 64-bit fingerprint (FNV-1a) of every field of the plan that a run depends on. */
uint64_t PlanFingerprint(const PlanSpec& plan);

/** What RunPlanWithGraph did. */
struct GraphRun {
  at::Tensor out;              // float32 result on the device. When usedGraph it is the graph's
                               // static output: copy it before the next replay of the same graph
  bool usedGraph = false;      // the result came from a graph replay
  bool capturedNow = false;    // this call warmed up and captured the graph
  std::string fallbackReason;  // why the run was eager (empty when usedGraph)
  at::Tensor evalSums;         // when usedGraph: the graph's static evalSums (undefined if it has
                               // none); otherwise the caller's in.evalSums were written
  double warmupMs = 0;         // eager warm-up run (when capturedNow)
  double captureMs = 0;        // capture + instantiation (when capturedNow)
};

/**
 * Runs the plan as a CUDA graph (see the file comment). `model` must be on a CUDA device
 * for a graph; otherwise (or with mode kOff) the plan runs through RunPlanOps eagerly with
 * the reason recorded. Mode kOn turns every reason for not using a graph into an error.
 * The caller holds model->mutex and an InferenceMode guard for the whole call and copies
 * `out` before releasing the mutex.
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

/** Drops the cached graphs of one model (nullptr: of every model). Returns how many. */
size_t ForgetGraphs(const ModelHandle* model);

/** Number of cached graphs (captured or failed), for tests and benchmarks. */
size_t CachedGraphCount();

}  // namespace scire
