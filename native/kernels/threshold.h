// Dynamic thresholding of a data prediction (Saharia et al. 2022, as DPM-Solver's
// dynamic_thresholding_fn), in place on a float32 register whose leading dimension is the batch:
//   s_b = max(quantile(|x_b|, ratio), maxVal);   x_b = clamp(x_b, -s_b, s_b) / s_b
// The per-sample quantile (linear interpolation, as torch.quantile) is done with LibTorch ops.
#pragma once

#include <ATen/ATen.h>

namespace scire {
namespace kernels {

void DynamicThreshold(const at::Tensor& x, double ratio, double maxVal);

}  // namespace kernels
}  // namespace scire
