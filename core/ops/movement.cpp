// Movement ops: shapes, views and their vector-Jacobian products.
#include "core/ops/movement.h"

#include <algorithm>

#include "core/ops/reduce.h"
#include "core/prims/movement.h"

namespace basin {

Tensor reshape(const Tensor& x, const Shape& shape) {
  if (!x.defined()) fail("[reshape] got an undefined tensor");
  Shape target = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == -1) {
      if (infer >= 0) fail("[reshape] only one dimension can be -1, got {}", shape_str(shape));
      infer = static_cast<int>(i);
    } else if (target[i] < 0) {
      fail("[reshape] invalid dimension {} in {}", target[i], shape_str(shape));
    } else {
      known *= target[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || x.numel() % known != 0) {
      fail("[reshape] cannot reshape {} into {}", shape_str(x.shape()), shape_str(shape));
    }
    target[infer] = x.numel() / known;
  }
  if (numel(target) != x.numel()) {
    fail("[reshape] cannot reshape {} ({} elements) into {}", shape_str(x.shape()), x.numel(),
         shape_str(shape));
  }
  if (target == x.shape()) return x;
  return apply(std::make_shared<prims::Reshape>(), {x.contiguous()}, target, x.dtype());
}

Tensor permute(const Tensor& x, const std::vector<int>& perm) {
  if (!x.defined()) fail("[permute] got an undefined tensor");
  if (static_cast<int>(perm.size()) != x.ndim()) {
    fail("[permute] permutation of {} axes for a tensor of shape {}", perm.size(), shape_str(x.shape()));
  }
  std::vector<int> p;
  std::vector<bool> seen(perm.size(), false);
  for (int a : perm) {
    const int n = normalize_axis(a, x.ndim(), "permute");
    if (seen[n]) fail("[permute] axis {} appears twice", a);
    seen[n] = true;
    p.push_back(n);
  }
  Shape shape;
  bool identity = true;
  for (size_t i = 0; i < p.size(); ++i) {
    shape.push_back(x.shape()[p[i]]);
    identity = identity && p[i] == static_cast<int>(i);
  }
  if (identity) return x;
  return apply(std::make_shared<prims::Permute>(p), {x}, shape, x.dtype());
}

Tensor transpose(const Tensor& x, int a, int b) {
  if (!x.defined()) fail("[transpose] got an undefined tensor");
  const int na = normalize_axis(a, x.ndim(), "transpose");
  const int nb = normalize_axis(b, x.ndim(), "transpose");
  std::vector<int> perm(x.ndim());
  for (int i = 0; i < x.ndim(); ++i) perm[i] = i;
  std::swap(perm[na], perm[nb]);
  return permute(x, perm);
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  if (!x.defined()) fail("[broadcast_to] got an undefined tensor");
  if (broadcast_shapes(x.shape(), shape, "broadcast_to") != shape) {
    fail("[broadcast_to] shape {} cannot be broadcast to {}", shape_str(x.shape()), shape_str(shape));
  }
  if (x.shape() == shape) return x;
  return apply(std::make_shared<prims::BroadcastTo>(), {x}, shape, x.dtype());
}

Tensor squeeze(const Tensor& x, const std::vector<int>& axes) {
  if (!x.defined()) fail("[squeeze] got an undefined tensor");
  std::vector<bool> drop(x.ndim(), false);
  if (axes.empty()) {
    for (int d = 0; d < x.ndim(); ++d) drop[d] = x.shape()[d] == 1;
  } else {
    for (int a : axes) {
      const int d = normalize_axis(a, x.ndim(), "squeeze");
      if (x.shape()[d] != 1) {
        fail("[squeeze] axis {} has size {}, not 1, in shape {}", a, x.shape()[d], shape_str(x.shape()));
      }
      drop[d] = true;
    }
  }
  Shape shape;
  for (int d = 0; d < x.ndim(); ++d) {
    if (!drop[d]) shape.push_back(x.shape()[d]);
  }
  return reshape(x, shape);
}

Tensor unsqueeze(const Tensor& x, int axis) {
  if (!x.defined()) fail("[unsqueeze] got an undefined tensor");
  const int d = normalize_axis(axis, x.ndim() + 1, "unsqueeze");
  Shape shape = x.shape();
  shape.insert(shape.begin() + d, 1);
  return reshape(x, shape);
}

Tensor flatten(const Tensor& x, int start, int end) {
  if (!x.defined()) fail("[flatten] got an undefined tensor");
  if (x.ndim() == 0) return reshape(x, {1});
  const int s = normalize_axis(start, x.ndim(), "flatten");
  const int e = normalize_axis(end, x.ndim(), "flatten");
  if (s > e) fail("[flatten] start axis {} is after end axis {}", start, end);
  Shape shape(x.shape().begin(), x.shape().begin() + s);
  int64_t merged = 1;
  for (int d = s; d <= e; ++d) merged *= x.shape()[d];
  shape.push_back(merged);
  shape.insert(shape.end(), x.shape().begin() + e + 1, x.shape().end());
  return reshape(x, shape);
}

namespace prims {

void Reshape::make_view(const Tensor& x, Tensor& out) const {
  out.share_storage(x, contiguous_strides(out.shape()), x.offset());
}
Tensors Reshape::vjp(const Tensors& in, const Tensor&, const Tensor& cot, const std::vector<int>&) {
  return {reshape(cot, in[0].shape())};
}

void Permute::make_view(const Tensor& x, Tensor& out) const {
  Shape strides;
  for (int p : perm_) strides.push_back(x.strides()[p]);
  out.share_storage(x, strides, x.offset());
}
Tensors Permute::vjp(const Tensors&, const Tensor&, const Tensor& cot, const std::vector<int>&) {
  std::vector<int> inverse(perm_.size());
  for (size_t i = 0; i < perm_.size(); ++i) inverse[perm_[i]] = static_cast<int>(i);
  return {permute(cot, inverse)};
}

void BroadcastTo::make_view(const Tensor& x, Tensor& out) const {
  Shape strides(out.ndim(), 0);
  const int lead = out.ndim() - x.ndim();
  for (int d = 0; d < x.ndim(); ++d) strides[lead + d] = x.shape()[d] == 1 ? 0 : x.strides()[d];
  out.share_storage(x, strides, x.offset());
}
Tensors BroadcastTo::vjp(const Tensors& in, const Tensor&, const Tensor& cot, const std::vector<int>&) {
  return {sum_to(cot, in[0].shape())};
}

}  // namespace prims
}  // namespace basin
