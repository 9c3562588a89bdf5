// EnergyLayerNorm: g, Lagrangian and energy against the PyTorch fixture, g = ∂L/∂x, convexity,
// finite-difference derivatives, parameters and errors.
#include <gtest/gtest.h>

#include "models/energy/layer_norm.h"
#include "tests/models/energy/et_test_util.h"

namespace basin::energy {
namespace {

using basin::testing::all_close;
using basin::testing::make;
using testing::fx;

/// An f64 layer with the fixture's γ and δ.
std::shared_ptr<EnergyLayerNorm> fixture_layer(bool regularized, Dtype dtype = Dtype::f64) {
  auto ln = std::make_shared<EnergyLayerNorm>(8, 1e-5, regularized, dtype);
  ln->gamma.assign(fx("ln.gamma"));
  ln->delta.assign(fx("ln.delta"));
  return ln;
}

TEST(EnergyLayerNorm, MatchesTheFixture) {
  const Tensor x = fx("x");
  for (bool reg : {false, true}) {
    const std::string s = reg ? "_reg" : "";
    auto ln = fixture_layer(reg);
    EXPECT_TRUE(all_close(ln->forward(x), fx("ln.g" + s), 1e-12, 1e-12)) << s;
    EXPECT_TRUE(all_close(ln->lagrangian(x), fx("ln.lagrangian" + s), 1e-12, 1e-12)) << s;
    EXPECT_TRUE(all_close(ln->energy(x), fx("ln.energy" + s), 1e-9, 1e-11)) << s;
    // float32 parameters and input.
    auto ln32 = fixture_layer(reg, Dtype::f32);
    const Tensor x32 = x.astype(Dtype::f32);
    EXPECT_EQ(ln32->forward(x32).dtype(), Dtype::f32);
    EXPECT_TRUE(all_close(ln32->forward(x32), fx("ln.g" + s), 1e-5, 1e-5)) << s;
    EXPECT_TRUE(all_close(ln32->lagrangian(x32), fx("ln.lagrangian" + s), 1e-5, 1e-4)) << s;
    // The energy (−7.6e-4 here) is not the float32 difference of g·x and L (both near 155).
    EXPECT_TRUE(all_close(ln32->energy(x32), fx("ln.energy" + s), 1e-5, 1e-8)) << s;
  }
}

TEST(EnergyLayerNorm, LagrangianGradientIsG) {
  for (bool reg : {false, true}) {
    auto ln = std::make_shared<EnergyLayerNorm>(6, 1e-3, reg, Dtype::f64);
    ln->gamma.assign(scalar(0.8, Dtype::f64));
    ln->delta.assign(make({6}, 2));
    for (const Shape& shape : {Shape{6}, Shape{4, 6}, Shape{2, 3, 6}}) {
      const Tensor x = make(shape, 3, -2, 2);
      const Tensor dl = grad([&](const Tensor& t) { return ln->lagrangian(t); })(x);
      EXPECT_TRUE(all_close(dl, ln->forward(x), 1e-12, 1e-12)) << shape_str(shape);
    }
  }
}

TEST(EnergyLayerNorm, LagrangianIsConvex) {
  // vᵀ (∂²L/∂x²) v = vᵀ ∂g/∂x v >= 0 for γ > 0, strictly > 0 when regularized: why the descent
  // x ← x − α ∂E/∂g lowers E(g).
  for (bool reg : {false, true}) {
    auto ln = std::make_shared<EnergyLayerNorm>(5, 1e-5, reg, Dtype::f64);
    const Tensor x = make({3, 5}, 4, -2, 2);
    for (uint64_t seed = 10; seed < 20; ++seed) {
      const Tensor v = make({3, 5}, seed);
      const Fn g = [&](const Tensors& in) { return Tensors{ln->forward(in[0])}; };
      const Tensor hv = vjp(g, {x}, {v}).second[0];
      const double q = sum(hv * v).item<double>();
      EXPECT_GE(q, -1e-12) << seed;
      if (reg) {
        EXPECT_GT(q, 1e-4 * sum(v * v).item<double>()) << seed;
      }
    }
    // Along the centred x the norm only moves through ε (L is 1-homogeneous in the centred x
    // for ε = 0): cᵀ H c = Σ_A γ ε ‖c_A‖² / s_A³ (+ λ‖c‖²), with s_A = sqrt(var_A + ε).
    const Tensor c = x - mean(x, {-1}, true);
    const Tensor s = sqrt(mean(c * c, {-1}) + 1e-5);
    const double want = sum(sum(c * c, {-1}) * 1e-5 / (s * s * s)).item<double>() +
                        (reg ? 1e-3 * sum(c * c).item<double>() : 0.0);
    const Fn g = [&](const Tensors& in) { return Tensors{ln->forward(in[0])}; };
    const double along = sum(vjp(g, {x}, {c}).second[0] * c).item<double>();
    EXPECT_NEAR(along, want, 1e-12);
  }
}

TEST(EnergyLayerNorm, EnergyIsTheLegendreTransform) {
  for (bool reg : {false, true}) {
    for (double eps : {1e-5, 0.3, 0.0}) {
      auto ln = std::make_shared<EnergyLayerNorm>(8, eps, reg, Dtype::f64);
      ln->gamma.assign(fx("ln.gamma"));
      ln->delta.assign(fx("ln.delta"));
      const Tensor x = fx("x");
      EXPECT_TRUE(
          all_close(ln->energy(x), sum(ln->forward(x) * x) - ln->lagrangian(x), 1e-9, 1e-11))
          << reg << " " << eps;
      // Its gradient too (the Legendre transform's: ∂E/∂x = H_L x).
      const Tensor want =
          grad([&](const Tensor& t) { return sum(ln->forward(t) * t) - ln->lagrangian(t); })(x);
      const Tensor got = grad([&](const Tensor& t) { return ln->energy(t); })(x);
      EXPECT_TRUE(all_close(got, want, 1e-8, 1e-10)) << reg << " " << eps;
    }
  }
}

TEST(EnergyLayerNorm, Derivatives) {
  const Tensor x = make({2, 3, 4}, 5, -2, 2), gamma = scalar(1.2, Dtype::f64);
  const Tensor delta = make({4}, 6);
  for (double lambda : {0.0, 1e-3}) {
    basin::testing::expect_derivatives(
        [lambda](const Tensors& in) {
          return Tensors{energy_layer_norm(in[0], in[1], in[2], 1e-2, lambda)};
        },
        {x, gamma, delta});
    basin::testing::expect_derivatives(
        [lambda](const Tensors& in) {
          return Tensors{energy_layer_norm_lagrangian(in[0], in[1], in[2], 1e-2, lambda)};
        },
        {x, gamma, delta});
    basin::testing::expect_derivatives(
        [lambda](const Tensors& in) {
          return Tensors{energy_layer_norm_energy(in[0], in[1], in[2], 1e-2, lambda)};
        },
        {x, gamma, delta});
  }
}

TEST(EnergyLayerNorm, ParametersAndRepr) {
  EnergyLayerNorm ln(6, 1e-4, true);
  const auto params = ln.named_parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].first, "gamma");
  EXPECT_EQ(params[0].second.shape(), Shape{});
  EXPECT_EQ(params[0].second.item<double>(), 1.0);
  EXPECT_EQ(params[1].first, "delta");
  EXPECT_EQ(params[1].second.shape(), Shape{6});
  EXPECT_EQ(max(abs(params[1].second)).item<double>(), 0.0);
  EXPECT_EQ(params[0].second.dtype(), Dtype::f32);
  EXPECT_EQ(ln.regularization(), kEnergyLayerNormRegularization);
  EXPECT_EQ(ln.repr(), "EnergyLayerNorm(6, eps=0.0001, regularized=true)");
  // Gradients reach γ and δ.
  const Tensor x = make({3, 6}, 7, -1, 1, Dtype::f32);
  sum(ln.forward(x) * x).backward();
  EXPECT_TRUE(ln.gamma.grad().defined());
  EXPECT_TRUE(ln.delta.grad().defined());
  EXPECT_TRUE(all_close(ln.delta.grad(), sum(x, {0}), 1e-6, 1e-6));
}

TEST(EnergyLayerNorm, Errors) {
  EnergyLayerNorm ln(4);
  EXPECT_TRUE(basin::testing::throws_error(
      [&] {
        ln.forward(zeros({2, 5}));
      },
      {"[EnergyLayerNorm]", "delta", "(2, 5)"}));
  EXPECT_TRUE(
      basin::testing::throws_error([&] { ln.energy(zeros({})); }, {"[EnergyLayerNorm]", "()"}));
  EXPECT_TRUE(basin::testing::throws_error(
      [&] {
        ln.lagrangian(zeros({3, 4}, Dtype::i32));
      },
      {"[EnergyLayerNorm]", "int32"}));
  EXPECT_TRUE(basin::testing::throws_error(
      [] {
        energy_layer_norm(zeros({2, 4}), zeros({2}), zeros({4}));
      },
      {"[EnergyLayerNorm]", "gamma", "(2,)"}));
  EXPECT_TRUE(
      basin::testing::throws_error([] { EnergyLayerNorm(0); }, {"[EnergyLayerNorm]", "dim"}));
  EXPECT_TRUE(
      basin::testing::throws_error([] { EnergyLayerNorm(3, -1.0); }, {"[EnergyLayerNorm]", "eps"}));
}

}  // namespace
}  // namespace basin::energy
