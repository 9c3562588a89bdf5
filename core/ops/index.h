// Indexing ops: gather/scatter_add along an axis, index_select, embedding, index_put, one_hot.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace basin {

// Index tensors are int32 or int64. An index outside [0, size) is an error naming it and the
// valid range; negative indices do not count from the end (as in PyTorch, unlike NumPy).

/// take_along_axis (PyTorch gather): out[p] = x[p with its `axis` coordinate replaced by
/// index[p]]. `index` has x's rank and index.shape[d] <= x.shape[d] for d != axis; the result has
/// the index's shape. Differentiable in x (the gradient is a scatter_add).
Tensor gather(const Tensor& x, int axis, const Tensor& index);
/// NumPy's name and argument order for gather.
inline Tensor take_along_axis(const Tensor& x, const Tensor& index, int axis) {
  return gather(x, axis, index);
}

/// base with src added at `index` along `axis`: out[p with its axis coordinate replaced by
/// index[p]] += src[p] for every position p of the index; duplicates accumulate. `index` has
/// base's rank and index.shape[d] <= base.shape[d] for d != axis; `src` broadcasts to the index's
/// shape and is cast to base's dtype. Deterministic. Differentiable in base and src.
Tensor scatter_add(const Tensor& base, int axis, const Tensor& index, const Tensor& src);

/// The slices of x at the entries of the 1-D `index` along `axis`: the result has x's shape with
/// that dimension replaced by index.numel(). Differentiable in x.
Tensor index_select(const Tensor& x, int axis, const Tensor& index);

/// Rows of `weight` (V, ...) looked up by `ids` of any shape: the result has shape ids.shape +
/// weight.shape[1:]. Differentiable in weight (repeated ids accumulate).
Tensor embedding(const Tensor& weight, const Tensor& ids);

/// A copy of x with the slices at the 1-D `index` along `axis` replaced by `values` (or, with
/// `accumulate`, incremented by them; repeated indices then add up). `values` broadcasts to x's
/// shape with that dimension replaced by index.numel() and is cast to x's dtype. Without
/// `accumulate` the indices must be distinct. Differentiable in x and values.
Tensor index_put(const Tensor& x, int axis, const Tensor& index, const Tensor& values,
                 bool accumulate = false);

/// x with `value` where the bool `mask` (broadcasting to x's shape) is true. Differentiable in x.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

/// One-hot encoding: labels.shape + (num_classes,), 1 at each label's class and 0 elsewhere.
/// Labels are int32/int64 in [0, num_classes).
Tensor one_hot(const Tensor& labels, int64_t num_classes, Dtype dtype = Dtype::f32);

}  // namespace basin
