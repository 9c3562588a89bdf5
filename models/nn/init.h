// Parameter initialisation in place, with torch.nn.init's semantics: fan-in/fan-out, gains,
// Xavier/Glorot and Kaiming/He schemes, and exact truncated normals. Every random fill draws from
// `gen` (the default generator when null), so the same generator state gives the same values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "core/random.h"
#include "core/tensor.h"

namespace basin::nn {

/// (fan_in, fan_out) as PyTorch computes them: for a tensor of shape (out, in, k1, k2, ...) the
/// receptive field is k1 k2 ... (1 for a 2-D weight), fan_in = in * field and
/// fan_out = out * field. Fewer than 2 dimensions is an error.
std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t);

/// The recommended gain for a nonlinearity (torch.nn.init.calculate_gain): 1 for linear, the
/// conv and conv_transpose names, and sigmoid; 5/3 for tanh; sqrt(2) for relu; 3/4 for selu;
/// sqrt(2 / (1 + slope^2)) for leaky_relu with slope `param` (0.01 when not given). Any other
/// name is an error listing the supported ones.
double calculate_gain(const std::string& nonlinearity, std::optional<double> param = std::nullopt);

/// Fills t with values uniform on [a, b).
void uniform_(const Tensor& t, double a = 0.0, double b = 1.0, Generator* gen = nullptr);
/// Fills t with values from N(mean, std^2).
void normal_(const Tensor& t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
/// Fills t with values from N(mean, std^2) truncated to [a, b], drawn exactly by inverting the
/// normal CDF restricted to [a, b] (no clamping, no rejection), so the result follows the
/// truncated law even when [a, b] lies far in a tail. Needs std > 0 and a < b.
void trunc_normal_(const Tensor& t, double mean = 0.0, double std = 1.0, double a = -2.0,
                   double b = 2.0, Generator* gen = nullptr);
/// Fills t with `value` (any dtype; the value is converted).
void constant_(const Tensor& t, double value);
void zeros_(const Tensor& t);
void ones_(const Tensor& t);

/// Glorot uniform: U(-bound, bound) with bound = gain sqrt(6 / (fan_in + fan_out)).
void xavier_uniform_(const Tensor& t, double gain = 1.0, Generator* gen = nullptr);
/// Glorot normal: N(0, std^2) with std = gain sqrt(2 / (fan_in + fan_out)).
void xavier_normal_(const Tensor& t, double gain = 1.0, Generator* gen = nullptr);
/// He uniform: U(-bound, bound) with bound = gain sqrt(3 / fan), gain = calculate_gain(
/// nonlinearity, a) and fan the fan_in or fan_out as `mode` says. nn.Linear's default is
/// kaiming_uniform_(w, sqrt(5)), i.e. bound 1 / sqrt(fan_in). An empty tensor is left as is.
void kaiming_uniform_(const Tensor& t, double a = 0.0, const std::string& mode = "fan_in",
                      const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
/// He normal: N(0, std^2) with std = gain / sqrt(fan); arguments as kaiming_uniform_.
void kaiming_normal_(const Tensor& t, double a = 0.0, const std::string& mode = "fan_in",
                     const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);

}  // namespace basin::nn
