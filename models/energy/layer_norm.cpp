// EnergyLayerNorm: g through the fused layer_norm kernel; its Lagrangian and energy with public
// ops.
#include "models/energy/layer_norm.h"

#include <fmt/format.h>

#include "core/error.h"
#include "core/ops.h"

namespace basin::energy {
namespace {

void check_arguments(const Tensor& x, const Tensor& gamma, const Tensor& delta, double eps,
                     double lambda) {
  check(x.defined() && gamma.defined() && delta.defined(),
        "[EnergyLayerNorm] got an undefined tensor");
  check(x.ndim() >= 1, "[EnergyLayerNorm] x needs at least one dimension, got shape ()");
  check(is_floating(x.dtype()), "[EnergyLayerNorm] x needs a floating dtype, got {}",
        dtype_name(x.dtype()));
  check(gamma.numel() == 1 && gamma.ndim() <= 1,
        "[EnergyLayerNorm] gamma must be a scalar, got shape {}", shape_str(gamma.shape()));
  check(delta.shape() == Shape{x.shape(-1)},
        "[EnergyLayerNorm] delta of shape {} does not match the last dimension of x {}",
        shape_str(delta.shape()), shape_str(x.shape()));
  check(eps >= 0.0, "[EnergyLayerNorm] eps must be non-negative, got {}", eps);
  check(lambda >= 0.0, "[EnergyLayerNorm] the regularization must be non-negative, got {}", lambda);
}

/// sqrt(var + ε) per token, keeping the last dimension as size 1.
Tensor token_scale(const Tensor& x, double eps) {
  const Tensor centered = x - mean(x, {-1}, true);
  return sqrt(mean(centered * centered, {-1}, true) + eps);
}

}  // namespace

Tensor energy_layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& delta, double eps,
                         double lambda) {
  check_arguments(x, gamma, delta, eps, lambda);
  Tensor g = reshape(gamma, {}) * layer_norm(x, Tensor(), Tensor(), eps) + delta;
  if (lambda > 0.0) g = g + x * lambda;
  return g;
}

Tensor energy_layer_norm_lagrangian(const Tensor& x, const Tensor& gamma, const Tensor& delta,
                                    double eps, double lambda) {
  check_arguments(x, gamma, delta, eps, lambda);
  const double d = static_cast<double>(x.shape(-1));
  Tensor l = reshape(gamma, {}) * sum(token_scale(x, eps)) * d + sum(x * delta);
  if (lambda > 0.0) l = l + sum(x * x) * (0.5 * lambda);
  return l;
}

Tensor energy_layer_norm_energy(const Tensor& x, const Tensor& gamma, const Tensor& delta,
                                double eps, double lambda) {
  check_arguments(x, gamma, delta, eps, lambda);
  // Per token g·x − L = γ x̃·x̃ / s − D γ s (+ λ/2 ‖x‖²) = −D γ ε / s (+ λ/2 ‖x‖²), with x̃ the
  // centred x and s = sqrt(var + ε): δ cancels. Written in that form, because the difference of
  // the two large terms loses every digit in float32 when ε ≪ var.
  const double d = static_cast<double>(x.shape(-1));
  Tensor e =
      reshape(gamma, {}) * (eps > 0.0 ? sum(1.0 / token_scale(x, eps)) * (-d * eps) : sum(x) * 0.0);
  if (lambda > 0.0) e = e + sum(x * x) * (0.5 * lambda);
  return e;
}

EnergyLayerNorm::EnergyLayerNorm(int64_t dim, double eps, bool regularized, Dtype dtype)
    : nn::Module("EnergyLayerNorm"), dim_(dim), eps_(eps), regularized_(regularized) {
  check(dim > 0, "[EnergyLayerNorm] dim must be positive, got {}", dim);
  check(eps >= 0.0, "[EnergyLayerNorm] eps must be non-negative, got {}", eps);
  check(is_floating(dtype), "[EnergyLayerNorm] needs a floating dtype, got {}", dtype_name(dtype));
  gamma = register_parameter("gamma", scalar(1.0, dtype));
  delta = register_parameter("delta", zeros({dim}, dtype));
}

Tensor EnergyLayerNorm::forward(const Tensor& x) {
  return energy_layer_norm(x, gamma, delta, eps_, regularization());
}

Tensor EnergyLayerNorm::lagrangian(const Tensor& x) {
  return energy_layer_norm_lagrangian(x, gamma, delta, eps_, regularization());
}

Tensor EnergyLayerNorm::energy(const Tensor& x) {
  return energy_layer_norm_energy(x, gamma, delta, eps_, regularization());
}

std::string EnergyLayerNorm::extra_repr() const {
  return fmt::format("{}, eps={}{}", dim_, eps_, regularized_ ? ", regularized=true" : "");
}

}  // namespace basin::energy
