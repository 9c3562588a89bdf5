// HopfieldEnergy: ReLU² and log-sum-exp energies against the PyTorch fixture, the fused gradient
// against autograd and its fallback to second order, finite differences, a custom F, the module,
// the registry and errors.
#include <gtest/gtest.h>

#include "core/prims/energy.h"
#include "models/energy/hopfield_energy.h"
#include "tests/models/energy/et_test_util.h"

namespace basin::energy {
namespace {

using basin::testing::all_close;
using basin::testing::make;
using basin::testing::throws_error;
using testing::fx;

constexpr HopfieldKind kKinds[] = {HopfieldKind::relu2, HopfieldKind::lse};

Tensor autograd_grad(const Tensor& g, const Tensor& xi, HopfieldKind kind, const Tensor& beta) {
  return grad([&](const Tensor& t) { return hopfield_energy(t, xi, kind, beta); })(g);
}

TEST(EnergyHopfield, MatchesTheFixture) {
  const Tensor g = fx("ln.g"), xi = fx("hn.xi"), beta = fx("hn.beta");
  for (HopfieldKind kind : kKinds) {
    const std::string k = hopfield_kind_name(kind);
    EXPECT_TRUE(all_close(hopfield_energy(g, xi, kind, beta), fx("hn.energy_" + k), 1e-12, 1e-12))
        << k;
    EXPECT_TRUE(
        all_close(hopfield_energy_grad(g, xi, kind, beta), fx("hn.grad_" + k), 1e-11, 1e-12))
        << k;
    // The module in float64 and float32.
    for (Dtype dtype : {Dtype::f64, Dtype::f32}) {
      HopfieldEnergyOptions o;
      o.kind = kind;
      o.beta = 0.7;
      o.dtype = dtype;
      HopfieldEnergy hn(8, 12, o);
      hn.xi.assign(xi);
      const double tol = dtype == Dtype::f64 ? 1e-11 : 1e-5;
      const Tensor gd = g.astype(dtype);
      EXPECT_TRUE(all_close(hn.energy(gd), fx("hn.energy_" + k), tol, tol)) << k;
      EXPECT_TRUE(all_close(hn.energy_grad(gd), fx("hn.grad_" + k), tol, tol)) << k;
      auto [e, d] = hn.energy_and_grad(gd);
      EXPECT_TRUE(all_close(e, fx("hn.energy_" + k), tol, tol)) << k;
      EXPECT_TRUE(all_close(d, fx("hn.grad_" + k), tol, tol)) << k;
    }
  }
}

TEST(EnergyHopfield, ClosedFormEqualsAutogradAndItsFallback) {
  uint64_t seed = 10;
  for (HopfieldKind kind : kKinds) {
    for (const Shape& shape : {Shape{6}, Shape{7, 6}, Shape{2, 3, 6}, Shape{150, 6}}) {
      ++seed;
      const Tensor g = make(shape, seed, -2, 2), xi = make({9, 6}, seed + 50);
      const Tensor beta = scalar(1.3, Dtype::f64);
      const Tensor want = autograd_grad(g, xi, kind, beta);
      EXPECT_TRUE(all_close(hopfield_energy_grad(g, xi, kind, beta), want, 1e-12, 1e-12))
          << hopfield_kind_name(kind) << " " << shape_str(shape);
      const bool lse = kind == HopfieldKind::lse;
      Tensors in{g, xi};
      if (lse) in.push_back(beta);
      EXPECT_TRUE(all_close(prims::HopfieldEnergyGrad(lse).fallback(in), want, 1e-12, 1e-12));
      const Tensor got32 = hopfield_energy_grad(g.astype(Dtype::f32), xi.astype(Dtype::f32), kind,
                                                beta.astype(Dtype::f32));
      EXPECT_EQ(got32.dtype(), Dtype::f32);
      EXPECT_TRUE(all_close(got32, want, 1e-5, 1e-5)) << hopfield_kind_name(kind);
      EXPECT_TRUE(all_close(hopfield_energy_grad(basin::testing::noncontiguous(g), xi, kind, beta),
                            want, 1e-12, 1e-12));
    }
  }
}

TEST(EnergyHopfield, FusedGradientHasTheDerivativesOfAutograd) {
  for (HopfieldKind kind : kKinds) {
    const Tensors inputs{make({3, 5}, 20, -2, 2), make({7, 5}, 21), scalar(0.9, Dtype::f64)};
    const Fn fused = [kind](const Tensors& in) {
      return Tensors{hopfield_energy_grad(in[0], in[1], kind, in[2])};
    };
    const Fn autod = [kind](const Tensors& in) {
      return Tensors{autograd_grad(in[0], in[1], kind, in[2])};
    };
    const Tensor v = make({3, 5}, 22);
    const auto gf = vjp(fused, inputs, {v}).second, ga = vjp(autod, inputs, {v}).second;
    for (size_t i = 0; i < inputs.size(); ++i) {
      EXPECT_TRUE(all_close(gf[i], ga[i], 1e-11, 1e-12)) << hopfield_kind_name(kind) << " " << i;
    }
    auto second = [&](const Fn& f) {
      const Fn back = [&f](const Tensors& in) {
        return vjp(f, {in[0], in[1], in[2]}, {in[3]}).second;
      };
      return vjp(back, {inputs[0], inputs[1], inputs[2], v},
                 {make({3, 5}, 23), make({7, 5}, 24), scalar(0.4, Dtype::f64)})
          .second;
    };
    const auto hf = second(fused), ha = second(autod);
    for (size_t i = 0; i < hf.size(); ++i) {
      EXPECT_TRUE(all_close(hf[i], ha[i], 1e-10, 1e-12)) << hopfield_kind_name(kind) << " " << i;
    }
  }
}

TEST(EnergyHopfield, Derivatives) {
  const Tensors inputs{make({2, 3, 4}, 30, -2, 2), make({5, 4}, 31), scalar(0.8, Dtype::f64)};
  for (HopfieldKind kind : kKinds) {
    basin::testing::expect_derivatives(
        [kind](const Tensors& in) { return Tensors{hopfield_energy(in[0], in[1], kind, in[2])}; },
        inputs);
    basin::testing::expect_derivatives(
        [kind](const Tensors& in) {
          return Tensors{hopfield_energy_grad(in[0], in[1], kind, in[2])};
        },
        inputs);
  }
}

TEST(EnergyHopfield, CustomFunction) {
  // F = ½ ReLU² given by hand is the relu2 kind; its gradient comes from autograd.
  HopfieldEnergyOptions o;
  o.kind = HopfieldKind::custom;
  o.fn = [](const Tensor& h) { return square(relu(h)) * 0.5; };
  o.dtype = Dtype::f64;
  Generator gen(4);
  HopfieldEnergy custom(6, 10, o, &gen);
  const Tensor g = make({4, 6}, 40, -2, 2) * 20.0;
  const Tensor beta;
  EXPECT_TRUE(all_close(custom.energy(g), hopfield_energy(g, custom.xi, HopfieldKind::relu2, beta),
                        1e-12, 1e-12));
  EXPECT_TRUE(all_close(custom.energy_grad(g),
                        hopfield_energy_grad(g, custom.xi, HopfieldKind::relu2, beta), 1e-12,
                        1e-12));
  auto [e, d] = custom.energy_and_grad(g);
  EXPECT_TRUE(all_close(e, custom.energy(g)));
  EXPECT_TRUE(all_close(d, custom.energy_grad(g), 1e-12, 1e-12));
  // A quartic separation function (Dense-AM style): E = −Σ h⁴/4, dE/dg = −h³ ξ.
  o.fn = [](const Tensor& h) { return pow(h, 4.0) * 0.25; };
  HopfieldEnergy quartic(6, 10, o, &gen);
  const Tensor h = matmul(g, transpose(quartic.xi));
  EXPECT_TRUE(
      all_close(quartic.energy_grad(g), neg(matmul(pow(h, 3.0), quartic.xi)), 1e-12, 1e-12));
  EXPECT_EQ(quartic.repr(), "HopfieldEnergy(dim=6, memories=10, kind=custom)");
}

TEST(EnergyHopfield, ParametersBuffersAndRegistry) {
  Generator gen(1);
  HopfieldEnergy relu2(32, 128, {}, &gen);
  auto params = relu2.named_parameters();
  ASSERT_EQ(params.size(), 1u);
  EXPECT_EQ(params[0].first, "xi");
  EXPECT_EQ(relu2.xi.shape(), (Shape{128, 32}));
  EXPECT_NEAR(std(relu2.xi).item<double>(), 0.02, 1e-3);
  EXPECT_FALSE(relu2.beta.defined());
  EXPECT_EQ(relu2.repr(), "HopfieldEnergy(dim=32, memories=128, kind=relu2)");

  HopfieldEnergyOptions o;
  o.kind = HopfieldKind::lse;
  HopfieldEnergy lse(4, 8, o);
  params = lse.named_parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[1].first, "beta");
  EXPECT_EQ(lse.beta.shape(), Shape{});
  EXPECT_NEAR(lse.beta.item<double>(), 0.01, 1e-9);
  EXPECT_EQ(lse.repr(),
            "HopfieldEnergy(dim=4, memories=8, kind=lse, beta=0.01, learnable_beta=true)");
  o.learnable_beta = false;
  HopfieldEnergy fixed(4, 8, o);
  EXPECT_EQ(fixed.named_parameters().size(), 1u);
  ASSERT_EQ(fixed.named_buffers().size(), 1u);
  EXPECT_EQ(fixed.named_buffers()[0].first, "beta");

  // The gradient reaches ξ and a learnable β through the closed form.
  const Tensor g = make({3, 4}, 5, -1, 1, Dtype::f32);
  sum(lse.energy_grad(g) * g).backward();
  EXPECT_TRUE(lse.xi.grad().defined());
  EXPECT_TRUE(lse.beta.grad().defined());

  EnergyContext context{Config::parse("type = \"hopfield\"\nmemories = 9\nkind = \"lse\"\n"
                                      "beta = 0.5\nlearnable_beta = false\n"),
                        6};
  auto layer = make_energy(context);
  auto* hn = dynamic_cast<HopfieldEnergy*>(layer.get());
  ASSERT_NE(hn, nullptr);
  EXPECT_EQ(hn->memories(), 9);
  EXPECT_EQ(hn->dim(), 6);
  EXPECT_EQ(hn->kind(), HopfieldKind::lse);
  EXPECT_FLOAT_EQ(hn->beta.item<float>(), 0.5f);
  EXPECT_TRUE(hn->named_parameters().size() == 1u);
  context.config.check_all_used();
  auto defaults = make_energy({Config::parse("type = \"hopfield\""), 5});
  auto* d = dynamic_cast<HopfieldEnergy*>(defaults.get());
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->memories(), 20);
  EXPECT_EQ(d->kind(), HopfieldKind::relu2);
  EXPECT_TRUE(throws_error(
      [] {
        make_energy({Config::parse("type = \"hopfield\"\nkind = \"tanh\""), 5});
      },
      {"kind", "tanh"}));
}

TEST(EnergyHopfield, Errors) {
  HopfieldEnergy hn(4, 6);
  EXPECT_TRUE(throws_error([&] { hn.energy(zeros({3, 5})); }, {"[HopfieldEnergy]", "(3, 5)", "4"}));
  EXPECT_TRUE(throws_error([&] { hn.energy_grad(zeros({})); }, {"[HopfieldEnergy]", "()"}));
  EXPECT_TRUE(throws_error(
      [&] {
        hn.energy(zeros({3, 4}, Dtype::i64));
      },
      {"[HopfieldEnergy]", "floating"}));
  EXPECT_TRUE(throws_error(
      [] {
        hopfield_energy(zeros({2, 4}), zeros({4}), HopfieldKind::relu2);
      },
      {"[HopfieldEnergy]", "xi", "(4,)"}));
  EXPECT_TRUE(throws_error(
      [] {
        hopfield_energy(zeros({2, 4}), zeros({3, 4}), HopfieldKind::lse);
      },
      {"[HopfieldEnergy]", "beta"}));
  EXPECT_TRUE(throws_error(
      [] {
        hopfield_energy_grad(zeros({2, 4}), zeros({3, 4}), HopfieldKind::lse, zeros({2}));
      },
      {"[HopfieldEnergy]", "beta", "(2,)"}));
  EXPECT_TRUE(throws_error(
      [] {
        hopfield_energy(zeros({2, 4}), zeros({3, 4}), HopfieldKind::custom);
      },
      {"[HopfieldEnergy]", "custom"}));
  HopfieldEnergyOptions o;
  o.kind = HopfieldKind::custom;
  EXPECT_TRUE(throws_error([&] { HopfieldEnergy(4, 6, o); }, {"[HopfieldEnergy]", "function"}));
  o.kind = HopfieldKind::lse;
  o.beta = 0.0;
  EXPECT_TRUE(throws_error([&] { HopfieldEnergy(4, 6, o); }, {"[HopfieldEnergy]", "beta"}));
  EXPECT_TRUE(throws_error([] { HopfieldEnergy(4, 0); }, {"[HopfieldEnergy]", "memories"}));
  EXPECT_TRUE(
      throws_error([] { hopfield_kind_from_name("softmax"); }, {"[HopfieldEnergy]", "softmax"}));
}

}  // namespace
}  // namespace basin::energy
