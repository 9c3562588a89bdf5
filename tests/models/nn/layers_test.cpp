// The basic layers against PyTorch (tests/fixtures/nn_fixture.py) and their own contracts:
// initialisation, shapes, train/eval, Sequential and MLP structure, gradients and errors.
#include <cmath>

#include "models/nn/layers.h"
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

TEST(NnLayers, LinearMatchesTorch) {
  Linear lin(4, 5);
  lin.load_state_dict({{"weight", fx("linear.weight")}, {"bias", fx("linear.bias")}});
  const Tensor x = fx("linear.x");  // (2, 3, 4)
  const Tensor y32 = lin(x.astype(Dtype::f32));
  EXPECT_EQ(y32.dtype(), Dtype::f32);
  EXPECT_TRUE(all_close(y32, fx("linear.out"), 1e-5, 1e-6));
  // float64 input promotes: the weights were float32-rounded, so compare at that precision.
  EXPECT_EQ(lin(x).dtype(), Dtype::f64);
  EXPECT_TRUE(all_close(lin(x), fx("linear.out"), 1e-6, 1e-6));
}

TEST(NnLayers, LinearShapesAndNoBias) {
  Generator gen(1);
  Linear lin(4, 3, true, &gen);
  EXPECT_EQ(lin.in_features(), 4);
  EXPECT_EQ(lin.out_features(), 3);
  EXPECT_EQ(lin.weight.shape(), (Shape{3, 4}));
  EXPECT_EQ(lin.bias.shape(), (Shape{3}));
  const Tensor x = make({2, 3, 5, 4}, 2, -1, 1, Dtype::f32);
  const Tensor y = lin(x);
  EXPECT_EQ(y.shape(), (Shape{2, 3, 5, 3}));
  // Each leading position is an independent row.
  const Tensor row = lin(reshape(x, {-1, 4}));
  EXPECT_TRUE(all_close(reshape(y, {-1, 3}), row, 1e-6, 1e-7));
  EXPECT_EQ(lin(make({4}, 3, -1, 1, Dtype::f32)).shape(), (Shape{3}));
  EXPECT_TRUE(all_close(lin(make({4}, 3, -1, 1, Dtype::f32)),
                        matmul(lin.weight, make({4}, 3, -1, 1, Dtype::f32)) + lin.bias, 1e-6,
                        1e-7));
  // A non-contiguous input gives the same result.
  const Tensor xt = transpose(make({4, 6}, 4, -1, 1, Dtype::f32), 0, 1);
  EXPECT_TRUE(all_close(lin(xt), lin(xt.contiguous()), 1e-6, 1e-7));

  Linear plain(4, 3, false);
  EXPECT_FALSE(plain.bias.defined());
  EXPECT_EQ(plain.named_parameters().size(), 1u);
  EXPECT_EQ(plain.repr(), "Linear(in_features=4, out_features=3, bias=false)");
  EXPECT_TRUE(all_close(plain(x), matmul(x, transpose(plain.weight, 0, 1)), 1e-6, 1e-7));
}

TEST(NnLayers, LinearInitIsTorchDefault) {
  Generator gen(2);
  Linear lin(400, 300, true, &gen);
  const double bound = 1.0 / std::sqrt(400.0);
  for (const Tensor& t : {lin.weight, lin.bias}) {
    EXPECT_LE(max(abs(t)).item<double>(), bound);
    EXPECT_GT(max(abs(t)).item<double>(), 0.9 * bound);
  }
  // U(-b, b) has standard deviation b / sqrt(3).
  EXPECT_NEAR(std(lin.weight).item<double>(), bound / std::sqrt(3.0), 0.01 * bound);
  Generator g1(3), g2(3);
  Linear a(5, 4, true, &g1), b(5, 4, true, &g2);
  EXPECT_TRUE(all_close(a.weight, b.weight, 0, 0));
  EXPECT_TRUE(all_close(a.bias, b.bias, 0, 0));
}

TEST(NnLayers, LinearGradients) {
  Linear lin(3, 2);
  // f64 input with the layer's float32 weights: the output is float64, so it can be checked.
  expect_derivatives([&](const Tensors& in) { return Tensors{lin(in[0])}; }, {make({2, 2, 3}, 5)});
  const Tensor x = make({4, 3}, 6, -1, 1, Dtype::f32);
  lin.zero_grad();
  sum(lin(x)).backward();
  EXPECT_TRUE(all_close(lin.bias.grad(), full({2}, 4.0), 0, 0));
  EXPECT_TRUE(all_close(lin.weight.grad(), broadcast_to(sum(x, {0}), {2, 3}), 1e-6, 1e-6));
}

TEST(NnLayers, LinearErrors) {
  Linear lin(4, 2);
  EXPECT_TRUE(throws_error(
      [&] {
        lin(zeros({3, 5}));
      },
      {"[Linear] input last dimension 5 does not match in_features 4"}));
  EXPECT_TRUE(throws_error([&] { lin(scalar(1.0)); }, {"[Linear]", "shape ()"}));
  EXPECT_TRUE(throws_error([&] { lin(Tensor()); }, {"[Linear] got an undefined input"}));
  EXPECT_TRUE(throws_error([] { Linear(0, 3); }, {"[Linear] in_features and out_features"}));
}

TEST(NnLayers, EmbeddingMatchesTorch) {
  Embedding emb(5, 3);
  EXPECT_EQ(emb.weight.shape(), (Shape{5, 3}));
  emb.load_state_dict({{"weight", fx("embedding.weight")}});
  const Tensor ids = fx("embedding.ids").astype(Dtype::i64);
  EXPECT_TRUE(all_close(emb(ids), fx("embedding.out"), 1e-6, 1e-7));
  EXPECT_EQ(emb(ids.astype(Dtype::i32)).shape(), (Shape{2, 2, 3}));
  EXPECT_EQ(emb.repr(), "Embedding(5, 3)");
  EXPECT_EQ(emb.num_embeddings(), 5);
  EXPECT_EQ(emb.embedding_dim(), 3);
  // Repeated ids accumulate in the gradient.
  sum(emb(tensor<int64_t>({1, 1, 4}))).backward();
  EXPECT_TRUE(all_close(sum(emb.weight.grad(), {1}), tensor<float>({0, 6, 0, 0, 3}), 0, 0));
  EXPECT_TRUE(throws_error([&] { emb(zeros({2})); }, {"[Embedding] ids must be int32 or int64"}));
  EXPECT_THROW(emb(tensor<int64_t>({5})), Error);
  EXPECT_THROW(Embedding(3, 0), Error);
  // N(0, 1) initialisation.
  Generator gen(4);
  Embedding big(1000, 100, &gen);
  EXPECT_NEAR(mean(big.weight).item<double>(), 0.0, 0.01);
  EXPECT_NEAR(std(big.weight).item<double>(), 1.0, 0.01);
}

TEST(NnLayers, LayerNormMatchesTorch) {
  LayerNorm ln(6);
  EXPECT_TRUE(all_close(ln.weight, ones({6}), 0, 0));
  EXPECT_TRUE(all_close(ln.bias, zeros({6}), 0, 0));
  ln.load_state_dict({{"weight", fx("layer_norm.weight")}, {"bias", fx("layer_norm.bias")}});
  EXPECT_TRUE(
      all_close(ln(fx("layer_norm.x").astype(Dtype::f32)), fx("layer_norm.out"), 1e-5, 1e-5));
  EXPECT_EQ(ln.repr(), "LayerNorm((6,), eps=1e-05, elementwise_affine=true)");
  LayerNorm bare(6, 1e-6, false);
  EXPECT_TRUE(bare.named_parameters().empty());
  EXPECT_EQ(bare.eps(), 1e-6);
  EXPECT_EQ(bare.dim(), 6);
  const Tensor x = make({4, 6}, 7);
  EXPECT_TRUE(all_close(bare(x), layer_norm(x, {}, {}, 1e-6), 0, 0));
  EXPECT_TRUE(throws_error(
      [&] {
        ln(zeros({2, 5}));
      },
      {"[LayerNorm] input last dimension 5 does not match dim 6"}));
  EXPECT_THROW(LayerNorm(0), Error);
  EXPECT_THROW(LayerNorm(3, -1.0), Error);
}

TEST(NnLayers, DropoutFollowsTrainingMode) {
  Generator gen(5);
  Dropout drop(0.3, &gen);
  EXPECT_EQ(drop.p(), 0.3);
  EXPECT_EQ(drop.repr(), "Dropout(p=0.3)");
  const Tensor x = ones({100000}, Dtype::f64);
  const auto v = drop(x).to_vector<double>();
  int64_t dropped = 0;
  for (double e : v) {
    if (e == 0.0) {
      ++dropped;
    } else {
      EXPECT_DOUBLE_EQ(e, 1.0 / 0.7);
    }
  }
  EXPECT_NEAR(static_cast<double>(dropped) / static_cast<double>(v.size()), 0.3, 0.01);
  // The same generator state gives the same mask (the masks come from `gen`).
  Generator g1(6), g2(6);
  Dropout d1(0.5, &g1), d2(0.5, &g2);
  EXPECT_TRUE(all_close(d1(x), d2(x), 0, 0));
  drop.eval();
  EXPECT_EQ(drop(x).impl(), x.impl());
  EXPECT_TRUE(throws_error([] { Dropout(1.5); }, {"[Dropout] probability must be in [0, 1]"}));
}

TEST(NnLayers, ActivationsMatchTorch) {
  const Tensor x = fx("act.x");
  for (const char* name : {"relu", "gelu", "gelu_tanh", "tanh", "sigmoid", "silu"}) {
    const Tensor want = fx(std::string("act.") + name);
    EXPECT_TRUE(all_close(activation(name, x), want, 1e-12, 1e-14)) << name;
    Activation module(name);
    EXPECT_TRUE(all_close(module(x), want, 1e-12, 1e-14)) << name;
    EXPECT_EQ(module.name(), name);
    EXPECT_TRUE(module.named_parameters().empty());
  }
  EXPECT_EQ(activation("identity", x).impl(), x.impl());
  EXPECT_EQ(Activation("relu").repr(), "ReLU()");
  EXPECT_EQ(Activation("gelu").repr(), "GELU(approximate='none')");
  EXPECT_EQ(Activation("gelu_tanh").repr(), "GELU(approximate='tanh')");
  EXPECT_EQ(Activation("silu").repr(), "SiLU()");
  EXPECT_EQ(Activation("identity").repr(), "Identity()");
  EXPECT_TRUE(throws_error([&] { activation("swish", x); },
                           {"[activation] unknown activation 'swish'",
                            "relu, gelu, gelu_tanh, tanh, sigmoid, silu, identity"}));
  EXPECT_TRUE(throws_error([] { Activation("Relu"); }, {"[Activation] unknown activation 'Relu'"}));
  // Twice differentiable (the energy models train through gradients).
  for (const char* name : {"gelu", "gelu_tanh", "tanh", "sigmoid", "silu"}) {
    expect_derivatives([&](const Tensors& in) { return Tensors{activation(name, in[0])}; },
                       {make({7}, 8, -2, 2)});
  }
}

TEST(NnLayers, SequentialChainsAndIndexes) {
  Sequential empty;
  const Tensor x = make({3, 4}, 9, -1, 1, Dtype::f32);
  EXPECT_EQ(empty(x).impl(), x.impl());
  EXPECT_EQ(empty.size(), 0u);
  auto lin = std::make_shared<Linear>(4, 2);
  Sequential seq({lin, std::make_shared<Activation>("tanh")});
  seq.push_back(std::make_shared<Linear>(2, 5));
  EXPECT_EQ(seq.size(), 3u);
  EXPECT_EQ(seq[0].get(), lin.get());
  const auto children = seq.named_children();
  ASSERT_EQ(children.size(), 3u);
  EXPECT_EQ(children[2].first, "2");
  const auto* last = dynamic_cast<const Linear*>(seq[2].get());
  ASSERT_NE(last, nullptr);
  const Tensor want = matmul(tanh((*lin)(x)), transpose(last->weight, 0, 1)) + last->bias;
  EXPECT_TRUE(all_close(seq(x), want, 1e-6, 1e-7));
  EXPECT_TRUE(throws_error([&] { seq[3]; }, {"[Sequential] index 3 is out of range for 3"}));
  EXPECT_TRUE(throws_error([&] { seq.push_back(nullptr); }, {"[Sequential] cannot add a null"}));
}

TEST(NnLayers, MlpStructureAndForward) {
  Generator gen(10);
  MLP mlp({5, 7, 6, 2}, "silu", 0.0, true, &gen);
  EXPECT_EQ(mlp.widths(), (std::vector<int64_t>{5, 7, 6, 2}));
  ASSERT_EQ(mlp.linears().size(), 3u);
  EXPECT_EQ(mlp.layers().size(), 5u);  // Linear, SiLU, Linear, SiLU, Linear
  EXPECT_EQ(mlp.num_parameters(), 5 * 7 + 7 + 7 * 6 + 6 + 6 * 2 + 2);
  const Tensor x = make({3, 4, 5}, 11, -1, 1, Dtype::f32);
  const auto& l = mlp.linears();
  const Tensor want = (*l[2])(silu((*l[1])(silu((*l[0])(x)))));
  EXPECT_TRUE(all_close(mlp(x), want, 1e-6, 1e-7));
  EXPECT_EQ(mlp(x).shape(), (Shape{3, 4, 2}));
  // The Linear layers draw from the generator in order: the same seed gives the same MLP.
  Generator again(10);
  MLP twin({5, 7, 6, 2}, "silu", 0.0, true, &again);
  EXPECT_TRUE(all_close(twin(x), mlp(x), 0, 0));
  // Gradients reach every parameter and the input, and are correct.
  sum(mlp(x)).backward();
  for (const auto& [name, p] : mlp.named_parameters()) EXPECT_TRUE(p.grad().defined()) << name;
  expect_derivatives([&](const Tensors& in) { return Tensors{mlp(in[0])}; }, {make({2, 5}, 12)});
  MLP single({3, 2});
  EXPECT_EQ(single.layers().size(), 1u);
}

TEST(NnLayers, MlpErrors) {
  EXPECT_TRUE(throws_error([] { MLP({4}); }, {"[MLP] needs at least two widths"}));
  EXPECT_TRUE(throws_error([] { MLP({4, 0, 2}); }, {"[MLP] widths must be positive, got 0"}));
  EXPECT_TRUE(throws_error([] { MLP({4, 2}, "mish"); }, {"[MLP] unknown activation 'mish'"}));
  EXPECT_TRUE(throws_error([] { MLP({4, 2}, "relu", 1.5); }, {"[MLP] dropout must be in [0, 1]"}));
  MLP mlp({4, 3, 2});
  EXPECT_TRUE(throws_error(
      [&] {
        mlp(zeros({2, 5}));
      },
      {"[MLP] input last dimension 5 does not match the input width 4"}));
}

}  // namespace
}  // namespace basin::nn
