// The graph Energy Transformer against PyTorch (tests/fixtures/graph_et_fixture.py): one training
// step on a 9-node directed graph, where PyTorch masks a dense score matrix and basin runs its
// attention over the CSR edges; logits, the class-weighted loss, every gradient and the AdamW
// update, in float32 and float64, for the task's default block and for one with every option on.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "basin/basin.h"
#include "models/zoo/graph_et.h"
#include "tests/models/nn/nn_fixture_util.h"
#include "tests/test_util.h"

namespace basin::zoo {
namespace {

const char* const kFixture = "graph_et_fixture.txt";

const Tensor& fx(const std::string& name) { return basin::testing::nn_fixture(kFixture, name); }

nn::StateDict with_prefix(const std::string& prefix) {
  return basin::testing::nn_fixture_prefixed(kFixture, prefix);
}

std::vector<int64_t> indices(const std::string& name) {
  return fx(name).astype(Dtype::i64).to_vector<int64_t>();
}

/// The fixture's graph as the task builds it: the in-neighbours of the dense adjacency (row i:
/// the out-neighbours of node i) with a self-loop added to every node that lacks one.
NodeSubgraph fixture_graph() {
  const Tensor a = fx("adjacency");  // (N, N)
  const int64_t n = a.shape(0);
  const std::vector<double> dense = a.to_vector<double>();
  data::CsrMatrix adjacency;
  adjacency.rows = adjacency.cols = n;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      if (dense[i * n + j] == 0) continue;
      adjacency.col.push_back(j);
      adjacency.values.push_back(1.0);
    }
    adjacency.row_ptr.push_back(adjacency.nnz());
  }
  adjacency.validate("graph_et_fixture");
  return full_subgraph(in_neighbours(adjacency));
}

/// "plain": the block the graph_et task builds by default; "full": learnable β per head,
/// exclude_self, attention biases, the regularized layer norm, a learnable α and positional
/// encodings. F = 5, D = 8, 2 heads × 3, M = 10, T = 3; the weights are PyTorch's (strict).
std::shared_ptr<GraphEnergyTransformer> fixture_model(const std::string& variant, Dtype dtype) {
  const bool full = variant == "full";
  const Config block = Config::parse(fmt::format(
      "heads = 2\nhead_dim = 3\nmemories = 10\nlearnable_beta = {0}\nexclude_self = {0}\n"
      "bias = {0}\nregularized = {0}\n",
      full));
  GraphETOptions o;
  o.num_features = 5;
  o.dim = 8;
  o.steps = 3;
  o.step_size = full ? 0.4 : 0.5;
  o.learnable_step = full;
  o.pos_dim = full ? 3 : 0;
  o.dtype = dtype;
  auto model = std::make_shared<GraphEnergyTransformer>(
      o, energy::make_energy_transformer_block(block, o.dim, dtype));
  model->load_state_dict(with_prefix(variant + ".init."));
  return model;
}

/// Relative error max|a − b| / max|b|.
double rel_error(const Tensor& a, const Tensor& b) {
  const double scale = std::max(max(abs(b.astype(Dtype::f64))).item<double>(), 1e-30);
  return max(abs(a.astype(Dtype::f64) - b.astype(Dtype::f64))).item<double>() / scale;
}

/// Logits, loss and gradients within `rtol` of PyTorch's (relative to each tensor's largest
/// entry), and the parameters after one AdamW step within `atol`.
void training_step_matches_torch(const std::string& variant, Dtype dtype, double rtol,
                                 double atol) {
  const std::string pre = variant + ".";
  auto model = fixture_model(variant, dtype);
  model->train();
  const NodeSubgraph s = fixture_graph();
  const Tensor features = fx("features").astype(dtype);
  const Tensor pos = model->options().pos_dim > 0 ? fx("pos").astype(dtype) : Tensor();
  const std::vector<int64_t> train = indices("train"), labels = indices("labels");
  std::vector<int64_t> train_labels;
  for (int64_t i : train) train_labels.push_back(labels[static_cast<size_t>(i)]);
  const Tensor weight = anomaly_class_weights(train_labels);
  EXPECT_TRUE(basin::testing::all_close(weight, fx("class_weight"), 0, 0));
  const auto b = static_cast<int64_t>(train.size());

  optim::AdamW opt(model->parameters(), 1e-2,
                   {.betas = {0.9, 0.999}, .eps = 1e-8, .weight_decay = 0.01});
  opt.zero_grad();
  const Tensor logits = model->forward(features, s.graph, pos);  // (N, 2)
  double worst = rel_error(logits, fx(pre + "logits"));
  EXPECT_LE(worst, rtol) << variant << " logits";
  const Tensor loss = nn::cross_entropy(index_select(logits, 0, from_vector(train, Shape{b})),
                                        from_vector(train_labels, Shape{b}), weight.astype(dtype));
  const double want_loss = fx(pre + "loss").to_vector<double>()[0];
  const double loss_error = std::abs(loss.item<double>() - want_loss) / std::abs(want_loss);
  EXPECT_LE(loss_error, rtol) << variant << " loss";
  worst = std::max(worst, loss_error);
  loss.backward();
  const auto named = model->named_parameters();
  EXPECT_EQ(named.size(), with_prefix(pre + "grad.").size());
  for (const auto& [name, p] : named) {
    ASSERT_TRUE(p.grad().defined()) << variant << " " << name;
    const double e = rel_error(p.grad(), fx(pre + "grad." + name));
    EXPECT_LE(e, rtol) << variant << " grad " << name;
    worst = std::max(worst, e);
  }
  opt.step();
  double worst_step = 0;
  const nn::StateDict after = model->state_dict();
  const nn::StateDict want = with_prefix(pre + "final.");
  EXPECT_EQ(after.size(), want.size());
  for (const auto& [name, t] : want) {
    ASSERT_TRUE(after.contains(name)) << variant << " " << name;
    // Absolute: the step moves every entry by about lr, whatever its size.
    const double e = max(abs(after.at(name).astype(Dtype::f64) - t)).item<double>();
    EXPECT_LE(e, atol) << variant << " " << name;
    worst_step = std::max(worst_step, e);
  }
  ::testing::Test::RecordProperty("max_rel_error", fmt::format("{:.3g}", worst));
  ::testing::Test::RecordProperty("max_abs_error_after_step", fmt::format("{:.3g}", worst_step));
}

TEST(GraphETModel, FixtureGraphHasSelfLoopsAndAnIsolatedNode) {
  const NodeSubgraph s = fixture_graph();
  ASSERT_EQ(s.num_nodes(), 9);
  const auto offsets = s.graph.offsets.to_vector<int64_t>();
  const auto src = s.graph.src.to_vector<int64_t>();
  EXPECT_EQ(offsets[9] - offsets[8], 1);  // node 8: its self-loop only
  EXPECT_EQ(src[offsets[8]], 8);
  EXPECT_EQ(s.graph.num_edges(), 12 + 7 + 9 - 2);  // 2 × 6 undirected, 7 directed, self-loops
}

TEST(GraphETModel, TrainingStepMatchesPyTorchInFloat32) {
  training_step_matches_torch("plain", Dtype::f32, 1e-4, 1e-5);
}

TEST(GraphETModel, TrainingStepMatchesPyTorchInFloat64) {
  training_step_matches_torch("plain", Dtype::f64, 1e-10, 1e-12);
}

TEST(GraphETModel, TrainingStepMatchesPyTorchWithEveryOptionInFloat32) {
  training_step_matches_torch("full", Dtype::f32, 1e-4, 1e-5);
}

TEST(GraphETModel, TrainingStepMatchesPyTorchWithEveryOptionInFloat64) {
  training_step_matches_torch("full", Dtype::f64, 1e-10, 1e-12);
}

}  // namespace
}  // namespace basin::zoo
