// torch.nn.init's schemes on basin tensors: values are drawn with the core generators (or, for
// the truncated normal, by inverse-CDF sampling on the host) and written in place with assign.
#include "models/nn/init.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "core/ops.h"

namespace basin::nn {
namespace {

void check_fillable(const Tensor& t, const char* who, bool random) {
  if (!t.defined()) fail("[{}] got an undefined tensor", who);
  if (random && !is_floating(t.dtype())) {
    fail("[{}] needs a floating tensor (float32 or float64), got {}", who, dtype_name(t.dtype()));
  }
}

/// Writes `values` (any dtype, on the CPU) into t, cast to its dtype and moved to its device.
void fill_from(const Tensor& t, const Tensor& values) { t.assign(values.to(t.device())); }

/// The standard normal CDF, accurate in the lower tail (erfc keeps the relative precision).
double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::numbers::sqrt2); }

/// The standard normal quantile for p in (0, 1): Acklam's rational approximation (relative error
/// 1.2e-9) refined by one Halley step against erfc, which gives full double precision.
double normal_ppf(double p) {
  if (p <= 0.0) return -INFINITY;
  if (p >= 1.0) return INFINITY;
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  // The upper half by symmetry: 1 - p is exact there.
  if (p > 0.5) return -normal_ppf(1.0 - p);
  double x;
  if (p < 0.02425) {
    const double q = std::sqrt(-2.0 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
  } else {
    const double q = p - 0.5;
    const double r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
  }
  const double e = normal_cdf(x) - p;
  const double u = e * std::sqrt(2.0 * std::numbers::pi) * std::exp(0.5 * x * x);
  if (std::isfinite(u)) x -= u / (1.0 + 0.5 * x * u);
  return x;
}

double fan(const Tensor& t, const std::string& mode, const char* who) {
  const auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  if (mode == "fan_in") return static_cast<double>(fan_in);
  if (mode == "fan_out") return static_cast<double>(fan_out);
  fail("[{}] mode '{}' is not supported; use fan_in or fan_out", who, mode);
}

}  // namespace

std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t) {
  if (!t.defined()) fail("[calculate_fan_in_and_fan_out] got an undefined tensor");
  if (t.ndim() < 2) {
    fail(
        "[calculate_fan_in_and_fan_out] fan in and fan out need at least 2 dimensions, got shape "
        "{}",
        shape_str(t.shape()));
  }
  int64_t field = 1;
  for (int d = 2; d < t.ndim(); ++d) field *= t.shape(d);
  return {t.shape(1) * field, t.shape(0) * field};
}

double calculate_gain(const std::string& nonlinearity, std::optional<double> param) {
  for (const char* linear : {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                             "conv_transpose2d", "conv_transpose3d", "sigmoid"}) {
    if (nonlinearity == linear) return 1.0;
  }
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "selu") return 3.0 / 4.0;
  if (nonlinearity == "leaky_relu") {
    const double slope = param.value_or(0.01);
    if (!std::isfinite(slope)) fail("[calculate_gain] negative_slope {} is not a number", slope);
    return std::sqrt(2.0 / (1.0 + slope * slope));
  }
  fail(
      "[calculate_gain] unsupported nonlinearity '{}'; use one of linear, conv1d, conv2d, conv3d, "
      "conv_transpose1d, conv_transpose2d, conv_transpose3d, sigmoid, tanh, relu, leaky_relu, selu",
      nonlinearity);
}

void uniform_(const Tensor& t, double a, double b, Generator* gen) {
  check_fillable(t, "uniform_", true);
  if (!(a <= b)) fail("[uniform_] lower bound {} is above upper bound {}", a, b);
  fill_from(t, uniform(t.shape(), a, b, t.dtype(), Device::cpu(), gen));
}

void normal_(const Tensor& t, double mean, double std, Generator* gen) {
  check_fillable(t, "normal_", true);
  if (!(std >= 0.0)) fail("[normal_] std must be non-negative, got {}", std);
  fill_from(t, normal(t.shape(), mean, std, t.dtype(), Device::cpu(), gen));
}

void trunc_normal_(const Tensor& t, double mean, double std, double a, double b, Generator* gen) {
  check_fillable(t, "trunc_normal_", true);
  if (!(std > 0.0) || !std::isfinite(std))
    fail("[trunc_normal_] std must be positive, got {}", std);
  if (!(a < b)) fail("[trunc_normal_] the interval [{}, {}] is empty", a, b);
  // Work in the lower tail, where the CDF keeps its relative precision: an interval entirely
  // above the mean is mirrored and the samples negated.
  double lo = (a - mean) / std, hi = (b - mean) / std;
  const bool mirrored = lo > 0.0;
  if (mirrored) std::tie(lo, hi) = std::pair{-hi, -lo};
  const double p_lo = normal_cdf(lo), p_hi = normal_cdf(hi);
  std::vector<double> z =
      uniform(t.shape(), 0.0, 1.0, Dtype::f64, Device::cpu(), gen).to_vector<double>();
  for (double& v : z) {
    const double p = p_lo + (p_hi - p_lo) * v;
    double x = normal_ppf(p);
    x = std::min(std::max(x, lo), hi);  // rounding at the ends
    v = mean + std * (mirrored ? -x : x);
    v = std::min(std::max(v, a), b);
  }
  fill_from(t, from_vector(z, t.shape()));
}

void constant_(const Tensor& t, double value) {
  check_fillable(t, "constant_", false);
  t.assign(scalar(value, t.dtype(), t.device()));
}

void zeros_(const Tensor& t) { constant_(t, 0.0); }
void ones_(const Tensor& t) { constant_(t, 1.0); }

void xavier_uniform_(const Tensor& t, double gain, Generator* gen) {
  check_fillable(t, "xavier_uniform_", true);
  const auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  if (t.numel() == 0) return;
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  uniform_(t, -bound, bound, gen);
}

void xavier_normal_(const Tensor& t, double gain, Generator* gen) {
  check_fillable(t, "xavier_normal_", true);
  const auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  if (t.numel() == 0) return;
  normal_(t, 0.0, gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out)), gen);
}

void kaiming_uniform_(const Tensor& t, double a, const std::string& mode,
                      const std::string& nonlinearity, Generator* gen) {
  check_fillable(t, "kaiming_uniform_", true);
  const double n = fan(t, mode, "kaiming_uniform_");
  const double gain = calculate_gain(nonlinearity, a);
  if (t.numel() == 0) return;
  const double bound = std::sqrt(3.0) * gain / std::sqrt(n);
  uniform_(t, -bound, bound, gen);
}

void kaiming_normal_(const Tensor& t, double a, const std::string& mode,
                     const std::string& nonlinearity, Generator* gen) {
  check_fillable(t, "kaiming_normal_", true);
  const double n = fan(t, mode, "kaiming_normal_");
  const double gain = calculate_gain(nonlinearity, a);
  if (t.numel() == 0) return;
  normal_(t, 0.0, gain / std::sqrt(n), gen);
}

}  // namespace basin::nn
