// The vectorisable sigmoid of the CPU kernels (exp_fast itself is tested with the reductions).
#include <gtest/gtest.h>

#include <cmath>

#include "backends/cpu/vec_math.h"

namespace basin::cpu {
namespace {

TEST(VecMath, SigmoidIsStableAndAccurate) {
  Sigmoid s;
  EXPECT_EQ(s(-1000.0f), 0.0f);
  EXPECT_EQ(s(1000.0f), 1.0f);
  for (float x = -20.0f; x <= 20.0f; x += 0.01f) {
    EXPECT_NEAR(s(x), 1.0 / (1.0 + std::exp(-static_cast<double>(x))), 2e-7) << x;
  }
}

}  // namespace
}  // namespace basin::cpu
