// Classifier guidance: the gradient grad_x sum_b log softmax(classifier(x, t))[b, y_b] of a
// TorchScript classifier forward(x, t) -> logits [B, C] (loaded with loadModel like the
// network), for the eval ops of a plan run with a classifier (executor.cc; lib/plan.ts has the
// formula and the gradCoef that folds the gradient into the eval op's fused lincomb).
//
// Autograd runs only here: the executor loop runs under c10::InferenceMode, whose tensors
// cannot enter autograd, so the input is copied into a normal tensor with InferenceMode
// switched off and grad mode on for this call alone. The classifier runs on the calling
// (network's) thread under its own handle's mutex: it is a second module of the same request.
#pragma once

#include <torch/script.h>

#include <cstdint>

#include "model.h"

namespace scire {

/** What a run with classifier guidance carries (executor.h PlanRunInputs). */
struct ClassifierGuidance {
  ModelPtr model;      // the classifier (same device as the network)
  at::Tensor labels;   // int64 [B] on the device: the class of each batch element
  int64_t maxLabel = 0;  // the largest label, checked against the classifier's C on every call
  double scale = 1.0;    // classifierScale s
};

/**
 * grad_x sum_b log_softmax(logits)[b, labels[b]] at x (float32, the network's input x_in) and
 * model input time t (float32 [B]); float32, shaped like x. Throws ScireError (code
 * ERR_SCIRE_BAD_CLASSIFIER_OUTPUT) when the output is not a [B, C] tensor, a RangeError
 * (ERR_OUT_OF_RANGE) when a label is >= C, and the classifier's own errors as they come.
 */
at::Tensor ClassifierGradient(const ClassifierGuidance& guidance, const at::Tensor& x, const at::Tensor& t);

}  // namespace scire
