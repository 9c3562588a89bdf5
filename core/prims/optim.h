// The optimizers' fused update kernels: one pass over a parameter's elements that reads the
// gradient and the moment buffers and writes them and the parameter in place, instead of a dozen
// elementwise ops (each a pass over memory and, on a GPU, a launch).
#pragma once

#include "core/tensor.h"

namespace basin::prims {

/// One Adam/AdamW step of torch.optim's single-tensor algorithm, per element:
///   decoupled:  p ← p (1 − lr·wd)          otherwise: g ← g + wd·p
///   m ← β1 m + (1 − β1) g,   v ← β2 v + (1 − β2) g²,   v̂ ← max(v̂, v) with amsgrad
///   p ← p − step_size · m / (√(v or v̂) / bias_correction2_sqrt + eps)
struct AdamStep {
  double lr = 0, beta1 = 0, beta2 = 0, eps = 0, weight_decay = 0;
  double step_size = 0;              ///< lr / (1 − β1^t)
  double bias_correction2_sqrt = 1;  ///< √(1 − β2^t)
  bool decoupled = false;
  bool amsgrad = false;
};

/// Applies the step in place to `param`, `m`, `v` (and `vmax` with amsgrad; undefined otherwise)
/// given `grad`. All contiguous, of one floating dtype and shape, on one device; outside any
/// autograd graph. Runs on the CPU or, in a CUDA build, on the tensors' GPU.
void adam_update(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                 const Tensor& vmax, const AdamStep& step);

}  // namespace basin::prims
