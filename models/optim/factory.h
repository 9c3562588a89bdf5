// Optimizers and schedules built from a config section, for basin-train:
//
//   [optim]                          [schedule]
//   type = "adamw"   # adam, sgd      type = "warmup_cosine"  # constant, exponential, step,
//   lr = 1e-3                                                  # cosine_warm_restarts
//   weight_decay = 0.01              warmup_steps = 100
//   betas = [0.9, 0.999]             min_lr = 0.0
//   eps = 1e-8                       gamma = 0.1         # exponential, step
//   amsgrad = false                  step_size = 1000    # step
//   momentum = 0.0   # sgd           t_0 = 1000          # cosine_warm_restarts
//   dampening = 0.0  # sgd           t_mult = 1          # cosine_warm_restarts
//   nesterov = false # sgd
//
// Only the keys of the chosen type are read, so a key of another type is reported as unknown.
#pragma once

#include <memory>

#include "core/config.h"
#include "models/optim/optimizer.h"
#include "models/optim/schedule.h"

namespace basin::optim {

/// The optimizer named by `section`'s type, over `params`.
std::unique_ptr<Optimizer> make_optimizer(Config section, Tensors params);

/// The schedule named by `section`'s type, for a run of `total_steps` steps from `base_lr`.
Schedule make_schedule(Config section, double base_lr, int64_t total_steps);

}  // namespace basin::optim
