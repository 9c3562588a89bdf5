// Shapes and strides (in elements), broadcasting and axis helpers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace basin {

/// Sizes of a tensor's dimensions; strides use the same type, counted in elements.
using Shape = std::vector<int64_t>;

/// Number of elements of a tensor of this shape (1 for a scalar).
int64_t numel(const Shape& shape);
/// Row-major strides of a contiguous tensor of this shape.
Shape contiguous_strides(const Shape& shape);
/// "(2, 3)" — the form used in every error message.
std::string shape_str(const Shape& shape);

/// NumPy broadcasting of two shapes; `op` names the caller in the error.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

/// Maps a possibly negative axis into [0, ndim); `op` names the caller in the error.
int normalize_axis(int64_t axis, int64_t ndim, const char* op);
/// Normalises a list of axes, sorted, duplicates rejected. An empty list means every axis.
std::vector<int> normalize_axes(const std::vector<int>& axes, int64_t ndim, const char* op);

}  // namespace basin
