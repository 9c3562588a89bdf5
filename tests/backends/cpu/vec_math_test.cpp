// The vectorisable float exp against the double-precision library exp.
#include <gtest/gtest.h>

#include <cmath>

#include "backends/cpu/vec_math.h"

namespace basin::cpu {
namespace {

TEST(VecMath, ExpF32IsWithinTwoUlpsOverTheNormalRange) {
  double worst = 0;
  for (int i = 0; i <= 2000000; ++i) {
    const float x = -87.0f + 175.0f * static_cast<float>(i) / 2000000.0f;
    const double want = std::exp(static_cast<double>(x));
    const double got = exp_f32(x);
    worst = std::max(worst, std::abs(got - want) / want);
  }
  EXPECT_LT(worst, 2.5e-7);
}

TEST(VecMath, ExpF32Extremes) {
  EXPECT_EQ(exp_f32(-INFINITY), 0.0f);
  EXPECT_EQ(exp_f32(-1000.0f), 0.0f);
  EXPECT_EQ(exp_f32(INFINITY), INFINITY);
  EXPECT_EQ(exp_f32(1000.0f), INFINITY);
  EXPECT_TRUE(std::isnan(exp_f32(NAN)));
  EXPECT_EQ(exp_f32(0.0f), 1.0f);
}

TEST(VecMath, SigmoidIsStable) {
  Sigmoid s;
  EXPECT_EQ(s(-1000.0f), 0.0f);
  EXPECT_EQ(s(1000.0f), 1.0f);
  EXPECT_NEAR(s(0.3f), 1.0 / (1.0 + std::exp(-0.3)), 1e-7);
}

}  // namespace
}  // namespace basin::cpu
