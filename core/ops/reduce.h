// Reductions over any set of axes (an empty list means all axes), with keepdim.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace basin {

using Axes = std::vector<int>;

Tensor sum(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
/// Sums `x` down to `shape` (undoes broadcasting): the dimensions `shape` broadcast along are summed.
Tensor sum_to(const Tensor& x, const Shape& shape);

}  // namespace basin
