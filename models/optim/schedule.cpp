// Learning-rate schedules; arguments are checked when a Schedule is built and on every call of
// the free functions, so a bad configuration fails before training starts.
#include "models/optim/schedule.h"

#include <cmath>
#include <numbers>
#include <utility>

#include "core/error.h"
#include "models/optim/optimizer.h"

namespace basin::optim {
namespace {

void check_step(int64_t step, const char* who) {
  if (step < 0) fail("[{}] step must be >= 0, got {}", who, step);
}

void check_lr(double lr, const char* who) {
  if (!(lr >= 0.0) || !std::isfinite(lr)) fail("[{}] invalid learning rate {}", who, lr);
}

}  // namespace

double warmup_cosine_lr(int64_t step, double base_lr, int64_t warmup_steps, int64_t total_steps,
                        double min_lr) {
  constexpr const char* who = "warmup_cosine";
  check_step(step, who);
  check_lr(base_lr, who);
  check_lr(min_lr, who);
  if (warmup_steps < 0) fail("[{}] warmup_steps must be >= 0, got {}", who, warmup_steps);
  if (total_steps < warmup_steps) {
    fail("[{}] total_steps ({}) is below warmup_steps ({})", who, total_steps, warmup_steps);
  }
  if (step < warmup_steps) {
    return base_lr * static_cast<double>(step) / static_cast<double>(warmup_steps);
  }
  const int64_t decay = total_steps - warmup_steps;
  const double progress =
      decay == 0
          ? 1.0
          : std::min(1.0, static_cast<double>(step - warmup_steps) / static_cast<double>(decay));
  return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

double exponential_lr(int64_t step, double base_lr, double gamma) {
  check_step(step, "exponential");
  check_lr(base_lr, "exponential");
  if (!(gamma > 0.0)) fail("[exponential] gamma must be > 0, got {}", gamma);
  return base_lr * std::pow(gamma, static_cast<double>(step));
}

double step_lr(int64_t step, double base_lr, int64_t step_size, double gamma) {
  check_step(step, "step_lr");
  check_lr(base_lr, "step_lr");
  if (step_size <= 0) fail("[step_lr] step_size must be > 0, got {}", step_size);
  if (!(gamma > 0.0)) fail("[step_lr] gamma must be > 0, got {}", gamma);
  return base_lr * std::pow(gamma, static_cast<double>(step / step_size));
}

double cosine_warm_restarts_lr(int64_t step, double base_lr, int64_t t_0, int64_t t_mult,
                               double eta_min) {
  constexpr const char* who = "cosine_warm_restarts";
  check_step(step, who);
  check_lr(base_lr, who);
  check_lr(eta_min, who);
  if (t_0 <= 0) fail("[{}] T_0 must be > 0, got {}", who, t_0);
  if (t_mult < 1) fail("[{}] T_mult must be >= 1, got {}", who, t_mult);
  // PyTorch finds the cycle with a floating log; walking the cycles gives the same integer
  // answer without rounding trouble at cycle boundaries.
  int64_t t_cur = step;
  int64_t t_i = t_0;
  while (t_cur >= t_i) {
    t_cur -= t_i;
    t_i *= t_mult;
  }
  return eta_min + (base_lr - eta_min) * 0.5 *
                       (1.0 + std::cos(std::numbers::pi * static_cast<double>(t_cur) /
                                       static_cast<double>(t_i)));
}

Schedule::Schedule(std::function<double(int64_t)> lr_at) : lr_at_(std::move(lr_at)) {
  if (!lr_at_) fail("[Schedule] got an empty function");
}

double Schedule::lr(int64_t step) const {
  check_step(step, "Schedule");
  return lr_at_(step);
}

void Schedule::apply(Optimizer& optimizer, int64_t step) const { optimizer.set_lr(lr(step)); }

Schedule Schedule::constant(double lr) {
  check_lr(lr, "constant");
  return Schedule([lr](int64_t) { return lr; });
}

Schedule Schedule::warmup_cosine(double base_lr, int64_t warmup_steps, int64_t total_steps,
                                 double min_lr) {
  warmup_cosine_lr(0, base_lr, warmup_steps, total_steps, min_lr);  // checks the arguments now
  return Schedule(
      [=](int64_t s) { return warmup_cosine_lr(s, base_lr, warmup_steps, total_steps, min_lr); });
}

Schedule Schedule::exponential(double base_lr, double gamma) {
  exponential_lr(0, base_lr, gamma);
  return Schedule([=](int64_t s) { return exponential_lr(s, base_lr, gamma); });
}

Schedule Schedule::step(double base_lr, int64_t step_size, double gamma) {
  step_lr(0, base_lr, step_size, gamma);
  return Schedule([=](int64_t s) { return step_lr(s, base_lr, step_size, gamma); });
}

Schedule Schedule::cosine_warm_restarts(double base_lr, int64_t t_0, int64_t t_mult,
                                        double eta_min) {
  cosine_warm_restarts_lr(0, base_lr, t_0, t_mult, eta_min);
  return Schedule(
      [=](int64_t s) { return cosine_warm_restarts_lr(s, base_lr, t_0, t_mult, eta_min); });
}

}  // namespace basin::optim
