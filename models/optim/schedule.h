// Learning-rate schedules: pure functions of the step, and a Schedule object that wraps one.
#pragma once

#include <cstdint>
#include <functional>

namespace basin::optim {

class Optimizer;

/// Linear warmup from 0 to base_lr over warmup_steps, then cosine decay to min_lr at total_steps
/// (held there after): lr = base * step / warmup while step < warmup, else
/// min + (base - min) (1 + cos(pi * min(1, (step - warmup) / (total - warmup)))) / 2.
double warmup_cosine_lr(int64_t step, double base_lr, int64_t warmup_steps, int64_t total_steps,
                        double min_lr = 0.0);
/// torch.optim.lr_scheduler.ExponentialLR: base_lr * gamma^step.
double exponential_lr(int64_t step, double base_lr, double gamma);
/// torch.optim.lr_scheduler.StepLR: base_lr * gamma^floor(step / step_size).
double step_lr(int64_t step, double base_lr, int64_t step_size, double gamma);
/// torch.optim.lr_scheduler.CosineAnnealingWarmRestarts at integer epoch `step`: cycles of
/// length T_0, T_0 T_mult, ...; within a cycle of length T_i at position T_cur,
/// lr = eta_min + (base - eta_min) (1 + cos(pi T_cur / T_i)) / 2.
double cosine_warm_restarts_lr(int64_t step, double base_lr, int64_t t_0, int64_t t_mult = 1,
                               double eta_min = 0.0);

/// A learning rate as a function of the (0-based) step.
class Schedule {
 public:
  /// Wraps any function of the step.
  explicit Schedule(std::function<double(int64_t)> lr_at);

  /// The learning rate at `step` (negative steps are an error).
  double lr(int64_t step) const;
  /// Sets `optimizer`'s learning rate to lr(step); call it before optimizer.step().
  void apply(Optimizer& optimizer, int64_t step) const;

  /// The same lr at every step.
  static Schedule constant(double lr);
  /// See warmup_cosine_lr.
  static Schedule warmup_cosine(double base_lr, int64_t warmup_steps, int64_t total_steps,
                                double min_lr = 0.0);
  /// See exponential_lr.
  static Schedule exponential(double base_lr, double gamma);
  /// See step_lr.
  static Schedule step(double base_lr, int64_t step_size, double gamma);
  /// See cosine_warm_restarts_lr.
  static Schedule cosine_warm_restarts(double base_lr, int64_t t_0, int64_t t_mult = 1,
                                       double eta_min = 0.0);

 private:
  std::function<double(int64_t)> lr_at_;
};

}  // namespace basin::optim
