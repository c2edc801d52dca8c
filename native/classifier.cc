#include "classifier.h"

#include <torch/torch.h>

#include <mutex>
#include <string>

#include "errors.h"
#include "shape.h"

namespace scire {

at::Tensor ClassifierGradient(const ClassifierGuidance& guidance, const at::Tensor& x, const at::Tensor& t) {
  ModelHandle& clf = *guidance.model;
  c10::InferenceMode normalTensors(false);  // tensors made here may be recorded by autograd
  torch::AutoGradMode gradOn(true);
  std::lock_guard<std::mutex> lock(clf.mutex);
  // Fresh normal tensors: x and t are inference tensors of the executor loop, which autograd
  // may not record (a classifier computing x * f(t) would save t for the backward pass).
  const at::Tensor input = x.to(at::kFloat).clone().requires_grad_(true);
  const at::Tensor time = t.clone();
  torch::jit::IValue out = clf.module.forward({input.to(clf.dtype), time});
  if (!out.isTensor()) {
    throw ScireError(ErrorKind::kError,
                     "the classifier's forward returned " + std::string(out.tagKind()) + ", expected logits [B, C]",
                     "ERR_SCIRE_BAD_CLASSIFIER_OUTPUT");
  }
  const at::Tensor logits = out.toTensor();
  const int64_t batch = x.size(0);
  if (logits.dim() != 2 || logits.size(0) != batch || logits.size(1) < 1) {
    throw ScireError(ErrorKind::kError,
                     "the classifier's output shape " + ShapeString(logits.sizes()) + " is not [B, C] = [" +
                         std::to_string(batch) + ", C]; a classifier's forward(x, t) must return logits [B, C]",
                     "ERR_SCIRE_BAD_CLASSIFIER_OUTPUT");
  }
  if (guidance.maxLabel >= logits.size(1)) {
    throw ScireError(ErrorKind::kRangeError,
                     "classLabels: label " + std::to_string(guidance.maxLabel) + " is out of range for a classifier with C = " +
                         std::to_string(logits.size(1)) + " classes (labels must be integers in [0, " +
                         std::to_string(logits.size(1)) + "))",
                     "ERR_OUT_OF_RANGE");
  }
  // log p(y_b | x_b) summed over the batch: each sample's gradient is its own term's.
  const at::Tensor logp = at::log_softmax(logits.to(at::kFloat), 1).gather(1, guidance.labels.view({-1, 1})).sum();
  const auto grads = torch::autograd::grad({logp}, {input}, /*grad_outputs=*/{}, /*retain_graph=*/false,
                                           /*create_graph=*/false, /*allow_unused=*/true);
  if (!grads[0].defined()) return at::zeros_like(input, input.options().requires_grad(false));
  return grads[0].detach();
}

}  // namespace scire
