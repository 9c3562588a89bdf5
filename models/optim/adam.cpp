// Adam/AdamW update: torch.optim's single-tensor algorithm, as one fused pass per parameter
// (core/prims/optim.h) on the CPU or a GPU.
#include "models/optim/adam.h"

#include <cmath>
#include <utility>

#include "core/error.h"
#include "core/ops.h"
#include "core/prims/optim.h"

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
  auto state = [&](const char* name) {
    Tensor t = buffer(index, name);
    if (!t.defined()) {
      t = zeros_like(param);
      set_buffer(index, name, t);
    }
    return t;
  };
  const Tensor m = state("exp_avg"), v = state("exp_avg_sq");
  const Tensor vmax = options_.amsgrad ? state("max_exp_avg_sq") : Tensor();
  const auto t = static_cast<double>(step_count(index));
  prims::AdamStep s;
  s.lr = lr();
  s.beta1 = b1;
  s.beta2 = b2;
  s.eps = options_.eps;
  s.weight_decay = options_.weight_decay;
  s.step_size = lr() / (1.0 - std::pow(b1, t));
  s.bias_correction2_sqrt = std::sqrt(1.0 - std::pow(b2, t));
  s.decoupled = decoupled_;
  s.amsgrad = options_.amsgrad;
  // One fused pass (core/prims/optim.h) on the parameter's device; a strided parameter is
  // updated in a contiguous copy and written back.
  const Tensor target = param.is_contiguous() ? param : param.contiguous();
  prims::adam_update(target, grad.contiguous(), m, v, vmax, s);
  if (!param.is_contiguous()) param.assign(target);
}

}  // namespace basin::optim
