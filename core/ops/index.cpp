// Indexing ops: argument checks, compositions over gather/scatter_add, and their gradients.
#include "core/ops/index.h"

#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/movement.h"
#include "core/prims/index.h"

namespace basin {
namespace {

void check_defined(const char* api, std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors) {
    if (!t->defined()) fail("[{}] got an undefined tensor", api);
  }
}

void check_index_dtype(const char* api, const Tensor& index, const char* what = "index") {
  if (index.dtype() != Dtype::i32 && index.dtype() != Dtype::i64) {
    fail("[{}] {} must be int32 or int64, got {}", api, what, dtype_name(index.dtype()));
  }
}

/// Checks an index for gather/scatter into a tensor of shape `shape` and returns the axis.
int check_along_axis(const char* api, const Shape& shape, int axis, const Tensor& index,
                     const char* target) {
  check_index_dtype(api, index);
  if (index.ndim() != static_cast<int>(shape.size())) {
    fail("[{}] index of shape {} must have the rank of {} with shape {}", api,
         shape_str(index.shape()), target, shape_str(shape));
  }
  const int ax = normalize_axis(axis, static_cast<int64_t>(shape.size()), api);
  for (int d = 0; d < index.ndim(); ++d) {
    if (d != ax && index.shape()[d] > shape[d]) {
      fail(
          "[{}] index of shape {} is larger than {} with shape {} along axis {} (only axis {} "
          "may differ)",
          api, shape_str(index.shape()), target, shape_str(shape), d, ax);
    }
  }
  return ax;
}

Tensor gather_impl(const char* api, const Tensor& x, int axis, const Tensor& index) {
  check_defined(api, {&x, &index});
  const int ax = check_along_axis(api, x.shape(), axis, index, "x");
  return apply(std::make_shared<prims::Gather>(ax, api), {x, index}, index.shape(), x.dtype());
}

Tensor scatter_add_impl(const char* api, const Tensor& base, int axis, const Tensor& index,
                        const Tensor& src) {
  check_defined(api, {&base, &index, &src});
  if (base.dtype() == Dtype::boolean) fail("[{}] does not take bool tensors", api);
  const int ax = check_along_axis(api, base.shape(), axis, index, "base");
  if (broadcast_shapes(src.shape(), index.shape(), api) != index.shape()) {
    fail("[{}] src of shape {} does not broadcast to the index shape {}", api,
         shape_str(src.shape()), shape_str(index.shape()));
  }
  const Tensor s = broadcast_to(src.astype(base.dtype()), index.shape());
  return apply(std::make_shared<prims::ScatterAdd>(ax, api), {base, index, s}, base.shape(),
               base.dtype());
}

/// (1, ..., n, ..., 1): n at `axis` of `ndim` dimensions.
Shape axis_shape(int ndim, int axis, int64_t n) {
  Shape shape(static_cast<size_t>(ndim), 1);
  shape[axis] = n;
  return shape;
}

/// A 1-D index of length K seen as an index of `shape` (K along `axis`) for gather/scatter: a
/// broadcast view, so no index is materialised per element.
Tensor along_axis(const Tensor& index, int axis, const Shape& shape) {
  return broadcast_to(
      reshape(index, axis_shape(static_cast<int>(shape.size()), axis, index.numel())), shape);
}

void check_1d_index(const char* api, const Tensor& index) {
  check_index_dtype(api, index);
  if (index.ndim() != 1)
    fail("[{}] index must be 1-D, got shape {}", api, shape_str(index.shape()));
}

Tensor index_select_impl(const char* api, const Tensor& x, int axis, const Tensor& index) {
  check_defined(api, {&x, &index});
  check_1d_index(api, index);
  const int ax = normalize_axis(axis, x.ndim(), api);
  Shape shape = x.shape();
  shape[ax] = index.numel();
  return gather_impl(api, x, ax, along_axis(index, ax, shape));
}

}  // namespace

Tensor gather(const Tensor& x, int axis, const Tensor& index) {
  return gather_impl("gather", x, axis, index);
}

Tensor scatter_add(const Tensor& base, int axis, const Tensor& index, const Tensor& src) {
  return scatter_add_impl("scatter_add", base, axis, index, src);
}

Tensor index_select(const Tensor& x, int axis, const Tensor& index) {
  return index_select_impl("index_select", x, axis, index);
}

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  check_defined("embedding", {&weight, &ids});
  if (weight.ndim() < 1) fail("[embedding] weight must have at least one dimension, got a scalar");
  check_index_dtype("embedding", ids, "ids");
  const Tensor rows = index_select_impl("embedding", weight, 0, reshape(ids, {ids.numel()}));
  Shape shape = ids.shape();
  shape.insert(shape.end(), weight.shape().begin() + 1, weight.shape().end());
  return reshape(rows, shape);
}

Tensor index_put(const Tensor& x, int axis, const Tensor& index, const Tensor& values,
                 bool accumulate) {
  const char* api = "index_put";
  check_defined(api, {&x, &index, &values});
  if (x.dtype() == Dtype::boolean) fail("[index_put] does not take bool tensors");
  check_1d_index(api, index);
  const int ax = normalize_axis(axis, x.ndim(), api);
  Shape shape = x.shape();
  shape[ax] = index.numel();
  if (broadcast_shapes(values.shape(), shape, api) != shape) {
    fail(
        "[index_put] values of shape {} do not broadcast to {} (x of shape {} with axis {} of "
        "size {})",
        shape_str(values.shape()), shape_str(shape), shape_str(x.shape()), ax, index.numel());
  }
  const Tensor idx = along_axis(index, ax, shape);
  if (accumulate) return scatter_add_impl(api, x, ax, idx, values);
  const Tensor placed = scatter_add_impl(api, zeros_like(x), ax, idx, values);
  // One writer per slice keeps the result independent of any write order (and the scatter-add
  // above equal to a put).
  const Tensor counts = scatter_add_impl(
      api, zeros(axis_shape(x.ndim(), ax, x.shape()[ax]), Dtype::i64, x.device()), ax,
      reshape(index, axis_shape(x.ndim(), ax, index.numel())), scalar(1.0, Dtype::i64, x.device()));
  const auto host = counts.to_vector<int64_t>();
  for (size_t i = 0; i < host.size(); ++i) {
    if (host[i] > 1) {
      fail("[index_put] index {} appears {} times; without accumulate the indices must be distinct",
           i, host[i]);
    }
  }
  return where(counts > 0.0, placed, x);
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  check_defined("masked_fill", {&x, &mask});
  if (mask.dtype() != Dtype::boolean) {
    fail("[masked_fill] mask must be a bool tensor, got {}", dtype_name(mask.dtype()));
  }
  if (broadcast_shapes(mask.shape(), x.shape(), "masked_fill") != x.shape()) {
    fail("[masked_fill] mask of shape {} does not broadcast to x of shape {}",
         shape_str(mask.shape()), shape_str(x.shape()));
  }
  return where(mask, value, x);
}

Tensor one_hot(const Tensor& labels, int64_t num_classes, Dtype dtype) {
  check_defined("one_hot", {&labels});
  check_index_dtype("one_hot", labels, "labels");
  if (num_classes < 0) fail("[one_hot] num_classes must be non-negative, got {}", num_classes);
  // Scatter-add has no bool kernel; build bool encodings in uint8.
  const Dtype work = dtype == Dtype::boolean ? Dtype::u8 : dtype;
  Shape shape = labels.shape();
  shape.push_back(num_classes);
  const Tensor out = scatter_add_impl("one_hot", zeros(shape, work, labels.device()), labels.ndim(),
                                      unsqueeze(labels, -1), scalar(1.0, work, labels.device()));
  return out.astype(dtype);
}

// --- vector-Jacobian products --------------------------------------------------------------------
namespace prims {

Tensors Gather::vjp(const Tensors& in, const Tensor&, const Tensor& cot, const std::vector<int>&) {
  return {scatter_add(zeros_like(in[0]), axis_, in[1], cot)};
}

Tensors ScatterAdd::vjp(const Tensors& in, const Tensor&, const Tensor& cot,
                        const std::vector<int>& argnums) {
  Tensors g;
  for (int i : argnums) {
    if (i == 1) fail("[scatter_add] is not differentiable in its index");
    g.push_back(i == 0 ? cot : gather(cot, axis_, in[1]));
  }
  return g;
}

}  // namespace prims
}  // namespace basin
