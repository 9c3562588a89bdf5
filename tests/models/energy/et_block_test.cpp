// EnergyTransformerBlock: energies, gradients and descent steps against the PyTorch fixture, the
// energy never rising along the descent, training through the unrolled dynamics against finite
// differences, the registry.
#include <gtest/gtest.h>

#include "models/energy/et_block.h"
#include "tests/models/energy/et_test_util.h"

namespace basin::energy {
namespace {

using basin::testing::all_close;
using basin::testing::make;
using basin::testing::throws_error;
using testing::fx;

/// A float64 block (D 8, H 2, Y 3, M 12) holding the fixture's weights.
std::shared_ptr<EnergyTransformerBlock> fixture_block(Dtype dtype = Dtype::f64) {
  EnergyTransformerOptions o;
  o.dtype = dtype;
  auto block = std::make_shared<EnergyTransformerBlock>(8, 2, 3, 12, o);
  block->norm()->gamma.assign(fx("ln.gamma"));
  block->norm()->delta.assign(fx("ln.delta"));
  block->attention()->wq.assign(fx("attn.wq"));
  block->attention()->wk.assign(fx("attn.wk"));
  block->attention()->beta.assign(fx("attn.beta"));
  block->hopfield()->xi.assign(fx("hn.xi"));
  return block;
}

TEST(EnergyTransformerBlock, MatchesTheFixture) {
  auto block = fixture_block();
  const Tensor x = fx("x"), g = block->norm()->forward(x);
  EXPECT_TRUE(all_close(g, fx("ln.g"), 1e-12, 1e-12));
  EXPECT_TRUE(all_close(block->energy(g), fx("et.energy0"), 1e-12, 1e-12));
  EXPECT_TRUE(all_close(block->energy_grad(g), fx("et.grad0"), 1e-11, 1e-12));
  auto [e, d] = block->energy_and_grad(g);
  EXPECT_TRUE(all_close(e, fx("et.energy0"), 1e-12, 1e-12));
  EXPECT_TRUE(all_close(d, fx("et.grad0"), 1e-11, 1e-12));
  // T steps of x ← x − α dE/dg with g = LN(x), recording the energy of each state.
  for (int steps = 1; steps <= 3; ++steps) {
    DescentOptions o;
    o.steps = steps;
    o.step_size = fx("et.alpha").item<double>();
    auto descent = energy_transformer_descent(block, o);
    DescentTrace trace;
    const Tensor xt = descent->run(x, &trace);
    const std::string s = std::to_string(steps);
    EXPECT_TRUE(all_close(xt, fx("et.x" + s), 1e-11, 1e-12)) << steps;
    ASSERT_EQ(trace.energies.size(), static_cast<size_t>(steps + 1));
    EXPECT_NEAR(trace.energies.front(), fx("et.energy0").item<double>(), 1e-10);
    EXPECT_NEAR(trace.energies.back(), fx("et.energy" + s).item<double>(), 1e-10);
  }
  // float32 parameters and state: three steps within float32 accuracy.
  DescentOptions o;
  o.steps = 3;
  auto descent32 = energy_transformer_descent(fixture_block(Dtype::f32), o);
  const Tensor x3 = descent32->run(x.astype(Dtype::f32));
  EXPECT_EQ(x3.dtype(), Dtype::f32);
  EXPECT_TRUE(all_close(x3, fx("et.x3"), 1e-4, 1e-4));
}

TEST(EnergyTransformerBlock, EnergyNeverRisesAlongTheDescent) {
  // Random weights larger than the paper's initialisation (so the energy landscape is not flat),
  // batched tokens, both Hopfield kinds, with and without exclude_self and the regularized norm.
  for (HopfieldKind kind : {HopfieldKind::relu2, HopfieldKind::lse}) {
    for (bool excl : {false, true}) {
      EnergyTransformerOptions o;
      o.attention.init_std = 0.2;
      o.attention.exclude_self = excl;
      o.hopfield.kind = kind;
      o.hopfield.beta = 2.0;
      o.hopfield.init_std = 0.3;
      o.regularized = excl;
      Generator gen(11);
      auto block = std::make_shared<EnergyTransformerBlock>(16, 4, 8, 64, o, &gen);
      DescentOptions d;
      d.steps = 30;
      d.step_size = 0.02;
      d.check_descent = true;
      auto descent = energy_transformer_descent(block, d);
      DescentTrace trace;
      const Tensor x0 = make({2, 7, 16}, 12, -2, 2, Dtype::f32);
      EXPECT_NO_THROW(descent->run(x0, &trace));
      ASSERT_EQ(trace.energies.size(), 31u);
      for (size_t t = 1; t < trace.energies.size(); ++t) {
        EXPECT_LE(trace.energies[t], trace.energies[t - 1] + 1e-5 * std::abs(trace.energies[t - 1]))
            << hopfield_kind_name(kind) << " exclude_self " << excl << " step " << t;
      }
      EXPECT_LT(trace.energies.back(), trace.energies.front());
    }
  }
}

TEST(EnergyTransformerBlock, TrainingThroughTheDynamicsMatchesFiniteDifferences) {
  // The gradient of a loss on x_T through T = 2 descent steps needs second derivatives of E (the
  // fused gradients' vjps): check it in x_0 by gradcheck, and in W_Q against a central
  // difference of the loss.
  EnergyTransformerOptions o;
  o.dtype = Dtype::f64;
  o.attention.init_std = 0.3;
  o.attention.learnable_beta = true;
  o.hopfield.kind = HopfieldKind::lse;
  o.hopfield.beta = 0.8;
  o.hopfield.init_std = 0.4;
  Generator gen(21);
  auto block = std::make_shared<EnergyTransformerBlock>(5, 2, 3, 7, o, &gen);
  DescentOptions d;
  d.steps = 2;
  d.step_size = 0.1;
  auto descent = energy_transformer_descent(block, d);
  const Tensor x0 = make({2, 3, 5}, 22, -1.5, 1.5);
  const Tensor target = make({2, 3, 5}, 23);
  basin::testing::expect_derivatives(
      [&](const Tensors& in) { return Tensors{descent->run(in[0])}; }, {x0}, false);

  auto loss = [&] { return sum(square(descent->run(x0) - target)); };
  block->zero_grad();
  loss().backward();
  for (const auto& [name, p] : descent->named_parameters()) {
    EXPECT_TRUE(p.grad().defined()) << name;
  }
  const Tensor direction = make(block->attention()->wq.shape(), 24);
  const double analytic = sum(block->attention()->wq.grad() * direction).item<double>();
  const Tensor w0 = block->attention()->wq.clone();
  const double h = 1e-6;
  block->attention()->wq.assign(w0 + direction * h);
  const double up = loss().item<double>();
  block->attention()->wq.assign(w0 - direction * h);
  const double down = loss().item<double>();
  block->attention()->wq.assign(w0);
  EXPECT_NEAR(analytic, (up - down) / (2 * h), 1e-6 * std::max(1.0, std::abs(analytic)));
}

TEST(EnergyTransformerBlock, ChildrenTotalEnergyAndRegistry) {
  Generator gen(2);
  EnergyTransformerBlock block(8, 2, 4, 32, {}, &gen);
  std::vector<std::string> names;
  for (const auto& [name, p] : block.named_parameters()) names.push_back(name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"norm.gamma", "norm.delta", "attn.wq", "attn.wk", "hn.xi"}));
  const Tensor x = make({3, 8}, 3, -1, 1, Dtype::f32);
  EXPECT_TRUE(all_close(block.total_energy(x),
                        block.norm()->energy(x) + block.energy(block.norm()->forward(x)), 1e-6,
                        1e-6));
  // A mask set on the attention applies to the block.
  block.attention()->set_mask(zeros({3, 3}, Dtype::boolean));
  const Tensor g = block.norm()->forward(x);
  EXPECT_TRUE(all_close(block.energy(g), block.hopfield()->energy(g), 1e-6, 1e-6));
  block.attention()->set_mask(Tensor());

  EnergyContext context{
      Config::parse(
          "type = \"energy_transformer\"\nheads = 3\nhead_dim = 4\nmemories = 20\n"
          "kind = \"lse\"\nhopfield_beta = 0.2\nexclude_self = true\nregularized = true\n"),
      6};
  auto layer = make_energy(context);
  auto* et = dynamic_cast<EnergyTransformerBlock*>(layer.get());
  ASSERT_NE(et, nullptr);
  EXPECT_EQ(et->attention()->heads(), 3);
  EXPECT_EQ(et->attention()->head_dim(), 4);
  EXPECT_TRUE(et->attention()->options().exclude_self);
  EXPECT_EQ(et->hopfield()->memories(), 20);
  EXPECT_EQ(et->hopfield()->kind(), HopfieldKind::lse);
  EXPECT_FLOAT_EQ(et->hopfield()->beta.item<float>(), 0.2f);
  EXPECT_TRUE(et->norm()->regularized());
  context.config.check_all_used();
  auto defaults = make_energy({Config::parse("type = \"energy_transformer\""), 16});
  auto* d = dynamic_cast<EnergyTransformerBlock*>(defaults.get());
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->attention()->heads(), 12);
  EXPECT_EQ(d->hopfield()->memories(), 64);
  EXPECT_EQ(d->hopfield()->kind(), HopfieldKind::relu2);

  EXPECT_TRUE(throws_error([] { energy_transformer_descent(nullptr); }, {"null"}));
}

}  // namespace
}  // namespace basin::energy
