// Vectorisable float math for the CPU kernels. std::exp does not vectorise without -ffast-math;
// this exp (Cephes polynomial, about 2 ulp) does, and the elementwise, softmax and reduction
// loops that call it run several times faster.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace basin::cpu {

/// e^x for float, vectorisable; exact 0 below the normal range, +inf above it, NaN kept.
inline float exp_f32(float x) {
  const float hi = 88.3762626647949f, lo = -87.3365447504f;
  float c = x > hi ? hi : x;
  c = c < lo ? lo : c;
  const float n = std::floor(c * 1.44269504088896341f + 0.5f);
  float r = c - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  const float r2 = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r2 + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  float out = y * scale;
  out = x < lo ? 0.0f : out;
  out = x > hi ? INFINITY : out;
  return x != x ? x : out;
}

/// exp for the CPU kernels: the vectorisable version for float, std::exp for double.
struct Exp {
  float operator()(float x) const { return exp_f32(x); }
  double operator()(double x) const { return std::exp(x); }
};

/// Logistic sigmoid on the vectorisable exp; stable for large |x|.
struct Sigmoid {
  float operator()(float x) const {
    const float e = exp_f32(x < 0.0f ? x : -x);  // e^{-|x|}, never overflows
    return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
  }
  double operator()(double x) const {
    const double e = std::exp(x < 0.0 ? x : -x);
    return x >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
  }
};

}  // namespace basin::cpu
