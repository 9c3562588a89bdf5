// basin: a C++ deep-learning framework for energy-based models. This umbrella header brings in
// the public API: tensors and ops (namespace basin), autograd transforms and gradient checks,
// modules, layers and losses (basin::nn), energy layers and their descent (basin::energy),
// optimizers (basin::optim), datasets, readers and metrics (basin::data), and the trainer
// (basin::train).
//
//   #include <basin/basin.h>
//   using namespace basin;
//   Tensor x = randn({3, 4}, Dtype::f64);
//   Tensor g = grad([](const Tensor& x) { return sum(exp(x)); })(x);   // == exp(x)
#pragma once

#include "autograd/fused_op.h"
#include "autograd/grad.h"
#include "autograd/gradcheck.h"
#include "core/build_info.h"
#include "core/config.h"
#include "core/cuda_options.h"
#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/grad_mode.h"
#include "core/io/safetensors.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/tensor.h"
#include "data/catalog.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/metrics.h"
#include "data/readers.h"
#include "data/split.h"
#include "models/energy/attention.h"
#include "models/energy/classical.h"
#include "models/energy/dense.h"
#include "models/energy/descent.h"
#include "models/energy/drdam.h"
#include "models/energy/energy.h"
#include "models/energy/et_block.h"
#include "models/energy/hflayers.h"
#include "models/energy/hopfield_energy.h"
#include "models/energy/layer_norm.h"
#include "models/energy/modern.h"
#include "models/nn/init.h"
#include "models/nn/layers.h"
#include "models/nn/loss.h"
#include "models/nn/module.h"
#include "models/optim/adam.h"
#include "models/optim/clip.h"
#include "models/optim/factory.h"
#include "models/optim/optimizer.h"
#include "models/optim/schedule.h"
#include "models/optim/sgd.h"
#include "models/train/checkpoint.h"
#include "models/train/plots.h"
#include "models/train/progress.h"
#include "models/train/task.h"
#include "models/train/trainer.h"
