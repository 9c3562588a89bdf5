// Softmax family: argument checks and the vector-Jacobian products (as in MLX).
#include "core/ops/softmax.h"

#include "core/ops/elementwise.h"
#include "core/ops/movement.h"
#include "core/ops/reduce.h"
#include "core/prims/softmax.h"

namespace basin {
namespace {

template <class OpT>
Tensor normalise(const char* op, const Tensor& x, int axis) {
  if (!x.defined()) fail("[{}] got an undefined tensor", op);
  if (!is_floating(x.dtype())) {
    fail("[{}] needs a floating dtype (float32 or float64), got {}", op, dtype_name(x.dtype()));
  }
  if (x.ndim() == 0) {
    // A scalar is a slice of one element along axis 0 (or -1).
    normalize_axis(axis, 1, op);
    return reshape(normalise<OpT>(op, reshape(x, {1}), 0), {});
  }
  const int a = normalize_axis(axis, x.ndim(), op);
  return apply(std::make_shared<OpT>(a), {x}, x.shape(), x.dtype());
}

}  // namespace

Tensor softmax(const Tensor& x, int axis) { return normalise<prims::Softmax>("softmax", x, axis); }

Tensor log_softmax(const Tensor& x, int axis) {
  return normalise<prims::LogSoftmax>("log_softmax", x, axis);
}

namespace prims {

Tensors Softmax::vjp(const Tensors&, const Tensor& out, const Tensor& cot,
                     const std::vector<int>&) {
  const Tensor sg = out * cot;
  return {sg - out * sum(sg, {axis_}, true)};
}

Tensors LogSoftmax::vjp(const Tensors&, const Tensor& out, const Tensor& cot,
                        const std::vector<int>&) {
  return {cot - exp(out) * sum(cot, {axis_}, true)};
}

}  // namespace prims
}  // namespace basin
