// Losses against PyTorch (tests/fixtures/nn_fixture.py), their first and second derivatives in
// float64, edge cases (empty masks, saturated logits, ignored targets) and argument errors.
#include <cmath>

#include "models/nn/loss.h"
#include "tests/models/nn/nn_fixture_util.h"
#include "tests/test_util.h"

namespace basin::nn {
namespace {
using basin::testing::all_close;
using basin::testing::expect_derivatives;
using basin::testing::make;
using basin::testing::throws_error;

const Tensor& fx(const std::string& name) {
  return basin::testing::nn_fixture("nn_fixture.txt", name);
}

const std::vector<std::pair<const char*, Reduction>> kReductions = {
    {"mean", Reduction::mean}, {"sum", Reduction::sum}, {"none", Reduction::none}};

TEST(NnLoss, MseMatchesTorch) {
  for (const auto& [name, r] : kReductions) {
    EXPECT_TRUE(
        all_close(mse_loss(fx("mse.pred"), fx("mse.target"), r), fx(std::string("mse.") + name)))
        << name;
  }
  const Tensor p32 = fx("mse.pred").astype(Dtype::f32);
  EXPECT_EQ(mse_loss(p32, fx("mse.target").astype(Dtype::f32)).dtype(), Dtype::f32);
  EXPECT_TRUE(all_close(mse_loss(p32, fx("mse.target").astype(Dtype::f32)), fx("mse.mean"), 1e-6));
}

TEST(NnLoss, MaskedMseMatchesTorch) {
  const Tensor& p = fx("mse.pred");
  const Tensor& t = fx("mse.target");
  const Tensor m = fx("masked_mse.mask");  // (4, 1) of 0/1, broadcast over the columns
  EXPECT_TRUE(all_close(masked_mse_loss(p, t, m), fx("masked_mse.out")));
  EXPECT_TRUE(all_close(masked_mse_loss(p, t, m.astype(Dtype::boolean)), fx("masked_mse.out")));
  EXPECT_TRUE(all_close(masked_mse_loss(p, t, m.astype(Dtype::i64)), fx("masked_mse.out")));
  // A full mask is the plain mean.
  EXPECT_TRUE(all_close(masked_mse_loss(p, t, ones({4, 3}, Dtype::boolean)), fx("mse.mean")));
}

TEST(NnLoss, MaskedMseIgnoresUnselectedAndEmptyMaskIsZero) {
  Tensor p = make({2, 3}, 1);
  const Tensor t = make({2, 3}, 2);
  const Tensor mask = tensor<double>({{1, 0, 1}, {0, 0, 1}}).astype(Dtype::boolean);
  // Non-finite values where the mask is off do not leak into the loss.
  Tensor poisoned = where(mask, p, INFINITY);
  EXPECT_TRUE(all_close(masked_mse_loss(poisoned, t, mask), masked_mse_loss(p, t, mask)));
  // An empty selection: 0, with a defined, zero gradient.
  Tensor leaf = p.detach().set_requires_grad();
  const Tensor loss = masked_mse_loss(leaf, t, zeros({2, 3}, Dtype::boolean));
  EXPECT_EQ(loss.item<double>(), 0.0);
  loss.backward();
  ASSERT_TRUE(leaf.grad().defined());
  EXPECT_TRUE(all_close(leaf.grad(), zeros({2, 3}, Dtype::f64), 0, 0));
  expect_derivatives(
      [](const Tensors& in) { return Tensors{masked_mse_loss(in[0], in[1], in[2])}; },
      {p, t, mask});
  expect_derivatives(
      [](const Tensors& in) { return Tensors{masked_mse_loss(in[0], in[1], in[2])}; },
      {p, t, zeros({1, 3}, Dtype::boolean)});
}

TEST(NnLoss, BceWithLogitsMatchesTorch) {
  const Tensor& x = fx("bce.logits");
  const Tensor& t = fx("bce.target");
  for (const auto& [name, r] : kReductions) {
    EXPECT_TRUE(all_close(bce_with_logits(x, t, {}, r), fx(std::string("bce.") + name))) << name;
    EXPECT_TRUE(all_close(bce_with_logits(x, t, fx("bce.pos_weight"), r),
                          fx(std::string("bce.pw.") + name)))
        << name;
  }
  // Saturated logits stay finite in float32 too.
  const Tensor big = tensor<float>({100.f, -100.f});
  const Tensor loss = bce_with_logits(big, tensor<float>({0.f, 1.f}), {}, Reduction::none);
  EXPECT_TRUE(all_close(loss, tensor<float>({100.f, 100.f}), 1e-6));
}

TEST(NnLoss, CrossEntropyMatchesTorch) {
  const Tensor& x = fx("ce.logits");
  const Tensor y = fx("ce.target").astype(Dtype::i64);
  const Tensor y_ign = fx("ce.target_ignore").astype(Dtype::i64);
  const Tensor& w = fx("ce.weight");
  struct Case {
    const char* name;
    Tensor target, weight;
    double smoothing;
    int64_t ignore_index;
  };
  const std::vector<Case> cases = {
      {"plain", y, {}, 0.0, -100},
      {"weight", y, w, 0.0, -100},
      {"smooth", y, {}, 0.2, -100},
      {"weight_smooth", y, w, 0.2, -100},
      {"ignore", y_ign, {}, 0.0, -100},
      {"ignore_smooth", y_ign, {}, 0.3, -100},
      {"ignore_weight_smooth", y_ign, w, 0.3, -100},
      {"ignore_index_1", y, w, 0.1, 1},
  };
  for (const Case& c : cases) {
    for (const auto& [name, r] : kReductions) {
      const Tensor got = cross_entropy(x, c.target, c.weight, c.smoothing, c.ignore_index, r);
      EXPECT_TRUE(all_close(got, fx(fmt::format("ce.{}.{}", c.name, name))))
          << c.name << " " << name;
    }
  }
  EXPECT_EQ(cross_entropy(x, y.astype(Dtype::i32)).item<double>(),
            fx("ce.plain.mean").item<double>());
  const Tensor x32 = x.astype(Dtype::f32);
  EXPECT_EQ(cross_entropy(x32, y).dtype(), Dtype::f32);
  EXPECT_TRUE(all_close(cross_entropy(x32, y, w, 0.2), fx("ce.weight_smooth.mean"), 1e-6));
}

TEST(NnLoss, CrossEntropyHigherRankAndSingleSample) {
  const Tensor& xk = fx("ce.k.logits");  // (2, 4, 3): classes on axis 1
  const Tensor yk = fx("ce.k.target").astype(Dtype::i64);
  for (const auto& [name, r] : kReductions) {
    EXPECT_TRUE(all_close(cross_entropy(xk, yk, fx("ce.weight"), 0.1, -100, r),
                          fx(std::string("ce.k.") + name)))
        << name;
  }
  EXPECT_EQ(cross_entropy(xk, yk, {}, 0.0, -100, Reduction::none).shape(), (Shape{2, 3}));
  const Tensor one = squeeze(narrow(fx("ce.logits"), 0, 2, 1), {0});  // sample 2, (C)
  EXPECT_TRUE(all_close(cross_entropy(one, scalar(1.0, Dtype::i64), {}, 0.1), fx("ce.single")));
  EXPECT_EQ(cross_entropy(one, scalar(1.0, Dtype::i64), {}, 0.0, -100, Reduction::none).ndim(), 0);
}

TEST(NnLoss, CrossEntropyAllIgnoredIsNaNAsInTorch) {
  const Tensor x = make({3, 4}, 3);
  const Tensor y = full({3}, -100.0, Dtype::i64);
  EXPECT_TRUE(std::isnan(cross_entropy(x, y).item<double>()));
  EXPECT_EQ(cross_entropy(x, y, {}, 0.0, -100, Reduction::sum).item<double>(), 0.0);
  EXPECT_TRUE(
      all_close(cross_entropy(x, y, {}, 0.1, -100, Reduction::none), zeros({3}, Dtype::f64)));
}

TEST(NnLoss, Derivatives) {
  const Tensor p = make({3, 4}, 4), t = make({3, 4}, 5);
  for (const auto& [name, r] : kReductions) {
    SCOPED_TRACE(name);
    const Reduction red = r;
    expect_derivatives([red](const Tensors& in) { return Tensors{mse_loss(in[0], in[1], red)}; },
                       {p, t});
    expect_derivatives(
        [red](const Tensors& in) { return Tensors{bce_with_logits(in[0], in[1], in[2], red)}; },
        {make({3, 4}, 6, -3, 3), make({3, 4}, 7, 0, 1), make({4}, 8, 0.5, 2)});
    expect_derivatives(
        [red](const Tensors& in) {
          return Tensors{cross_entropy(in[0], in[1], in[2], 0.2, -100, red)};
        },
        {make({5, 4}, 9, -2, 2), tensor<int64_t>({0, 3, -100, 1, 3}), make({4}, 10, 0.5, 2)});
  }
  expect_derivatives([](const Tensors& in) { return Tensors{bce_with_logits(in[0], in[1])}; },
                     {make({6}, 11, -3, 3), make({6}, 12, 0, 1)});
  expect_derivatives([](const Tensors& in) { return Tensors{cross_entropy(in[0], in[1])}; },
                     {make({2, 3, 4}, 13, -2, 2), tensor<int64_t>({{0, 2, 1, 1}, {2, 0, 0, 1}})});
}

TEST(NnLoss, Errors) {
  const Tensor a = zeros({2, 3}), b = zeros({3, 2});
  EXPECT_TRUE(throws_error([&] { mse_loss(a, b); },
                           {"[mse_loss] pred of shape (2, 3) and target of shape (3, 2) differ"}));
  EXPECT_TRUE(throws_error([&] { mse_loss(zeros({2}, Dtype::i64), zeros({2}, Dtype::i64)); },
                           {"[mse_loss] pred must be floating", "int64"}));
  EXPECT_TRUE(throws_error([&] { mse_loss(Tensor(), a); }, {"[mse_loss] pred is undefined"}));
  EXPECT_TRUE(throws_error(
      [&] {
        masked_mse_loss(a, a, zeros({3, 3}, Dtype::boolean));
      },
      {"[masked_mse_loss]", "mask of shape (3, 3) does not broadcast to (2, 3)"}));
  EXPECT_TRUE(throws_error([&] { masked_mse_loss(a, a, Tensor()); }, {"[masked_mse_loss] mask"}));
  EXPECT_TRUE(throws_error([&] { bce_with_logits(a, b); }, {"[bce_with_logits] logits of shape"}));
  EXPECT_TRUE(throws_error([&] { bce_with_logits(a, a, zeros({2})); },
                           {"[bce_with_logits]", "pos_weight of shape (2,) does not broadcast"}));

  const Tensor logits = zeros({4, 3});
  const Tensor y = tensor<int64_t>({0, 1, 2, 1});
  EXPECT_TRUE(throws_error(
      [&] {
        cross_entropy(logits, tensor<int64_t>({0, 3, 1, 1}));
      },
      {"[cross_entropy] target 3 is out of range for 3 classes"}));
  EXPECT_TRUE(throws_error(
      [&] {
        cross_entropy(logits, tensor<int64_t>({0, -1, 1, 1}));
      },
      {"[cross_entropy] target -1 is out of range"}));
  EXPECT_TRUE(throws_error([&] { cross_entropy(logits, zeros({4})); },
                           {"[cross_entropy] target must hold class indices", "float32"}));
  EXPECT_TRUE(throws_error(
      [&] {
        cross_entropy(logits, tensor<int64_t>({0, 1}));
      },
      {"[cross_entropy] target of shape (2,) does not fit logits of shape (4, 3)"}));
  EXPECT_TRUE(
      throws_error([&] { cross_entropy(logits, y, zeros({4})); },
                   {"[cross_entropy] weight of shape (4,) must have one entry per class (3)"}));
  EXPECT_TRUE(throws_error([&] { cross_entropy(logits, y, {}, 1.5); },
                           {"[cross_entropy] label_smoothing must be in [0, 1]"}));
  EXPECT_TRUE(throws_error([&] { cross_entropy(scalar(1.0), scalar(0.0, Dtype::i64)); },
                           {"[cross_entropy] logits must have a class dimension"}));
  EXPECT_TRUE(throws_error(
      [&] {
        cross_entropy(zeros({4, 3}, Dtype::i64), y);
      },
      {"[cross_entropy] logits must be floating"}));
}

}  // namespace
}  // namespace basin::nn
