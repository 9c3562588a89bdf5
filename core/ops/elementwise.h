// Elementwise ops: unary math and activations, binary arithmetic with NumPy broadcasting,
// comparisons, logical ops, where and clamp. Operators (a + b, 2.f * x) are defined here too.
#pragma once

#include "core/tensor.h"

namespace basin {

// --- unary (floating unless noted) ---------------------------------------------------------------
Tensor neg(const Tensor& x);   // numeric
Tensor abs(const Tensor& x);   // numeric
Tensor sign(const Tensor& x);  // numeric; gradient zero
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor expm1(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor square(const Tensor& x);  // numeric
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);  // numeric
Tensor erf(const Tensor& x);
/// GELU; exact (x Φ(x)) by default, or the tanh approximation.
Tensor gelu(const Tensor& x, bool tanh_approximation = false);
/// x * sigmoid(x).
Tensor silu(const Tensor& x);
/// log(1 + exp(x)), computed stably.
Tensor softplus(const Tensor& x);
Tensor elu(const Tensor& x, double alpha = 1.0);
/// scale * elu(x, alpha) with the self-normalising constants.
Tensor selu(const Tensor& x);
/// x^p for a scalar p.
Tensor pow(const Tensor& x, double p);

// --- binary, broadcasting; mixed dtypes promote (bool < uint8 < int32 < int64 < f32 < f64) -------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor atan2(const Tensor& y, const Tensor& x);

// --- comparisons and logic (bool results, not differentiated) ------------------------------------
Tensor equal(const Tensor& a, const Tensor& b);
Tensor not_equal(const Tensor& a, const Tensor& b);
Tensor less(const Tensor& a, const Tensor& b);
Tensor less_equal(const Tensor& a, const Tensor& b);
Tensor greater(const Tensor& a, const Tensor& b);
Tensor greater_equal(const Tensor& a, const Tensor& b);
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
Tensor logical_xor(const Tensor& a, const Tensor& b);
Tensor logical_not(const Tensor& a);
/// True where x is NaN.
Tensor isnan(const Tensor& x);

/// a where cond is true, b elsewhere (broadcasting all three). Differentiable in a and b only.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, double b);
Tensor where(const Tensor& cond, double a, const Tensor& b);
/// Limits x to [lo, hi]; the gradient is zero outside.
Tensor clamp(const Tensor& x, double lo, double hi);

// --- operators; a scalar takes the tensor's dtype ------------------------------------------------
Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);
Tensor operator==(const Tensor& a, const Tensor& b);
Tensor operator!=(const Tensor& a, const Tensor& b);
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator<=(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator>=(const Tensor& a, const Tensor& b);
Tensor operator==(const Tensor& a, double b);
Tensor operator!=(const Tensor& a, double b);
Tensor operator<(const Tensor& a, double b);
Tensor operator<=(const Tensor& a, double b);
Tensor operator>(const Tensor& a, double b);
Tensor operator>=(const Tensor& a, double b);
Tensor operator&&(const Tensor& a, const Tensor& b);
Tensor operator||(const Tensor& a, const Tensor& b);
Tensor operator!(const Tensor& a);

}  // namespace basin
