// The one parser of shapes given from JS (model.forward, model.execute, the testing entries),
// and the copy of a Float32Array into a tensor of a checked shape.
#pragma once

#include <napi.h>
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace scire {

/** Largest element count a shape may describe (2^53: exact in a JS number). */
constexpr double kMaxShapeElements = 9007199254740992.0;

/**
 * Reads `value` as an array of positive integers (at least one dimension) whose product is at
 * most kMaxShapeElements. TypeError "<where>: <field> must be an array of positive integers" /
 * "<where>: <field>[i] must be a positive integer"; RangeError for [] or too many elements.
 */
std::vector<int64_t> ParseShape(const Napi::Value& value, const std::string& where, const std::string& field);

/** Product of the dimensions. */
int64_t ShapeNumel(const std::vector<int64_t>& shape);

/** "[2, 16]" */
std::string ShapeString(c10::IntArrayRef sizes);

/**
 * Copies a Float32Array into a new CPU float32 tensor of `shape`. TypeError when `value` is not
 * a Float32Array; RangeError "<where>: <field> has N elements but its shape needs M".
 */
at::Tensor CopyFloat32(const Napi::Value& value, const std::string& where, const std::string& field,
                       const std::vector<int64_t>& shape);

}  // namespace scire
