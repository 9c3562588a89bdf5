// nn::init: fans and gains as PyTorch computes them, the statistics of every scheme on large
// tensors, exact truncation, reproducibility from a generator, in-place writes and errors.
#include <cmath>
#include <numbers>

#include "models/nn/init.h"
#include "tests/test_util.h"

namespace basin::nn {
namespace {
using basin::testing::all_close;
using basin::testing::throws_error;

struct Stats {
  double mean, std, min, max;
};

Stats stats(const Tensor& t) {
  const auto v = t.to_vector<double>();
  double s = 0, lo = INFINITY, hi = -INFINITY;
  for (double e : v) {
    s += e;
    lo = std::min(lo, e);
    hi = std::max(hi, e);
  }
  const double m = s / static_cast<double>(v.size());
  double ss = 0;
  for (double e : v) ss += (e - m) * (e - m);
  return {m, std::sqrt(ss / static_cast<double>(v.size())), lo, hi};
}

double phi(double z) { return std::exp(-0.5 * z * z) / std::sqrt(2 * std::numbers::pi); }
double cdf(double z) { return 0.5 * std::erfc(-z / std::numbers::sqrt2); }

TEST(NnInit, FanInAndFanOut) {
  EXPECT_EQ(calculate_fan_in_and_fan_out(zeros({3, 5})), (std::pair<int64_t, int64_t>{5, 3}));
  // Conv-like (out, in, kh, kw): the receptive field multiplies both.
  EXPECT_EQ(calculate_fan_in_and_fan_out(zeros({4, 2, 3, 3})),
            (std::pair<int64_t, int64_t>{18, 36}));
  EXPECT_EQ(calculate_fan_in_and_fan_out(zeros({4, 2, 5})), (std::pair<int64_t, int64_t>{10, 20}));
  EXPECT_TRUE(throws_error([] { calculate_fan_in_and_fan_out(zeros({7})); },
                           {"[calculate_fan_in_and_fan_out]", "at least 2 dimensions", "(7,)"}));
}

TEST(NnInit, CalculateGain) {
  for (const char* one : {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                          "conv_transpose2d", "conv_transpose3d", "sigmoid"}) {
    EXPECT_EQ(calculate_gain(one), 1.0) << one;
  }
  EXPECT_DOUBLE_EQ(calculate_gain("tanh"), 5.0 / 3.0);
  EXPECT_DOUBLE_EQ(calculate_gain("relu"), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(calculate_gain("selu"), 0.75);
  EXPECT_DOUBLE_EQ(calculate_gain("leaky_relu"), std::sqrt(2.0 / (1.0 + 0.01 * 0.01)));
  EXPECT_DOUBLE_EQ(calculate_gain("leaky_relu", 0.2), std::sqrt(2.0 / 1.04));
  EXPECT_DOUBLE_EQ(calculate_gain("leaky_relu", std::sqrt(5.0)), std::sqrt(1.0 / 3.0));
  EXPECT_TRUE(throws_error([] { calculate_gain("swish"); },
                           {"[calculate_gain] unsupported nonlinearity 'swish'", "leaky_relu"}));
  EXPECT_THROW(calculate_gain("leaky_relu", NAN), Error);
}

TEST(NnInit, UniformAndNormalStatistics) {
  Tensor t = zeros({200000});
  Generator gen(1);
  uniform_(t, -2.0, 3.0, &gen);
  Stats s = stats(t);
  EXPECT_GE(s.min, -2.0);
  EXPECT_LT(s.max, 3.0);
  EXPECT_NEAR(s.mean, 0.5, 0.01);
  EXPECT_NEAR(s.std, 5.0 / std::sqrt(12.0), 0.01);
  normal_(t, 1.5, 0.5, &gen);
  s = stats(t);
  EXPECT_NEAR(s.mean, 1.5, 0.005);
  EXPECT_NEAR(s.std, 0.5, 0.005);
  Tensor d = zeros({1000}, Dtype::f64);
  normal_(d, -3.0, 0.0, &gen);  // std 0 is allowed: a constant
  EXPECT_TRUE(all_close(d, full({1000}, -3.0, Dtype::f64), 0, 0));
}

TEST(NnInit, TruncNormalIsExactlyTruncated) {
  // mean/variance of N(mu, sigma^2) truncated to [a, b], from the closed form.
  auto check = [](double mu, double sigma, double a, double b, uint64_t seed) {
    Tensor t = zeros({200000}, Dtype::f64);
    Generator gen(seed);
    trunc_normal_(t, mu, sigma, a, b, &gen);
    const double al = (a - mu) / sigma, be = (b - mu) / sigma;
    const double z = cdf(be) - cdf(al);
    const double shift = (phi(al) - phi(be)) / z;
    const double want_mean = mu + sigma * shift;
    const double want_std =
        sigma * std::sqrt(1 + (al * phi(al) - be * phi(be)) / z - shift * shift);
    const Stats s = stats(t);
    EXPECT_GE(s.min, a);
    EXPECT_LE(s.max, b);
    EXPECT_NEAR(s.mean, want_mean, 0.01 * want_std) << mu << " " << sigma << " " << a << " " << b;
    EXPECT_NEAR(s.std, want_std, 0.01 * want_std) << mu << " " << sigma << " " << a << " " << b;
    // No mass piled on the bounds, as clamping would leave.
    int64_t at_bounds = 0;
    for (double v : t.to_vector<double>()) at_bounds += (v == a || v == b);
    EXPECT_EQ(at_bounds, 0);
  };
  check(0.0, 1.0, -2.0, 2.0, 1);
  check(0.5, 2.0, -1.0, 0.0, 2);     // the interval on one side of the mean
  check(0.0, 1.0, 3.0, 10.0, 3);     // deep in the upper tail
  check(0.0, 1.0, -12.0, -8.0, 4);   // deep in the lower tail
  check(0.0, 0.02, -0.04, 0.04, 5);  // ViT-style small std
  Tensor f = zeros({4, 5});
  trunc_normal_(f);  // defaults: N(0, 1) on [-2, 2], default generator
  EXPECT_LE(stats(f).max, 2.0);
  EXPECT_GE(stats(f).min, -2.0);
}

TEST(NnInit, ConstantZerosOnesAnyDtypeAndViews) {
  Tensor f = zeros({2, 3});
  ones_(f);
  EXPECT_TRUE(all_close(f, ones({2, 3}), 0, 0));
  constant_(f, 2.5);
  EXPECT_TRUE(all_close(f, full({2, 3}, 2.5), 0, 0));
  Tensor i = ones({4}, Dtype::i64);
  zeros_(i);
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 0, 0}));
  // A strided view is filled where it points, and nowhere else.
  Tensor base = zeros({3, 4});
  Tensor column = slice(base, 1, 1, 2);
  constant_(column, 7.0);
  EXPECT_TRUE(all_close(sum(base), scalar(21.0), 0, 0));
  EXPECT_TRUE(all_close(column, full({3, 1}, 7.0), 0, 0));
  Tensor v = transpose(zeros({300, 200}), 0, 1);
  Generator gen(9);
  uniform_(v, 1.0, 2.0, &gen);
  EXPECT_GE(stats(v).min, 1.0);
}

TEST(NnInit, XavierAndKaimingStatistics) {
  Generator gen(2);
  Tensor w = zeros({400, 600});  // fan_in 600, fan_out 400
  xavier_uniform_(w, 1.0, &gen);
  const double xb = std::sqrt(6.0 / 1000.0);
  Stats s = stats(w);
  EXPECT_LE(s.max, xb);
  EXPECT_GE(s.min, -xb);
  EXPECT_NEAR(s.std, xb / std::sqrt(3.0), 0.01 * xb);
  xavier_normal_(w, 2.0, &gen);
  EXPECT_NEAR(stats(w).std, 2.0 * std::sqrt(2.0 / 1000.0), 0.01 * 2.0 * std::sqrt(0.002));
  EXPECT_NEAR(stats(w).mean, 0.0, 0.001);

  kaiming_uniform_(w, 0.0, "fan_in", "leaky_relu", &gen);  // gain sqrt(2): bound sqrt(6 / fan_in)
  const double kb = std::sqrt(6.0 / 600.0);
  s = stats(w);
  EXPECT_LE(s.max, kb);
  EXPECT_GE(s.min, -kb);
  EXPECT_GT(s.max, 0.99 * kb);
  kaiming_uniform_(w, std::sqrt(5.0), "fan_in", "leaky_relu", &gen);  // nn.Linear's: 1/sqrt(in)
  EXPECT_LE(stats(w).max, 1.0 / std::sqrt(600.0));
  EXPECT_GT(stats(w).max, 0.99 / std::sqrt(600.0));
  kaiming_normal_(w, 0.0, "fan_out", "relu", &gen);
  EXPECT_NEAR(stats(w).std, std::sqrt(2.0 / 400.0), 0.01 * std::sqrt(2.0 / 400.0));

  Tensor conv = zeros({64, 32, 3, 3});  // fan_in 288, fan_out 576
  kaiming_normal_(conv, 0.0, "fan_in", "relu", &gen);
  EXPECT_NEAR(stats(conv).std, std::sqrt(2.0 / 288.0), 0.02 * std::sqrt(2.0 / 288.0));
  xavier_uniform_(conv, 1.0, &gen);
  EXPECT_LE(stats(conv).max, std::sqrt(6.0 / (288.0 + 576.0)));

  Tensor empty = zeros({0, 5});
  EXPECT_NO_THROW(kaiming_uniform_(empty));
  EXPECT_NO_THROW(xavier_normal_(empty));
}

TEST(NnInit, SameGeneratorStateSameValues) {
  using Fill = std::function<void(const Tensor&, Generator*)>;
  const std::vector<std::pair<const char*, Fill>> fills = {
      {"uniform_", [](const Tensor& t, Generator* g) { uniform_(t, -1, 1, g); }},
      {"normal_", [](const Tensor& t, Generator* g) { normal_(t, 0, 1, g); }},
      {"trunc_normal_", [](const Tensor& t, Generator* g) { trunc_normal_(t, 0, 1, -2, 2, g); }},
      {"xavier_uniform_", [](const Tensor& t, Generator* g) { xavier_uniform_(t, 1, g); }},
      {"xavier_normal_", [](const Tensor& t, Generator* g) { xavier_normal_(t, 1, g); }},
      {"kaiming_uniform_",
       [](const Tensor& t, Generator* g) { kaiming_uniform_(t, 0, "fan_in", "relu", g); }},
      {"kaiming_normal_",
       [](const Tensor& t, Generator* g) { kaiming_normal_(t, 0, "fan_in", "relu", g); }},
  };
  for (const auto& [name, fill] : fills) {
    Tensor a = zeros({8, 5}), b = zeros({8, 5}), c = zeros({8, 5});
    Generator g1(11), g2(11), g3(12);
    fill(a, &g1);
    fill(b, &g2);
    fill(c, &g3);
    EXPECT_TRUE(all_close(a, b, 0, 0)) << name;
    EXPECT_FALSE(all_close(a, c, 1e-3, 0)) << name;
    EXPECT_GT(g1.offset(), 0u) << name;
    // Null means the default generator.
    manual_seed(5);
    fill(a, nullptr);
    manual_seed(5);
    fill(b, nullptr);
    EXPECT_TRUE(all_close(a, b, 0, 0)) << name;
  }
}

TEST(NnInit, FillsParametersInPlaceWithoutRecording) {
  Tensor p = zeros({4, 3}).set_requires_grad();
  const TensorImpl* impl = p.impl();
  kaiming_uniform_(p);
  trunc_normal_(p, 0, 0.02);
  EXPECT_EQ(p.impl(), impl);
  EXPECT_TRUE(p.is_leaf());
  EXPECT_TRUE(p.requires_grad());
  EXPECT_GT(stats(p).max, 0.0);
}

TEST(NnInit, Errors) {
  Tensor f = zeros({3, 3});
  EXPECT_TRUE(throws_error([] { uniform_(Tensor()); }, {"[uniform_] got an undefined tensor"}));
  EXPECT_TRUE(throws_error([] { normal_(zeros({2}, Dtype::i64)); },
                           {"[normal_] needs a floating tensor", "int64"}));
  EXPECT_TRUE(throws_error([&] { uniform_(f, 1.0, 0.0); }, {"[uniform_] lower bound 1"}));
  EXPECT_TRUE(throws_error([&] { normal_(f, 0.0, -1.0); }, {"[normal_] std must be"}));
  EXPECT_TRUE(throws_error([&] { trunc_normal_(f, 0.0, 0.0); }, {"[trunc_normal_] std"}));
  EXPECT_TRUE(throws_error([&] { trunc_normal_(f, 0.0, 1.0, 1.0, 1.0); },
                           {"[trunc_normal_] the interval [1, 1] is empty"}));
  EXPECT_TRUE(throws_error([&] { kaiming_uniform_(f, 0.0, "fan_avg"); },
                           {"[kaiming_uniform_] mode 'fan_avg'", "fan_in or fan_out"}));
  EXPECT_TRUE(throws_error([&] { kaiming_normal_(f, 0.0, "fan_in", "mish"); },
                           {"[calculate_gain] unsupported nonlinearity 'mish'"}));
  EXPECT_TRUE(throws_error([] { xavier_uniform_(zeros({5})); },
                           {"[calculate_fan_in_and_fan_out]", "(5,)"}));
  EXPECT_TRUE(throws_error([] { constant_(Tensor(), 1.0); }, {"[constant_]"}));
}

}  // namespace
}  // namespace basin::nn
