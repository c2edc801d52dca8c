// The plan executor: model.execute(plan, opts) runs a whole Plan (lib/plan.ts) in a worker
// thread, the loop entirely in C++.
//
//   registers   float32 tensors on the model's device, shaped like x (whatever the model dtype)
//   eval        x_in = inScale * R[src] cast to the model dtype (one fused pass, written into
//               both halves of the [uncond; cond] batch under classifier-free guidance);
//               raw = forward(x_in, t[, cond]);  R[dst] = outX*x_in + outM*raw, i.e. one
//               fused pass (outX*inScale) * R[src] + outM * raw  -- with guidance
//               raw = uncond + g*(cond - uncond) folded in: + outM*(1-g)*raw_u + outM*g*raw_c
//   lincomb     one fused pass for up to 4 terms (kernels/lincomb.h)
//   threshold   per-sample quantile and clamp (kernels/threshold.h)
//
// JS (registered on Model.prototype through RegisterModelMethod, see model.h):
//   model.execute(plan, { x, shape, cond?, condShape?, uncond?, guidanceScale?, onStep?, signal?, abortHandle? })
//     -> Promise<{ data: Float32Array, shape, nfe, timings }>
// onStep({ nfe, total, t, tCont }) is called once per evaluation through a thread-safe
// function (NonBlockingCall: the sampling thread never waits for JS); all step events are
// delivered before the promise settles. Cancellation: an AbortSignal (`signal`, a listener
// sets a native flag) or a handle from createAbortHandle() (`abortHandle`); the flag is
// checked before every evaluation and an aborted run rejects with an Error named
// 'AbortError' (at once when the signal is already aborted). A throwing onStep stops the run and the promise rejects with that error.
// cudaGraph ('auto' default | true | false): on a CUDA device the whole plan runs as one CUDA
// graph (cuda_graph.h); then step events arrive after the run, the abort flag is checked
// before it, timings.modelMs/solverMs are NaN and timings.cudaGraph says what happened.
#pragma once

// Registration is automatic (RegisterModelMethod / RegisterExports from executor.cc): the
// addon gains model.execute and the exports createAbortHandle, lincomb and benchLincomb.
