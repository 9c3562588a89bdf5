// Vectorisable float math for the CPU kernels. std::exp does not vectorise without -ffast-math;
// exp_fast (Cephes polynomial, within 1.4 ulp, subnormals, overflow and NaN handled) does, and
// the elementwise, softmax and reduction loops that call it run several times faster. Functions
// are forced inline: GCC otherwise leaves them out of line in large loops, which then do not
// vectorise.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace basin::cpu {

/// exp(x). The float version is a branch-free polynomial (Cephes expf, within 2 ulp, subnormal
/// results included) that the compiler vectorises, unlike a call to std::exp; double keeps
/// std::exp because float64 is what gradients are checked in. Always inlined: a call inside a
/// simd loop would stop it vectorising, and GCC declines to inline it into large loops.
[[gnu::always_inline]] inline float exp_fast(float x) {
  constexpr float kHi = 88.72283f;  // just below log(FLT_MAX); above: +inf
  constexpr float kLo = -104.0f;    // below the smallest subnormal's log; below: 0
  const bool nan = std::isnan(x);
  float c = nan ? 0.0f : std::min(std::max(x, kLo), kHi);
  // x = n log(2) + c with |c| <= log(2)/2; log(2) in two parts keeps c exact.
  const float n = std::floor(c * 1.44269504088896341f + 0.5f);
  c = c - n * 0.693359375f;
  c = c + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * c + 1.3981999507e-3f;
  p = p * c + 8.3334519073e-3f;
  p = p * c + 4.1665795894e-2f;
  p = p * c + 1.6666665459e-1f;
  p = p * c + 5.0000001201e-1f;
  const float y = p * c * c + c + 1.0f;
  // 2^n as two normal factors: n runs from -150 to 128, beyond one float exponent's range.
  const int32_t ni = static_cast<int32_t>(n);
  const int32_t half = ni >> 1;
  const float s1 = std::bit_cast<float>((half + 127) << 23);
  const float s2 = std::bit_cast<float>((ni - half + 127) << 23);
  const float r = y * s1 * s2;
  return nan ? x : (x > kHi ? std::numeric_limits<float>::infinity() : (x < kLo ? 0.0f : r));
}
[[gnu::always_inline]] inline double exp_fast(double x) { return std::exp(x); }

/// exp for the CPU elementwise kernels.
struct Exp {
  template <class T>
  [[gnu::always_inline]] T operator()(T x) const {
    return exp_fast(x);
  }
};

/// Logistic sigmoid on the vectorisable exp; stable for large |x|.
struct Sigmoid {
  template <class T>
  [[gnu::always_inline]] T operator()(T x) const {
    const T e = exp_fast(x < T(0) ? x : -x);  // e^{-|x|}, never overflows
    return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
  }
};

}  // namespace basin::cpu
