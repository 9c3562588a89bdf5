#include "models/energy/modern.h"

#include <cmath>

#include <fmt/format.h>

#include "core/error.h"
#include "core/grad_mode.h"
#include "core/ops.h"

namespace basin::energy {

ModernHopfield::ModernHopfield(const Tensor& patterns_, double beta, bool learnable)
    : EnergyModule("ModernHopfield"), beta_(beta), learnable_(learnable) {
  check(patterns_.defined() && patterns_.ndim() == 2 && patterns_.shape(0) > 0 &&
            patterns_.shape(1) > 0,
        "[ModernHopfield] patterns must be (N, d) with N, d >= 1, got {}",
        patterns_.defined() ? shape_str(patterns_.shape()) : "undefined");
  check(is_floating(patterns_.dtype()), "[ModernHopfield] patterns must be f32 or f64, got {}",
        dtype_name(patterns_.dtype()));
  check(beta > 0 && std::isfinite(beta), "[ModernHopfield] beta must be positive, got {}", beta);
  const Tensor value = patterns_.detach().clone();
  patterns = learnable ? register_parameter("patterns", value) : register_buffer("patterns", value);
}

std::string ModernHopfield::extra_repr() const {
  return fmt::format("n_patterns={}, dim={}, beta={}{}", n_patterns(), dim(), beta_,
                     learnable_ ? ", learnable=true" : "");
}

void ModernHopfield::check_state(const Tensor& xi) const {
  check(xi.defined() && xi.ndim() >= 1 && xi.shape(-1) == dim(),
        "[ModernHopfield] expected a state of shape (..., {}), got {}", dim(),
        xi.defined() ? shape_str(xi.shape()) : "undefined");
  check(is_floating(xi.dtype()), "[ModernHopfield] states must be f32 or f64, got {}",
        dtype_name(xi.dtype()));
}

Tensor ModernHopfield::attention(const Tensor& xi) const {
  check_state(xi);
  return softmax(matmul(xi, transpose(patterns)) * beta_, -1);  // (..., N)
}

Tensor ModernHopfield::update(const Tensor& xi) const { return matmul(attention(xi), patterns); }

Tensor ModernHopfield::energies(const Tensor& xi) const {
  check_state(xi);
  const Tensor scores = matmul(xi, transpose(patterns)) * beta_;  // (..., N)
  const Tensor m = max(norm(patterns, 2.0, {1}));                 // M
  const double constant = std::log(static_cast<double>(n_patterns())) / beta_;
  return logsumexp(scores, {-1}) * (-1.0 / beta_) + sum(square(xi), {-1}) * 0.5 + constant +
         square(m) * 0.5;
}

Tensor ModernHopfield::energy(const Tensor& xi) { return sum(energies(xi)); }

RetrievalResult ModernHopfield::retrieve(const Tensor& xi, int max_steps, double tolerance) const {
  check_state(xi);
  check(xi.ndim() <= 2, "[ModernHopfield] retrieve takes a state (d,) or a batch (B, d), got {}",
        shape_str(xi.shape()));
  check(max_steps >= 0, "[ModernHopfield] max_steps must be >= 0, got {}", max_steps);
  check(tolerance >= 0 && std::isfinite(tolerance),
        "[ModernHopfield] tolerance must be >= 0, got {}", tolerance);
  NoGradGuard no_grad;
  Tensor current = reshape(xi.detach(), {-1, dim()});  // (B, d)
  const int64_t rows = current.shape(0);
  RetrievalResult result;
  result.statuses.assign(static_cast<size_t>(rows), RetrievalStatus::max_steps);
  result.sample_sweeps.assign(static_cast<size_t>(rows), 0);
  std::vector<uint8_t> active(static_cast<size_t>(rows), 1);
  int64_t n_active = rows;
  for (int t = 1; t <= max_steps && n_active > 0; ++t) {
    const Tensor next = update(current);
    const std::vector<double> moved = norm(next - current, 2.0, {-1}).to_vector<double>();
    const Tensor keep_moving = from_vector(active, Shape{rows, 1}).astype(Dtype::boolean);
    current = where(keep_moving, next, current);
    result.sweeps = t;
    for (int64_t r = 0; r < rows; ++r) {
      if (!active[r]) continue;
      result.sample_sweeps[r] = t;
      if (moved[r] <= tolerance) {
        result.statuses[r] = RetrievalStatus::fixed_point;
        active[r] = 0;
        --n_active;
      }
    }
  }
  result.status = n_active == 0 ? RetrievalStatus::fixed_point : RetrievalStatus::max_steps;
  result.state = reshape(current, xi.shape());
  return result;
}

// --- registry ----------------------------------------------------------------------------------

// [model.energy] type = "modern_hopfield": n_memories learnable patterns N(0, init_std²) of the
// state's dimension, drawn from `seed`; beta defaults to 1/√dim.
BASIN_REGISTER_ENERGY(
    "modern_hopfield", "modern continuous Hopfield energy −lse(β, Xᵀξ) + ½ξᵀξ (Ramsauer et al.)",
    [](const EnergyContext& ctx) -> std::shared_ptr<EnergyModule> {
      Config c = ctx.config;
      const int64_t n = c.get<int64_t>("n_memories", 64);
      const double beta = c.get<double>("beta", 1.0 / std::sqrt(static_cast<double>(ctx.dim)));
      const double init_std = c.get<double>("init_std", 1.0);
      const bool learnable = c.get<bool>("learnable", true);
      const int64_t seed = c.get<int64_t>("seed", 0);
      check(n > 0, "[config] {}.n_memories must be positive, got {}", c.prefix(), n);
      check(init_std > 0, "[config] {}.init_std must be positive, got {}", c.prefix(), init_std);
      Generator gen(static_cast<uint64_t>(seed));
      const Tensor x = normal({n, ctx.dim}, 0.0, init_std, Dtype::f32, Device::cpu(), &gen);
      return std::make_shared<ModernHopfield>(x, beta, learnable);
    });

}  // namespace basin::energy
