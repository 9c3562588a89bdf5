// Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_.
#pragma once

#include <limits>

#include "core/tensor.h"

namespace basin::optim {

/// The norm of all gradients of `params` taken together (parameters without a gradient are
/// skipped); when it exceeds max_norm every gradient is scaled in place by
/// max_norm / (total + 1e-6). Returns the total norm before clipping. norm_type is p > 0 or
/// infinity (the largest magnitude). As in PyTorch a NaN or infinite total is returned as is and
/// the gradients are scaled by the resulting factor (NaN, or 0 for an infinite norm), so callers
/// should check the result; 0 is returned when no parameter has a gradient.
double clip_grad_norm(const Tensors& params, double max_norm, double norm_type = 2.0);

/// Clamps every gradient of `params` into [-clip_value, clip_value] in place
/// (torch.nn.utils.clip_grad_value_).
void clip_grad_value(const Tensors& params, double clip_value);

}  // namespace basin::optim
