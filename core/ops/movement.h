// Movement ops: reshapes and other views, slices, joins, splits, flips, padding and tiling.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace basin {

// --- views ---------------------------------------------------------------------------------------
/// Same elements in a new shape; one dimension may be -1 (inferred). A view when the input's
/// strides allow it (always for contiguous inputs, as in PyTorch's view rules), otherwise a copy.
Tensor reshape(const Tensor& x, const Shape& shape);
/// As reshape, but always a view: an error naming the shape and strides when a copy would be
/// needed.
Tensor view(const Tensor& x, const Shape& shape);
/// Reorders dimensions: out.shape[i] = x.shape[perm[i]]. A view.
Tensor permute(const Tensor& x, const std::vector<int>& perm);
/// Swaps two dimensions. A view.
Tensor transpose(const Tensor& x, int a = -2, int b = -1);
/// Swaps two dimensions (NumPy's name for transpose). A view.
Tensor swapaxes(const Tensor& x, int a, int b);
/// Moves dimension `source` to position `destination`; the others keep their order. A view.
Tensor movedim(const Tensor& x, int source, int destination);
/// Moves dimensions source[i] to destination[i]; the others keep their order. A view.
Tensor movedim(const Tensor& x, const std::vector<int>& source,
               const std::vector<int>& destination);
/// x broadcast (NumPy rules) to `shape`. A view with zero strides.
Tensor broadcast_to(const Tensor& x, const Shape& shape);
/// broadcast_to where -1 keeps x's size in that dimension (PyTorch's expand). A view.
Tensor expand(const Tensor& x, const Shape& shape);
/// Removes the given size-1 axes (all size-1 axes when empty).
Tensor squeeze(const Tensor& x, const std::vector<int>& axes = {});
/// Inserts a size-1 axis at `axis` (in the result's numbering).
Tensor unsqueeze(const Tensor& x, int axis);
/// Merges dimensions start..end (inclusive) into one.
Tensor flatten(const Tensor& x, int start = 0, int end = -1);

/// x[start:stop:step] along `axis`, with Python's rules: negative indices count from the end and
/// out-of-range indices are clamped (so a large `stop` means "to the end"). `step` must be
/// positive. A view.
Tensor slice(const Tensor& x, int axis, int64_t start, int64_t stop, int64_t step = 1);
/// The `length` elements from `start` along `axis` (negative `start` counts from the end); unlike
/// slice, the range must lie inside the dimension. A view.
Tensor narrow(const Tensor& x, int axis, int64_t start, int64_t length);

// --- copies --------------------------------------------------------------------------------------
/// Joins tensors along an existing axis; every other dimension must match. Mixed dtypes promote
/// as in arithmetic. Always a new buffer.
Tensor concat(const Tensors& tensors, int axis = 0);
/// Joins equally shaped tensors along a new axis `axis` (in the result's numbering).
Tensor stack(const Tensors& tensors, int axis = 0);
/// Splits x along `axis` into pieces of the given sizes, which must add up to the dimension. Views.
/// A braced one-element list, split(x, {n}), picks the size_each overload below.
Tensors split(const Tensor& x, const std::vector<int64_t>& sizes, int axis = 0);
/// Splits x along `axis` into pieces of `size_each` elements; the last may be smaller. Views.
Tensors split(const Tensor& x, int64_t size_each, int axis = 0);
/// Splits x along `axis` into pieces of ceil(size / n) elements, as PyTorch's chunk: there may be
/// fewer than n pieces (size 5 in 4 chunks gives 2, 2, 1); a size-0 axis gives n empty pieces.
Tensors chunk(const Tensor& x, int64_t n, int axis = 0);

/// x with the order of elements reversed along each of `axes` (all axes when empty). A copy.
Tensor flip(const Tensor& x, const std::vector<int>& axes = {});

/// Padding amounts (before, after) for one dimension.
using PadWidth = std::pair<int64_t, int64_t>;
/// x surrounded by `value`: pads[d] = (before, after) elements added to dimension d, one pair per
/// dimension starting from the first (unlike PyTorch's F.pad, which starts from the last). A
/// negative amount removes elements from that side instead. The value is converted to x's dtype.
Tensor pad(const Tensor& x, const std::vector<PadWidth>& pads, double value = 0.0);

/// x repeated reps[d] times along each dimension, as PyTorch's Tensor.repeat: reps needs at least
/// x.ndim() entries; extra leading entries add new dimensions. Not NumPy's repeat (which repeats
/// each element): this is NumPy's tile with that one restriction.
Tensor repeat(const Tensor& x, const Shape& reps);
/// x repeated reps[d] times along each dimension, as numpy.tile: when reps is shorter than
/// x.ndim() it is padded with leading 1s, when longer x gains leading size-1 dimensions.
Tensor tile(const Tensor& x, const Shape& reps);

}  // namespace basin
