// Gradient clipping: per-tensor norms combined on the host in float64, then an in-place scale.
#include "models/optim/clip.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/grad_mode.h"
#include "core/ops.h"

namespace basin::optim {

double clip_grad_norm(const Tensors& params, double max_norm, double norm_type) {
  if (!(max_norm >= 0.0)) fail("[clip_grad_norm] invalid max_norm {}", max_norm);
  if (!(norm_type > 0.0)) fail("[clip_grad_norm] invalid norm_type {}; it must be > 0", norm_type);
  NoGradGuard no_grad;
  const bool inf_norm = std::isinf(norm_type);
  Tensors grads;
  for (const Tensor& p : params) {
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return 0.0;
  double total = 0.0;
  for (const Tensor& g : grads) {
    if (g.numel() == 0) continue;
    const Tensor gd = g.astype(Dtype::f64);
    if (inf_norm) {
      const double m = max(abs(gd)).item<double>();
      total = std::isnan(m) || std::isnan(total) ? std::nan("") : std::max(total, m);
    } else if (norm_type == 2.0) {
      total += sum(gd * gd).item<double>();
    } else {
      total += sum(pow(abs(gd), norm_type)).item<double>();
    }
  }
  if (!inf_norm) total = norm_type == 2.0 ? std::sqrt(total) : std::pow(total, 1.0 / norm_type);
  const double coef = max_norm / (total + 1e-6);
  // PyTorch clamps the factor at 1 and always multiplies; multiplying by 1 changes nothing, so
  // only a factor below 1 (or NaN) touches the gradients.
  if (coef < 1.0 || std::isnan(coef)) {
    for (const Tensor& g : grads) g.assign(g * coef);
  }
  return total;
}

void clip_grad_value(const Tensors& params, double clip_value) {
  if (!(clip_value >= 0.0)) fail("[clip_grad_value] invalid clip_value {}", clip_value);
  NoGradGuard no_grad;
  for (const Tensor& p : params) {
    if (p.defined() && p.grad().defined())
      p.grad().assign(clamp(p.grad(), -clip_value, clip_value));
  }
}

}  // namespace basin::optim
