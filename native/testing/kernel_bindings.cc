// Kernel entry points of the testing addon (synchronous, host data):
//
//   lincomb(inputs: Float32Array[], coefs: number[],
//           { device?: 'cpu'|'cuda'|'cuda:N', offset?: number,
//             termDType?: 'float32'|'float16'|'bfloat16', outDType?: ... }) -> Float32Array
//     out = sum_k coefs[k] * inputs[k] with the fused kernel on `device`. Every buffer is placed
//     `offset` elements past an aligned allocation (offset 1 makes the pointers misaligned for
//     16-byte vector loads). termDType stores inputs[1..] in a 16-bit type (the output-conversion
//     layout); outDType writes a 16-bit output from one float32 input (the input-cast layout).
//
//   benchLincomb({ terms, bytes, device?, iters? }) -> { fusedMs, torchOpsMs, torchExprMs, copyMs, ... }
//     medians over `iters` runs on tensors of `bytes` bytes each (float32): the fused kernel,
//     the same arithmetic as in-place LibTorch ops (mul_out + add_), the same arithmetic as a
//     plain LibTorch expression (c0*x0 + c1*x1 + ..., with temporaries), and a device copy of
//     one tensor (the bandwidth yardstick).
//
//   maskedLincomb(inputs, coefs, { mask, x0, noise, a, s, device?, offset?, inPlace? }) -> Float32Array
//     out = (1 - mask) * sum_k coefs[k] * inputs[k] + mask * (a * x0 + s * noise) with the fused
//     masked kernel (the inpainting correction, kernels/masked_lincomb.h); inPlace writes into
//     the buffer of inputs[0] (dst aliasing a source, as the solver's state update).
//
//   benchMaskedLincomb({ terms, bytes, device?, iters? }) -> { maskedMs, twoPassMs, plainMs, torchOpsMs, ... }
//     medians on float32 tensors of `bytes` bytes: the fused masked pass; the same as two passes
//     (the plain fused lincomb, then the correction as a second in-place masked pass over the
//     result, i.e. a separate correction op); the plain fused lincomb alone (no correction);
//     the masked arithmetic as LibTorch ops.
#include "testing.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "device_dtype.h"
#include "errors.h"
#include "kernels/lincomb.h"
#include "kernels/lincomb_tensor.h"
#include "kernels/masked_lincomb_tensor.h"

namespace scire {
namespace {

at::Device ReadDevice(const Napi::Object& opts, const std::string& where) {
  const Napi::Value d = opts.Get("device");
  if (d.IsUndefined()) return at::Device(at::kCPU);
  if (!d.IsString()) throw TypeErrorFor(where, "device", "a string: 'cpu', 'cuda' or 'cuda:N'");
  const std::string name = d.As<Napi::String>().Utf8Value();
  at::Device device = ParseDevice(where, name);
  CheckDeviceUsable(where, device, name);
  return device;
}

at::ScalarType ReadDType(const Napi::Object& opts, const char* key, const std::string& where) {
  const Napi::Value d = opts.Get(key);
  if (d.IsUndefined()) return at::kFloat;
  if (!d.IsString()) throw TypeErrorFor(where, key, std::string("a string: ") + kAllowedDTypes);
  try {
    return ParseDType(where, d.As<Napi::String>().Utf8Value());
  } catch (const ScireError&) {
    throw RangeErrorFor(where, key, std::string("must be ") + kAllowedDTypes + " (got '" +
                                        d.As<Napi::String>().Utf8Value() + "')");
  }
}

// A contiguous view of n elements starting `offset` elements into a fresh allocation.
at::Tensor OffsetBuffer(int64_t n, int64_t offset, const at::TensorOptions& options) {
  return at::empty({n + offset}, options).narrow(0, offset, n);
}

}  // namespace

// ------------------------------------------------------------------ lincomb
Napi::Value LincombJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string where = "lincomb";
  return GuardJs(env, where, [&]() -> Napi::Value {
    if (info.Length() < 2 || !info[0].IsArray()) throw TypeErrorFor(where, "inputs", "an array of 1 to 4 Float32Arrays");
    const Napi::Array inputs = info[0].As<Napi::Array>();
    if (!info[1].IsArray()) throw TypeErrorFor(where, "coefs", "an array of finite numbers");
    const Napi::Array coefs = info[1].As<Napi::Array>();
    const uint32_t terms = inputs.Length();
    if (terms < 1 || terms > static_cast<uint32_t>(kernels::kMaxTerms)) {
      throw RangeErrorFor(where, "inputs", "must hold 1 to 4 arrays (got " + std::to_string(terms) + ")");
    }
    if (coefs.Length() != terms) {
      throw RangeErrorFor(where, "coefs", "must have one coefficient per input (" + std::to_string(terms) + "), got " +
                                              std::to_string(coefs.Length()));
    }
    Napi::Object opts = Napi::Object::New(env);
    if (info.Length() > 2 && !info[2].IsUndefined()) {
      if (!info[2].IsObject()) throw TypeErrorFor(where, "options", "an object { device?, offset?, termDType?, outDType? }");
      opts = info[2].As<Napi::Object>();
    }
    const at::Device device = ReadDevice(opts, where);
    int64_t offset = 0;
    const Napi::Value off = opts.Get("offset");
    if (!off.IsUndefined()) {
      const double v = off.IsNumber() ? off.As<Napi::Number>().DoubleValue() : -1;
      if (!off.IsNumber() || !(v >= 0 && v <= 1024) || std::floor(v) != v) {
        throw RangeErrorFor(where, "offset", "must be an integer in [0, 1024] (elements)");
      }
      offset = static_cast<int64_t>(v);
    }
    const at::ScalarType termType = ReadDType(opts, "termDType", where);
    const at::ScalarType outType = ReadDType(opts, "outDType", where);

    std::vector<kernels::Term> list;
    int64_t n = -1;
    for (uint32_t k = 0; k < terms; ++k) {
      const Napi::Value a = inputs.Get(k);
      if (!a.IsTypedArray() || a.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
        throw TypeErrorFor(where, "inputs[" + std::to_string(k) + "]", "a Float32Array");
      }
      auto arr = a.As<Napi::Float32Array>();
      if (n < 0) n = static_cast<int64_t>(arr.ElementLength());
      if (static_cast<int64_t>(arr.ElementLength()) != n) {
        throw RangeErrorFor(where, "inputs[" + std::to_string(k) + "]", "has " + std::to_string(arr.ElementLength()) +
                                                                          " elements but inputs[0] has " + std::to_string(n));
      }
      const Napi::Value c = coefs.Get(k);
      if (!c.IsNumber() || !std::isfinite(c.As<Napi::Number>().DoubleValue())) {
        throw TypeErrorFor(where, "coefs[" + std::to_string(k) + "]", "a finite number");
      }
      at::Tensor host = at::from_blob(arr.Data(), {n}, at::kFloat);
      const at::ScalarType type = k == 0 ? at::kFloat : termType;
      at::Tensor buffer = OffsetBuffer(n, offset, at::TensorOptions().dtype(type).device(device));
      buffer.copy_(host);
      list.push_back({static_cast<float>(c.As<Napi::Number>().DoubleValue()), buffer});
    }
    at::Tensor out = OffsetBuffer(n, offset, at::TensorOptions().dtype(outType).device(device));
    kernels::FusedLincomb(out, list);
    at::Tensor result = out.to(at::TensorOptions().dtype(at::kFloat).device(at::kCPU)).contiguous();
    Napi::Float32Array js = Napi::Float32Array::New(env, static_cast<size_t>(n));
    if (n > 0) std::memcpy(js.Data(), result.data_ptr<float>(), static_cast<size_t>(n) * sizeof(float));
    return js;
  });
}

// ------------------------------------------------------------------ benchLincomb
namespace {

using Clock = std::chrono::steady_clock;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median milliseconds of `iters` calls of fn (after one warm-up call), timed on the host
// (CPU) or between CUDA events on the current stream (GPU).
double TimeMedian(const at::Device& device, int iters, const std::function<void()>& fn) {
  if (device.is_cuda()) {
#if defined(SCIRE_WITH_CUDA) && defined(SCIRE_TORCH_HAS_CUDA)
    struct Ctx {
      const std::function<void()>* fn;
      std::string error;
    } ctx{&fn, ""};
    auto enqueue = [](void* p) -> int {
      auto* c = static_cast<Ctx*>(p);
      try {
        (*c->fn)();
        return 0;
      } catch (const std::exception& e) {
        c->error = e.what();
        return -1;
      }
    };
    double ms = 0;
    char err[512] = {0};
    if (kernels::CudaTimeEnqueue(enqueue, &ctx, iters, kernels::CurrentStream(device), &ms, err, sizeof err) != 0) {
      throw std::runtime_error(std::string(err) + (ctx.error.empty() ? "" : ": " + ctx.error));
    }
    return ms;
#else
    throw std::runtime_error("benchLincomb: this addon was built without the CUDA kernels");
#endif
  }
  fn();  // warm-up
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = Clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return Median(ms);
}

// The options of the lincomb benchmarks: { terms (1..4), bytes (of one float32 tensor), device?, iters? }.
struct BenchOptions {
  int terms;
  int64_t n;  // elements of one tensor
  int iters;
  at::Device device;
};

BenchOptions ReadBenchOptions(const Napi::CallbackInfo& info, const std::string& where) {
  if (info.Length() < 1 || !info[0].IsObject()) throw TypeErrorFor(where, "options", "an object { terms, bytes, device?, iters? }");
  const Napi::Object opts = info[0].As<Napi::Object>();
  const Napi::Value termsV = opts.Get("terms");
  const double terms = termsV.IsNumber() ? termsV.As<Napi::Number>().DoubleValue() : 0;
  if (!(terms >= 1 && terms <= kernels::kMaxTerms) || std::floor(terms) != terms) {
    throw RangeErrorFor(where, "terms", "must be an integer from 1 to 4");
  }
  const Napi::Value bytesV = opts.Get("bytes");
  const double bytes = bytesV.IsNumber() ? bytesV.As<Napi::Number>().DoubleValue() : 0;
  if (!(bytes >= 4 && bytes <= 4.0 * (1ull << 30)) || std::fmod(bytes, 4) != 0) {
    throw RangeErrorFor(where, "bytes", "must be a multiple of 4 from 4 to 4 GiB (bytes of one float32 tensor)");
  }
  int iters = 20;
  const Napi::Value itersV = opts.Get("iters");
  if (!itersV.IsUndefined()) {
    const double v = itersV.IsNumber() ? itersV.As<Napi::Number>().DoubleValue() : 0;
    if (!(v >= 1 && v <= 100000) || std::floor(v) != v) throw RangeErrorFor(where, "iters", "must be an integer from 1 to 100000");
    iters = static_cast<int>(v);
  }
  return {static_cast<int>(terms), static_cast<int64_t>(bytes / 4), iters, ReadDevice(opts, where)};
}

// The benchmarks' k input terms: n uniform values each, fixed coefficients.
std::vector<kernels::Term> BenchTerms(int k, int64_t n, const at::TensorOptions& f32) {
  std::vector<kernels::Term> list;
  const float coefs[4] = {0.5f, -1.25f, 2.0f, 0.75f};
  for (int i = 0; i < k; ++i) list.push_back({coefs[i], at::rand({n}, f32)});
  return list;
}

}  // namespace

Napi::Value BenchLincombJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string where = "benchLincomb";
  return GuardJs(env, where, [&]() -> Napi::Value {
    const BenchOptions bench = ReadBenchOptions(info, where);
    const at::Device device = bench.device;
    const int64_t n = bench.n;
    const int k = bench.terms;
    const int iters = bench.iters;
    const auto f32 = at::TensorOptions().dtype(at::kFloat).device(device);

    const std::vector<kernels::Term> list = BenchTerms(k, n, f32);
    at::Tensor out = at::empty({n}, f32);
    at::Tensor copyDst = at::empty({n}, f32);

    const double fusedMs = TimeMedian(device, iters, [&] { kernels::FusedLincomb(out, list); });
    const double torchOpsMs = TimeMedian(device, iters, [&] { kernels::LincombWithTorchOps(out, list); });
    const double torchExprMs = TimeMedian(device, iters, [&] {
      at::Tensor r = list[0].tensor * list[0].coef;
      for (int i = 1; i < k; ++i) r = r + list[i].tensor * list[i].coef;
    });
    double copyMs = 0;
    if (device.is_cuda()) {
#if defined(SCIRE_WITH_CUDA) && defined(SCIRE_TORCH_HAS_CUDA)
      const at::Tensor& src = list[0].tensor;
      copyMs = TimeMedian(device, iters, [&] {
        char err[256] = {0};
        if (kernels::CudaCopyAsync(copyDst.data_ptr(), src.data_ptr(), static_cast<size_t>(n) * 4,
                                   kernels::CurrentStream(device), err, sizeof err) != 0) {
          throw std::runtime_error(err);
        }
      });
#endif
    } else {
      copyMs = TimeMedian(device, iters, [&] { copyDst.copy_(list[0].tensor); });
    }
    // correctness spot check of the timed kernel against the LibTorch expression
    at::Tensor expect = list[0].tensor * list[0].coef;
    for (int i = 1; i < k; ++i) expect = expect + list[i].tensor * list[i].coef;
    kernels::FusedLincomb(out, list);
    const double maxAbsDiff = (out - expect).abs().max().item<double>();

    Napi::Object r = Napi::Object::New(env);
    r.Set("terms", k);
    r.Set("bytes", static_cast<double>(n) * 4);
    r.Set("elements", static_cast<double>(n));
    r.Set("device", DeviceName(device));
    r.Set("iters", iters);
    r.Set("threads", at::get_num_threads());
    r.Set("fusedMs", fusedMs);
    r.Set("torchOpsMs", torchOpsMs);
    r.Set("torchExprMs", torchExprMs);
    r.Set("copyMs", copyMs);
    r.Set("maxAbsDiff", maxAbsDiff);
    return r;
  });
}

// ------------------------------------------------------------------ maskedLincomb
namespace {

// A Float32Array option of `n` values copied to a fresh tensor on `device` (offset elements in).
at::Tensor MaskedInput(const Napi::Object& opts, const char* key, int64_t n, int64_t offset, const at::Device& device,
                       const std::string& where) {
  const Napi::Value v = opts.Get(key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw TypeErrorFor(where, key, "a Float32Array");
  }
  auto arr = v.As<Napi::Float32Array>();
  if (static_cast<int64_t>(arr.ElementLength()) != n) {
    throw RangeErrorFor(where, key, "has " + std::to_string(arr.ElementLength()) + " elements but inputs[0] has " + std::to_string(n));
  }
  at::Tensor buffer = OffsetBuffer(n, offset, at::TensorOptions().dtype(at::kFloat).device(device));
  buffer.copy_(at::from_blob(arr.Data(), {n}, at::kFloat));
  return buffer;
}

float FiniteOption(const Napi::Object& opts, const char* key, const std::string& where) {
  const Napi::Value v = opts.Get(key);
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue())) throw TypeErrorFor(where, key, "a finite number");
  return static_cast<float>(v.As<Napi::Number>().DoubleValue());
}

}  // namespace

Napi::Value MaskedLincombJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string where = "maskedLincomb";
  return GuardJs(env, where, [&]() -> Napi::Value {
    if (info.Length() < 3 || !info[0].IsArray() || !info[1].IsArray() || !info[2].IsObject()) {
      throw TypeErrorFor(where, "arguments", "(inputs: Float32Array[], coefs: number[], { mask, x0, noise, a, s, device?, offset?, inPlace? })");
    }
    const Napi::Array inputs = info[0].As<Napi::Array>();
    const Napi::Array coefs = info[1].As<Napi::Array>();
    const Napi::Object opts = info[2].As<Napi::Object>();
    const uint32_t terms = inputs.Length();
    if (terms < 1 || terms > static_cast<uint32_t>(kernels::kMaxTerms) || coefs.Length() != terms) {
      throw RangeErrorFor(where, "inputs", "must hold 1 to 4 arrays, one coefficient each");
    }
    const at::Device device = ReadDevice(opts, where);
    const Napi::Value off = opts.Get("offset");
    const int64_t offset = off.IsNumber() ? static_cast<int64_t>(off.As<Napi::Number>().Int64Value()) : 0;
    if (offset < 0 || offset > 1024) throw RangeErrorFor(where, "offset", "must be an integer in [0, 1024] (elements)");
    const bool inPlace = opts.Get("inPlace").ToBoolean().Value();
    std::vector<kernels::Term> list;
    int64_t n = -1;
    for (uint32_t k = 0; k < terms; ++k) {
      const Napi::Value a = inputs.Get(k);
      if (!a.IsTypedArray() || a.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
        throw TypeErrorFor(where, "inputs[" + std::to_string(k) + "]", "a Float32Array");
      }
      auto arr = a.As<Napi::Float32Array>();
      if (n < 0) n = static_cast<int64_t>(arr.ElementLength());
      if (static_cast<int64_t>(arr.ElementLength()) != n) throw RangeErrorFor(where, "inputs[" + std::to_string(k) + "]", "must have the length of inputs[0]");
      const Napi::Value c = coefs.Get(k);
      if (!c.IsNumber()) throw TypeErrorFor(where, "coefs[" + std::to_string(k) + "]", "a finite number");
      at::Tensor buffer = OffsetBuffer(n, offset, at::TensorOptions().dtype(at::kFloat).device(device));
      buffer.copy_(at::from_blob(arr.Data(), {n}, at::kFloat));
      list.push_back({static_cast<float>(c.As<Napi::Number>().DoubleValue()), buffer});
    }
    kernels::KnownRegion known{MaskedInput(opts, "mask", n, offset, device, where), MaskedInput(opts, "x0", n, offset, device, where),
                               MaskedInput(opts, "noise", n, offset, device, where)};
    const float a = FiniteOption(opts, "a", where);
    const float s = FiniteOption(opts, "s", where);
    at::Tensor out = inPlace ? list[0].tensor : OffsetBuffer(n, offset, at::TensorOptions().dtype(at::kFloat).device(device));
    kernels::FusedMaskedLincomb(out, list, known, a, s);
    at::Tensor result = out.to(at::kCPU).contiguous();
    Napi::Float32Array js = Napi::Float32Array::New(env, static_cast<size_t>(n));
    if (n > 0) std::memcpy(js.Data(), result.data_ptr<float>(), static_cast<size_t>(n) * sizeof(float));
    return js;
  });
}

Napi::Value BenchMaskedLincombJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string where = "benchMaskedLincomb";
  return GuardJs(env, where, [&]() -> Napi::Value {
    const BenchOptions bench = ReadBenchOptions(info, where);
    const at::Device device = bench.device;
    const int64_t n = bench.n;
    const int k = bench.terms;
    const int iters = bench.iters;
    const auto f32 = at::TensorOptions().dtype(at::kFloat).device(device);
    const std::vector<kernels::Term> list = BenchTerms(k, n, f32);
    const kernels::KnownRegion known{at::rand({n}, f32).round(), at::rand({n}, f32), at::randn({n}, f32)};
    const float a = 0.9f, s = 0.3f;
    at::Tensor out = at::empty({n}, f32);

    const double maskedMs = TimeMedian(device, iters, [&] { kernels::FusedMaskedLincomb(out, list, known, a, s); });
    const double twoPassMs = TimeMedian(device, iters, [&] {
      kernels::FusedLincomb(out, list);
      kernels::FusedMaskedLincomb(out, {{1.f, out}}, known, a, s);
    });
    const double plainMs = TimeMedian(device, iters, [&] { kernels::FusedLincomb(out, list); });
    const double torchOpsMs = TimeMedian(device, iters, [&] { kernels::MaskedLincombWithTorchOps(out, list, known, a, s); });
    // correctness spot check against a LibTorch expression
    at::Tensor sum = list[0].tensor * list[0].coef;
    for (int i = 1; i < k; ++i) sum = sum + list[i].tensor * list[i].coef;
    const at::Tensor expect = (1 - known.mask) * sum + known.mask * (known.x0 * a + known.noise * s);
    kernels::FusedMaskedLincomb(out, list, known, a, s);
    const double maxAbsDiff = (out - expect).abs().max().item<double>();

    Napi::Object r = Napi::Object::New(env);
    r.Set("terms", k);
    r.Set("bytes", static_cast<double>(n) * 4);
    r.Set("device", DeviceName(device));
    r.Set("iters", iters);
    r.Set("threads", at::get_num_threads());
    r.Set("maskedMs", maskedMs);
    r.Set("twoPassMs", twoPassMs);
    r.Set("plainMs", plainMs);
    r.Set("torchOpsMs", torchOpsMs);
    r.Set("maxAbsDiff", maxAbsDiff);
    return r;
  });
}

}  // namespace scire
