#include "threshold.h"

#include <stdexcept>

namespace scire {
namespace kernels {

void DynamicThreshold(const at::Tensor& x, double ratio, double maxVal) {
  if (x.dim() < 1 || x.size(0) < 1 || !x.is_contiguous()) {
    throw std::runtime_error("threshold: the register must be a contiguous tensor with a batch dimension");
  }
  const at::Tensor rows = x.view({x.size(0), -1});
  // quantile needs float32/float64 input; registers are float32.
  const at::Tensor s = at::quantile(rows.abs(), ratio, /*dim=*/1, /*keepdim=*/true).clamp_min_(maxVal);
  rows.clamp_(s.neg(), s).div_(s);
}

}  // namespace kernels
}  // namespace scire
