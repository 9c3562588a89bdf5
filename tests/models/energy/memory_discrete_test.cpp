// The discrete associative memories: the classical Hopfield network and Dense Associative
// Memory. Hebbian storage and retrieval, energy descent under asynchronous updates, fixed points
// and 2-cycles of synchronous updates, capacity beyond the classical network's, bad arguments.
#include <gtest/gtest.h>

#include <vector>

#include "basin/basin.h"
#include "models/energy/classical.h"
#include "models/energy/dense.h"
#include "tests/test_util.h"

namespace basin::energy {
namespace {

using basin::testing::all_close;
using basin::testing::throws_error;

// P random patterns of N bipolar (±1) values, f32.
Tensor random_bipolar(int64_t p, int64_t n, uint64_t seed) {
  Generator gen(seed);
  return where(bernoulli({p, n}, 0.5, Device::cpu(), &gen), ones({p, n}), -1.0);
}

// `patterns` (B, N) with `flips` distinct random bits of each row negated.
Tensor flip_bits(const Tensor& patterns, int64_t flips, uint64_t seed) {
  Generator gen(seed);
  const int64_t rows = patterns.shape(0), n = patterns.shape(1);
  std::vector<double> v = patterns.to_vector<double>();
  for (int64_t r = 0; r < rows; ++r) {
    const auto order = randperm(n, Device::cpu(), &gen).to_vector<int64_t>();
    for (int64_t k = 0; k < flips; ++k) v[r * n + order[k]] *= -1.0;
  }
  return from_vector(v, patterns.shape()).astype(patterns.dtype());
}

// The fraction of entries where a and b differ.
double bit_error(const Tensor& a, const Tensor& b) {
  return mean(not_equal(a, b).astype(Dtype::f64)).item<double>();
}

// The state with neuron i negated.
Tensor flipped(const Tensor& state, int64_t i) {
  auto v = state.to_vector<double>();
  v[i] = -v[i];
  return from_vector(v, state.shape()).astype(state.dtype());
}

const std::vector<UpdateRule> kAllRules = {UpdateRule::synchronous, UpdateRule::sequential,
                                           UpdateRule::random};

// --- classical -----------------------------------------------------------------------------------

TEST(MemoryClassical, HebbianWeights) {
  const Tensor x = random_bipolar(3, 8, 1);
  const auto xv = x.to_vector<double>();
  auto hebb = [&](int64_t i, int64_t j) {
    double s = 0;
    for (int64_t mu = 0; mu < 3; ++mu) s += xv[mu * 8 + i] * xv[mu * 8 + j];
    return s;
  };
  ClassicalHopfield net(x);
  ClassicalHopfield raw(x, {.zero_diagonal = false, .scale_by_n = false});
  const auto w = net.weight.to_vector<double>();
  const auto wr = raw.weight.to_vector<double>();
  for (int64_t i = 0; i < 8; ++i) {
    for (int64_t j = 0; j < 8; ++j) {
      EXPECT_FLOAT_EQ(w[i * 8 + j], i == j ? 0.0 : hebb(i, j) / 8) << i << "," << j;
      EXPECT_FLOAT_EQ(wr[i * 8 + j], hebb(i, j)) << i << "," << j;
    }
  }
  EXPECT_EQ(net.weight.dtype(), Dtype::f32);
  EXPECT_EQ(ClassicalHopfield(x.astype(Dtype::f64)).weight.dtype(), Dtype::f64);
  EXPECT_TRUE(all_close(net.bias, zeros({8})));
  const auto names = net.named_buffers();
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0].first, "weight");
  EXPECT_EQ(names[1].first, "bias");
  EXPECT_TRUE(net.named_parameters().empty());
}

TEST(MemoryClassical, EnergyFormula) {
  const Tensor x = random_bipolar(4, 10, 2);
  const Tensor b = basin::testing::make({10}, 3, -0.5, 0.5, Dtype::f32);
  ClassicalHopfield net(x, {}, b);
  const Tensor s = random_bipolar(5, 10, 4);
  const auto w = net.weight.to_vector<double>();
  const auto bv = b.to_vector<double>();
  const auto sv = s.to_vector<double>();
  const Tensor e = net.energy(s);
  ASSERT_EQ(e.shape(), (Shape{5}));
  for (int64_t r = 0; r < 5; ++r) {
    double want = 0;
    for (int64_t i = 0; i < 10; ++i) {
      for (int64_t j = 0; j < 10; ++j)
        want -= 0.5 * sv[r * 10 + i] * w[i * 10 + j] * sv[r * 10 + j];
      want += sv[r * 10 + i] * bv[i];
    }
    EXPECT_NEAR(e.to_vector<double>()[r], want, 1e-5) << r;
  }
  // A single state gives a 0-d energy.
  EXPECT_EQ(net.energy(reshape(slice(s, 0, 0, 1), {10})).ndim(), 0);
}

TEST(MemoryClassical, RetrievesStoredPatternsAndCorruptedCues) {
  const Tensor x = random_bipolar(3, 64, 5);
  ClassicalHopfield net(x);
  for (UpdateRule rule : kAllRules) {
    Generator gen(6);
    // Each stored pattern is a fixed point: one sweep that changes nothing.
    RetrievalResult stored = net.retrieve(x, 10, rule, &gen);
    EXPECT_EQ(stored.status, RetrievalStatus::fixed_point);
    EXPECT_EQ(stored.sweeps, 1);
    EXPECT_TRUE(all_close(stored.state, x));
    // 8 of 64 bits flipped: back to the pattern.
    RetrievalResult cued = net.retrieve(flip_bits(x, 8, 7), 20, rule, &gen);
    EXPECT_EQ(cued.status, RetrievalStatus::fixed_point) << static_cast<int>(rule);
    EXPECT_TRUE(all_close(cued.state, x)) << static_cast<int>(rule);
    ASSERT_EQ(cued.statuses.size(), 3u);
    ASSERT_EQ(cued.sample_sweeps.size(), 3u);
    for (int s : cued.sample_sweeps) EXPECT_GE(s, 2);
  }
  // A single cue keeps its shape and dtype.
  const Tensor one = reshape(slice(flip_bits(x, 5, 8), 0, 0, 1), {64}).astype(Dtype::i32);
  const Tensor got = net.retrieve(one).state;
  EXPECT_EQ(got.shape(), (Shape{64}));
  EXPECT_EQ(got.dtype(), Dtype::i32);
  EXPECT_TRUE(all_close(got, reshape(slice(x, 0, 0, 1), {64})));
  EXPECT_TRUE(all_close(net.forward(one), got));
}

TEST(MemoryClassical, AsynchronousUpdatesNeverRaiseTheEnergy) {
  // Overloaded (P/N = 0.4), with a bias: spurious minima, long descents.
  const Tensor x = random_bipolar(16, 40, 9);
  ClassicalHopfield net(x, {}, basin::testing::make({40}, 10, -0.3, 0.3, Dtype::f32));
  for (UpdateRule rule : {UpdateRule::sequential, UpdateRule::random}) {
    Generator gen(11);
    Tensor s = random_bipolar(12, 40, 12);
    std::vector<double> e = net.energy(s).to_vector<double>();
    bool changed = false;
    for (int sweep = 0; sweep < 30; ++sweep) {
      const Tensor next = net.sweep(s, rule, &gen);
      const std::vector<double> e_next = net.energy(next).to_vector<double>();
      for (size_t r = 0; r < e.size(); ++r) EXPECT_LE(e_next[r], e[r] + 1e-5) << sweep << " " << r;
      changed |= bit_error(next, s) > 0;
      s = next;
      e = e_next;
    }
    EXPECT_TRUE(changed);
    // Every sample ended at a fixed point: a further sweep changes nothing.
    EXPECT_TRUE(all_close(net.sweep(s, rule, &gen), s));
    const RetrievalResult r = net.retrieve(s, 5, rule, &gen);
    EXPECT_EQ(r.status, RetrievalStatus::fixed_point);
  }
}

TEST(MemoryClassical, SynchronousTwoCycleIsDetected) {
  // One pattern (1, −1): W = [[0, −½], [−½, 0]]. From (1, 1) the synchronous update gives
  // (−1, −1), then (1, 1) again; the asynchronous one settles at (−1, 1).
  ClassicalHopfield net(tensor<float>({{1, -1}}));
  const Tensor cues = tensor<float>({{1, 1}, {1, -1}});
  RetrievalResult r = net.retrieve(cues, 10, UpdateRule::synchronous);
  EXPECT_EQ(r.status, RetrievalStatus::two_cycle);
  ASSERT_EQ(r.statuses.size(), 2u);
  EXPECT_EQ(r.statuses[0], RetrievalStatus::two_cycle);
  EXPECT_EQ(r.statuses[1], RetrievalStatus::fixed_point);
  EXPECT_EQ(r.sample_sweeps[0], 2);
  EXPECT_EQ(r.sample_sweeps[1], 1);
  EXPECT_EQ(r.sweeps, 2);
  EXPECT_TRUE(all_close(r.state, tensor<float>({{1, 1}, {1, -1}})));
  EXPECT_TRUE(all_close(net.update(cues), tensor<float>({{-1, -1}, {1, -1}})));
  EXPECT_EQ(to_string(r.status), "two_cycle");
  // A budget too small to see the cycle.
  EXPECT_EQ(net.retrieve(cues, 1, UpdateRule::synchronous).status, RetrievalStatus::max_steps);
  EXPECT_EQ(net.retrieve(cues, 0, UpdateRule::synchronous).sweeps, 0);
  // Asynchronous updates cannot cycle.
  RetrievalResult a = net.retrieve(cues, 10, UpdateRule::sequential);
  EXPECT_EQ(a.status, RetrievalStatus::fixed_point);
  EXPECT_TRUE(all_close(a.state, tensor<float>({{-1, 1}, {1, -1}})));
}

TEST(MemoryClassical, RandomOrderFollowsItsGenerator) {
  const Tensor x = random_bipolar(12, 30, 13);
  ClassicalHopfield net(x);
  const Tensor cues = random_bipolar(8, 30, 14);
  Generator a(1), b(1);
  EXPECT_TRUE(all_close(net.retrieve(cues, 50, UpdateRule::random, &a).state,
                        net.retrieve(cues, 50, UpdateRule::random, &b).state, 0, 0));
  EXPECT_EQ(a.offset(), b.offset());
  EXPECT_GT(a.offset(), 0u);
}

TEST(MemoryClassical, RejectsBadArguments) {
  const Tensor x = random_bipolar(3, 6, 15);
  EXPECT_TRUE(throws_error(
      [] {
        ClassicalHopfield(tensor<float>({{1, 0, -1}}));
      },
      {"[ClassicalHopfield]", "bipolar", "element 1 is 0"}));
  EXPECT_TRUE(throws_error([] { ClassicalHopfield(ones({2, 2, 2})); }, {"(P, N)", "(2, 2, 2)"}));
  EXPECT_TRUE(throws_error([] { ClassicalHopfield(ones({0, 4})); }, {"(P, N)"}));
  EXPECT_TRUE(throws_error([&] { ClassicalHopfield(x, {}, ones({5})); }, {"bias", "(6,)", "(5,)"}));
  ClassicalHopfield net(x);
  EXPECT_TRUE(throws_error([&] { net.retrieve(ones({2, 5})); }, {"(6,) or (B, 6)", "(2, 5)"}));
  EXPECT_TRUE(throws_error([&] { net.retrieve(ones({6}) * 0.5); }, {"states must be bipolar"}));
  EXPECT_TRUE(throws_error([&] { net.retrieve(ones({6}), -1); }, {"max_sweeps"}));
  EXPECT_TRUE(throws_error([&] { net.sweep(ones({6}), UpdateRule::synchronous); }, {"update()"}));
  EXPECT_TRUE(throws_error([&] { net.energy(ones({7})); }, {"[ClassicalHopfield]", "(7,)"}));
}

// --- Dense Associative Memory --------------------------------------------------------------------

struct DenseCase {
  Interaction interaction;
  int degree;
  double beta;
};

const std::vector<DenseCase> kDenseCases = {
    {Interaction::polynomial, 2, 1.0},           {Interaction::polynomial, 3, 1.0},
    {Interaction::polynomial, 4, 1.0},           {Interaction::rectified_polynomial, 3, 1.0},
    {Interaction::rectified_polynomial, 6, 1.0}, {Interaction::exponential, 2, 0.7},
    {Interaction::log_sum_exp, 2, 0.7},          {Interaction::log_sum_exp, 2, 3.0}};

std::string name(const DenseCase& c) {
  return to_string(c.interaction) + "/" + std::to_string(c.degree) + "/" + std::to_string(c.beta);
}

TEST(MemoryDense, EnergyFormula) {
  const Tensor x = random_bipolar(5, 9, 20);
  const Tensor s = random_bipolar(4, 9, 21);
  const auto m = matmul(s, transpose(x)).to_vector<double>();  // (4, 5) overlaps
  for (const DenseCase& c : kDenseCases) {
    DenseAssociativeMemory dam(x, {c.interaction, c.degree, c.beta});
    const auto e = dam.energy(s).to_vector<double>();
    for (int64_t r = 0; r < 4; ++r) {
      double want = 0, z = 0;
      for (int64_t mu = 0; mu < 5; ++mu) {
        const double o = m[r * 5 + mu];
        switch (c.interaction) {
          case Interaction::polynomial:
            want -= std::pow(o, c.degree);
            break;
          case Interaction::rectified_polynomial:
            want -= o > 0 ? std::pow(o, c.degree) / c.degree : 0.0;
            break;
          case Interaction::exponential:
            want -= std::exp(c.beta * o);
            break;
          case Interaction::log_sum_exp:
            z += std::exp(c.beta * o);
            break;
        }
      }
      if (c.interaction == Interaction::log_sum_exp) want = -std::log(z) / c.beta;
      EXPECT_NEAR(e[r], want, 1e-9 * std::max(1.0, std::abs(want))) << name(c) << " " << r;
    }
  }
}

TEST(MemoryDense, SynchronousUpdateFlipsExactlyTheNeuronsThatLowerTheEnergy) {
  const Tensor x = random_bipolar(7, 12, 22);
  const Tensor states = random_bipolar(6, 12, 23);
  for (const DenseCase& c : kDenseCases) {
    DenseAssociativeMemory dam(x, {c.interaction, c.degree, c.beta});
    const Tensor next = dam.update(states);
    for (int64_t r = 0; r < 6; ++r) {
      const Tensor s = reshape(slice(states, 0, r, r + 1), {12});
      const Tensor got = reshape(slice(next, 0, r, r + 1), {12});
      const double e = dam.energy(s).item<double>();
      for (int64_t i = 0; i < 12; ++i) {
        // Lower by more than rounding (1/n makes equal energies differ in the last bits).
        const bool lower = dam.energy(flipped(s, i)).item<double>() < e - 1e-9 * std::abs(e);
        EXPECT_EQ(got.to_vector<double>()[i] != s.to_vector<double>()[i], lower)
            << name(c) << " sample " << r << " neuron " << i;
      }
      // The first neuron of a sequential sweep sees the same state.
      const double first = dam.sweep(s).to_vector<double>()[0];
      EXPECT_EQ(first, got.to_vector<double>()[0]) << name(c);
    }
  }
}

TEST(MemoryDense, AsynchronousSweepsNeverRaiseTheEnergy) {
  const Tensor x = random_bipolar(24, 16, 24);  // overloaded for the low degrees
  for (const DenseCase& c : kDenseCases) {
    DenseAssociativeMemory dam(x, {c.interaction, c.degree, c.beta});
    for (UpdateRule rule : {UpdateRule::sequential, UpdateRule::random}) {
      Generator gen(25);
      Tensor s = random_bipolar(10, 16, 26);
      std::vector<double> e = dam.energy(s).to_vector<double>();
      for (int sweep = 0; sweep < 10; ++sweep) {
        const Tensor next = dam.sweep(s, rule, &gen);
        const std::vector<double> e_next = dam.energy(next).to_vector<double>();
        for (size_t r = 0; r < e.size(); ++r) {
          EXPECT_LE(e_next[r], e[r] + 1e-9 * std::abs(e[r])) << name(c) << " " << sweep;
        }
        s = next;
        e = e_next;
      }
      const RetrievalResult r = dam.retrieve(s, 5, rule, &gen);
      EXPECT_EQ(r.status, RetrievalStatus::fixed_point) << name(c);
      EXPECT_EQ(r.sweeps, 1) << name(c);
    }
  }
}

TEST(MemoryDense, DegreeTwoIsTheClassicalNetwork) {
  // E = −Σ_μ (ξ_μᵀσ)² = 2N·E_classical − P·N, and the same asynchronous dynamics.
  const Tensor x = random_bipolar(9, 20, 27);
  DenseAssociativeMemory dam(x, {Interaction::polynomial, 2, 1.0});
  ClassicalHopfield net(x);
  const Tensor cues = random_bipolar(10, 20, 28);
  EXPECT_TRUE(
      all_close(dam.energy(cues), net.energy(cues).astype(Dtype::f64) * 40.0 - 180.0, 1e-6, 1e-4));
  for (UpdateRule rule : kAllRules) {
    Generator g1(29), g2(29);
    const RetrievalResult a = dam.retrieve(cues, 50, rule, &g1);
    const RetrievalResult b = net.retrieve(cues, 50, rule, &g2);
    EXPECT_TRUE(all_close(a.state, b.state, 0, 0)) << static_cast<int>(rule);
    EXPECT_EQ(a.sweeps, b.sweeps);
    EXPECT_EQ(a.statuses, b.statuses);
  }
}

TEST(MemoryDense, RetrievesBeyondClassicalCapacity) {
  // N = 32, P = 10: P/N = 0.31, beyond the classical 0.14 N; cues with 3 of 32 bits flipped.
  const Tensor x = random_bipolar(10, 32, 30);
  const Tensor cues = flip_bits(x, 3, 31);
  ClassicalHopfield net(x);
  const double classical_stored = bit_error(net.retrieve(x).state, x);
  const double classical_cued = bit_error(net.retrieve(cues).state, x);
  EXPECT_GT(classical_stored, 0.02);
  EXPECT_GT(classical_cued, 0.02);
  for (UpdateRule rule : kAllRules) {
    DenseAssociativeMemory dam(x, {Interaction::polynomial, 3, 1.0});
    Generator gen(32);
    const RetrievalResult stored = dam.retrieve(x, 20, rule, &gen);
    EXPECT_EQ(stored.status, RetrievalStatus::fixed_point);
    EXPECT_EQ(bit_error(stored.state, x), 0.0) << static_cast<int>(rule);
    EXPECT_EQ(bit_error(dam.retrieve(cues, 20, rule, &gen).state, x), 0.0)
        << static_cast<int>(rule);
  }
}

TEST(MemoryDense, ExponentialDynamicsStayFiniteForLargeOverlaps) {
  // Overlaps up to N = 1000: exp(1000) overflows, yet the updates (scaled differences) do not,
  // and log_sum_exp has the same dynamics with a finite energy.
  const Tensor x = random_bipolar(6, 1000, 33);
  const Tensor cues = flip_bits(x, 300, 34);
  DenseAssociativeMemory exponential(x, {Interaction::exponential, 2, 1.0});
  DenseAssociativeMemory lse(x, {Interaction::log_sum_exp, 2, 1.0});
  const RetrievalResult a = exponential.retrieve(cues, 10);
  const RetrievalResult b = lse.retrieve(cues, 10);
  EXPECT_TRUE(all_close(a.state, x, 0, 0));
  EXPECT_TRUE(all_close(b.state, x, 0, 0));
  const RetrievalResult sync = lse.retrieve(cues, 10, UpdateRule::synchronous);
  EXPECT_TRUE(all_close(sync.state, x, 0, 0));
  EXPECT_EQ(exponential.energy(x).to_vector<double>()[0], -INFINITY);
  const auto e = lse.energy(x).to_vector<double>();
  for (double v : e) EXPECT_NEAR(v, -1000.0, 1e-6);
}

TEST(MemoryDense, EnergyIsDifferentiableInTheState) {
  const Tensor x = random_bipolar(4, 6, 35).astype(Dtype::f64);
  for (const DenseCase& c : kDenseCases) {
    DenseAssociativeMemory dam(x, {c.interaction, c.degree, c.beta});
    auto f = [&](const Tensors& in) -> Tensors { return {sum(dam.energy(in[0]))}; };
    EXPECT_TRUE(gradcheck(f, {basin::testing::make({3, 6}, 36, 0.2, 1.0)})) << name(c);
  }
}

TEST(MemoryDense, RejectsBadArguments) {
  const Tensor x = random_bipolar(3, 6, 37);
  EXPECT_TRUE(throws_error(
      [&] {
        DenseAssociativeMemory(x, {Interaction::polynomial, 1, 1.0});
      },
      {"[DenseAssociativeMemory]", "degree"}));
  EXPECT_TRUE(throws_error(
      [&] {
        DenseAssociativeMemory(x, {Interaction::log_sum_exp, 3, 0.0});
      },
      {"beta must be positive"}));
  EXPECT_TRUE(throws_error(
      [] {
        DenseAssociativeMemory(tensor<float>({{1, 2}}));
      },
      {"bipolar", "element 1 is 2"}));
  EXPECT_TRUE(throws_error([] { interaction_from_string("cubic"); },
                           {"unknown interaction 'cubic'", "log_sum_exp"}));
  EXPECT_EQ(interaction_from_string("rectified_polynomial"), Interaction::rectified_polynomial);
  DenseAssociativeMemory dam(x);
  EXPECT_TRUE(throws_error([&] { dam.retrieve(ones({3, 7})); }, {"(6,) or (B, 6)"}));
  EXPECT_TRUE(throws_error([&] { dam.energy(ones({7})); }, {"(6,) or (B, 6)"}));
  EXPECT_TRUE(throws_error([&] { dam.sweep(ones({6}), UpdateRule::synchronous); }, {"update()"}));
  EXPECT_NE(dam.repr().find("interaction=polynomial, degree=3"), std::string::npos) << dam.repr();
}

}  // namespace
}  // namespace basin::energy
