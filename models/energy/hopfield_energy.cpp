// HopfieldEnergy: ReLU², log-sum-exp and custom energies with public ops, the fused gradient's
// fallback, argument checks and the "hopfield" registration.
#include "models/energy/hopfield_energy.h"

#include <algorithm>

#include <cmath>

#include <fmt/format.h>

#include "core/error.h"
#include "core/ops.h"
#include "core/prims/energy.h"

namespace basin::energy {
namespace {

/// Checks g, ξ and β; returns the dtype they are computed in.
Dtype check_arguments(const Tensor& g, const Tensor& xi, HopfieldKind kind, const Tensor& beta) {
  check(kind != HopfieldKind::custom,
        "[HopfieldEnergy] the functional forms take relu2 or lse; a custom F goes through the "
        "module");
  check(g.defined() && xi.defined(), "[HopfieldEnergy] g and xi must be defined");
  check(xi.ndim() == 2, "[HopfieldEnergy] xi must have shape (memories, dim), got {}",
        shape_str(xi.shape()));
  check(g.ndim() >= 1 && g.shape(-1) == xi.shape(1),
        "[HopfieldEnergy] g of shape {} does not end in the memories' dimension {}",
        shape_str(g.shape()), xi.shape(1));
  check(is_floating(g.dtype()), "[HopfieldEnergy] g needs a floating dtype, got {}",
        dtype_name(g.dtype()));
  check(xi.device() == g.device(), "[HopfieldEnergy] xi is on {}, g on {}", xi.device().str(),
        g.device().str());
  Dtype dtype = promote_types(g.dtype(), xi.dtype());
  if (kind == HopfieldKind::lse) {
    check(beta.defined() && beta.numel() == 1 && beta.ndim() <= 1,
          "[HopfieldEnergy] the log-sum-exp energy needs a scalar beta, got {}",
          beta.defined() ? shape_str(beta.shape()) : "none");
    check(beta.device() == g.device(), "[HopfieldEnergy] beta is on {}, g on {}",
          beta.device().str(), g.device().str());
    dtype = promote_types(dtype, beta.dtype());
  }
  check(is_floating(dtype), "[HopfieldEnergy] needs floating tensors, got {}", dtype_name(dtype));
  return dtype;
}

/// h = g ξᵀ, (..., M).
Tensor similarities(const Tensor& g, const Tensor& xi) { return matmul(g, transpose(xi)); }

}  // namespace

const char* hopfield_kind_name(HopfieldKind kind) {
  switch (kind) {
    case HopfieldKind::relu2:
      return "relu2";
    case HopfieldKind::lse:
      return "lse";
    case HopfieldKind::custom:
      return "custom";
  }
  return "?";
}

HopfieldKind hopfield_kind_from_name(const std::string& name) {
  if (name == "relu2") return HopfieldKind::relu2;
  if (name == "lse") return HopfieldKind::lse;
  fail("[HopfieldEnergy] unknown kind '{}' (relu2 or lse)", name);
}

Tensor hopfield_energy(const Tensor& g, const Tensor& xi, HopfieldKind kind, const Tensor& beta) {
  const Dtype dtype = check_arguments(g, xi, kind, beta);
  const Tensor h = similarities(g.astype(dtype), xi.astype(dtype));
  if (kind == HopfieldKind::relu2) {
    const Tensor a = relu(h);
    return sum(a * a) * -0.5;
  }
  const Tensor b = reshape(beta.astype(dtype), {});
  return neg(sum(logsumexp(h * b, {-1})) / b);
}

Tensor hopfield_energy_grad(const Tensor& g, const Tensor& xi, HopfieldKind kind,
                            const Tensor& beta) {
  const Dtype dtype = check_arguments(g, xi, kind, beta);
  const bool lse = kind == HopfieldKind::lse;
  Tensors inputs{g.astype(dtype), xi.astype(dtype)};
  if (lse) inputs.push_back(reshape(beta.astype(dtype), {}));
  return apply(std::make_shared<prims::HopfieldEnergyGrad>(lse), inputs, g.shape(), dtype);
}

// --- the module --------------------------------------------------------------------------------

HopfieldEnergy::HopfieldEnergy(int64_t dim, int64_t memories, HopfieldEnergyOptions options,
                               Generator* gen)
    : EnergyModule("HopfieldEnergy"), dim_(dim), memories_(memories), options_(std::move(options)) {
  check(dim > 0 && memories > 0, "[HopfieldEnergy] dim and memories must be positive, got {}, {}",
        dim, memories);
  check(options_.init_std >= 0.0, "[HopfieldEnergy] init_std must be non-negative, got {}",
        options_.init_std);
  check(is_floating(options_.dtype), "[HopfieldEnergy] needs a floating dtype, got {}",
        dtype_name(options_.dtype));
  check(options_.kind != HopfieldKind::custom || static_cast<bool>(options_.fn),
        "[HopfieldEnergy] the custom kind needs a function F (options.fn)");
  xi = register_parameter(
      "xi", normal({memories, dim}, 0.0, options_.init_std, options_.dtype, Device::cpu(), gen));
  if (options_.kind == HopfieldKind::lse) {
    check(options_.beta > 0.0 && std::isfinite(options_.beta),
          "[HopfieldEnergy] beta must be positive, got {}", options_.beta);
    const Tensor b = scalar(options_.beta, options_.dtype);
    beta = options_.learnable_beta ? register_parameter("beta", b) : register_buffer("beta", b);
  }
}

Tensor HopfieldEnergy::energy(const Tensor& g) {
  if (options_.kind != HopfieldKind::custom) return hopfield_energy(g, xi, options_.kind, beta);
  check(g.defined() && g.ndim() >= 1 && g.shape(-1) == dim_,
        "[HopfieldEnergy] g of shape {} does not end in the memories' dimension {}",
        g.defined() ? shape_str(g.shape()) : "undefined", dim_);
  const Tensor f = options_.fn(similarities(g, xi.astype(promote_types(g.dtype(), xi.dtype()))));
  check(f.defined() && is_floating(f.dtype()),
        "[HopfieldEnergy] the custom F must return a floating tensor");
  return neg(sum(f));
}

Tensor HopfieldEnergy::energy_grad(const Tensor& g) {
  if (options_.kind == HopfieldKind::custom) return EnergyModule::energy_grad(g);
  return hopfield_energy_grad(g, xi, options_.kind, beta);
}

std::pair<Tensor, Tensor> HopfieldEnergy::energy_and_grad(const Tensor& g) {
  if (options_.kind == HopfieldKind::custom) return EnergyModule::energy_and_grad(g);
  return {energy(g), energy_grad(g)};
}

std::string HopfieldEnergy::extra_repr() const {
  std::string s = fmt::format("dim={}, memories={}, kind={}", dim_, memories_,
                              hopfield_kind_name(options_.kind));
  if (options_.kind == HopfieldKind::lse) {
    s += fmt::format(", beta={}{}", options_.beta,
                     options_.learnable_beta ? ", learnable_beta=true" : "");
  }
  return s;
}

// --- registration ------------------------------------------------------------------------------

BASIN_REGISTER_ENERGY(
    "hopfield",
    "Hopfield-network energy: memories (4 * dim), kind (relu2 | lse), beta (0.01, lse), "
    "learnable_beta (true), init_std (0.02)",
    [](const EnergyContext& context) -> std::shared_ptr<EnergyModule> {
      Config config = context.config;
      const auto memories = config.get<int64_t>("memories", 4 * context.dim);
      HopfieldEnergyOptions o;
      o.kind = hopfield_kind_from_name(config.get_choice("kind", "relu2", {"relu2", "lse"}));
      if (o.kind == HopfieldKind::lse) {
        o.beta = config.get<double>("beta", o.beta);
        o.learnable_beta = config.get<bool>("learnable_beta", o.learnable_beta);
      }
      o.init_std = config.get<double>("init_std", o.init_std);
      return std::make_shared<HopfieldEnergy>(context.dim, memories, o);
    });

}  // namespace basin::energy

// --- the fused gradient's fallback ------------------------------------------------------------

namespace basin::prims {

Tensor HopfieldEnergyGrad::fallback(const Tensors& in) const {
  // in: g (..., D), xi (M, D), [beta ()]
  const Tensor h = energy::similarities(in[0], in[1]);
  const Tensor a = log_sum_exp_ ? softmax(h * in[2], -1) : relu(h);
  return neg(matmul(a, in[1]));
}

Tensors HopfieldEnergyGrad::vjp(const Tensors& in, const Tensor&, const Tensor& cot,
                                const std::vector<int>& argnums) {
  const Tensor &g = in[0], &xi = in[1];
  const int64_t d = xi.shape(1),
                rows = g.ndim() > 1 ? numel(g.shape()) / std::max<int64_t>(d, 1) : 1;
  const Tensor g2 = reshape(g, {rows, d}), cot2 = reshape(cot, {rows, d});  // (rows, D)
  const Tensor h = energy::similarities(g2, xi);                            // (rows, M)
  const Tensor abar = neg(matmul(cot2, transpose(xi)));
  Tensor a, hbar;
  if (log_sum_exp_) {
    a = softmax(h * in[2], -1);
    hbar = in[2] * (a * (abar - sum(a * abar, {-1}, true)));
  } else {
    a = relu(h);
    hbar = where(h > 0.0, abar, 0.0);
  }
  Tensors grads;
  for (int i : argnums) {
    if (i == 0) {
      grads.push_back(reshape(matmul(hbar, xi), g.shape()));
    } else if (i == 1) {
      grads.push_back(matmul(transpose(hbar), g2) - matmul(transpose(a), cot2));
    } else {
      grads.push_back(sum(hbar * h) / in[2]);
    }
  }
  return grads;
}

}  // namespace basin::prims
