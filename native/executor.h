// The plan executor: model.execute(plan, opts) runs a whole Plan (lib/plan.ts) on the model's
// own thread (model_runtime.h), the loop entirely in C++.
//
//   registers   float32 tensors on the model's device, shaped like x (whatever the model dtype)
//   eval        x_in = inScale * R[src] cast to the model dtype (one fused pass, written into
//               both halves of the [uncond; cond] batch under classifier-free guidance);
//               raw = RunModel(x_in, t[, cond]) (model.h: the one call site of the network);
//               R[dst] = outX*x_in + outM*raw, i.e. one fused pass
//               (outX*inScale) * R[src] + outM * raw  -- with guidance
//               raw = uncond + g*(cond - uncond) folded in: + outM*(1-g)*raw_u + outM*g*raw_c
//               with a classifier (classifier.h) + s*gradCoef*grad_x log p(y | x_in, t) in the
//               same pass (autograd only inside ClassifierGradient; never with cfg guidance)
//   lincomb     one fused pass for up to 4 terms (kernels/lincomb.h); with an inpainting
//               correction the masked pass of kernels/masked_lincomb.h (also the 'inpaint' op
//               and a final.inpaint composite), reading the run's mask, x0 and noise
//   threshold   per-sample quantile and clamp (kernels/threshold.h)
//
// JS (a Model method, registered in addon.cc's table):
//   model.execute(plan, { x, shape, cond?, condShape?, uncond?, guidanceScale?, classifier?, classLabels?,
//                         classifierScale?, onStep?, intermediates?, inpaint?, signal?, abortHandle?, cudaGraph? })
//   (inpaint: { x0, mask, noise } Float32Arrays, required exactly by a plan with corrections;
//   such a run is eager, never a CUDA graph; so is a run with a classifier)
//     -> Promise<{ data: Float32Array, shape, nfe, timings }>
// The request joins the model's FIFO queue; the JS thread is never blocked and no libuv pool
// thread is held. onStep({ nfe, total, t, tCont }) is called once per evaluation through the
// model's channel (the owner thread never waits for JS); all step events are delivered before
// the promise settles. Cancellation: an AbortSignal (`signal`) or a handle from
// createAbortHandle() (`abortHandle`). A request aborted while queued rejects at once with an
// Error named 'AbortError' and never runs; a running one checks the flag before every
// evaluation. A throwing onStep stops the run and the promise rejects with that error.
// cudaGraph ('auto' default | true | false): on a CUDA device the whole plan runs as one CUDA
// graph (cuda_graph.h); then step events arrive after the run, the abort flag is checked
// before it, timings.modelMs/solverMs are NaN and timings.cudaGraph says what happened.
// classifier (a Model from loadModel on the same device, forward(x, t) -> logits [B, C]),
// classLabels (Int32Array [B], each in [0, C)) and classifierScale (finite, default 1): classifier
// guidance; the run is eager (no CUDA graph: autograd between evaluations).
#pragma once

#include <napi.h>
#include <torch/script.h>

#include <functional>

#include "kernels/masked_lincomb_tensor.h"
#include "classifier.h"
#include "model.h"
#include "plan.h"

namespace scire {

/** The network inputs of a run, already on the model's device. */
struct PlanRunInputs {
  at::Tensor x;               // x_T, float32, contiguous (R[0] = initScale * x)
  at::Tensor cond;            // undefined, or the model's cond input in the model dtype
                              // (the [uncond; cond] batch when guided)
  bool guided = false;        // classifier-free guidance: evaluate [x; x] with cond
  double guidanceScale = 1.0;
  at::Tensor evalSums;        // optional float64 [nfe] on the device: evaluation k writes the sum
                              // of its model output to [k - 1] (non-finite iff the output is)
  kernels::KnownRegion known; // inpainting plans only: mask, x0, z (float32, shaped like x)
  const ClassifierGuidance* classifier = nullptr;  // classifier guidance (never with `guided`):
                              // R[dst] += scale * gradCoef * grad, a third term of the eval's lincomb
};

/** What the eager run adds around the loop; a run without hooks is capturable. */
struct PlanRunHooks {
  std::function<void()> beforeEval;                // e.g. throw when the run was aborted
  std::function<void(const PlanStep&)> afterEval;  // e.g. report progress
  // Called with 0 before the first op and with i + 1 after op i, with the registers (an
  // undefined tensor is a register not yet written): e.g. copy intermediates to the host.
  std::function<void(int, const std::vector<at::Tensor>&)> afterOp;
  bool timeModel = false;                          // add each forward's wall time to modelMs
  double modelMs = 0;
};

/**
 * The executor loop: runs every op of `plan` with the executor's kernels (fused lincomb,
 * threshold, RunModel) on the current stream, without any host synchronisation, and returns
 * final.scale * R[final.src] as a new float32 tensor on the device. The caller runs on the
 * model's thread inside an InferenceMode guard. With no hooks it is what a CUDA graph
 * records (cuda_graph.h); the eager path passes hooks: its abort check before each
 * evaluation, its progress report after it, and the network timing (which synchronises the
 * device around each forward, so a run with hooks->timeModel is not capturable).
 */
at::Tensor RunPlanOps(ModelHandle& model, const PlanSpec& plan, const PlanRunInputs& in,
                      PlanRunHooks* hooks = nullptr);

/** model.execute(plan, opts) (the Model method of addon.cc's table). */
Napi::Value ExecuteJs(const Napi::CallbackInfo& info, Model& model);

}  // namespace scire
