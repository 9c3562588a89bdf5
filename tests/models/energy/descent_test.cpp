// EnergyModule defaults, SumEnergy, the energy registry and the Descent runner, on small energies
// whose gradients are known in closed form.
#include <gtest/gtest.h>

#include "basin/basin.h"
#include "models/energy/descent.h"
#include "models/energy/energy.h"
#include "tests/test_util.h"

namespace basin::energy {
namespace {

using testing::all_close;
using testing::make;

// E(g) = ½ Σ_b ‖g_b A‖² + c Σ g⁴: dE/dg = g A Aᵀ + 4c g³. `a` may be replaced by a gradcheck input.
class QuarticEnergy : public EnergyModule {
 public:
  QuarticEnergy(Tensor a, double c) : EnergyModule("QuarticEnergy"), c_(c) {
    a_ = register_parameter("a", a);
  }
  Tensor energy(const Tensor& g) override {
    Tensor ga = matmul(g, a_);
    return sum(mul(ga, ga)) * 0.5 + sum(square(square(g))) * c_;
  }
  Tensor closed_form(const Tensor& g) const {
    return matmul(matmul(g, a_), transpose(a_)) + pow(g, 3.0) * (4 * c_);
  }
  Tensor a_;

 private:
  double c_;
};

class TanhNorm : public nn::Module {
 public:
  TanhNorm() : nn::Module("TanhNorm") {}
  Tensor forward(const Tensor& x) override { return tanh(x); }
};

TEST(EnergyModule, DefaultGradientIsAutograd) {
  auto e = std::make_shared<QuarticEnergy>(make({3, 3}, 1), 0.1);
  const Tensor g = make({4, 3}, 2);
  EXPECT_TRUE(all_close(e->energy_grad(g), e->closed_form(g), 1e-12, 1e-12));
  auto [value, d] = e->energy_and_grad(g);
  EXPECT_TRUE(all_close(value, e->energy(g)));
  EXPECT_TRUE(all_close(d, e->closed_form(g), 1e-12, 1e-12));
}

TEST(EnergyModule, SumEnergyAddsTermsAndNamesThem) {
  auto e1 = std::make_shared<QuarticEnergy>(make({3, 3}, 1), 0.1);
  auto e2 = std::make_shared<QuarticEnergy>(make({3, 3}, 3), 0.0);
  SumEnergy s({e1, e2});
  const Tensor g = make({2, 3}, 4);
  EXPECT_TRUE(all_close(s.energy(g), add(e1->energy(g), e2->energy(g))));
  EXPECT_TRUE(all_close(s.energy_grad(g), add(e1->closed_form(g), e2->closed_form(g)), 1e-12));
  auto [v, d] = s.energy_and_grad(g);
  EXPECT_TRUE(all_close(v, s.energy(g)));
  EXPECT_TRUE(all_close(d, s.energy_grad(g)));
  const auto names = s.named_parameters();
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0].first, "terms_0.a");
  EXPECT_EQ(names[1].first, "terms_1.a");
  EXPECT_TRUE(testing::throws_error([] { SumEnergy({}); }, {"[SumEnergy]"}));
}

TEST(Descent, LowersTheEnergyAndRecordsEachStep) {
  auto e = std::make_shared<QuarticEnergy>(make({3, 3}, 1), 0.05);
  DescentOptions o;
  o.steps = 20;
  o.step_size = 0.05;
  o.check_descent = true;
  Descent d(e, std::make_shared<TanhNorm>(), o);
  DescentTrace trace;
  const Tensor x0 = make({5, 3}, 7, -2, 2);
  const Tensor x = d.run(x0, &trace);
  ASSERT_EQ(trace.energies.size(), 21u);
  ASSERT_EQ(trace.states.size(), 21u);
  EXPECT_EQ(trace.steps_taken, 20);
  EXPECT_FALSE(trace.converged);
  for (size_t t = 1; t < trace.energies.size(); ++t)
    EXPECT_LE(trace.energies[t], trace.energies[t - 1] + 1e-12) << t;
  EXPECT_LT(trace.energies.back(), 0.5 * trace.energies.front());
  EXPECT_TRUE(all_close(trace.states.front(), x0));
  EXPECT_TRUE(all_close(trace.states.back(), x));
  // One step by hand: x1 = x0 - α dE/dg(tanh x0).
  DescentOptions one = o;
  one.steps = 1;
  Descent d1(e, std::make_shared<TanhNorm>(), one);
  EXPECT_TRUE(all_close(d1.run(x0), sub(x0, e->closed_form(tanh(x0)) * 0.05), 1e-12));
}

TEST(Descent, CheckDescentCatchesARisingEnergy) {
  // E = ½‖g A‖² with ‖A‖ large: α beyond 2/λ_max overshoots and the energy grows.
  auto e = std::make_shared<QuarticEnergy>(eye(3, -1, Dtype::f64) * 3.0, 0.0);
  DescentOptions o;
  o.steps = 5;
  o.step_size = 0.5;  // 2/λ = 2/9
  o.check_descent = true;
  Descent d(e, nullptr, o);
  EXPECT_TRUE(testing::throws_error([&] { d.run(make({2, 3}, 1)); }, {"the energy rose"}));
}

TEST(Descent, ToleranceStopsEarly) {
  auto e = std::make_shared<QuarticEnergy>(eye(3, -1, Dtype::f64), 0.0);
  DescentOptions o;
  o.steps = 500;
  o.step_size = 0.5;
  o.tolerance = 1e-6;
  Descent d(e, nullptr, o);
  DescentTrace trace;
  const Tensor x = d.run(make({2, 3}, 1), &trace);
  EXPECT_TRUE(trace.converged);
  EXPECT_LT(trace.steps_taken, 40);  // x halves each step
  EXPECT_LT(max(abs(x)).item<double>(), 1e-5);
}

TEST(Descent, LangevinNoiseFollowsItsGenerator) {
  auto e = std::make_shared<QuarticEnergy>(eye(3, -1, Dtype::f64), 0.0);
  DescentOptions o;
  o.steps = 4;
  o.temperature = 0.5;
  Generator g1(3), g2(3), g3(4);
  const Tensor x0 = make({2, 3}, 1);
  const Tensor a = Descent(e, nullptr, o, &g1).run(x0);
  const Tensor b = Descent(e, nullptr, o, &g2).run(x0);
  const Tensor c = Descent(e, nullptr, o, &g3).run(x0);
  EXPECT_TRUE(all_close(a, b, 0, 0));
  EXPECT_FALSE(all_close(a, c, 1e-6, 1e-6));
  o.temperature = 0;
  EXPECT_TRUE(all_close(Descent(e, nullptr, o).run(x0), Descent(e, nullptr, o).run(x0), 0, 0));
}

// Training differentiates through all T steps: second derivatives of E, checked against finite
// differences in f64 for the state, the energy's parameter and a learnable step size.
TEST(Descent, GradientThroughTheStepsMatchesFiniteDifferences) {
  auto e = std::make_shared<QuarticEnergy>(make({3, 3}, 1), 0.05);
  DescentOptions o;
  o.steps = 3;
  o.step_size = 0.2;
  // The update rule with α as an input: x ← x − α dE/dg(tanh x), in x, A and α.
  auto f = [&](const Tensors& in) -> Tensors {
    e->a_ = in[1];
    Tensor x = in[0];
    for (int t = 0; t < o.steps; ++t) x = sub(x, mul(in[2], e->energy_grad(tanh(x))));
    return {sum(square(x))};
  };
  const Tensors inputs = {make({2, 3}, 5), make({3, 3}, 6), scalar(0.2, Dtype::f64)};
  EXPECT_TRUE(gradcheck(f, inputs));
  // The runner itself, in x and A.
  DescentOptions fixed = o;
  fixed.learnable_step = false;
  auto g = [&](const Tensors& in) -> Tensors {
    e->a_ = in[1];
    return {sum(square(Descent(e, std::make_shared<TanhNorm>(), fixed).run(in[0])))};
  };
  EXPECT_TRUE(gradcheck(g, {inputs[0], inputs[1]}));
}

TEST(Descent, LearnableStepSizeIsAParameterThatGetsAGradient) {
  auto e = std::make_shared<QuarticEnergy>(make({3, 3}, 1, -1, 1, Dtype::f32), 0.05);
  DescentOptions o;
  o.steps = 3;
  o.learnable_step = true;
  Descent d(e, nullptr, o);
  const auto names = d.named_parameters();
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0].first, "step_size");
  EXPECT_EQ(names[1].first, "energy.a");
  sum(square(d.run(make({2, 3}, 5, -1, 1, Dtype::f32)))).backward();
  ASSERT_TRUE(d.step_size().grad().defined());
  EXPECT_NE(d.step_size().grad().item<double>(), 0.0);
  ASSERT_TRUE(e->a_.grad().defined());
}

TEST(Descent, RejectsBadOptions) {
  auto e = std::make_shared<QuarticEnergy>(eye(3, -1, Dtype::f64), 0.0);
  DescentOptions o;
  o.step_size = 0;
  EXPECT_TRUE(testing::throws_error([&] { Descent(e, nullptr, o); }, {"step_size"}));
  o = {};
  o.steps = -1;
  EXPECT_TRUE(testing::throws_error([&] { Descent(e, nullptr, o); }, {"steps"}));
  EXPECT_TRUE(testing::throws_error([&] { Descent(nullptr); }, {"null"}));
}

TEST(EnergyRegistry, BuildsRegisteredLayersFromConfig) {
  static bool registered = [] {
    register_energy("test_quartic", "a quartic test energy", [](const EnergyContext& ctx) {
      Config c = ctx.config;
      return std::make_shared<QuarticEnergy>(eye(ctx.dim, -1, Dtype::f64), c.get<double>("c", 0.1));
    });
    return true;
  }();
  ASSERT_TRUE(registered);
  Config config = Config::parse("type = \"test_quartic\"\nc = 0.5\n");
  auto layer = make_energy(EnergyContext{config, 4});
  EXPECT_EQ(layer->type_name(), "QuarticEnergy");
  config.check_all_used();
  EXPECT_TRUE(testing::throws_error(
      [] {
        make_energy(EnergyContext{Config::parse("type = \"nope\""), 4});
      },
      {"unknown energy layer 'nope'"}));
  EXPECT_TRUE(testing::throws_error(
      [] { register_energy("test_quartic", "", [](const EnergyContext&) { return nullptr; }); },
      {"already registered"}));
  bool listed = false;
  for (const auto& [name, description] : registered_energies()) listed |= name == "test_quartic";
  EXPECT_TRUE(listed);
}

}  // namespace
}  // namespace basin::energy
