#include "shape.h"

#include <cmath>
#include <cstring>
#include <sstream>

#include "errors.h"

namespace scire {

std::vector<int64_t> ParseShape(const Napi::Value& value, const std::string& where, const std::string& field) {
  if (!value.IsArray()) throw TypeErrorFor(where, field, "an array of positive integers");
  const Napi::Array arr = value.As<Napi::Array>();
  if (arr.Length() == 0) throw RangeErrorFor(where, field, "must have at least one dimension (got [])");
  std::vector<int64_t> shape;
  double numel = 1;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    const Napi::Value d = arr.Get(i);
    const double v = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1.0;
    if (!(v >= 1 && v <= kMaxShapeElements) || std::floor(v) != v) {
      throw TypeErrorFor(where, field + "[" + std::to_string(i) + "]", "a positive integer");
    }
    shape.push_back(static_cast<int64_t>(v));
    numel *= v;
  }
  if (numel > kMaxShapeElements) {
    throw RangeErrorFor(where, field, ShapeString(shape) + " has more than 2^53 elements");
  }
  return shape;
}

int64_t ShapeNumel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeString(c10::IntArrayRef sizes) {
  std::ostringstream s;
  s << '[';
  for (size_t i = 0; i < sizes.size(); ++i) s << (i ? ", " : "") << sizes[i];
  s << ']';
  return s.str();
}

at::Tensor CopyFloat32(const Napi::Value& value, const std::string& where, const std::string& field,
                       const std::vector<int64_t>& shape) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw TypeErrorFor(where, field, "a Float32Array");
  }
  const auto array = value.As<Napi::Float32Array>();
  const int64_t numel = ShapeNumel(shape);
  if (numel != static_cast<int64_t>(array.ElementLength())) {
    throw RangeErrorFor(where, field, "has " + std::to_string(array.ElementLength()) + " elements but its shape needs " +
                                          std::to_string(numel));
  }
  at::Tensor t = at::empty(shape, at::kFloat);
  if (numel > 0) std::memcpy(t.data_ptr<float>(), array.Data(), numel * sizeof(float));
  return t;
}

}  // namespace scire
