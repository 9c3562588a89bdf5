// Softmax and log-softmax along one axis, computed stably (the maximum is subtracted first).
#pragma once

#include "core/tensor.h"

namespace basin {

/// exp(x) / sum(exp(x)) along `axis` (negative counts from the end; a 0-d tensor is one slice
/// of one element). A slice whose elements are all -inf (fully masked) gives zeros rather than
/// NaN, with a zero gradient; a +inf element gives NaN, as in PyTorch.
Tensor softmax(const Tensor& x, int axis = -1);
/// x - logsumexp(x) along `axis`, more accurate than log(softmax(x)). A slice whose elements
/// are all -inf gives -inf (the log of softmax's zeros), and its gradient passes the cotangent
/// through unchanged rather than NaN.
Tensor log_softmax(const Tensor& x, int axis = -1);

}  // namespace basin
