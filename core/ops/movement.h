// Movement ops: reshape, permute, slicing, concatenation, broadcasting, padding. Views share the
// input's buffer where the layout allows.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace basin {

/// Same elements in a new shape; one dimension may be -1 (inferred). A view when x is contiguous.
Tensor reshape(const Tensor& x, const Shape& shape);
/// Reorders dimensions: out.shape[i] = x.shape[perm[i]]. A view.
Tensor permute(const Tensor& x, const std::vector<int>& perm);
/// Swaps two dimensions. A view.
Tensor transpose(const Tensor& x, int a = -2, int b = -1);
/// x broadcast (NumPy rules) to `shape`. A view with zero strides.
Tensor broadcast_to(const Tensor& x, const Shape& shape);
/// Removes the given size-1 axes (all size-1 axes when empty).
Tensor squeeze(const Tensor& x, const std::vector<int>& axes = {});
/// Inserts a size-1 axis at `axis` (in the result's numbering).
Tensor unsqueeze(const Tensor& x, int axis);
/// Merges dimensions start..end (inclusive) into one.
Tensor flatten(const Tensor& x, int start = 0, int end = -1);

}  // namespace basin
