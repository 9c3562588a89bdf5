// SGD: stochastic gradient descent with optional momentum, dampening, L2 weight decay and
// Nesterov momentum, following torch.optim.SGD's update rule exactly.
#pragma once

#include "models/optim/optimizer.h"

namespace basin::optim {

/// Hyperparameters of SGD (PyTorch's names and defaults).
struct SgdOptions {
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;  ///< L2: weight_decay * param is added to the gradient
  bool nesterov = false;      ///< needs momentum > 0 and dampening == 0
};

/// torch.optim.SGD: d = g + wd p; b = d on the first step, else mu b + (1 - dampening) d;
/// d = d + mu b (Nesterov) or b; p -= lr d. State key: "momentum_buffer" (when momentum != 0).
class SGD : public Optimizer {
 public:
  /// Fails on negative lr, momentum or weight decay, or Nesterov without plain momentum.
  SGD(Tensors params, double lr, SgdOptions options = {});
  /// The hyperparameters in use.
  const SgdOptions& options() const { return options_; }

 protected:
  void update(size_t index, const Tensor& param, const Tensor& grad) override;
  std::vector<std::string> state_keys() const override { return {"momentum_buffer"}; }

 private:
  SgdOptions options_;
};

}  // namespace basin::optim
