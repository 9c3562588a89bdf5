// Loss functions matching torch.nn.functional: squared error (plain and masked), binary cross
// entropy on logits and multi-class cross entropy. Each is composed of public ops only, so losses
// can be differentiated twice (the energy models train through gradients).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace basin::nn {

/// How per-element losses are combined: their mean, their sum, or none (the per-element tensor).
enum class Reduction { mean, sum, none };

/// (pred - target)^2, reduced. pred and target have the same shape and a floating dtype.
Tensor mse_loss(const Tensor& pred, const Tensor& target, Reduction reduction = Reduction::mean);

/// The mean of (pred - target)^2 over the elements where `mask` is set: mask is bool or numeric
/// (nonzero counts as set) and broadcasts to pred's shape. Unselected elements contribute
/// neither to the sum nor to the count, and get a zero gradient. When the mask selects nothing
/// the loss is 0 (not NaN) and its gradient is zero, so a batch without masked elements is safe.
Tensor masked_mse_loss(const Tensor& pred, const Tensor& target, const Tensor& mask);

/// Binary cross entropy on logits x with targets t in [0, 1] (same shape), computed stably as
/// torch.nn.functional.binary_cross_entropy_with_logits: (1 - t) x + (1 + (pw - 1) t)
/// softplus(-x). `pos_weight` (optional) weighs the positive term and broadcasts to the logits'
/// shape (one value per class along the last dimension, typically).
Tensor bce_with_logits(const Tensor& logits, const Tensor& target, const Tensor& pos_weight = {},
                       Reduction reduction = Reduction::mean);

/// Cross entropy between logits and class indices, as torch.nn.functional.cross_entropy (1.13)
/// with integer targets. logits are (N, C), (C) (one sample; target 0-d) or (N, C, d1, ...)
/// (target (N, d1, ...)); target is int32/int64 with values in [0, C) or equal to ignore_index
/// (any other value is an error naming it; the targets are read on the host to check them). With
/// per-class `weight` (C) the loss of sample i is -w[y_i] log p_i[y_i], and the mean divides by the
/// sum of w[y_i] over non-ignored samples (the count when there is no weight). With label_smoothing
/// e the loss is (1 - e) nll + (e / C) smooth, where smooth_i = -sum_c w[c] log p_i[c] (w = 1
/// without a weight), and its mean divides by the same sum of target weights. Ignored samples
/// contribute 0 (and 0 to Reduction::none's output); a mean over only ignored samples is NaN
/// (0 / 0), as in PyTorch.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& weight = {},
                     double label_smoothing = 0.0, int64_t ignore_index = -100,
                     Reduction reduction = Reduction::mean);

}  // namespace basin::nn
