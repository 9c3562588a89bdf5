// Matrix products with NumPy semantics.
#pragma once

#include "core/tensor.h"

namespace basin {

/// Matrix product as numpy.matmul: 1-D·1-D is a dot product (0-d result); a 1-D operand is
/// promoted to a row (left) or column (right) matrix and that dimension removed from the result;
/// dimensions before the last two are batch dimensions and broadcast. float32 or float64 (mixed
/// dtypes promote).
Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace basin
