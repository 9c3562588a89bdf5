#include "models/optim/factory.h"

#include "core/error.h"
#include "models/optim/adam.h"
#include "models/optim/sgd.h"

namespace basin::optim {

std::unique_ptr<Optimizer> make_optimizer(Config section, Tensors params) {
  const std::string type = section.get_choice("type", "adamw", {"adamw", "adam", "sgd"});
  const double lr = section.get<double>("lr", 1e-3);
  if (type == "sgd") {
    SgdOptions o;
    o.momentum = section.get<double>("momentum", 0.0);
    o.dampening = section.get<double>("dampening", 0.0);
    o.weight_decay = section.get<double>("weight_decay", 0.0);
    o.nesterov = section.get<bool>("nesterov", false);
    return std::make_unique<SGD>(std::move(params), lr, o);
  }
  AdamOptions o = type == "adamw" ? adamw_defaults() : AdamOptions{};
  const std::vector<double> betas =
      section.get<std::vector<double>>("betas", {o.betas.first, o.betas.second});
  check(betas.size() == 2, "[config] {}.betas: expected two values, got {}", section.prefix(),
        betas.size());
  o.betas = {betas[0], betas[1]};
  o.eps = section.get<double>("eps", o.eps);
  o.weight_decay = section.get<double>("weight_decay", o.weight_decay);
  o.amsgrad = section.get<bool>("amsgrad", o.amsgrad);
  if (type == "adamw") return std::make_unique<AdamW>(std::move(params), lr, o);
  return std::make_unique<Adam>(std::move(params), lr, o);
}

Schedule make_schedule(Config section, double base_lr, int64_t total_steps) {
  const std::string type = section.get_choice(
      "type", "constant",
      {"constant", "warmup_cosine", "exponential", "step", "cosine_warm_restarts"});
  auto positive = [&](const char* key, int64_t fallback) {
    const int64_t v = section.get<int64_t>(key, fallback);
    check(v > 0, "[config] {}.{}: must be positive, got {}", section.prefix(), key, v);
    return v;
  };
  if (type == "warmup_cosine") {
    const int64_t warmup = section.get<int64_t>("warmup_steps", 0);
    check(warmup >= 0 && warmup <= total_steps,
          "[config] {}.warmup_steps: must lie in [0, {}] (the run's steps), got {}",
          section.prefix(), total_steps, warmup);
    return Schedule::warmup_cosine(base_lr, warmup, total_steps,
                                   section.get<double>("min_lr", 0.0));
  }
  if (type == "exponential")
    return Schedule::exponential(base_lr, section.get<double>("gamma", 0.99));
  if (type == "step") {
    const int64_t step_size = positive("step_size", std::max<int64_t>(total_steps / 3, 1));
    return Schedule::step(base_lr, step_size, section.get<double>("gamma", 0.1));
  }
  if (type == "cosine_warm_restarts") {
    const int64_t t_0 = positive("t_0", std::max<int64_t>(total_steps / 4, 1));
    return Schedule::cosine_warm_restarts(base_lr, t_0, positive("t_mult", 1),
                                          section.get<double>("min_lr", 0.0));
  }
  return Schedule::constant(base_lr);
}

}  // namespace basin::optim
