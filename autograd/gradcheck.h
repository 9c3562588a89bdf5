// Finite-difference checks of gradients and second derivatives (central differences, float64),
// for the tests and for users who write a new op or energy layer.
#pragma once

#include <cstdint>
#include <string>

#include "autograd/grad.h"

namespace basin {

struct GradcheckOptions {
  double eps = 1e-6;   // finite-difference step
  double atol = 1e-6;  // |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-4;
  int probes = 2;  // random cotangents tried per check
  uint64_t seed = 0;
};

/// Outcome of a check; converts to bool, and `message` says where it failed.
struct GradcheckResult {
  bool ok = true;
  std::string message;
  explicit operator bool() const { return ok; }
};

/// Compares vjp(f) with central differences of <v, f(x)> for random cotangents v. Floating
/// inputs must be float64; other inputs (indices, masks) are passed through unchanged.
GradcheckResult gradcheck(const Fn& f, const Tensors& inputs, const GradcheckOptions& options = {});

/// gradcheck of the function (x, v) -> vjp(f, x, v): checks second derivatives in x and v.
GradcheckResult gradgradcheck(const Fn& f, const Tensors& inputs,
                              const GradcheckOptions& options = {});

}  // namespace basin
