// Reductions: argument checks, output shapes and vector-Jacobian products.
#include "core/ops/reduce.h"

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

/// The shape of a reduction's result with keepdim, from the reduced axes.
Shape keepdim_shape(const Shape& shape, const std::vector<int>& axes) {
  return reduced_shape(shape, axes, true);
}

}  // namespace

Tensor sum(const Tensor& x, const Axes& axes, bool keepdim) {
  if (!x.defined()) fail("[sum] got an undefined tensor");
  const std::vector<int> ax = normalize_axes(axes, x.ndim(), "sum");
  const Tensor input = x.dtype() == Dtype::boolean ? x.astype(Dtype::i64) : x;
  return apply(std::make_shared<prims::Sum>(ax, keepdim), {input},
               reduced_shape(x.shape(), ax, keepdim), input.dtype());
}

Tensor mean(const Tensor& x, const Axes& axes, bool keepdim) {
  if (!x.defined()) fail("[mean] got an undefined tensor");
  if (!is_floating(x.dtype())) {
    fail("[mean] needs a floating dtype (float32 or float64), got {}", dtype_name(x.dtype()));
  }
  const std::vector<int> ax = normalize_axes(axes, x.ndim(), "mean");
  int64_t count = 1;
  for (int a : ax) count *= x.shape()[a];
  return sum(x, axes, keepdim) / static_cast<double>(count);
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const int lead = x.ndim() - static_cast<int>(shape.size());
  if (lead < 0) {
    fail("[sum_to] cannot sum shape {} to the larger shape {}", shape_str(x.shape()), shape_str(shape));
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

namespace prims {

Tensors Sum::vjp(const Tensors& in, const Tensor&, const Tensor& cot, const std::vector<int>&) {
  const Tensor c = keepdim_ ? cot : reshape(cot, keepdim_shape(in[0].shape(), axes_));
  return {broadcast_to(c, in[0].shape())};
}

}  // namespace prims
}  // namespace basin
