#include "lincomb_tensor.h"

#include <stdexcept>
#include <string>

#include "lincomb.h"

#if defined(SCIRE_WITH_CUDA) && defined(SCIRE_TORCH_HAS_CUDA)
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace scire {
namespace kernels {
namespace {

Storage StorageOf(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return Storage::Float32;
    case at::kHalf: return Storage::Float16;
    case at::kBFloat16: return Storage::BFloat16;
    default:
      throw std::runtime_error(std::string("lincomb: unsupported tensor dtype ") +
                               c10::toString(t.scalar_type()) + " (float32, float16 or bfloat16)");
  }
}

void Check(const at::Tensor& dst, const std::vector<Term>& terms) {
  if (terms.empty() || terms.size() > static_cast<size_t>(kMaxTerms)) {
    throw std::runtime_error("lincomb: expected 1 to 4 terms but received " + std::to_string(terms.size()));
  }
  if (!dst.defined() || !dst.is_contiguous()) throw std::runtime_error("lincomb: destination must be a contiguous tensor");
  for (size_t k = 0; k < terms.size(); ++k) {
    const at::Tensor& t = terms[k].tensor;
    const std::string which = "lincomb: term " + std::to_string(k);
    if (!t.defined() || !t.is_contiguous()) throw std::runtime_error(which + " must be a contiguous tensor");
    if (t.device() != dst.device()) {
      throw std::runtime_error(which + " is on " + t.device().str() + " but the destination is on " + dst.device().str());
    }
    if (t.numel() != dst.numel()) {
      throw std::runtime_error(which + " has " + std::to_string(t.numel()) + " elements but the destination has " +
                               std::to_string(dst.numel()));
    }
  }
}

LincombJob MakeJob(const at::Tensor& dst, const std::vector<Term>& terms) {
  LincombJob job;
  job.terms = static_cast<int>(terms.size());
  for (int k = 0; k < job.terms; ++k) {
    job.src[k] = terms[k].tensor.data_ptr();
    job.coef[k] = terms[k].coef;
  }
  if (StorageOf(terms[0].tensor) != Storage::Float32) throw std::runtime_error("lincomb: the first term must be float32");
  job.srcStorage = job.terms > 1 ? StorageOf(terms[1].tensor) : Storage::Float32;
  for (int k = 2; k < job.terms; ++k) {
    if (StorageOf(terms[k].tensor) != job.srcStorage) {
      throw std::runtime_error("lincomb: terms 1..3 must share one dtype");
    }
  }
  job.dst = dst.data_ptr();
  job.dstStorage = StorageOf(dst);
  job.n = dst.numel();
  return job;
}

}  // namespace

bool HasFusedKernel(const at::Device& device) {
  if (device.is_cpu()) return true;
#if defined(SCIRE_WITH_CUDA) && defined(SCIRE_TORCH_HAS_CUDA)
  if (device.is_cuda()) return true;
#endif
  return false;
}

void* CurrentStream(const at::Device& device) {
#if defined(SCIRE_WITH_CUDA) && defined(SCIRE_TORCH_HAS_CUDA)
  if (device.is_cuda()) return c10::cuda::getCurrentCUDAStream(device.index()).stream();
#endif
  (void)device;
  return nullptr;  // the legacy default stream, which is also LibTorch's default
}

void FusedLincomb(const at::Tensor& dst, const std::vector<Term>& terms) {
  Check(dst, terms);
  const at::Device device = dst.device();
  if (!HasFusedKernel(device)) return LincombWithTorchOps(dst, terms);
  const LincombJob job = MakeJob(dst, terms);
  if (device.is_cpu()) {
    if (const char* err = LincombCpu(job)) throw std::runtime_error(std::string("lincomb: ") + err);
    return;
  }
#if defined(SCIRE_WITH_CUDA) && defined(SCIRE_TORCH_HAS_CUDA)
  c10::cuda::CUDAGuard guard(device);
  char err[512] = {0};
  if (LincombCuda(job, CurrentStream(device), err, sizeof err) != 0) throw std::runtime_error(err);
#endif
}

void LincombWithTorchOps(const at::Tensor& dst, const std::vector<Term>& terms) {
  Check(dst, terms);
  // Accumulate in float32 (as the kernels do), then cast into dst once. When dst is one of
  // the terms, accumulate into a temporary so no term is read after it was overwritten.
  bool aliased = false;
  for (const Term& term : terms) aliased = aliased || term.tensor.is_same(dst);
  at::Tensor acc = (dst.scalar_type() == at::kFloat && !aliased)
                       ? dst
                       : at::empty_like(dst, dst.options().dtype(at::kFloat));
  // The coefficient goes in as a 0-dim CPU tensor: LibTorch 1.13's mul_out(out, self, Scalar)
  // is a generated out= wrapper that allocates a temporary and copies (measured 50x slower
  // on 64 MiB here); the Tensor overload runs in place, and CUDA ops accept CPU scalars.
  at::mul_out(acc, terms[0].tensor, at::scalar_tensor(terms[0].coef, at::kFloat));
  for (size_t k = 1; k < terms.size(); ++k) {
    const at::Tensor& t = terms[k].tensor;
    acc.add_(t.scalar_type() == at::kFloat ? t : t.to(at::kFloat), terms[k].coef);
  }
  if (!acc.is_same(dst)) dst.copy_(acc);
}

}  // namespace kernels
}  // namespace scire
