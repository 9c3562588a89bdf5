// layer_norm: argument checks, the composites its fused kernels must match, and its fused vjp.
#include "core/ops/norm.h"

#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"
#include "core/prims/norm.h"

namespace basin {

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  if (!x.defined()) fail("[layer_norm] got an undefined tensor");
  if (x.ndim() == 0) fail("[layer_norm] needs at least one dimension, got shape ()");
  if (!(eps >= 0.0)) fail("[layer_norm] eps must be non-negative, got {}", eps);
  const Shape features{x.shape(-1)};
  Dtype dtype = x.dtype();
  for (const auto& [t, what] : {std::pair{weight, "weight"}, std::pair{bias, "bias"}}) {
    if (!t.defined()) continue;
    if (t.shape() != features) {
      fail("[layer_norm] {} of shape {} does not match the last dimension of x {}", what,
           shape_str(t.shape()), shape_str(x.shape()));
    }
    if (t.device() != x.device()) {
      fail("[layer_norm] {} is on {}, x on {}", what, t.device().str(), x.device().str());
    }
    dtype = promote_types(dtype, t.dtype());
  }
  if (!is_floating(dtype)) {
    fail("[layer_norm] needs a floating dtype (float32 or float64), got {}", dtype_name(dtype));
  }
  Tensors inputs{x.astype(dtype)};
  if (weight.defined()) inputs.push_back(weight.astype(dtype));
  if (bias.defined()) inputs.push_back(bias.astype(dtype));
  return apply(std::make_shared<prims::LayerNorm>(eps, weight.defined(), bias.defined()), inputs,
               x.shape(), dtype);
}

namespace prims {
namespace {

/// Sums a cotangent of x's shape down to a per-feature vector (over every leading dimension).
Tensor sum_leading(const Tensor& t) {
  if (t.ndim() == 1) return t;
  Axes axes(t.ndim() - 1);
  for (int d = 0; d < t.ndim() - 1; ++d) axes[d] = d;
  return sum(t, axes);
}

}  // namespace

Tensor LayerNorm::fallback(const Tensors& in) const {
  const Tensor centered = in[0] - mean(in[0], {-1}, true);
  const Tensor var = mean(centered * centered, {-1}, true);
  Tensor y = centered * rsqrt(var + eps_);
  size_t next = 1;
  if (has_weight_) y = y * in[next++];
  if (has_bias_) y = y + in[next++];
  return y;
}

// dx through the fused LayerNormGradInput, dweight = sum(g * x̂) with x̂ from the fused forward,
// dbias = sum(g): a few passes over x instead of the composite's dozen ops and their reverse.
Tensors LayerNorm::vjp(const Tensors& in, const Tensor&, const Tensor& cot,
                       const std::vector<int>& argnums) {
  const Tensor& x = in[0];
  Tensors g;
  for (int i : argnums) {
    if (i == 0) {
      Tensors args{x};
      if (has_weight_) args.push_back(in[1]);
      args.push_back(cot);
      g.push_back(apply(std::make_shared<LayerNormGradInput>(eps_, has_weight_), args, x.shape(),
                        x.dtype()));
    } else if (i == 1 && has_weight_) {
      g.push_back(sum_leading(cot * layer_norm(x, Tensor(), Tensor(), eps_)));
    } else {
      g.push_back(sum_leading(cot));
    }
  }
  return g;
}

Tensor LayerNormGradInput::fallback(const Tensors& in) const {
  const Tensor& x = in[0];
  const Tensor h = has_weight_ ? in[2] * in[1] : in[1];
  const Tensor centered = x - mean(x, {-1}, true);
  const Tensor r = rsqrt(mean(centered * centered, {-1}, true) + eps_);
  const Tensor xhat = centered * r;
  return r * (h - mean(h, {-1}, true) - xhat * mean(h * xhat, {-1}, true));
}

}  // namespace prims
}  // namespace basin
