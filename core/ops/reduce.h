// Reductions over any set of axes (an empty list means all axes; negative axes count from the
// end), with keepdim: sums, products, extrema, moments, norms, logsumexp and arg-reductions.
#pragma once

#include <initializer_list>
#include <optional>
#include <vector>

#include "core/tensor.h"

namespace basin {

using Axes = std::vector<int>;

/// Sum; bool counts as int64. The sum over an empty axis is 0.
Tensor sum(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
/// Arithmetic mean (floating only); NaN over an empty axis.
Tensor mean(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
/// Variance sum((x - mean)^2) / (N - correction), N the number of reduced elements. The default
/// correction 0 is the population variance (NumPy's default ddof=0); 1 gives the unbiased
/// estimate (PyTorch's default). N <= correction gives inf or NaN, as in NumPy.
Tensor var(const Tensor& x, const Axes& axes = {}, bool keepdim = false, double correction = 0.0);
/// sqrt(var(x, axes, keepdim, correction)). Its gradient where the variance is exactly 0 (a
/// constant slice) is 0 rather than NaN.
Tensor std(const Tensor& x, const Axes& axes = {}, bool keepdim = false, double correction = 0.0);
/// Product; bool counts as int64. The product over an empty axis is 1. The gradient is exact
/// with zeros in a slice; the second derivative is exact except across two or more zeros of one
/// slice (where it is taken as 0).
Tensor prod(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
/// Largest element (NaN if a NaN is present; for bool, any). Reducing an empty axis is an error.
/// The gradient is shared equally among tied maxima (as PyTorch's amax).
Tensor max(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
/// Smallest element (for bool, all); as max.
Tensor min(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
/// Index (int64) of the first largest element along `axis`, or of the flattened tensor when no
/// axis is given (keepdim then keeps every dimension as size 1). A NaN counts as the largest, as
/// in NumPy. Not differentiable; an error on an empty axis.
Tensor argmax(const Tensor& x, std::optional<int> axis = std::nullopt, bool keepdim = false);
/// Index of the first smallest element; as argmax.
Tensor argmin(const Tensor& x, std::optional<int> axis = std::nullopt, bool keepdim = false);
/// log(sum(exp(x))), computed stably (the maximum is subtracted first). A slice that is all
/// -inf (or empty) gives -inf with a zero gradient; a +inf element gives +inf (its gradient is
/// NaN there, as in PyTorch).
Tensor logsumexp(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
/// The Axes form for a braced list: without it logsumexp(x, {0}) or logsumexp(x, {}) would be
/// ambiguous with the masked form ({0} and {} also convert to a Tensor).
Tensor logsumexp(const Tensor& x, std::initializer_list<int> axes, bool keepdim = false);
/// logsumexp over the elements where `mask` (bool, broadcastable to x's shape) is true; a slice
/// with no true element gives -inf, and masked-out elements get a zero gradient.
Tensor logsumexp(const Tensor& x, const Tensor& mask, const Axes& axes = {}, bool keepdim = false);
/// Vector norm over `axes` for p = 1 (sum |x|), 2 (sqrt of the sum of squares) or infinity
/// (max |x|). The p = 2 gradient at 0 is 0 rather than NaN. No rescaling is done, so p = 2
/// overflows where the sum of squares does.
Tensor norm(const Tensor& x, double p = 2.0, const Axes& axes = {}, bool keepdim = false);
/// Sums `x` down to `shape` (undoes broadcasting): the dimensions `shape` broadcast along are
/// summed.
Tensor sum_to(const Tensor& x, const Shape& shape);

}  // namespace basin
