// Normalisation layers as functions: layer_norm over the last dimension.
#pragma once

#include "core/tensor.h"

namespace basin {

/// Normalises x over its last dimension, (x - mean) / sqrt(var + eps) with the biased variance,
/// then multiplies by `weight` and adds `bias` when they are defined (each of shape
/// (x.shape(-1),)). Runs as one fused kernel on the CPU; its derivatives, to any order, are
/// those of the composite written with public ops.
Tensor layer_norm(const Tensor& x, const Tensor& weight = Tensor(), const Tensor& bias = Tensor(),
                  double eps = 1e-5);

}  // namespace basin
