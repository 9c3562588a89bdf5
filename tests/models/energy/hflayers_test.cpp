// Hopfield, HopfieldPooling and HopfieldLayer: parity with hflayers (tests/fixtures/
// hflayers_fixture.py, weights loaded by their PyTorch names), gradients, masks, the association
// matrix, the energy along the updates, and the errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "basin/basin.h"
#include "models/energy/hflayers.h"
#include "tests/models/nn/nn_fixture_util.h"
#include "tests/test_util.h"

namespace basin::energy {
namespace {

using testing::all_close;
using testing::make;
using testing::throws_error;

const char* const kFixture = "hflayers_fixture.txt";

const Tensor& fx(const std::string& name) { return testing::nn_fixture(kFixture, name); }
bool has(const std::string& name) { return testing::nn_fixture(kFixture).count(name) > 0; }

/// The PyTorch state_dict of one case, by hflayers' names.
nn::StateDict fixture_params(const std::string& name) {
  nn::StateDict out;
  const std::string prefix = name + ".param.";
  for (const auto& [key, value] : testing::nn_fixture(kFixture)) {
    if (key.rfind(prefix, 0) == 0) out[key.substr(prefix.size())] = value;
  }
  return out;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  double d = 0.0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) d = std::max(d, std::abs(x[i] - y[i]));
  return d;
}

// The fixture rounds every weight and input to float32, so a float32 module evaluated on float64
// inputs computes exactly what PyTorch computed in float64.
constexpr double kF64Tol = 1e-12;
constexpr double kF32Tol = 2e-5;

void expect_hopfield_parity(const std::string& name, const HopfieldOptions& options) {
  SCOPED_TRACE(name);
  Hopfield h(options);
  h.load_state_dict(fixture_params(name));  // strict: the names and shapes are hflayers'
  h.eval();
  const Tensor &stored = fx(name + ".stored"), &state = fx(name + ".state"),
               &projection = fx(name + ".projection");
  const Tensor padding = has(name + ".padding_mask") ? fx(name + ".padding_mask") != 0.0 : Tensor();
  Tensor association;
  if (has(name + ".association_mask")) {
    association = fx(name + ".association_mask");
    if (name != "float_mask") association = association != 0.0;
  }
  const Tensor& want = fx(name + ".out");
  EXPECT_LE(max_abs_diff(h.forward(stored, state, projection, padding, association), want),
            kF64Tol);
  EXPECT_LE(
      max_abs_diff(h.association_matrix(stored, state, padding, association), fx(name + ".assoc")),
      kF64Tol);
  const Tensor out32 = h.forward(
      stored.astype(Dtype::f32), state.astype(Dtype::f32), projection.astype(Dtype::f32), padding,
      association.defined() && is_floating(association.dtype()) ? association.astype(Dtype::f32)
                                                                : association);
  EXPECT_EQ(out32.dtype(), Dtype::f32);
  EXPECT_LE(max_abs_diff(out32, want), kF32Tol);
}

TEST(HflayersParity, Default) { expect_hopfield_parity("default", {.input_size = 6}); }

TEST(HflayersParity, OneTensorAsStoredStateAndProjection) {
  Hopfield h({.input_size = 6});
  h.load_state_dict(fixture_params("self"));
  h.eval();
  EXPECT_LE(max_abs_diff(h.forward(fx("self.input")), fx("self.out")), kF64Tol);
  EXPECT_LE(max_abs_diff(h(fx("self.input").astype(Dtype::f32)), fx("self.out")), kF32Tol);
}

TEST(HflayersParity, HeadsWithSeparateProjections) {
  expect_hopfield_parity("heads_float", {.input_size = 8,
                                         .output_size = 3,
                                         .pattern_size = 4,
                                         .num_heads = 2,
                                         .scaling = {0.9},
                                         .stored_pattern_size = 5,
                                         .pattern_projection_size = 7});
}

TEST(HflayersParity, ScalingPerHead) {
  expect_hopfield_parity(
      "heads_beta", {.input_size = 8, .hidden_size = 3, .num_heads = 2, .scaling = {0.7, 1.6}});
}

TEST(HflayersParity, UpdateStepsStopByEpsPerHead) {
  // In PyTorch the two heads ran 7 and 4 updates (fixture "steps.iterations").
  EXPECT_TRUE(all_close(fx("steps.iterations"), tensor<double>({7, 4})));
  expect_hopfield_parity("steps", {.input_size = 8,
                                   .num_heads = 2,
                                   .scaling = {2.5},
                                   .update_steps_max = 6,
                                   .update_steps_eps = 2e-2});
}

TEST(HflayersParity, UnlimitedUpdates) {
  expect_hopfield_parity(
      "unlimited",
      {.input_size = 4, .scaling = {3.0}, .update_steps_max = -1, .update_steps_eps = 1e-3});
}

TEST(HflayersParity, StaticExecution) {
  expect_hopfield_parity("static", {.scaling = {2.0},
                                    .update_steps_max = 3,
                                    .normalize_stored_pattern = false,
                                    .normalize_stored_pattern_affine = false,
                                    .normalize_state_pattern = false,
                                    .normalize_state_pattern_affine = false,
                                    .normalize_pattern_projection = false,
                                    .normalize_pattern_projection_affine = false,
                                    .stored_pattern_as_static = true,
                                    .state_pattern_as_static = true,
                                    .pattern_projection_as_static = true,
                                    .disable_out_projection = true});
}

TEST(HflayersParity, StaticStatePatterns) {
  expect_hopfield_parity("static_state",
                         {.input_size = 4, .update_steps_max = 1, .state_pattern_as_static = true});
}

TEST(HflayersParity, StaticStoredPatternsOrProjections) {
  expect_hopfield_parity(
      "static_stored", {.input_size = 4, .update_steps_max = 1, .stored_pattern_as_static = true});
  expect_hopfield_parity("static_projection",
                         {.input_size = 4, .pattern_projection_as_static = true});
}

TEST(HflayersParity, ConnectedPatternProjection) {
  expect_hopfield_parity(
      "connected", {.input_size = 6, .num_heads = 2, .pattern_projection_as_connected = true});
}

TEST(HflayersParity, NormalizeHopfieldSpace) {
  expect_hopfield_parity("hspace", {.input_size = 6,
                                    .hidden_size = 4,
                                    .num_heads = 2,
                                    .update_steps_max = 2,
                                    .normalize_hopfield_space = true,
                                    .normalize_hopfield_space_affine = true});
}

TEST(HflayersParity, BiasAndZeroRows) {
  expect_hopfield_parity("bias_zero", {.input_size = 6,
                                       .num_heads = 2,
                                       .update_steps_max = 1,
                                       .concat_bias_pattern = true,
                                       .add_zero_association = true});
  expect_hopfield_parity("zero_row",
                         {.input_size = 6, .num_heads = 2, .add_zero_association = true});
}

TEST(HflayersParity, NoOutputProjectionActivationNoBias) {
  expect_hopfield_parity("no_out", {.input_size = 6,
                                    .pattern_size = 3,
                                    .num_heads = 2,
                                    .association_activation = "tanh",
                                    .input_bias = false,
                                    .disable_out_projection = true});
}

TEST(HflayersParity, PaddingAndAssociationMasks) {
  expect_hopfield_parity("masks", {.input_size = 6, .num_heads = 2, .update_steps_max = 2});
  expect_hopfield_parity("float_mask", {.input_size = 6, .num_heads = 2});
}

TEST(HflayersParity, Pooling) {
  {
    SCOPED_TRACE("pooling");
    HopfieldPooling pool({.input_size = 6, .hidden_size = 4, .output_size = 5});
    pool.load_state_dict(fixture_params("pooling"));
    pool.eval();
    const Tensor& bags = fx("pooling.input");
    const Tensor padding = fx("pooling.padding_mask") != 0.0;
    EXPECT_LE(max_abs_diff(pool.forward(bags, padding), fx("pooling.out")), kF64Tol);
    EXPECT_LE(max_abs_diff(pool.association_matrix(bags, padding), fx("pooling.assoc")), kF64Tol);
    EXPECT_LE(max_abs_diff(pool.forward(bags.astype(Dtype::f32), padding), fx("pooling.out")),
              kF32Tol);
  }
  {
    SCOPED_TRACE("pooling_heads");
    HopfieldPooling pool({.input_size = 6, .num_heads = 2, .update_steps_max = 2}, 3);
    pool.load_state_dict(fixture_params("pooling_heads"));
    pool.eval();
    const Tensor& bags = fx("pooling_heads.input");
    EXPECT_LE(max_abs_diff(pool(bags), fx("pooling_heads.out")), kF64Tol);
    EXPECT_LE(max_abs_diff(pool.association_matrix(bags), fx("pooling_heads.assoc")), kF64Tol);
  }
}

TEST(HflayersParity, Layer) {
  {
    SCOPED_TRACE("layer");
    HopfieldLayer layer({.input_size = 6}, 5);
    layer.load_state_dict(fixture_params("layer"));
    layer.eval();
    EXPECT_LE(max_abs_diff(layer(fx("layer.input")), fx("layer.out")), kF64Tol);
    EXPECT_LE(max_abs_diff(layer.association_matrix(fx("layer.input")), fx("layer.assoc")),
              kF64Tol);
  }
  {
    SCOPED_TRACE("layer_separated");
    HopfieldLayer layer({.input_size = 6, .num_heads = 2, .pattern_projection_size = 5}, 4, true);
    layer.load_state_dict(fixture_params("layer_separated"));
    layer.eval();
    EXPECT_LE(max_abs_diff(layer(fx("layer_separated.input")), fx("layer_separated.out")), kF64Tol);
  }
}

/// Parameters N(0, 0.5²) (LayerNorm weights around 1) instead of hflayers' N(0, 0.02²), so that
/// the associations are far from uniform.
void randomize(nn::Module& m, uint64_t seed) {
  Generator gen(seed);
  NoGradGuard no_grad;
  for (const auto& [name, p] : m.named_parameters()) {
    if (name == "scaling") continue;
    const bool norm_weight = name.find("norm") != std::string::npos && name.ends_with("weight");
    nn::normal_(p, norm_weight ? 1.0 : 0.0, norm_weight ? 0.1 : 0.5, &gen);
  }
}

// --- gradients
// -------------------------------------------------------------------------------------
TEST(HflayersGrad, GradcheckThroughTwoUpdateSteps) {
  // eps far below the changes, so that every evaluation runs exactly three updates.
  Hopfield h({.input_size = 4,
              .num_heads = 2,
              .scaling = {1.5},
              .update_steps_max = 2,
              .update_steps_eps = 1e-12});
  randomize(h, 7);
  const Fn f = [&h](const Tensors& x) { return Tensors{h.forward(x[0], x[1], x[2])}; };
  const Tensors inputs{make({2, 4, 4}, 1), make({2, 3, 4}, 2), make({2, 4, 4}, 3)};
  testing::expect_derivatives(f, inputs, /*second=*/false);
  // Second order through the updates, on a smaller problem.
  const Fn g = [&h](const Tensors& x) { return Tensors{h.forward(x[0], x[1], x[0])}; };
  testing::expect_derivatives(g, {make({1, 3, 4}, 4), make({1, 2, 4}, 5)}, /*second=*/true);
}

TEST(HflayersGrad, LearnableScalingGetsItsGradient) {
  HopfieldOptions o{
      .input_size = 4, .num_heads = 2, .learnable_scaling = true, .update_steps_max = 1};
  Hopfield h(o, nullptr);
  const auto names = h.named_parameters();
  ASSERT_EQ(names.front().first, "scaling");
  EXPECT_TRUE(all_close(h.scaling(), full({2}, 1.0 / std::sqrt(2.0), Dtype::f64), 1e-7));
  randomize(h, 8);
  const Tensor stored = make({2, 5, 4}, 11), state = make({2, 3, 4}, 12);
  auto loss = [&](Hopfield& m) { return sum(square(m.forward(stored, state, stored))); };
  loss(h).backward();
  const Tensor g = h.named_parameters().front().second.grad();
  ASSERT_TRUE(g.defined());
  const auto gv = g.to_vector<double>();
  // Central differences in β, one head at a time.
  for (int head = 0; head < 2; ++head) {
    double plus_minus[2];
    for (int s = 0; s < 2; ++s) {
      Hopfield other(o, nullptr);
      nn::StateDict state_dict = h.state_dict();
      auto beta = state_dict["scaling"].to_vector<float>();
      beta[head] += s == 0 ? 1e-2f : -1e-2f;
      state_dict["scaling"] = from_vector(beta, {2});
      other.load_state_dict(state_dict);
      plus_minus[s] = loss(other).item<double>();
    }
    const double numeric = (plus_minus[0] - plus_minus[1]) / 2e-2;
    EXPECT_NE(gv[head], 0.0);
    EXPECT_NEAR(gv[head], numeric, 1e-3 * std::abs(numeric) + 1e-9);
  }
}

// --- masks and the association matrix ------------------------------------------------------------
TEST(HflayersMasks, PaddedInstancesDoNotChangeThePooledOutput) {
  Generator gen(3);
  HopfieldPooling pool({.input_size = 6,
                        .hidden_size = 4,
                        .num_heads = 2,
                        .update_steps_max = 2,
                        .update_steps_eps = 1e-30,  // the stop rule looks at the whole batch
                        .concat_bias_pattern = true,
                        .add_zero_association = true},
                       2, true, &gen);
  randomize(pool, 4);
  pool.eval();
  // Bag 0 has 5 instances, bag 1 has 3, padded with large junk to length 5.
  Tensor bags = make({2, 5, 6}, 21);
  const Tensor junk = make({1, 2, 6}, 22, 50.0, 90.0);
  bags =
      concat({narrow(bags, 0, 0, 1), concat({narrow(narrow(bags, 0, 1, 1), 1, 0, 3), junk}, 1)}, 0);
  const Tensor padding =
      from_vector(std::vector<uint8_t>{0, 0, 0, 0, 0, 0, 0, 0, 1, 1}, {2, 5}) != 0.0;
  const Tensor pooled = pool.forward(bags, padding);
  ASSERT_EQ(pooled.shape(), (Shape{2, 12}));
  const Tensor alone = pool(narrow(narrow(bags, 0, 1, 1), 1, 0, 3));
  EXPECT_TRUE(all_close(narrow(pooled, 0, 1, 1), alone, 1e-10, 1e-12));
  const Tensor first = pool(narrow(bags, 0, 0, 1));
  EXPECT_TRUE(all_close(narrow(pooled, 0, 0, 1), first, 1e-10, 1e-12));
  // Padded instances get zero weight (columns 3 and 4 of bag 1; 5 and 6 are the bias and zero
  // rows).
  const Tensor p = pool.association_matrix(bags, padding);  // (2, 2, 2, 7)
  ASSERT_EQ(p.shape(), (Shape{2, 2, 2, 7}));
  EXPECT_TRUE(all_close(narrow(narrow(p, 0, 1, 1), 3, 3, 2), zeros({1, 2, 2, 2}, Dtype::f64)));
  // And their values get no gradient.
  const Tensor x = bags.detach();
  const Tensor gx = grad([&](const Tensor& b) { return sum(pool.forward(b, padding)); })(x);
  EXPECT_TRUE(all_close(narrow(narrow(gx, 0, 1, 1), 1, 3, 2), zeros({1, 2, 6}, Dtype::f64)));
  EXPECT_GT(max(abs(narrow(narrow(gx, 0, 1, 1), 1, 0, 3))).item<double>(), 0.0);
}

TEST(HflayersMasks, AssociationMatrixRowsSumToOne) {
  Hopfield h(
      {.input_size = 6, .num_heads = 3, .update_steps_max = 3, .add_zero_association = true});
  const Tensor stored = make({2, 5, 6}, 31), state = make({2, 4, 6}, 32);
  const Tensor padding =
      from_vector(std::vector<uint8_t>{0, 0, 1, 0, 0, 0, 0, 0, 0, 1}, {2, 5}) != 0.0;
  const Tensor mask = make({2, 3, 4, 5}, 33, -1.0, 1.0);  // float, (B, H, L, S)
  for (const Tensor& m : {Tensor(), mask}) {
    const Tensor p = h.association_matrix(stored, state, padding, m);
    ASSERT_EQ(p.shape(), (Shape{2, 3, 4, 6}));
    EXPECT_TRUE(all_close(sum(p, {-1}), ones({2, 3, 4}, Dtype::f64), 1e-12, 1e-12));
    EXPECT_GE(min(p).item<double>(), 0.0);
  }
  // Heads kept apart by retrieve, joined and projected by forward.
  const Tensor r = h.retrieve(stored, state, stored, padding);
  EXPECT_EQ(r.shape(), (Shape{2, 3, 4, 2}));
  EXPECT_TRUE(all_close(
      h.forward(stored, state, stored, padding),
      h.association_core().out_proj->forward(reshape(permute(r, {0, 2, 1, 3}), {2, 4, 6}))));
}

// --- energy
// ----------------------------------------------------------------------------------------
HopfieldOptions plain_retrieval(double beta, int64_t heads = 1) {
  return {.num_heads = heads,
          .scaling = {beta},
          .normalize_stored_pattern = false,
          .normalize_stored_pattern_affine = false,
          .normalize_state_pattern = false,
          .normalize_state_pattern_affine = false,
          .normalize_pattern_projection = false,
          .normalize_pattern_projection_affine = false,
          .stored_pattern_as_static = true,
          .state_pattern_as_static = true,
          .pattern_projection_as_static = true,
          .disable_out_projection = true};
}

TEST(HflayersEnergy, MatchesTheFormula) {
  Hopfield h(plain_retrieval(0.7));
  const Tensor stored = make({2, 4, 3}, 41, -2.0, 2.0), state = make({2, 2, 3}, 42);
  const auto y = stored.to_vector<double>(), x = state.to_vector<double>();
  std::vector<double> want(2, 0.0);
  const double beta = 0.7;
  for (int b = 0; b < 2; ++b) {
    for (int l = 0; l < 2; ++l) {
      double lse_sum = 0.0, xx = 0.0, m2 = 0.0;
      for (int d = 0; d < 3; ++d) xx += x[(b * 2 + l) * 3 + d] * x[(b * 2 + l) * 3 + d];
      for (int s = 0; s < 4; ++s) {
        double dot = 0.0, kk = 0.0;
        for (int d = 0; d < 3; ++d) {
          dot += y[(b * 4 + s) * 3 + d] * x[(b * 2 + l) * 3 + d];
          kk += y[(b * 4 + s) * 3 + d] * y[(b * 4 + s) * 3 + d];
        }
        lse_sum += std::exp(beta * dot);
        m2 = std::max(m2, kk);
      }
      want[b] += -std::log(lse_sum) / beta + 0.5 * xx + std::log(4.0) / beta + 0.5 * m2;
    }
  }
  EXPECT_TRUE(all_close(h.energy(stored, state), from_vector(want, {2}), 1e-12, 1e-12));
  // dE/dξ = ξ − softmax(β K ξ)ᵀ K: zero exactly at a fixed point of the update.
  const Tensor d = grad([&](const Tensor& s) { return sum(h.energy(stored, s)); })(state);
  EXPECT_TRUE(all_close(d, state - squeeze(h.retrieve(stored, state, stored), {1}), 1e-12, 1e-12));
}

TEST(HflayersEnergy, DecreasesAlongTheUpdates) {
  for (double beta : {0.5, 2.0, 8.0}) {
    Hopfield h(plain_retrieval(beta));
    const Tensor stored = make({2, 6, 5}, 51, -1.5, 1.5);
    Tensor xi = make({2, 3, 5}, 52);
    double before = std::numeric_limits<double>::infinity();
    std::vector<double> energies;
    for (int t = 0; t < 8; ++t) {
      const double e = sum(h.energy(stored, xi)).item<double>();
      energies.push_back(e);
      EXPECT_LE(e, before + 1e-12) << "beta " << beta << ", step " << t;
      before = e;
      xi = squeeze(h.retrieve(stored, xi, stored), {1});  // ξ ← softmax(β ξ Kᵀ) K
    }
    EXPECT_LT(energies.back(), energies.front()) << "beta " << beta;
    // update_steps_max = 2 is three of these updates in one call.
    HopfieldOptions o = plain_retrieval(beta);
    o.update_steps_max = 2;
    o.update_steps_eps = 1e-300;
    Hopfield three(o);
    Tensor x0 = make({2, 3, 5}, 52), x = x0;
    for (int t = 0; t < 3; ++t) x = squeeze(h.retrieve(stored, x, stored), {1});
    EXPECT_TRUE(all_close(squeeze(three.retrieve(stored, x0, stored), {1}), x, 1e-12, 1e-12));
  }
}

TEST(HflayersEnergy, PoolingEnergySumsHeadsAndRespectsPadding) {
  HopfieldPooling pool({.input_size = 4, .num_heads = 2}, 3);
  const Tensor bags = make({2, 5, 4}, 61);
  const Tensor padding =
      from_vector(std::vector<uint8_t>{0, 0, 0, 0, 0, 0, 0, 1, 1, 1}, {2, 5}) != 0.0;
  const Tensor e = pool.energy(bags, padding);
  ASSERT_EQ(e.shape(), (Shape{2}));
  EXPECT_TRUE(all_close(narrow(e, 0, 1, 1), pool.energy(narrow(narrow(bags, 0, 1, 1), 1, 0, 2)),
                        1e-10, 1e-12));
  EXPECT_TRUE(all_close(narrow(e, 0, 0, 1), pool.energy(narrow(bags, 0, 0, 1)), 1e-10, 1e-12));
}

// --- modules, dropout, options -------------------------------------------------------------------
TEST(HflayersModule, NamesFollowHflayers) {
  Hopfield h({.input_size = 6, .num_heads = 2, .concat_bias_pattern = true});
  std::vector<std::string> names;
  for (const auto& [name, t] : h.state_dict()) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "association_core.bias_k", "association_core.bias_v",
                       "association_core.in_proj_bias", "association_core.in_proj_weight",
                       "association_core.out_proj.bias", "association_core.out_proj.weight",
                       "norm_pattern_projection.bias", "norm_pattern_projection.weight",
                       "norm_state_pattern.bias", "norm_state_pattern.weight",
                       "norm_stored_pattern.bias", "norm_stored_pattern.weight"}));
  HopfieldPooling frozen({.input_size = 6}, 2, /*trainable=*/false);
  EXPECT_EQ(frozen.state_dict().count("pooling_weights"), 1u);
  for (const auto& [name, t] : frozen.named_parameters()) EXPECT_NE(name, "pooling_weights");
  HopfieldLayer layer({.input_size = 6}, 3, true, /*lookup_targets_as_trainable=*/false);
  EXPECT_EQ(layer.state_dict().count("target_weights"), 1u);
  EXPECT_EQ(layer.state_dict().count("lookup_weights"), 1u);
  EXPECT_EQ(layer.num_parameters(), h.num_parameters() - 2 * 6 + 3 * 6);
}

TEST(HflayersModule, DropoutOnTheAssociationMatrixInTrainingOnly) {
  Generator gen(5);
  Hopfield h({.input_size = 4, .dropout = 0.5}, &gen);
  const Tensor x = make({2, 6, 4}, 71);
  h.eval();
  const Tensor eval_out = h(x);
  Hopfield plain({.input_size = 4});
  plain.load_state_dict(h.state_dict());
  EXPECT_TRUE(all_close(eval_out, plain(x)));
  h.train();
  gen.set_state(9, 0);
  const Tensor a = h(x);
  gen.set_state(9, 0);
  EXPECT_TRUE(all_close(h(x), a));
  EXPECT_FALSE(all_close(a, eval_out, 1e-6, 1e-6));
}

TEST(HflayersErrors, BadOptionsAndShapesNameTheLayer) {
  EXPECT_TRUE(throws_error([] { Hopfield h(HopfieldOptions{}); },
                           {"[Hopfield]", "input_size is required"}));
  EXPECT_TRUE(throws_error([] { Hopfield h({.input_size = 6, .num_heads = 4}); },
                           {"[Hopfield]", "not divisible by num_heads"}));
  EXPECT_TRUE(throws_error(
      [] {
        Hopfield h({.input_size = 6, .num_heads = 2, .scaling = {1, 2, 3}});
      },
      {"[Hopfield]", "scaling"}));
  EXPECT_TRUE(throws_error([] { Hopfield h({.input_size = 6, .scaling = {-1.0}}); },
                           {"[Hopfield]", "positive"}));
  EXPECT_TRUE(throws_error([] { Hopfield h({.input_size = 6, .update_steps_eps = 0.0}); },
                           {"[Hopfield]", "update_steps_eps"}));
  EXPECT_TRUE(throws_error([] { Hopfield h({.input_size = 6, .update_steps_max = -2}); },
                           {"[Hopfield]", "update_steps_max"}));
  EXPECT_TRUE(throws_error(
      [] { Hopfield h({.input_size = 6, .normalize_stored_pattern = false}); },
      {"[Hopfield]", "normalize_stored_pattern_affine needs normalize_stored_pattern"}));
  EXPECT_TRUE(throws_error([] { Hopfield h({.input_size = 6, .batch_first = false}); },
                           {"[Hopfield]", "batch_first"}));
  EXPECT_TRUE(throws_error([] { Hopfield h({.input_size = 6, .association_activation = "swish"}); },
                           {"[Hopfield]", "association_activation", "swish"}));
  EXPECT_TRUE(throws_error(
      [] {
        Hopfield h(
            {.input_size = 6, .stored_pattern_as_static = true, .concat_bias_pattern = true});
      },
      {"[Hopfield]", "concat_bias_pattern"}));
  EXPECT_TRUE(throws_error(
      [] {
        Hopfield h(
            {.input_size = 6, .pattern_projection_as_connected = true, .stored_pattern_size = 4});
      },
      {"[Hopfield]", "pattern_projection_as_connected"}));
  EXPECT_TRUE(throws_error([] { HopfieldPooling p({.input_size = 6}, 0); },
                           {"[HopfieldPooling]", "quantity"}));
  EXPECT_TRUE(throws_error([] { HopfieldPooling p({.input_size = 6, .num_heads = 4}); },
                           {"[HopfieldPooling]", "not divisible"}));

  Hopfield h({.input_size = 6});
  EXPECT_TRUE(throws_error(
      [&] {
        h(make({2, 3, 5}, 1));
      },
      {"[Hopfield]", "stored patterns", "(batch, length, 6)", "(2, 3, 5)"}));
  EXPECT_TRUE(throws_error([&] { h(make({3, 6}, 1)); }, {"[Hopfield]", "(3, 6)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        h.forward(make({2, 3, 6}, 1), make({1, 3, 6}, 2), make({2, 3, 6}, 3));
      },
      {"[Hopfield]", "batch sizes"}));
  EXPECT_TRUE(throws_error(
      [&] {
        h.forward(make({2, 3, 6}, 1), make({2, 3, 6}, 2), make({2, 4, 6}, 3));
      },
      {"[Hopfield]", "pattern projections"}));
  const Tensor x = make({2, 3, 6}, 4);
  EXPECT_TRUE(throws_error(
      [&] {
        h.forward(x, x, x, make({2, 3}, 5));
      },
      {"[Hopfield]", "stored_padding_mask must be bool"}));
  EXPECT_TRUE(throws_error(
      [&] {
        h.forward(x, x, x, zeros({2, 4}, Dtype::boolean));
      },
      {"[Hopfield]", "stored_padding_mask must be (batch, stored length)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        h.forward(x, x, x, Tensor(), zeros({3, 4}, Dtype::boolean));
      },
      {"[Hopfield]", "association_mask"}));

  HopfieldPooling pool({.input_size = 6});
  EXPECT_TRUE(throws_error([&] { pool(make({2, 3, 5}, 1)); }, {"[HopfieldPooling]", "(2, 3, 5)"}));
  EXPECT_TRUE(throws_error([&] { pool(make({3, 6}, 1)); }, {"[HopfieldPooling]", "(3, 6)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        pool.forward(x, zeros({2, 5}, Dtype::boolean));
      },
      {"[HopfieldPooling]", "stored_padding_mask"}));
  HopfieldLayer layer({.input_size = 6}, 4);
  EXPECT_TRUE(throws_error([&] { layer(make({2, 6}, 1)); }, {"[HopfieldLayer]", "(2, 6)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        layer(make({2, 3, 4}, 1));
      },
      {"[HopfieldLayer]", "state patterns"}));
  EXPECT_TRUE(throws_error([] { HopfieldLayer l({.input_size = 6, .stored_pattern_size = 4}, 2); },
                           {"[HopfieldLayer]", "lookup weights"}));
}

}  // namespace
}  // namespace basin::energy
