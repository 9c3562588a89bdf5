// dropout: identity cases, the mask's scaling, rate and reproducibility, gradients, errors.
#include "tests/test_util.h"

namespace basin {
namespace {
using testing::all_close;
using testing::make;

TEST(Dropout, IdentityWhenNotTrainingOrPIsZero) {
  const Tensor x = make({4, 5}, 1);
  Generator gen(3);
  EXPECT_EQ(dropout(x, 0.5, false, &gen).impl(), x.impl());
  EXPECT_EQ(dropout(x, 0.0, true, &gen).impl(), x.impl());
  EXPECT_EQ(gen.offset(), 0u);  // no random numbers drawn
}

TEST(Dropout, PIsOneGivesZeros) {
  const Tensor x = make({4, 5}, 2);
  EXPECT_TRUE(all_close(dropout(x, 1.0), zeros({4, 5}, Dtype::f64), 0, 0));
}

TEST(Dropout, MaskComesFromBernoulliAndIsScaled) {
  const double p = 0.3;
  const Tensor x = make({6, 7}, 3, 0.5, 1.5, Dtype::f32);
  Generator g1(42), g2(42);
  const Tensor out = dropout(x, p, true, &g1);
  const Tensor keep = bernoulli(x.shape(), 1 - p, Device::cpu(), &g2).astype(Dtype::f32);
  EXPECT_EQ(out.dtype(), Dtype::f32);
  EXPECT_TRUE(all_close(out, x * keep / (1 - p), 1e-6, 0));
  EXPECT_EQ(g1.offset(), g2.offset());
}

TEST(Dropout, SameGeneratorStateSameMask) {
  const Tensor x = make({100}, 4);
  Generator g(7);
  const Tensor first = dropout(x, 0.5, true, &g);
  const Tensor second = dropout(x, 0.5, true, &g);
  EXPECT_FALSE(all_close(first, second));  // the generator moved on
  g.set_state(7, 0);
  EXPECT_TRUE(all_close(dropout(x, 0.5, true, &g), first, 0, 0));
  manual_seed(11);
  const Tensor a = dropout(x, 0.5);
  manual_seed(11);
  EXPECT_TRUE(all_close(dropout(x, 0.5), a, 0, 0));
}

TEST(Dropout, RateAndExpectation) {
  const Tensor x = ones({200000}, Dtype::f64);
  Generator g(5);
  const Tensor out = dropout(x, 0.25, true, &g);
  const auto v = out.to_vector<double>();
  int64_t zeros_seen = 0;
  for (double e : v) {
    if (e == 0.0) {
      ++zeros_seen;
    } else {
      EXPECT_DOUBLE_EQ(e, 1.0 / 0.75);
    }
  }
  EXPECT_NEAR(static_cast<double>(zeros_seen) / v.size(), 0.25, 0.005);
  EXPECT_NEAR(mean(out).item<double>(), 1.0, 0.01);
}

TEST(Dropout, GradientIsTheScaledMask) {
  const Tensor x = make({5, 4}, 6);
  Generator g1(9), g2(9);
  const Tensor gx = grad([&g1](const Tensor& v) { return sum(dropout(v, 0.4, true, &g1)); })(x);
  const Tensor keep = bernoulli(x.shape(), 0.6, Device::cpu(), &g2).astype(Dtype::f64);
  EXPECT_TRUE(all_close(gx, keep / 0.6));
  // With the generator reset on every call the function is deterministic and checkable.
  const Fn f = [](const Tensors& in) {
    Generator g(13);
    return Tensors{dropout(in[0] * in[0], 0.4, true, &g)};
  };
  testing::expect_derivatives(f, {x});
  const Fn zero = [](const Tensors& in) { return Tensors{dropout(in[0], 1.0)}; };
  testing::expect_derivatives(zero, {x});
}

TEST(Dropout, Errors) {
  EXPECT_TRUE(testing::throws_error([] { dropout(zeros({2}), -0.1); }, {"[dropout]", "-0.1"}));
  EXPECT_TRUE(testing::throws_error([] { dropout(zeros({2}), 1.5); }, {"[dropout]", "1.5"}));
  EXPECT_TRUE(
      testing::throws_error([] { dropout(zeros({2}), std::nan("")); }, {"[dropout]", "nan"}));
  EXPECT_TRUE(
      testing::throws_error([] { dropout(zeros({2}, Dtype::i64), 0.5); }, {"[dropout]", "int64"}));
}

}  // namespace
}  // namespace basin
