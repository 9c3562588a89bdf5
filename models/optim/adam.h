// Adam and AdamW: adaptive moment estimation with L2 (Adam) or decoupled (AdamW) weight decay,
// following torch.optim.Adam / torch.optim.AdamW's update rules exactly.
#pragma once

#include <utility>

#include "models/optim/optimizer.h"

namespace basin::optim {

/// Hyperparameters of Adam and AdamW (PyTorch's names; weight_decay's default differs).
struct AdamOptions {
  std::pair<double, double> betas = {0.9, 0.999};  ///< each in [0, 1)
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;  ///< use the running maximum of exp_avg_sq in the denominator
};

/// torch.optim.Adam: g += wd p (L2); m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
/// p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps). State keys: "exp_avg", "exp_avg_sq",
/// and "max_exp_avg_sq" with amsgrad.
class Adam : public Optimizer {
 public:
  /// Fails on negative lr, eps or weight decay, or betas outside [0, 1).
  Adam(Tensors params, double lr = 1e-3, AdamOptions options = {});
  /// The hyperparameters in use.
  const AdamOptions& options() const { return options_; }

 protected:
  /// For AdamW: the same checks under another name, with decoupled decay.
  Adam(Tensors params, double lr, AdamOptions options, std::string name, bool decoupled);
  void update(size_t index, const Tensor& param, const Tensor& grad) override;
  std::vector<std::string> state_keys() const override {
    return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  }

 private:
  AdamOptions options_;
  bool decoupled_;
};

/// AdamW options: Adam's with PyTorch's AdamW default weight_decay of 1e-2.
inline AdamOptions adamw_defaults() {
  AdamOptions o;
  o.weight_decay = 1e-2;
  return o;
}

/// torch.optim.AdamW: p *= 1 - lr wd (decoupled decay, before the moments), then Adam's update
/// without the L2 term.
class AdamW : public Adam {
 public:
  /// Fails on negative lr, eps or weight decay, or betas outside [0, 1).
  AdamW(Tensors params, double lr = 1e-3, AdamOptions options = adamw_defaults());
};

}  // namespace basin::optim
