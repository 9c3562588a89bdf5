// Dropout: random zeroing of activations while training.
#pragma once

#include "core/random.h"
#include "core/tensor.h"

namespace basin {

/// While `training`, zeroes each element of x with probability p and scales the others by
/// 1 / (1 - p), so the expectation is x; the mask is drawn with bernoulli from `gen` (the default
/// generator when null), so the same generator state gives the same mask. The identity when not
/// training or p == 0, zeros (still differentiable) when p == 1. p must lie in [0, 1].
Tensor dropout(const Tensor& x, double p, bool training = true, Generator* gen = nullptr);

}  // namespace basin
