// Adam/AdamW update: torch.optim's single-tensor algorithm with tensor ops (any device).
#include "models/optim/adam.h"

#include <cmath>
#include <utility>

#include "core/error.h"
#include "core/ops.h"

namespace basin::optim {

Adam::Adam(Tensors params, double lr, AdamOptions options)
    : Adam(std::move(params), lr, options, "Adam", false) {}

Adam::Adam(Tensors params, double lr, AdamOptions options, std::string name, bool decoupled)
    : Optimizer(std::move(params), lr, name), options_(options), decoupled_(decoupled) {
  const auto [b1, b2] = options_.betas;
  if (!(b1 >= 0.0 && b1 < 1.0)) fail("[{}] invalid beta1 {}; it must be in [0, 1)", name, b1);
  if (!(b2 >= 0.0 && b2 < 1.0)) fail("[{}] invalid beta2 {}; it must be in [0, 1)", name, b2);
  if (!(options_.eps >= 0.0)) fail("[{}] invalid eps {}", name, options_.eps);
  if (!(options_.weight_decay >= 0.0) || !std::isfinite(options_.weight_decay)) {
    fail("[{}] invalid weight_decay {}", name, options_.weight_decay);
  }
}

AdamW::AdamW(Tensors params, double lr, AdamOptions options)
    : Adam(std::move(params), lr, options, "AdamW", true) {}

void Adam::update(size_t index, const Tensor& param, const Tensor& grad) {
  const auto [b1, b2] = options_.betas;
  const double wd = options_.weight_decay;
  Tensor g = grad;
  if (wd != 0.0) {
    if (decoupled_) {
      param.assign(param * (1.0 - lr() * wd));
    } else {
      g = g + wd * param;
    }
  }
  Tensor m = buffer(index, "exp_avg");
  Tensor v = buffer(index, "exp_avg_sq");
  if (!m.defined()) {
    m = zeros_like(param);
    set_buffer(index, "exp_avg", m);
  }
  if (!v.defined()) {
    v = zeros_like(param);
    set_buffer(index, "exp_avg_sq", v);
  }
  m.assign(m * b1 + (1.0 - b1) * g);
  v.assign(v * b2 + (1.0 - b2) * (g * g));

  const auto t = static_cast<double>(step_count(index));
  const double bias_correction1 = 1.0 - std::pow(b1, t);
  const double bias_correction2_sqrt = std::sqrt(1.0 - std::pow(b2, t));
  const double step_size = lr() / bias_correction1;
  Tensor second = v;
  if (options_.amsgrad) {
    Tensor vmax = buffer(index, "max_exp_avg_sq");
    if (!vmax.defined()) {
      vmax = zeros_like(param);
      set_buffer(index, "max_exp_avg_sq", vmax);
    }
    vmax.assign(maximum(vmax, v));
    second = vmax;
  }
  // PyTorch's order of operations: bias-correct the root, then add eps.
  const Tensor denom = sqrt(second) / bias_correction2_sqrt + options_.eps;
  param.assign(param - step_size * (m / denom));
}

}  // namespace basin::optim
