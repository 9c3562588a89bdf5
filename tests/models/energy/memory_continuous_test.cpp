// The continuous associative memories: the modern Hopfield network (one-step retrieval, energy
// bounds, the autograd gradient ξ − X softmax(βXᵀξ), descent) and the random-feature DrDAM
// (kernel approximation improving with the number of features, memories added by summation,
// descent close to the exact dynamics), with finite-difference checks and registry builds.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "basin/basin.h"
#include "models/energy/descent.h"
#include "models/energy/drdam.h"
#include "models/energy/modern.h"
#include "tests/test_util.h"

namespace basin::energy {
namespace {

using basin::testing::all_close;
using basin::testing::make;
using basin::testing::throws_error;

Tensor gaussian(const Shape& shape, uint64_t seed, double std = 1.0) {
  Generator gen(seed);
  return normal(shape, 0.0, std, Dtype::f64, Device::cpu(), &gen);
}

Tensor row(const Tensor& x, int64_t r) { return reshape(slice(x, 0, r, r + 1), {x.shape(1)}); }

// --- modern Hopfield -----------------------------------------------------------------------------

TEST(MemoryModern, EnergyFormula) {
  const Tensor x = gaussian({5, 4}, 1);
  ModernHopfield net(x, 0.8);
  const Tensor xi = gaussian({3, 4}, 2);
  const auto xv = x.to_vector<double>();
  const auto sv = xi.to_vector<double>();
  double m2 = 0;
  for (int64_t i = 0; i < 5; ++i) {
    double n2 = 0;
    for (int64_t k = 0; k < 4; ++k) n2 += xv[i * 4 + k] * xv[i * 4 + k];
    m2 = std::max(m2, n2);
  }
  const auto e = net.energies(xi).to_vector<double>();
  ASSERT_EQ(e.size(), 3u);
  double total = 0;
  for (int64_t b = 0; b < 3; ++b) {
    double z = 0, half_norm = 0;
    for (int64_t i = 0; i < 5; ++i) {
      double dot = 0;
      for (int64_t k = 0; k < 4; ++k) dot += xv[i * 4 + k] * sv[b * 4 + k];
      z += std::exp(0.8 * dot);
    }
    for (int64_t k = 0; k < 4; ++k) half_norm += 0.5 * sv[b * 4 + k] * sv[b * 4 + k];
    const double want = -std::log(z) / 0.8 + half_norm + std::log(5.0) / 0.8 + 0.5 * m2;
    EXPECT_NEAR(e[b], want, 1e-12) << b;
    total += want;
  }
  EXPECT_NEAR(net.energy(xi).item<double>(), total, 1e-11);
  EXPECT_EQ(net.energies(row(xi, 0)).ndim(), 0);
}

TEST(MemoryModern, OneUpdateRetrievesWellSeparatedPatterns) {
  // 16 random patterns in 64 dimensions, |x| ≈ 8: separations Δ ≈ 64, so with β = 1 a cue within
  // a distance of 2 is mapped onto its pattern in one update (Ramsauer et al. Theorem 4).
  const Tensor x = gaussian({16, 64}, 3);
  ModernHopfield net(x, 1.0);
  const Tensor cues = x + gaussian({16, 64}, 4, 0.2);
  EXPECT_TRUE(all_close(net.update(cues), x, 0, 1e-9));
  const RetrievalResult r = net.retrieve(cues, 10, 1e-9);
  EXPECT_EQ(r.status, RetrievalStatus::fixed_point);
  EXPECT_EQ(r.sweeps, 2);  // one update to the pattern, one to see that it stays
  EXPECT_TRUE(all_close(r.state, x, 0, 1e-9));
  // The attention is one-hot on the cue's own pattern.
  const auto p = net.attention(cues).to_vector<double>();
  for (int64_t i = 0; i < 16; ++i) EXPECT_GT(p[i * 16 + i], 1 - 1e-9);
}

TEST(MemoryModern, EnergyIsBetweenZeroAndTwoMSquared) {
  const Tensor x = gaussian({12, 8}, 5);
  const double m = max(norm(x, 2.0, {1})).item<double>();
  for (double beta : {0.05, 1.0, 20.0}) {
    ModernHopfield net(x, beta);
    // States in the ball of radius M: random ones, stored patterns, and updates (in the hull).
    Tensor xi = gaussian({50, 8}, 6);
    xi = xi / norm(xi, 2.0, {-1}, true) * make({50, 1}, 7, 0.0, m);
    for (const Tensor& s : {xi, x, net.update(xi), net.update(net.update(xi))}) {
      for (double e : net.energies(s).to_vector<double>()) {
        EXPECT_GE(e, -1e-12) << beta;
        EXPECT_LE(e, 2 * m * m + 1e-12) << beta;
      }
    }
  }
}

TEST(MemoryModern, AutogradGradientIsStateMinusRetrieval) {
  const Tensor x = gaussian({7, 5}, 8);
  ModernHopfield net(x, 1.7);
  const Tensor xi = gaussian({4, 5}, 9);
  const Tensor want = xi - matmul(softmax(matmul(xi, transpose(x)) * 1.7, -1), x);
  EXPECT_TRUE(all_close(net.energy_grad(xi), want, 1e-12, 1e-12));
  auto [e, d] = net.energy_and_grad(xi);
  EXPECT_TRUE(all_close(e, net.energy(xi)));
  EXPECT_TRUE(all_close(d, want, 1e-12, 1e-12));
  EXPECT_TRUE(all_close(xi - net.energy_grad(xi), net.update(xi), 1e-12, 1e-12));
}

TEST(MemoryModern, DescentLowersTheEnergyAndUnitStepIsTheUpdate) {
  const Tensor x = gaussian({10, 6}, 10);
  auto net = std::make_shared<ModernHopfield>(x, 2.0);
  DescentOptions o;
  o.steps = 40;
  o.step_size = 0.1;
  o.check_descent = true;
  Descent descent(net, nullptr, o);
  DescentTrace trace;
  const Tensor xi = gaussian({5, 6}, 11, 2.0);
  descent.run(xi, &trace);
  ASSERT_EQ(trace.energies.size(), 41u);
  for (size_t t = 1; t < trace.energies.size(); ++t)
    EXPECT_LE(trace.energies[t], trace.energies[t - 1] + 1e-12) << t;
  EXPECT_LT(trace.energies.back(), trace.energies.front());
  // α = 1: x − dE/dx = X softmax(βXᵀx), the CCCP update, whose energy never rises either.
  DescentOptions unit;
  unit.steps = 1;
  unit.step_size = 1.0;
  EXPECT_TRUE(all_close(Descent(net, nullptr, unit).run(xi), net->update(xi), 1e-12, 1e-12));
  Tensor s = xi;
  double e = net->energy(s).item<double>();
  for (int t = 0; t < 10; ++t) {
    s = net->update(s);
    const double next = net->energy(s).item<double>();
    EXPECT_LE(next, e + 1e-12) << t;
    e = next;
  }
}

TEST(MemoryModern, DerivativesMatchFiniteDifferences) {
  const Tensor x = gaussian({6, 4}, 12);
  const Tensor xi = gaussian({3, 4}, 13);
  // In the state and in the patterns, to second order.
  ModernHopfield net(x, 1.3);
  auto f = [&](const Tensors& in) -> Tensors {
    net.patterns = in[1];
    return {net.energy(in[0]), net.update(in[0])};
  };
  basin::testing::expect_derivatives(f, {xi, x});
  ModernHopfield learnable(x, 1.3, true);
  const auto names = learnable.named_parameters();
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(names[0].first, "patterns");
  learnable.energy(xi).backward();
  EXPECT_TRUE(learnable.patterns.grad().defined());
  EXPECT_TRUE(ModernHopfield(x, 1.0).named_parameters().empty());
}

TEST(MemoryModern, RetrievalStopsSampleBySample) {
  const Tensor x = gaussian({8, 16}, 14);
  ModernHopfield net(x, 0.3);
  const Tensor cues = concat({slice(x, 0, 0, 1), gaussian({2, 16}, 15, 0.3)}, 0);  // (3, 16)
  const RetrievalResult all = net.retrieve(cues, 500, 1e-9);
  EXPECT_EQ(all.status, RetrievalStatus::fixed_point);
  ASSERT_EQ(all.sample_sweeps.size(), 3u);
  int most = 0;
  for (int64_t r = 0; r < 3; ++r) {
    const RetrievalResult one = net.retrieve(row(cues, r), 500, 1e-9);
    EXPECT_EQ(one.state.shape(), (Shape{16}));
    EXPECT_EQ(one.sweeps, all.sample_sweeps[r]);
    // A single row may take another GEMM kernel than the batch: equal to rounding.
    EXPECT_TRUE(all_close(one.state, row(all.state, r), 1e-13, 1e-13)) << r;
    EXPECT_EQ(all.statuses[r], RetrievalStatus::fixed_point);
    most = std::max(most, one.sweeps);
  }
  EXPECT_EQ(all.sweeps, most);
  const RetrievalResult cut = net.retrieve(cues, 1, 1e-9);
  EXPECT_EQ(cut.status, RetrievalStatus::max_steps);
  EXPECT_EQ(cut.sweeps, 1);
  EXPECT_TRUE(all_close(cut.state, net.update(cues), 0, 0));
}

TEST(MemoryModern, RegistryBuildsFromConfig) {
  Config config = Config::parse(
      "type = \"modern_hopfield\"\nn_memories = 5\nbeta = 0.5\nseed = 3\nlearnable = true\n");
  auto layer = make_energy(EnergyContext{config, 4});
  config.check_all_used();
  auto* net = dynamic_cast<ModernHopfield*>(layer.get());
  ASSERT_NE(net, nullptr);
  EXPECT_EQ(net->n_patterns(), 5);
  EXPECT_EQ(net->dim(), 4);
  EXPECT_EQ(net->beta(), 0.5);
  EXPECT_EQ(net->named_parameters().size(), 1u);
  // Defaults: β = 1/√dim, learnable; the same seed gives the same patterns.
  Config defaults = Config::parse("type = \"modern_hopfield\"\nseed = 3\nn_memories = 5\n");
  auto other = std::dynamic_pointer_cast<ModernHopfield>(make_energy(EnergyContext{defaults, 4}));
  EXPECT_EQ(other->beta(), 0.5);
  EXPECT_TRUE(all_close(other->patterns, net->patterns, 0, 0));
  EXPECT_TRUE(throws_error(
      [] {
        make_energy(EnergyContext{Config::parse("type = \"modern_hopfield\"\nn_memories = 0"), 4});
      },
      {"n_memories must be positive"}));
}

TEST(MemoryModern, RejectsBadArguments) {
  const Tensor x = gaussian({3, 4}, 16);
  EXPECT_TRUE(throws_error([&] { ModernHopfield(x, 0.0); }, {"[ModernHopfield]", "beta"}));
  EXPECT_TRUE(throws_error([&] { ModernHopfield(x, NAN); }, {"beta"}));
  EXPECT_TRUE(throws_error([] { ModernHopfield(ones({4}), 1.0); }, {"(N, d)", "(4,)"}));
  EXPECT_TRUE(throws_error([] { ModernHopfield(ones({2, 2}, Dtype::i64), 1.0); }, {"f32 or f64"}));
  ModernHopfield net(x, 1.0);
  EXPECT_TRUE(throws_error([&] { net.energy(ones({2, 5})); }, {"(..., 4)", "(2, 5)"}));
  EXPECT_TRUE(throws_error([&] { net.update(ones({4}, Dtype::i32)); }, {"f32 or f64"}));
  EXPECT_TRUE(throws_error([&] { net.retrieve(ones({2, 2, 4})); }, {"(B, d)"}));
  EXPECT_TRUE(throws_error([&] { net.retrieve(ones({4}), -1); }, {"max_steps"}));
  EXPECT_TRUE(throws_error([&] { net.retrieve(ones({4}), 3, -1.0); }, {"tolerance"}));
}

// --- DrDAM
// -----------------------------------------------------------------------------------------

const std::vector<RandomFeatures> kFeatures = {RandomFeatures::trigonometric,
                                               RandomFeatures::positive};

TEST(MemoryDrDAM, FeatureProductsApproximateTheKernel) {
  const Tensor a = gaussian({6, 5}, 20, 0.4), b = gaussian({6, 5}, 21, 0.4);
  const double beta = 1.5;
  const Tensor exact = exp(sum(square(a - b), {-1}) * (-0.5 * beta));  // (6,)
  for (RandomFeatures kind : kFeatures) {
    DrDAM dam(5, {.n_features = 200000, .beta = beta, .features = kind, .seed = 1}, Dtype::f64);
    EXPECT_EQ(dam.feature_dim(), kind == RandomFeatures::trigonometric ? 400000 : 200000);
    const Tensor approx = sum(dam.features(a) * dam.features(b), {-1});
    EXPECT_TRUE(all_close(approx, exact, 0, 0.02)) << to_string(kind);
  }
}

// Mean absolute errors of the DrDAM energy and of its gradient (relative to the gradient's
// norm) against the exact energy, at states near the memories, averaged over feature seeds. The
// memories are small (β‖ξ‖² ≈ 0.7): the positive features' variance grows as exp(4β ξᵀv).
std::pair<double, double> drdam_errors(RandomFeatures kind, int64_t features) {
  const double beta = 1.0;
  const Tensor memories = gaussian({20, 8}, 30, 0.3);
  const Tensor states = slice(memories, 0, 0, 10) + gaussian({10, 8}, 31, 0.15);
  const Tensor exact = mrdam_energy(states, memories, beta);
  const Tensor exact_grad =
      grad([&](const Tensor& v) { return sum(mrdam_energy(v, memories, beta)); })(states);
  double e_err = 0, g_err = 0;
  const int seeds = 4;
  for (int seed = 0; seed < seeds; ++seed) {
    DrDAM dam(8,
              {.n_features = features,
               .beta = beta,
               .features = kind,
               .seed = static_cast<uint64_t>(seed)},
              Dtype::f64);
    dam.add(memories);
    e_err += mean(abs(dam.energies(states) - exact)).item<double>() / seeds;
    const Tensor g = dam.energy_grad(states);
    g_err +=
        mean(norm(g - exact_grad, 2.0, {-1}) / norm(exact_grad, 2.0, {-1})).item<double>() / seeds;
  }
  return {e_err, g_err};
}

TEST(MemoryDrDAM, ApproximationErrorShrinksAsFeaturesGrow) {
  // The error falls as 1/√Y: about 4× per 16× more features.
  for (RandomFeatures kind : kFeatures) {
    double last_e = INFINITY, last_g = INFINITY;
    for (int64_t y : {64, 1024, 16384}) {
      const auto [e, g] = drdam_errors(kind, y);
      EXPECT_LT(e, 0.6 * last_e) << to_string(kind) << " Y=" << y;
      EXPECT_LT(g, 0.6 * last_g) << to_string(kind) << " Y=" << y;
      last_e = e;
      last_g = g;
    }
    EXPECT_LT(last_e, 0.02) << to_string(kind);
    EXPECT_LT(last_g, 0.1) << to_string(kind);
  }
}

TEST(MemoryDrDAM, AddingMemoriesIsASum) {
  const Tensor memories = gaussian({5, 3}, 40);
  for (RandomFeatures kind : kFeatures) {
    DrDAMOptions o{.n_features = 16, .beta = 0.7, .features = kind, .seed = 2};
    DrDAM all(3, o, Dtype::f64), one_by_one(3, o, Dtype::f64);
    EXPECT_EQ(all.n_memories(), 0);
    all.add(memories);
    for (int64_t k = 0; k < 5; ++k) one_by_one.add(row(memories, k));
    EXPECT_EQ(all.n_memories(), 5);
    EXPECT_EQ(one_by_one.n_memories(), 5);
    EXPECT_EQ(all.memory.shape(), one_by_one.memory.shape());
    EXPECT_TRUE(all_close(all.memory, one_by_one.memory, 1e-12, 1e-14));
    EXPECT_TRUE(all_close(all.memory, sum(all.features(memories), {0}), 1e-12, 1e-14));
    const auto names = all.named_buffers();
    ASSERT_EQ(names.size(), 3u);
    EXPECT_EQ(names[0].first, "omega");
    EXPECT_EQ(names[1].first, "memory");
    EXPECT_EQ(names[2].first, "n_memories");
    EXPECT_TRUE(all.named_parameters().empty());
  }
  // Same seed, same directions; another seed, others.
  EXPECT_TRUE(all_close(DrDAM(3, {.seed = 5}).omega, DrDAM(3, {.seed = 5}).omega, 0, 0));
  EXPECT_FALSE(all_close(DrDAM(3, {.seed = 5}).omega, DrDAM(3, {.seed = 6}).omega));
}

TEST(MemoryDrDAM, DescentFollowsTheExactDynamics) {
  // The exact energy as a layer, for the same runner.
  class Exact : public EnergyModule {
   public:
    Exact(Tensor m, double b) : EnergyModule("Exact"), m_(std::move(m)), b_(b) {}
    Tensor energy(const Tensor& v) override { return sum(mrdam_energy(v, m_, b_)); }
    Tensor m_;
    double b_;
  };
  struct Case {
    RandomFeatures kind;
    double beta, scale;  // positive features need β‖ξ‖² small (see drdam_errors) ...
    bool separated;      // ... where the memories' basins merge
  };
  for (const Case& c : {Case{RandomFeatures::trigonometric, 3.0, 0.6, true},
                        Case{RandomFeatures::positive, 1.0, 0.3, false}}) {
    const Tensor memories = gaussian({6, 8}, 50, c.scale);
    const Tensor own = slice(memories, 0, 0, 4);
    const Tensor cues = own + gaussian({4, 8}, 51, c.scale / 3);
    DescentOptions o;
    o.steps = 40;
    o.step_size = 0.05;
    o.check_descent = true;
    const Tensor exact = Descent(std::make_shared<Exact>(memories, c.beta), nullptr, o).run(cues);
    auto dam = std::make_shared<DrDAM>(
        8, DrDAMOptions{.n_features = 4096, .beta = c.beta, .features = c.kind, .seed = 3},
        Dtype::f64);
    dam->add(memories);
    DescentTrace trace;
    const Tensor approx = Descent(dam, nullptr, o).run(cues, &trace);
    EXPECT_LT(trace.energies.back(), trace.energies.front()) << to_string(c.kind);
    // The exact descent moves towards the cue's own memory where basins are separate; the
    // approximate one stays close to the exact one.
    auto dist = [](const Tensor& a, const Tensor& b) {
      return max(norm(a - b, 2.0, {-1})).item<double>();
    };
    if (c.separated) {
      EXPECT_LT(dist(exact, own), 0.5 * dist(cues, own));
    }
    EXPECT_LT(dist(approx, exact), 0.2 * dist(exact, cues))
        << to_string(c.kind) << " gap " << dist(approx, exact) << " moved " << dist(exact, cues);
  }
}

TEST(MemoryDrDAM, DerivativesMatchFiniteDifferences) {
  const Tensor memories = gaussian({4, 3}, 60, 0.5);
  const Tensor v = gaussian({2, 3}, 61, 0.5);
  for (RandomFeatures kind : kFeatures) {
    DrDAM dam(3, {.n_features = 32, .beta = 1.2, .features = kind, .seed = 4}, Dtype::f64);
    dam.add(memories);
    auto f = [&](const Tensors& in) -> Tensors { return {dam.energy(in[0])}; };
    basin::testing::expect_derivatives(f, {v});
  }
  auto exact = [](const Tensors& in) -> Tensors { return {mrdam_energy(in[0], in[1], 1.2)}; };
  basin::testing::expect_derivatives(exact, {v, memories});
}

TEST(MemoryDrDAM, RegistryBuildsFromConfig) {
  Config config = Config::parse(
      "type = \"drdam\"\nn_features = 12\nbeta = 2.0\nfeatures = \"positive\"\nseed = 7\n"
      "eps = 1e-8\n");
  auto layer = std::dynamic_pointer_cast<DrDAM>(make_energy(EnergyContext{config, 5}));
  config.check_all_used();
  ASSERT_NE(layer, nullptr);
  EXPECT_EQ(layer->dim(), 5);
  EXPECT_EQ(layer->feature_dim(), 12);
  EXPECT_EQ(layer->options().beta, 2.0);
  EXPECT_EQ(layer->options().features, RandomFeatures::positive);
  EXPECT_EQ(layer->options().seed, 7u);
  EXPECT_TRUE(throws_error(
      [] {
        make_energy(EnergyContext{Config::parse("type = \"drdam\"\nfeatures = \"cosine\""), 5});
      },
      {"features", "'cosine'", "trigonometric"}));
  // An empty memory has a flat (clipped) energy.
  DrDAM empty(5);
  EXPECT_TRUE(all_close(empty.energy_grad(ones({2, 5})), zeros({2, 5})));
}

TEST(MemoryDrDAM, RejectsBadArguments) {
  EXPECT_TRUE(throws_error([] { DrDAM(0); }, {"[DrDAM]", "dim"}));
  EXPECT_TRUE(throws_error([] { DrDAM(3, {.n_features = 0}); }, {"n_features"}));
  EXPECT_TRUE(throws_error([] { DrDAM(3, {.beta = -1}); }, {"beta"}));
  EXPECT_TRUE(throws_error([] { DrDAM(3, {.eps = 0}); }, {"eps"}));
  EXPECT_TRUE(throws_error([] { DrDAM(3, {}, Dtype::i32); }, {"f32 or f64"}));
  EXPECT_TRUE(
      throws_error([] { random_features_from_string("rff"); }, {"unknown random features"}));
  DrDAM dam(3);
  EXPECT_TRUE(throws_error([&] { dam.add(ones({2, 4})); }, {"patterns", "(..., 3)", "(2, 4)"}));
  EXPECT_TRUE(throws_error([&] { dam.add(ones({1, 2, 3})); }, {"(K, D)"}));
  EXPECT_TRUE(throws_error([&] { dam.energy(ones({4})); }, {"states", "(4,)"}));
  EXPECT_TRUE(throws_error([] { mrdam_energy(ones({3}), ones({2, 4}), 1.0); }, {"[mrdam_energy]"}));
  EXPECT_TRUE(throws_error([] { mrdam_energy(ones({4}), ones({2, 4}), 0.0); }, {"beta"}));
}

}  // namespace
}  // namespace basin::energy
