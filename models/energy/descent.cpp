#include "models/energy/descent.h"

#include <cmath>

#include <fmt/format.h>

#include "autograd/grad.h"
#include "core/error.h"
#include "core/grad_mode.h"
#include "core/ops.h"

namespace basin::energy {

Descent::Descent(std::shared_ptr<EnergyModule> energy, std::shared_ptr<nn::Module> norm,
                 DescentOptions options, Generator* gen)
    : nn::Module("Descent"),
      energy_(std::move(energy)),
      norm_(std::move(norm)),
      options_(options),
      gen_(gen) {
  check(energy_ != nullptr, "[Descent] the energy is null");
  check(options_.steps >= 0, "[Descent] steps must be >= 0, got {}", options_.steps);
  check(options_.step_size > 0 && std::isfinite(options_.step_size),
        "[Descent] step_size must be positive, got {}", options_.step_size);
  check(options_.tolerance >= 0, "[Descent] tolerance must be >= 0, got {}", options_.tolerance);
  check(options_.temperature >= 0, "[Descent] temperature must be >= 0, got {}",
        options_.temperature);
  register_module("energy", energy_);
  if (norm_) register_module("norm", norm_);
  if (options_.learnable_step) {
    alpha_ = register_parameter("step_size", scalar(options_.step_size, Dtype::f32));
  }
}

Tensor Descent::normalise(const Tensor& x) { return norm_ ? norm_->forward(x) : x; }

Tensor Descent::step_size() const {
  return alpha_.defined() ? alpha_ : scalar(options_.step_size, Dtype::f32);
}

std::string Descent::extra_repr() const {
  return fmt::format(
      "steps={}, step_size={}{}{}{}", options_.steps, options_.step_size,
      options_.learnable_step ? ", learnable_step=true" : "",
      options_.tolerance > 0 ? fmt::format(", tolerance={}", options_.tolerance) : "",
      options_.temperature > 0 ? fmt::format(", temperature={}", options_.temperature) : "");
}

Tensor Descent::run(const Tensor& x0, DescentTrace* trace) {
  Tensor x = x0;
  const Tensor alpha = alpha_.defined() ? alpha_.to(x.device()).astype(x.dtype())
                                        : scalar(options_.step_size, x.dtype(), x.device());
  const bool want_energy = trace != nullptr || options_.check_descent;
  double previous = NAN;
  auto record = [&](const Tensor& energy_value, const Tensor& state) {
    if (!want_energy) return;
    const double e = energy_value.item<double>();
    if (options_.check_descent && std::isfinite(previous)) {
      const double slack = 1e-6 * std::max(1.0, std::fabs(previous));
      check(e <= previous + slack,
            "[Descent] the energy rose from {} to {} at step {}: lower the step size", previous, e,
            trace ? trace->steps_taken : 0);
    }
    previous = e;
    if (trace) {
      trace->energies.push_back(e);
      trace->states.push_back(stop_gradient(state));
    }
  };
  if (trace) *trace = DescentTrace{};

  for (int t = 0; t < options_.steps; ++t) {
    const Tensor g = normalise(x);
    Tensor dEdg;
    if (want_energy) {
      auto [e, d] = energy_->energy_and_grad(g);
      record(e, x);
      dEdg = d;
    } else {
      dEdg = energy_->energy_grad(g);
    }
    Tensor update = mul(alpha, dEdg);
    if (options_.temperature > 0) {
      const double scale = std::sqrt(2.0 * options_.step_size * options_.temperature);
      update = sub(update, normal(x.shape(), 0.0, scale, x.dtype(), x.device(), gen_));
    }
    x = sub(x, update);
    if (trace) trace->steps_taken = t + 1;
    if (options_.tolerance > 0) {
      NoGradGuard no_grad;
      const double moved = norm(stop_gradient(update)).item<double>();
      if (moved <= options_.tolerance) {
        if (trace) trace->converged = true;
        break;
      }
    }
  }
  if (want_energy) {
    NoGradGuard no_grad;
    record(energy_->energy(normalise(x)), x);
  }
  return x;
}

}  // namespace basin::energy
