#include "masked_lincomb_tensor.h"

#include <stdexcept>
#include <string>

#include "masked_lincomb.h"

#if defined(SCIRE_WITH_CUDA) && defined(SCIRE_TORCH_HAS_CUDA)
#include <c10/cuda/CUDAGuard.h>
#endif

namespace scire {
namespace kernels {
namespace {

void CheckOne(const at::Tensor& t, const at::Tensor& dst, const std::string& which) {
  if (!t.defined() || !t.is_contiguous()) throw std::runtime_error("masked lincomb: " + which + " must be a contiguous tensor");
  if (t.scalar_type() != at::kFloat) throw std::runtime_error("masked lincomb: " + which + " must be float32");
  if (t.device() != dst.device()) {
    throw std::runtime_error("masked lincomb: " + which + " is on " + t.device().str() + " but the destination is on " +
                             dst.device().str());
  }
  if (t.numel() != dst.numel()) {
    throw std::runtime_error("masked lincomb: " + which + " has " + std::to_string(t.numel()) +
                             " elements but the destination has " + std::to_string(dst.numel()));
  }
}

void Check(const at::Tensor& dst, const std::vector<Term>& terms, const KnownRegion& known) {
  if (terms.empty() || terms.size() > static_cast<size_t>(kMaxTerms)) {
    throw std::runtime_error("masked lincomb: expected 1 to 4 terms but received " + std::to_string(terms.size()));
  }
  CheckOne(dst, dst, "the destination");
  for (size_t k = 0; k < terms.size(); ++k) CheckOne(terms[k].tensor, dst, "term " + std::to_string(k));
  CheckOne(known.mask, dst, "the mask");
  CheckOne(known.x0, dst, "x0");
  CheckOne(known.noise, dst, "the noise");
}

}  // namespace

void FusedMaskedLincomb(const at::Tensor& dst, const std::vector<Term>& terms, const KnownRegion& known, float a,
                        float s) {
  Check(dst, terms, known);
  const at::Device device = dst.device();
  if (!HasFusedKernel(device)) return MaskedLincombWithTorchOps(dst, terms, known, a, s);
  MaskedLincombJob job;
  job.terms = static_cast<int>(terms.size());
  for (int k = 0; k < job.terms; ++k) {
    job.src[k] = terms[k].tensor.data_ptr<float>();
    job.coef[k] = terms[k].coef;
  }
  job.mask = known.mask.data_ptr<float>();
  job.x0 = known.x0.data_ptr<float>();
  job.noise = known.noise.data_ptr<float>();
  job.a = a;
  job.s = s;
  job.dst = dst.data_ptr<float>();
  job.n = dst.numel();
  if (device.is_cpu()) {
    if (const char* err = MaskedLincombCpu(job)) throw std::runtime_error(std::string("masked lincomb: ") + err);
    return;
  }
#if defined(SCIRE_WITH_CUDA) && defined(SCIRE_TORCH_HAS_CUDA)
  c10::cuda::CUDAGuard guard(device);
  char err[512] = {0};
  if (MaskedLincombCuda(job, CurrentStream(device), err, sizeof err) != 0) throw std::runtime_error(err);
#endif
}

void MaskedLincombWithTorchOps(const at::Tensor& dst, const std::vector<Term>& terms, const KnownRegion& known, float a,
                               float s) {
  Check(dst, terms, known);
  // The combination into a temporary (dst may be a term), then the blend into dst.
  at::Tensor acc = at::empty_like(dst);
  LincombWithTorchOps(acc, terms);
  at::Tensor target = known.x0 * a + known.noise * s;
  dst.copy_(acc * (1 - known.mask) + known.mask * target);
}

}  // namespace kernels
}  // namespace scire
