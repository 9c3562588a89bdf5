// Reductions: argument checks, output shapes and vector-Jacobian products.
#include "core/ops/reduce.h"

#include <cmath>

#include <fmt/ranges.h>

#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/movement.h"
#include "core/prims/reduce.h"

namespace basin {
namespace {

Shape reduced_shape(const Shape& shape, const std::vector<int>& axes, bool keepdim) {
  Shape out;
  size_t k = 0;
  for (int d = 0; d < static_cast<int>(shape.size()); ++d) {
    if (k < axes.size() && axes[k] == d) {
      ++k;
      if (keepdim) out.push_back(1);
    } else {
      out.push_back(shape[d]);
    }
  }
  return out;
}

/// A reduction's result (or cotangent) reshaped to keep the reduced axes as size 1, so that it
/// broadcasts against the input.
Tensor with_kept_dims(const Tensor& t, const Shape& in_shape, const std::vector<int>& axes,
                      bool keepdim) {
  return keepdim ? t : reshape(t, reduced_shape(in_shape, axes, true));
}

int64_t reduced_count(const Shape& shape, const std::vector<int>& axes) {
  int64_t n = 1;
  for (int a : axes) n *= shape[a];
  return n;
}

void check_defined(const Tensor& x, const char* op) {
  if (!x.defined()) fail("[{}] got an undefined tensor", op);
}

void check_floating(const Tensor& x, const char* op) {
  check_defined(x, op);
  if (!is_floating(x.dtype())) {
    fail("[{}] needs a floating dtype (float32 or float64), got {}", op, dtype_name(x.dtype()));
  }
}

/// A fold over `axes` whose result has x's dtype (bool counts as `bool_as`).
template <class OpT>
Tensor fold(const char* op, const Tensor& x, const Axes& axes, bool keepdim, Dtype bool_as) {
  check_defined(x, op);
  const std::vector<int> ax = normalize_axes(axes, x.ndim(), op);
  const Tensor input = x.dtype() == Dtype::boolean ? x.astype(bool_as) : x;
  return apply(std::make_shared<OpT>(ax, keepdim), {input}, reduced_shape(x.shape(), ax, keepdim),
               input.dtype());
}

/// max or min: like fold, but an empty slice has no value to give.
template <class OpT>
Tensor extremum(const char* op, const Tensor& x, const Axes& axes, bool keepdim) {
  check_defined(x, op);
  const std::vector<int> ax = normalize_axes(axes, x.ndim(), op);
  if (reduced_count(x.shape(), ax) == 0) {
    fail("[{}] cannot reduce an empty slice: shape {} over axes ({}); {} has no identity", op,
         shape_str(x.shape()), fmt::join(ax, ", "), op);
  }
  if (x.dtype() == Dtype::boolean) {
    return extremum<OpT>(op, x.astype(Dtype::u8), axes, keepdim).astype(Dtype::boolean);
  }
  return apply(std::make_shared<OpT>(ax, keepdim), {x}, reduced_shape(x.shape(), ax, keepdim),
               x.dtype());
}

template <class OpT>
Tensor arg_extremum(const char* op, const Tensor& x, std::optional<int> axis, bool keepdim) {
  check_defined(x, op);
  if (x.dtype() == Dtype::boolean) return arg_extremum<OpT>(op, x.astype(Dtype::u8), axis, keepdim);
  if (!axis) {
    if (x.numel() == 0) fail("[{}] got an empty tensor of shape {}", op, shape_str(x.shape()));
    // The flat index is in row-major order, so the input is flattened (a copy if it must be).
    const Tensor flat = reshape(x, {x.numel()});
    const Tensor r = apply(std::make_shared<OpT>(0, false), {flat}, Shape{}, Dtype::i64);
    return keepdim ? reshape(r, Shape(static_cast<size_t>(x.ndim()), 1)) : r;
  }
  const int a = normalize_axis(*axis, x.ndim(), op);
  if (x.shape()[a] == 0) {
    fail("[{}] cannot reduce the empty axis {} of shape {}", op, *axis, shape_str(x.shape()));
  }
  return apply(std::make_shared<OpT>(a, keepdim), {x}, reduced_shape(x.shape(), {a}, keepdim),
               Dtype::i64);
}

/// 0 where `cond` holds, x elsewhere: the safe branches below select rather than multiply, since a
/// mask times an infinite or NaN value is NaN.
Tensor zero_where(const Tensor& cond, const Tensor& x) { return where(cond, 0.0, x); }

}  // namespace

Tensor sum(const Tensor& x, const Axes& axes, bool keepdim) {
  return fold<prims::Sum>("sum", x, axes, keepdim, Dtype::i64);
}

Tensor prod(const Tensor& x, const Axes& axes, bool keepdim) {
  return fold<prims::Prod>("prod", x, axes, keepdim, Dtype::i64);
}

Tensor mean(const Tensor& x, const Axes& axes, bool keepdim) {
  check_floating(x, "mean");
  const std::vector<int> ax = normalize_axes(axes, x.ndim(), "mean");
  return sum(x, axes, keepdim) / static_cast<double>(reduced_count(x.shape(), ax));
}

Tensor var(const Tensor& x, const Axes& axes, bool keepdim, double correction) {
  check_floating(x, "var");
  const std::vector<int> ax = normalize_axes(axes, x.ndim(), "var");
  const double n = static_cast<double>(reduced_count(x.shape(), ax));
  // Two passes (deviations from the mean) rather than E[x^2] - E[x]^2, which cancels.
  const Tensor d = x - mean(x, axes, true);
  return sum(d * d, axes, keepdim) / std::max(n - correction, 0.0);
}

Tensor std(const Tensor& x, const Axes& axes, bool keepdim, double correction) {
  check_floating(x, "std");
  normalize_axes(axes, x.ndim(), "std");
  const Tensor v = var(x, axes, keepdim, correction);
  // sqrt has an infinite slope at 0; the constant slice's gradient is taken as 0 instead.
  const Tensor zero = v == 0.0;
  return zero_where(zero, sqrt(where(zero, 1.0, v)));
}

Tensor max(const Tensor& x, const Axes& axes, bool keepdim) {
  return extremum<prims::Max>("max", x, axes, keepdim);
}

Tensor min(const Tensor& x, const Axes& axes, bool keepdim) {
  return extremum<prims::Min>("min", x, axes, keepdim);
}

Tensor argmax(const Tensor& x, std::optional<int> axis, bool keepdim) {
  return arg_extremum<prims::ArgMax>("argmax", x, axis, keepdim);
}

Tensor argmin(const Tensor& x, std::optional<int> axis, bool keepdim) {
  return arg_extremum<prims::ArgMin>("argmin", x, axis, keepdim);
}

Tensor logsumexp(const Tensor& x, const Axes& axes, bool keepdim) {
  check_floating(x, "logsumexp");
  const std::vector<int> ax = normalize_axes(axes, x.ndim(), "logsumexp");
  return apply(std::make_shared<prims::LogSumExp>(ax, keepdim), {x},
               reduced_shape(x.shape(), ax, keepdim), x.dtype());
}

Tensor logsumexp(const Tensor& x, std::initializer_list<int> axes, bool keepdim) {
  return logsumexp(x, Axes(axes), keepdim);
}

Tensor logsumexp(const Tensor& x, const Tensor& mask, const Axes& axes, bool keepdim) {
  check_floating(x, "logsumexp");
  check_defined(mask, "logsumexp");
  if (mask.dtype() != Dtype::boolean) {
    fail("[logsumexp] mask must be a bool tensor, got {}", dtype_name(mask.dtype()));
  }
  if (broadcast_shapes(mask.shape(), x.shape(), "logsumexp") != x.shape()) {
    fail("[logsumexp] mask of shape {} does not broadcast to x's shape {}", shape_str(mask.shape()),
         shape_str(x.shape()));
  }
  // Excluded elements become -inf, whose weight exp(-inf - lse) and gradient are exactly 0.
  return logsumexp(where(mask, x, -INFINITY), axes, keepdim);
}

Tensor norm(const Tensor& x, double p, const Axes& axes, bool keepdim) {
  check_floating(x, "norm");
  const std::vector<int> ax = normalize_axes(axes, x.ndim(), "norm");
  if (p == 1.0) return sum(abs(x), axes, keepdim);
  if (p == 2.0) {
    const Tensor s = sum(x * x, axes, keepdim);
    // sqrt's slope is infinite at 0: the zero vector's gradient is taken as 0, not NaN.
    const Tensor zero = s == 0.0;
    return zero_where(zero, sqrt(where(zero, 1.0, s)));
  }
  if (std::isinf(p) && p > 0) {
    if (reduced_count(x.shape(), ax) == 0) {
      fail("[norm] the infinity norm of an empty slice is undefined: shape {} over axes ({})",
           shape_str(x.shape()), fmt::join(ax, ", "));
    }
    return max(abs(x), axes, keepdim);
  }
  fail("[norm] p must be 1, 2 or inf, got {}", p);
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const int lead = x.ndim() - static_cast<int>(shape.size());
  if (lead < 0) {
    fail("[sum_to] cannot sum shape {} to the larger shape {}", shape_str(x.shape()),
         shape_str(shape));
  }
  Axes axes;
  for (int d = 0; d < x.ndim(); ++d) {
    if (d < lead) {
      axes.push_back(d);
    } else if (shape[d - lead] == 1 && x.shape()[d] != 1) {
      axes.push_back(d);
    } else if (shape[d - lead] != x.shape()[d]) {
      fail("[sum_to] shape {} does not broadcast to {}", shape_str(shape), shape_str(x.shape()));
    }
  }
  if (axes.empty()) return reshape(x, shape);
  return reshape(sum(x, axes, true), shape);
}

// --- vector-Jacobian products --------------------------------------------------------------------
namespace prims {

Tensors Sum::vjp(const Tensors& in, const Tensor&, const Tensor& cot, const std::vector<int>&) {
  return {broadcast_to(with_kept_dims(cot, in[0].shape(), axes_, keepdim_), in[0].shape())};
}

Tensors Prod::vjp(const Tensors& in, const Tensor& out, const Tensor& cot,
                  const std::vector<int>&) {
  const Tensor& x = in[0];
  const Tensor c = with_kept_dims(cot, x.shape(), axes_, keepdim_);
  const Tensor is_zero = x == 0.0;
  if (sum(is_zero).item<int64_t>() == 0) {
    return {c * with_kept_dims(out, x.shape(), axes_, keepdim_) / x};
  }
  // d/dx_i prod = prod_{j != i} x_j, without dividing by zero: `others` is the product of the
  // nonzero elements over x_i, and `zeros` the product of the zero elements (0 with one or more,
  // but with the right derivative when there is exactly one).
  const Tensor nonzero = where(is_zero, 1.0, x);
  const Tensor others = prod(nonzero, axes_, true);
  const Tensor zeros = prod(where(is_zero, x, 1.0), axes_, true);
  const Tensor single = sum(is_zero, axes_, true) == 1.0;
  const Tensor at_zero = where(single, others, 0.0);
  return {c * where(is_zero, at_zero, others / nonzero * zeros)};
}

// Ties share the cotangent equally, as in PyTorch's amax/amin.
#define BASIN_EXTREMUM_VJP(Name)                                                                 \
  Tensors Name::vjp(const Tensors& in, const Tensor& out, const Tensor& cot,                     \
                    const std::vector<int>&) {                                                   \
    const Tensor& x = in[0];                                                                     \
    const Tensor hit = (x == with_kept_dims(out, x.shape(), axes_, keepdim_)).astype(x.dtype()); \
    const Tensor share = hit / sum(hit, axes_, true);                                            \
    return {with_kept_dims(cot, x.shape(), axes_, keepdim_) * share};                            \
  }
BASIN_EXTREMUM_VJP(Max)
BASIN_EXTREMUM_VJP(Min)
#undef BASIN_EXTREMUM_VJP

Tensors LogSumExp::vjp(const Tensors& in, const Tensor& out, const Tensor& cot,
                       const std::vector<int>&) {
  // The softmax weights exp(x - lse). An all -inf slice (lse = -inf) is shifted by 0 instead,
  // giving weights exp(-inf) = 0 rather than exp(-inf + inf) = NaN.
  const Tensor lse = with_kept_dims(out, in[0].shape(), axes_, keepdim_);
  const Tensor shift = zero_where(lse == -INFINITY, lse);
  return {with_kept_dims(cot, in[0].shape(), axes_, keepdim_) * exp(in[0] - shift)};
}

Tensors ArgMax::vjp(const Tensors&, const Tensor&, const Tensor&, const std::vector<int>&) {
  fail("[argmax] is not differentiable");
}
Tensors ArgMin::vjp(const Tensors&, const Tensor&, const Tensor&, const std::vector<int>&) {
  fail("[argmin] is not differentiable");
}

}  // namespace prims
}  // namespace basin
