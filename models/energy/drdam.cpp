#include "models/energy/drdam.h"

#include <cmath>

#include <fmt/format.h>

#include "core/error.h"
#include "core/grad_mode.h"
#include "core/ops.h"
#include "core/random.h"

namespace basin::energy {

std::string to_string(RandomFeatures features) {
  return features == RandomFeatures::trigonometric ? "trigonometric" : "positive";
}

RandomFeatures random_features_from_string(const std::string& name) {
  if (name == "trigonometric") return RandomFeatures::trigonometric;
  if (name == "positive") return RandomFeatures::positive;
  fail("[DrDAM] unknown random features '{}' (one of trigonometric, positive)", name);
}

Tensor mrdam_energy(const Tensor& v, const Tensor& memories, double beta) {
  check(memories.defined() && memories.ndim() == 2 && memories.shape(0) > 0,
        "[mrdam_energy] memories must be (K, D) with K >= 1, got {}",
        memories.defined() ? shape_str(memories.shape()) : "undefined");
  check(v.defined() && v.ndim() >= 1 && v.shape(-1) == memories.shape(1),
        "[mrdam_energy] expected states of shape (..., {}), got {}", memories.shape(1),
        v.defined() ? shape_str(v.shape()) : "undefined");
  check(beta > 0 && std::isfinite(beta), "[mrdam_energy] beta must be positive, got {}", beta);
  // ‖v − ξ‖² = ‖v‖² − 2 vᵀξ + ‖ξ‖², (..., K)
  const Tensor distances = unsqueeze(sum(square(v), {-1}), -1) -
                           matmul(v, transpose(memories)) * 2.0 + sum(square(memories), {-1});
  return logsumexp(distances * (-0.5 * beta), {-1}) * (-1.0 / beta);
}

DrDAM::DrDAM(int64_t dim, DrDAMOptions options, Dtype dtype)
    : EnergyModule("DrDAM"), dim_(dim), options_(options) {
  check(dim > 0, "[DrDAM] dim must be positive, got {}", dim);
  check(options_.n_features > 0, "[DrDAM] n_features must be positive, got {}",
        options_.n_features);
  check(options_.beta > 0 && std::isfinite(options_.beta), "[DrDAM] beta must be positive, got {}",
        options_.beta);
  check(options_.eps > 0, "[DrDAM] eps must be positive, got {}", options_.eps);
  check(is_floating(dtype), "[DrDAM] dtype must be f32 or f64, got {}", dtype_name(dtype));
  Generator gen(options_.seed);
  omega = register_buffer("omega", randn({options_.n_features, dim}, dtype, Device::cpu(), &gen));
  const int64_t size = options_.features == RandomFeatures::trigonometric ? 2 * options_.n_features
                                                                          : options_.n_features;
  memory = register_buffer("memory", zeros({size}, dtype));
  count_ = register_buffer("n_memories", zeros({}, Dtype::i64));
}

std::string DrDAM::extra_repr() const {
  return fmt::format("dim={}, n_features={}, features={}, beta={}, n_memories={}", dim_,
                     options_.n_features, to_string(options_.features), options_.beta,
                     n_memories());
}

int64_t DrDAM::n_memories() const { return count_.item<int64_t>(); }

void DrDAM::check_state(const Tensor& x, const char* what) const {
  check(x.defined() && x.ndim() >= 1 && x.shape(-1) == dim_,
        "[DrDAM] expected {} of shape (..., {}), got {}", what, dim_,
        x.defined() ? shape_str(x.shape()) : "undefined");
  check(is_floating(x.dtype()), "[DrDAM] {} must be f32 or f64, got {}", what,
        dtype_name(x.dtype()));
}

Tensor DrDAM::features(const Tensor& x) const {
  check_state(x, "states");
  const double root_beta = std::sqrt(options_.beta);
  const double scale = 1.0 / std::sqrt(static_cast<double>(options_.n_features));
  const Tensor h = matmul(x, transpose(omega)) * root_beta;  // (..., Y): ω_iᵀ(√β x)
  if (options_.features == RandomFeatures::trigonometric) {
    return concat({cos(h), sin(h)}, -1) * scale;
  }
  // exp(ω_iᵀ(√β x) − ‖√β x‖²)
  return exp(h - unsqueeze(sum(square(x), {-1}), -1) * options_.beta) * scale;
}

void DrDAM::add(const Tensor& patterns) {
  check_state(patterns, "patterns");
  check(patterns.ndim() <= 2, "[DrDAM] add takes a pattern (D,) or patterns (K, D), got {}",
        shape_str(patterns.shape()));
  NoGradGuard no_grad;
  const Tensor p = reshape(patterns.detach(), {-1, dim_}).astype(memory.dtype());  // (K, D)
  memory.assign(memory + sum(features(p), {0}));
  count_.assign(count_ + p.shape(0));
}

Tensor DrDAM::energies(const Tensor& v) const {
  const Tensor kernel_sum = matmul(features(v), memory);  // (...): φ(√β v)ᵀ T
  return log(clamp(kernel_sum, options_.eps, INFINITY)) * (-1.0 / options_.beta);
}

Tensor DrDAM::energy(const Tensor& v) { return sum(energies(v)); }

// --- registry ----------------------------------------------------------------------------------

// [model.energy] type = "drdam": an empty memory of the state's dimension; memories are added
// with DrDAM::add by whatever builds the model.
BASIN_REGISTER_ENERGY(
    "drdam", "random-feature Dense Associative Memory −β⁻¹ log φ(v)ᵀT (Hoover et al. 2024)",
    [](const EnergyContext& ctx) -> std::shared_ptr<EnergyModule> {
      Config c = ctx.config;
      DrDAMOptions o;
      o.n_features = c.get<int64_t>("n_features", o.n_features);
      o.beta = c.get<double>("beta", o.beta);
      o.features = random_features_from_string(
          c.get_choice("features", "trigonometric", {"trigonometric", "positive"}));
      o.seed = static_cast<uint64_t>(c.get<int64_t>("seed", 0));
      o.eps = c.get<double>("eps", o.eps);
      return std::make_shared<DrDAM>(ctx.dim, o);
    });

}  // namespace basin::energy
