// The graph Energy Transformer and its baselines: neighbourhood sampling (exact against the full
// graph when nothing is dropped), the GCN against its dense formula, derivatives in float64, the
// descent's energy, Laplacian positional encodings, short training runs, and the tasks' configs.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <set>

#include "basin/basin.h"
#include "data/graph.h"
#include "models/zoo/graph_et.h"
#include "tests/test_util.h"

namespace basin::zoo {
namespace {

using basin::testing::all_close;
using basin::testing::make;
using basin::testing::TempDir;
using basin::testing::throws_error;

/// A symmetric CSR adjacency from undirected edges (no duplicates kept).
data::CsrMatrix adjacency_of(int64_t n, const std::vector<std::pair<int64_t, int64_t>>& edges) {
  std::vector<std::set<int64_t>> rows(static_cast<size_t>(n));
  for (auto [a, b] : edges) {
    rows[a].insert(b);
    rows[b].insert(a);
  }
  data::CsrMatrix m;
  m.rows = m.cols = n;
  for (const auto& r : rows) {
    for (int64_t c : r) {
      m.col.push_back(c);
      m.values.push_back(1.0);
    }
    m.row_ptr.push_back(m.nnz());
  }
  return m;
}

/// A graph whose anomalous nodes (about a fifth) have a shifted first feature and link mostly to
/// each other.
data::Graph synthetic_graph(int64_t n, uint64_t seed, int64_t features = 4) {
  PhiloxStream rng(seed, 7);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[i] = i % 5 == 0 ? 1 : 0;
  std::vector<std::pair<int64_t, int64_t>> edges;
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < 3; ++k) {
      int64_t j = rng.below(n);
      if (labels[i] == 1 && k < 2) j = 5 * rng.below(n / 5);  // another anomaly
      if (j != i) edges.emplace_back(i, j);
    }
  }
  std::vector<float> x(static_cast<size_t>(n * features));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t f = 0; f < features; ++f) {
      const double noise = rng.uniform_double() + rng.uniform_double() - 1.0;
      x[i * features + f] = static_cast<float>(noise + (f == 0 && labels[i] == 1 ? 0.8 : 0.0));
    }
  }
  data::Graph g;
  g.num_nodes = n;
  g.adjacency = adjacency_of(n, edges);
  g.features = from_vector(x, Shape{n, features});
  g.labels = from_vector(labels, Shape{n});
  return g;
}

std::shared_ptr<GraphEnergyTransformer> small_et(int64_t features, Dtype dtype, int steps = 2,
                                                 int64_t pos_dim = 0, double dropout = 0.0,
                                                 double feature_dropout = 0.0) {
  Config block = Config::parse(
      "heads = 2\nhead_dim = 3\nmemories = 8\nattn_init_std = 0.5\nhopfield_init_std = 0.5\n");
  GraphETOptions o;
  o.num_features = features;
  o.dim = 4;
  o.steps = steps;
  o.step_size = 0.3;
  o.pos_dim = pos_dim;
  o.dropout = dropout;
  o.feature_dropout = feature_dropout;
  o.dtype = dtype;
  return std::make_shared<GraphEnergyTransformer>(
      o, energy::make_energy_transformer_block(block, 4, dtype));
}

TEST(GraphETSampling, FullSubgraphAndSampledNeighbourhoods) {
  const data::Graph g = synthetic_graph(30, 1);
  const NodeSubgraph full = full_subgraph(g.adjacency);
  EXPECT_EQ(full.num_targets, 30);
  EXPECT_EQ(full.graph.num_edges(), g.num_edges() + 30);  // plus a self-loop per node

  const std::vector<int64_t> targets = {3, 7, 11}, fanouts = {2, 2};
  const NodeSubgraph s = sample_neighbourhood(g.adjacency, targets, fanouts, 5);
  ASSERT_EQ(s.num_targets, 3);
  EXPECT_EQ(std::vector<int64_t>(s.nodes.begin(), s.nodes.begin() + 3), targets);
  const auto offsets = s.graph.offsets.to_vector<int64_t>();
  const auto src = s.graph.src.to_vector<int64_t>();
  ASSERT_EQ(static_cast<int64_t>(offsets.size()), s.num_nodes() + 1);
  for (int64_t c = 0; c < s.num_nodes(); ++c) {
    EXPECT_LE(offsets[c + 1] - offsets[c], 3) << c;  // two sampled keys and the self-loop
    for (int64_t e = offsets[c]; e < offsets[c + 1]; ++e) {
      const int64_t gc = s.nodes[c], gb = s.nodes[src[e]];
      const auto* row = g.adjacency.col.data() + g.adjacency.row_ptr[gc];
      const bool neighbour =
          std::find(row, row + g.adjacency.row_size(gc), gb) != row + g.adjacency.row_size(gc);
      EXPECT_TRUE(neighbour || gb == gc) << gc << " <- " << gb;
    }
  }
  // The same arguments give the same sample; another seed another one (on this graph).
  const NodeSubgraph again = sample_neighbourhood(g.adjacency, targets, fanouts, 5);
  EXPECT_EQ(again.nodes, s.nodes);
  EXPECT_TRUE(all_close(again.graph.src, s.graph.src, 0, 0));
  const std::vector<int64_t> wide = {-1};
  const NodeSubgraph one_hop = sample_neighbourhood(g.adjacency, targets, wide, 9);
  EXPECT_EQ(one_hop.graph.offsets.to_vector<int64_t>()[1], g.adjacency.row_size(3) + 1);

  const std::vector<int64_t> outside = {30};
  EXPECT_TRUE(throws_error([&] { sample_neighbourhood(g.adjacency, outside, fanouts, 0); },
                           {"[sample_neighbourhood]", "30"}));
}

/// With every key kept and enough hops, the targets' outputs on the sampled neighbourhood equal
/// those on the whole graph.
TEST(GraphETSampling, UnlimitedFanoutsReproduceTheFullGraph) {
  manual_seed(2);
  const data::Graph g = synthetic_graph(40, 2);
  const Tensor x = g.features.astype(Dtype::f64);
  const NodeSubgraph full = full_subgraph(g.adjacency);
  const std::vector<int64_t> targets = {0, 9, 17, 33};
  const Tensor index = from_vector(targets, Shape{4});
  const std::vector<int64_t> all3 = {-1, -1, -1};
  const NodeSubgraph s = sample_neighbourhood(g.adjacency, targets, all3, 0);
  const Tensor local = index_select(x, 0, from_vector(s.nodes, Shape{s.num_nodes()}));

  auto et = small_et(4, Dtype::f64, 2);  // T = 2 steps need 3 hops
  const Tensor want = index_select(et->forward(x, full.graph), 0, index);
  EXPECT_TRUE(all_close(slice(et->forward(local, s.graph), 0, 0, 4), want, 1e-10, 1e-12));

  GraphConvNet gcn(4, 5);  // 2 layers need 3 hops for the degrees
  gcn.to(Dtype::f64);
  const Tensor want_gcn = index_select(gcn.forward(x, full.graph), 0, index);
  EXPECT_TRUE(all_close(slice(gcn.forward(local, s.graph), 0, 0, 4), want_gcn, 1e-10, 1e-12));
}

TEST(GraphETGcn, MatchesTheDenseFormulaAndItsDerivatives) {
  manual_seed(3);
  const data::Graph g = synthetic_graph(10, 3, 3);
  const NodeSubgraph full = full_subgraph(g.adjacency);
  GraphConvNet gcn(3, 4);
  gcn.to(Dtype::f64);
  const Tensor x = g.features.astype(Dtype::f64);
  // Â = D^{-1/2} (A + I) D^{-1/2}
  const Tensor a = g.adjacency.to_dense() + eye(10, -1, Dtype::f64);
  const Tensor d = reshape(rsqrt(sum(a, {1})), {10, 1});
  const Tensor norm = d * a * transpose(d);
  auto dense = [&](const Tensor& in) {
    const Tensor h = relu(matmul(norm, matmul(in, transpose(gcn.conv1->weight))) + gcn.conv1->bias);
    return matmul(norm, matmul(h, transpose(gcn.conv2->weight))) + gcn.conv2->bias;
  };
  EXPECT_TRUE(all_close(gcn.forward(x, full.graph), dense(x), 1e-10, 1e-12));
  const Tensor w = gcn_edge_weights(full.graph, 10, Dtype::f64);
  basin::testing::expect_derivatives(
      [&](const Tensors& in) -> Tensors { return {propagate(in[0], full.graph, in[1])}; },
      {make({10, 3}, 4), w});
  basin::testing::expect_derivatives(
      [&](const Tensors& in) -> Tensors { return {gcn.forward(in[0], full.graph)}; },
      {make({10, 3}, 5)}, /*second=*/false);
}

TEST(GraphETModel, DerivativesInFloat64) {
  manual_seed(4);
  const data::Graph g = synthetic_graph(8, 4, 3);
  const NodeSubgraph full = full_subgraph(g.adjacency);
  auto et = small_et(3, Dtype::f64, 2, /*pos_dim=*/2);
  const Tensor pos = make({8, 2}, 6);
  const Tensor weight = from_vector<double>({1.0, 4.0}, Shape{2});
  const Tensor labels = g.labels;
  // The weighted loss as a function of the features, the encoder and the attention weights.
  const Fn f = [&](const Tensors& in) -> Tensors {
    std::dynamic_pointer_cast<nn::Linear>(et->encoder)->weight = in[1];
    et->block().attention()->wq = in[2];
    return {nn::cross_entropy(et->forward(in[0], full.graph, pos), labels, weight)};
  };
  GradcheckOptions o;
  o.atol = 1e-7;
  const Tensors inputs = {make({8, 3}, 7), make({4, 3}, 8), make({2, 3, 4}, 9)};
  basin::testing::expect_derivatives(f, inputs, /*second=*/true, o);
  // The logits themselves, in the positional encodings and the classifier.
  const Fn logits = [&](const Tensors& in) -> Tensors {
    et->classifier->weight = in[1];
    return {et->forward(g.features.astype(Dtype::f64), full.graph, in[0])};
  };
  basin::testing::expect_derivatives(logits, {make({8, 2}, 10), make({2, 8}, 11)}, false, o);
}

TEST(GraphETModel, TheDescentLowersTheEnergy) {
  manual_seed(5);
  const data::Graph g = synthetic_graph(30, 5);
  const NodeSubgraph full = full_subgraph(g.adjacency);
  auto et = small_et(4, Dtype::f64, 6);
  GraphEnergyTrace trace;
  NoGradGuard no_grad;
  et->forward(g.features, full.graph, Tensor(), &trace);
  ASSERT_EQ(trace.size(), 7u);
  for (size_t t = 1; t < trace.size(); ++t) EXPECT_LE(trace[t], trace[t - 1] + 1e-9) << t;
  EXPECT_LT(trace.back(), trace.front());
}

TEST(GraphETModel, LaplacianEncodingsAreTheSmallestNonTrivialEigenvectors) {
  // A ring of 12 nodes: the normalised Laplacian's eigenvalues are 1 − cos(2πj/12).
  std::vector<std::pair<int64_t, int64_t>> ring;
  for (int64_t i = 0; i < 12; ++i) ring.emplace_back(i, (i + 1) % 12);
  const data::CsrMatrix a = adjacency_of(12, ring);
  LaplacianOptions lo;
  lo.k = 3;
  const Tensor pe = laplacian_positional_encoding(a, lo).astype(Dtype::f64);  // (12, 3)
  ASSERT_EQ(pe.shape(), (Shape{12, 3}));
  const Tensor lap = eye(12, -1, Dtype::f64) - 0.5 * a.to_dense();
  const Tensor rayleigh = sum(pe * matmul(lap, pe), {0});  // columns have unit norm
  const double l1 = 1 - std::cos(2 * M_PI / 12), l2 = 1 - std::cos(4 * M_PI / 12);
  EXPECT_TRUE(all_close(rayleigh, from_vector<double>({l1, l1, l2}, Shape{3}), 1e-4, 1e-5));
  EXPECT_TRUE(all_close(matmul(transpose(pe), pe), eye(3, -1, Dtype::f64), 1e-5, 1e-5));
  EXPECT_TRUE(all_close(sum(pe, {0}), zeros({3}, Dtype::f64), 0, 1e-5));  // ⟂ the constant
  EXPECT_TRUE(throws_error([&] { laplacian_positional_encoding(a, {.k = 12}); },
                           {"[laplacian_positional_encoding]", "k"}));
}

TEST(GraphETModel, ClassWeightsAndErrors) {
  const std::vector<int64_t> y = {0, 0, 0, 1, 0, 0, 1, 0};
  EXPECT_TRUE(all_close(anomaly_class_weights(y), from_vector<float>({1, 3}, Shape{2})));
  const std::vector<int64_t> normal_only = {0, 0};
  EXPECT_TRUE(throws_error([&] { anomaly_class_weights(normal_only); }, {"both classes"}));
  auto et = small_et(4, Dtype::f32);
  const NodeSubgraph full = full_subgraph(synthetic_graph(10, 1).adjacency);
  EXPECT_TRUE(throws_error(
      [&] {
        et->forward(zeros({10, 5}), full.graph);
      },
      {"[GraphEnergyTransformer]", "(N, 4)", "(10, 5)"}));
  EXPECT_TRUE(throws_error([&] { et->forward(zeros({9, 4}), full.graph); }, {"10 nodes", "9"}));
  EXPECT_TRUE(throws_error([&] { et->forward(zeros({1})); }, {"forward(features, graph)"}));
  Config block = Config::parse("heads = 2\nhead_dim = 4\n");
  GraphETOptions o;
  o.num_features = 3;
  o.dim = 8;
  EXPECT_TRUE(throws_error(
      [&] { GraphEnergyTransformer(o, energy::make_energy_transformer_block(block, 16)); },
      {"dimension 16", "8"}));
  o.dropout = 1.0;
  EXPECT_TRUE(throws_error(
      [&] { GraphEnergyTransformer(o, energy::make_energy_transformer_block(block, 8)); },
      {"dropout", "[0, 1)"}));
}

TEST(GraphETModel, DropoutActsInTrainingOnly) {
  manual_seed(7);
  const data::Graph g = synthetic_graph(20, 2);
  const NodeSubgraph full = full_subgraph(g.adjacency);
  for (auto [dropout, feature_dropout] : {std::pair{0.5, 0.0}, std::pair{0.0, 0.5}}) {
    auto plain = small_et(4, Dtype::f64);
    auto et = small_et(4, Dtype::f64, 2, 0, dropout, feature_dropout);
    et->load_state_dict(plain->state_dict());
    const Tensor x = g.features.astype(Dtype::f64);
    const Tensor want = plain->forward(x, full.graph);
    const Tensor a = et->forward(x, full.graph), b = et->forward(x, full.graph);
    EXPECT_FALSE(all_close(a, want, 1e-6, 1e-6)) << "training draws masks";
    EXPECT_FALSE(all_close(a, b, 1e-6, 1e-6)) << "a new mask every call";
    et->eval();
    EXPECT_TRUE(all_close(et->forward(x, full.graph), want, 0, 0)) << "the identity in eval";
  }
}

TEST(GraphETModel, AnMlpEncoder) {
  manual_seed(8);
  const data::Graph g = synthetic_graph(12, 3);
  const NodeSubgraph full = full_subgraph(g.adjacency);
  Config block = Config::parse("heads = 2\nhead_dim = 3\nmemories = 8\n");
  GraphETOptions o;
  o.num_features = 4;
  o.dim = 6;
  o.encoder_hidden = {5};
  o.dtype = Dtype::f64;
  GraphEnergyTransformer et(o, energy::make_energy_transformer_block(block, 6, Dtype::f64));
  const nn::StateDict state = et.state_dict();
  EXPECT_EQ(state.at("encoder.layers.0.weight").shape(), (Shape{5, 4}));
  EXPECT_EQ(state.at("encoder.layers.2.weight").shape(), (Shape{6, 5}));
  EXPECT_EQ(state.count("encoder.weight"), 0u);
  // x_0 = W_2 ReLU(W_1 x + b_1) + b_2.
  const Tensor x = g.features.astype(Dtype::f64);
  const Tensor hidden = relu(matmul(x, transpose(state.at("encoder.layers.0.weight"))) +
                             state.at("encoder.layers.0.bias"));
  const Tensor want = matmul(hidden, transpose(state.at("encoder.layers.2.weight"))) +
                      state.at("encoder.layers.2.bias");
  EXPECT_TRUE(all_close(et.embed(x), want));
  const Fn f = [&](const Tensors& in) -> Tensors { return {et.forward(in[0], full.graph)}; };
  GradcheckOptions go;
  go.atol = 1e-7;
  basin::testing::expect_derivatives(f, {make({12, 4}, 12)}, /*second=*/true, go);
  o.encoder_hidden = {0};
  EXPECT_TRUE(throws_error(
      [&] { GraphEnergyTransformer(o, energy::make_energy_transformer_block(block, 6)); },
      {"encoder_hidden", "0"}));
}

TEST(GraphETModel, AShortFullBatchRunLowersTheLoss) {
  manual_seed(6);
  const data::Graph g = synthetic_graph(80, 6);
  const NodeSubgraph full = full_subgraph(g.adjacency);
  auto et = small_et(4, Dtype::f32, 3);
  optim::Adam adam(et->parameters(), 1e-2);
  const Tensor weight = anomaly_class_weights(g.labels.to_vector<int64_t>());
  double first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    const Tensor loss = nn::cross_entropy(et->forward(g.features, full.graph), g.labels, weight);
    if (step == 0) first = loss.item<double>();
    last = loss.item<double>();
    adam.zero_grad();
    loss.backward();
    adam.step();
  }
  EXPECT_LT(last, 0.7 * first) << "from " << first;
}

// --- the tasks ----------------------------------------------------------------------------------

class GraphETTask : public ::testing::Test {
 protected:
  void SetUp() override {
    const data::Graph g = synthetic_graph(150, 11);
    std::ofstream edges(dir_ / "edges.csv"), x(dir_ / "x.csv"), y(dir_ / "y.csv");
    edges << "src,dst\n";
    for (int64_t r = 0; r < g.adjacency.rows; ++r)
      for (int64_t e = g.adjacency.row_ptr[r]; e < g.adjacency.row_ptr[r + 1]; ++e)
        edges << r << "," << g.adjacency.col[e] << "\n";
    const auto xv = g.features.to_vector<float>();
    for (int64_t i = 0; i < g.num_nodes; ++i)
      x << xv[i * 4] << "," << xv[i * 4 + 1] << "," << xv[i * 4 + 2] << "," << xv[i * 4 + 3]
        << "\n";
    for (int64_t v : g.labels.to_vector<int64_t>()) y << v << "\n";
  }

  std::string config_text(const std::string& model) const {
    return fmt::format(R"([model]
{}
[data]
type = "graph"
root = "{}"
edges = "edges.csv"
features = "x.csv"
labels = "y.csv"
train_ratio = 0.4
[train]
steps = 30
batch_size = 64
drop_last = false
log_every = 1000
[optim]
type = "adam"
lr = 1e-2
)",
                       model, dir_.path().string());
  }

  train::Metrics train(const std::string& model, train::Metrics* before = nullptr) {
    train::TrainerOptions o;
    o.run_dir = dir_ / "run";
    o.quiet = true;
    std::filesystem::remove_all(o.run_dir);
    train::Trainer trainer(Config::parse(config_text(model)), o);
    if (before) *before = trainer.task().evaluate("train");
    const train::Metrics m = trainer.run();
    for (const char* key :
         {"roc_auc", "macro_f1", "precision", "recall", "threshold", "average_precision", "loss"})
      EXPECT_TRUE(m.count(key)) << model << ": " << key;
    EXPECT_GE(m.at("threshold"), 0.05 - 1e-12);
    EXPECT_LE(m.at("threshold"), 0.95 + 1e-12);
    const train::Metrics test = trainer.task().evaluate("test");
    EXPECT_TRUE(test.count("roc_auc"));
    if (before) {
      EXPECT_LT(trainer.task().evaluate("train").at("loss"), 0.9 * before->at("loss")) << model;
    }
    return m;
  }

  TempDir dir_;
};

TEST_F(GraphETTask, EtFullBatchAndSampledRunsLearn) {
  train::Metrics before;
  const train::Metrics full = train(
      "type = \"graph_et\"\ndim = 8\nsteps = 2\n[model.block]\nheads = 2\nhead_dim = 4\n"
      "memories = 16\n",
      &before);
  EXPECT_GT(full.at("roc_auc"), 0.75);
  const train::Metrics sampled = train(
      "type = \"graph_et\"\nsampling = \"neighbours\"\nfanouts = [4, 4]\ndim = 8\nsteps = 2\n"
      "pos_dim = 2\n[model.block]\nheads = 2\nhead_dim = 4\nmemories = 16\n");
  EXPECT_GT(sampled.at("roc_auc"), 0.75);
}

TEST_F(GraphETTask, BaselinesRunInTheSameProtocol) {
  EXPECT_GT(train("type = \"graph_mlp\"\nhidden = [16]\n").at("roc_auc"), 0.7);
  EXPECT_GT(train("type = \"graph_gcn\"\nhidden = 16\n").at("roc_auc"), 0.75);
}

TEST_F(GraphETTask, BadConfigsNameTheKey) {
  auto make = [&](const std::string& model, const std::string& set = "") {
    Config c = Config::parse(config_text(model));
    if (!set.empty()) c.set(set);
    return train::make_task({c, Device::cpu(), 0});
  };
  EXPECT_TRUE(throws_error([&] { make("type = \"graph_et\"\nsampling = \"some\"\n"); },
                           {"model.sampling", "some"}));
  EXPECT_TRUE(
      throws_error([&] { make("type = \"graph_et\"\nfanouts = [0]\n"); }, {"model.fanouts"}));
  EXPECT_TRUE(throws_error([&] { make("type = \"graph_et\"\nsteps = -1\n"); }, {"model.steps"}));
  EXPECT_TRUE(throws_error([&] { make("type = \"graph_gcn\"\nhidden = 0\n"); }, {"model.hidden"}));
  EXPECT_TRUE(throws_error([&] { make("type = \"graph_et\"\nfeature_dropout = -0.1\n"); },
                           {"model.feature_dropout"}));
  EXPECT_TRUE(
      throws_error([&] { make("type = \"graph_et\"\ndropout = 1.0\n"); }, {"model.dropout"}));
  EXPECT_TRUE(throws_error([&] { make("type = \"graph_et\"\nencoder_hidden = [8, 0]\n"); },
                           {"model.encoder_hidden"}));
  EXPECT_TRUE(throws_error([&] { make("type = \"graph_mlp\"\n", "data.train_ratio=1.5"); },
                           {"data.train_ratio"}));
  EXPECT_TRUE(throws_error([&] { make("type = \"graph_mlp\"\n", "data.normalize=\"l2\""); },
                           {"data.normalize"}));
  EXPECT_TRUE(throws_error([&] { make("type = \"graph_et\"\n", "data.labels=\"nope.csv\""); },
                           {"nope.csv"}));
  EXPECT_TRUE(throws_error([&] { make("type = \"graph_mlp\"\nselect_by = \"f1\"\n"); },
                           {"model.select_by", "f1"}));
  auto task = make("type = \"graph_mlp\"\n");
  EXPECT_EQ(task->primary_metric(), "roc_auc");
  EXPECT_EQ(make("type = \"graph_mlp\"\nselect_by = \"macro_f1\"\n")->primary_metric(), "macro_f1");
  EXPECT_TRUE(throws_error([&] { task->evaluate("dev"); }, {"'dev'", "val, test, train"}));
}

}  // namespace
}  // namespace basin::zoo
