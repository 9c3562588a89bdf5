// model.type = "graph_et", "graph_mlp" and "graph_gcn": node anomaly detection on one graph (the
// graph Energy Transformer and its two baselines, trained and evaluated in the same protocol).
//
//   [model]
//   type = "graph_et"          # or graph_mlp, graph_gcn
//   sampling = "full"          # full: every step runs the whole graph; neighbours: each batch of
//                              # target nodes runs on its sampled k-hop neighbourhood
//   fanouts = [16, 8]          # keys drawn per node at each hop (neighbours; -1: all of them)
//   eval_batch = 2048          # target nodes per evaluation batch (neighbours)
//   class_weight = true        # cross entropy with weight #normal/#anomalous on class 1
//   select_by = "roc_auc"      # the validation metric that picks the best checkpoint; or
//                              # "macro_f1" (at the tuned threshold), as the reference code does
//   # graph_et:
//   dim = 64                   # D
//   steps = 4                  # T
//   step_size = 0.5            # α
//   learnable_step = false
//   pos_dim = 0                # Laplacian-eigenvector positional encodings (0: none)
//   pos_iterations = 300       # block power iterations that compute them
//   encoder_hidden = []        # hidden widths of an MLP encoder (ReLU); [] : one Linear F → D
//   feature_dropout = 0.0      # dropout on the node features in training
//   dropout = 0.0              # dropout on the readout's input [LN(x_T) ; x_0] in training
//   [model.block]              # the Energy Transformer block (models/energy/et_block.h)
//   heads = 2
//   head_dim = 32
//   # graph_mlp: hidden = [64, 64], dropout = 0.0;  graph_gcn: hidden = 64, dropout = 0.0
//
//   [data]
//   type = "graph"
//   root = "../shared/data/fraud-amazon-tam"
//   file = "Amazon.zip"        # read by data::read_graph (.mat or .zip, TAM or CARE-GNN layout)
//   # or a plain edge list (data::read_edge_list): edges = "edges.csv", features = "x.csv",
//   # labels = "y.csv"
//   train_ratio = 0.4          # stratified; the rest is split 1:2 into validation and test
//   test_fraction = 0.67
//   first_node = 0             # 3305 for CARE-GNN's Amazon
//   split_seed = -1            # -1: the run's seed
//   normalize = "standardize"  # per feature over the training nodes; or "row" (L1), "none"
//   symmetrize = false         # add the reverse of every edge
//   self_loops = true          # every node attends to / aggregates itself too
//
// The training items are the training nodes (train.batch_size of them per step; a batch as large
// as the training set with drop_last = false is full-batch training). Evaluation ("val", "test",
// "train") reports roc_auc, average_precision, and macro_f1, precision and recall at the
// threshold on P(anomalous) in {0.05, 0.10, ..., 0.95} that maximises macro-F1 on validation.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <numeric>

#include <fmt/format.h>

#include "core/error.h"
#include "core/grad_mode.h"
#include "core/ops.h"
#include "data/graph.h"
#include "data/metrics.h"
#include "data/split.h"
#include "models/nn/layers.h"
#include "models/nn/loss.h"
#include "models/train/task.h"
#include "models/zoo/graph_et.h"

namespace basin::zoo {
namespace {

namespace fs = std::filesystem;

energy::AttentionGraph graph_to(const energy::AttentionGraph& g, Device device) {
  energy::AttentionGraph out = g;
  out.src = g.src.to(device);
  out.dst = g.dst.to(device);
  if (g.offsets.defined()) out.offsets = g.offsets.to(device);
  return out;
}

enum class Sampling { full, neighbours };

/// What the three models share: the graph, its split, features, the sampling, the loss and the
/// metrics. A model says how it turns a subgraph into logits of its targets.
class GraphNodeTask : public train::Task {
 public:
  GraphNodeTask(const train::TaskContext& ctx, const std::string& name)
      : device_(ctx.device), name_(name) {
    Config config = ctx.config;
    Config data_section = config.section("data");
    data_section.get_choice("type", "graph", {"graph"});
    const std::string root = data_section.get<std::string>("root", "");
    auto in_root = [&](const std::string& file) {
      return (root.empty() ? fs::path(file) : fs::path(root) / file).string();
    };
    data::Graph graph;
    if (data_section.has("edges")) {  // a plain edge list with features and labels beside it
      const auto edges = data_section.get<std::string>("edges");
      const auto features = data_section.get<std::string>("features");
      const auto labels = data_section.get<std::string>("labels");
      graph = data::read_edge_list(in_root(edges), in_root(features), in_root(labels));
    } else {
      graph = data::read_graph(in_root(data_section.get<std::string>("file")));
    }
    if (data_section.get<bool>("symmetrize", false))
      graph.adjacency = data::symmetrize(graph.adjacency);
    self_loops_ = data_section.get<bool>("self_loops", true);

    labels_ = graph.labels.astype(Dtype::i64).to_vector<int64_t>();
    for (int64_t y : labels_) {
      check(y == 0 || y == 1, "[{}] labels must be 0 (normal) or 1 (anomalous), got {}", name_, y);
    }
    const double train_ratio = data_section.get<double>("train_ratio", 0.4);
    check(train_ratio > 0 && train_ratio < 1,
          "[config] data.train_ratio: must lie in (0, 1), got {}", train_ratio);
    const double test_fraction = data_section.get<double>("test_fraction", 0.67);
    check(test_fraction > 0 && test_fraction < 1,
          "[config] data.test_fraction: must lie in (0, 1), got {}", test_fraction);
    const int64_t first_node = data_section.get<int64_t>("first_node", 0);
    check(first_node >= 0 && first_node < graph.num_nodes,
          "[config] data.first_node: must lie in [0, {}), got {}", graph.num_nodes, first_node);
    const int64_t split_seed = data_section.get<int64_t>("split_seed", -1);
    check(split_seed >= -1,
          "[config] data.split_seed: must be >= 0 (or -1: the run's seed), got {}", split_seed);
    split_ = data::split_nodes(labels_, train_ratio,
                               split_seed < 0 ? ctx.seed : static_cast<uint64_t>(split_seed),
                               first_node, test_fraction);

    const std::string normalize =
        data_section.get_choice("normalize", "standardize", {"standardize", "row", "none"});
    Tensor features = graph.features.astype(Dtype::f32);
    if (normalize == "standardize") features = data::standardize_features(features, split_.train);
    if (normalize == "row") features = data::row_normalize(features);
    features_ = features.to(device_);
    adjacency_ = graph.adjacency;
    keys_ = in_neighbours(graph.adjacency);

    Config model = config.section("model");
    sampling_ = model.get_choice("sampling", "full", {"full", "neighbours"}) == "full"
                    ? Sampling::full
                    : Sampling::neighbours;
    fanouts_ = model.get<std::vector<int64_t>>("fanouts", {16, 8});
    check(!fanouts_.empty(), "[config] model.fanouts: needs at least one hop");
    for (int64_t f : fanouts_) {
      check(f == -1 || f > 0,
            "[config] model.fanouts: each hop draws > 0 keys (or -1: all), got {}", f);
    }
    eval_batch_ = model.get<int64_t>("eval_batch", 2048);
    check(eval_batch_ > 0, "[config] model.eval_batch: must be positive, got {}", eval_batch_);
    std::vector<int64_t> train_labels;
    for (int64_t i : split_.train) train_labels.push_back(labels_[static_cast<size_t>(i)]);
    if (model.get<bool>("class_weight", true))
      class_weight_ = anomaly_class_weights(train_labels).to(device_);
    select_by_ = model.get_choice("select_by", "roc_auc", {"roc_auc", "macro_f1"});
    sample_seed_ = data::derive_seed(ctx.seed, 0x6772617068);
    train_ = data::tensor_dataset(
        {{"node", from_vector(split_.train, Shape{static_cast<int64_t>(split_.train.size())})}});
    model_ = model;
  }

  data::DatasetPtr<data::Example> train_data() override { return train_; }
  void set_epoch(int64_t epoch) override { epoch_ = epoch; }
  std::vector<std::string> splits() const override { return {"val", "test", "train"}; }
  std::string primary_metric() const override { return select_by_; }

  Tensor loss(const data::Example& batch, train::Metrics& logs) override {
    const std::vector<int64_t> targets =
        batch.at("node").to(Device::cpu()).astype(Dtype::i64).to_vector<int64_t>();
    const Tensor logits = target_logits(targets, sample_seed(targets));  // (B, 2)
    std::vector<int64_t> y;
    for (int64_t t : targets) y.push_back(labels_[static_cast<size_t>(t)]);
    const Tensor target = from_vector(y, Shape{static_cast<int64_t>(y.size())}).to(device_);
    {
      NoGradGuard no_grad;
      logs["accuracy"] = data::accuracy_from_logits(logits.detach(), target);
    }
    return nn::cross_entropy(logits, target, class_weight_);
  }

  train::Metrics evaluate(const std::string& split) override {
    check(split == "val" || split == "test" || split == "train",
          "[{}] unknown split '{}' (this model has: val, test, train)", name_, split);
    NoGradGuard no_grad;
    const std::vector<int64_t>& nodes =
        split == "val" ? split_.val : (split == "test" ? split_.test : split_.train);
    // The threshold is tuned on validation, so validation is scored for every split.
    const Scored val = score(split_.val);
    const Scored here = split == "val" ? val : score(nodes);
    double best_f1 = -1, threshold = 0.5;
    for (int i = 1; i <= 19; ++i) {
      const double t = i / 20.0;
      const double f = data::macro_f1(predict(val.probability, t), val.labels, 2);
      if (f > best_f1) best_f1 = f, threshold = t;
    }
    const std::vector<int64_t> predicted = predict(here.probability, threshold);
    train::Metrics m;
    m["loss"] = here.loss;
    m["roc_auc"] = data::roc_auc(here.probability, here.labels);
    m["average_precision"] = data::average_precision(here.probability, here.labels);
    m["threshold"] = threshold;
    m["macro_f1"] = data::macro_f1(predicted, here.labels, 2);
    m["precision"] = data::precision(predicted, here.labels);
    m["recall"] = data::recall(predicted, here.labels);
    return m;
  }

 protected:
  /// Logits (n, 2) of the local nodes of `s` (the first s.num_targets rows are the targets'),
  /// `features` (n, F) the local nodes' features on the device.
  virtual Tensor subgraph_logits(const NodeSubgraph& s, const Tensor& features) = 0;
  /// Whether the model reads the graph at all (the MLP does not).
  virtual bool uses_graph() const { return true; }

  Config& model_config() { return model_; }
  Device device() const { return device_; }
  int64_t num_features() const { return features_.shape(1); }
  const data::CsrMatrix& adjacency() const { return adjacency_; }
  int64_t num_nodes() const { return features_.shape(0); }

 private:
  struct Scored {
    std::vector<double> probability;  // P(anomalous) per node
    std::vector<int64_t> labels;
    double loss = 0;
  };

  static std::vector<int64_t> predict(const std::vector<double>& p, double threshold) {
    std::vector<int64_t> out(p.size());
    for (size_t i = 0; i < p.size(); ++i) out[i] = p[i] >= threshold ? 1 : 0;
    return out;
  }

  uint64_t sample_seed(const std::vector<int64_t>& targets) const {
    uint64_t h = static_cast<uint64_t>(epoch_);
    for (int64_t t : targets) h = h * 1000003u + static_cast<uint64_t>(t);
    return data::derive_seed(sample_seed_, h);
  }

  /// Logits (B, 2) of `targets` (distinct node ids), on the device.
  Tensor target_logits(const std::vector<int64_t>& targets, uint64_t seed) {
    const auto b = static_cast<int64_t>(targets.size());
    const Tensor index = from_vector(targets, Shape{b}).to(device_);
    if (!uses_graph()) {
      NodeSubgraph s;
      s.nodes = targets;
      s.num_targets = b;
      return subgraph_logits(s, index_select(features_, 0, index));
    }
    if (sampling_ == Sampling::full) {
      if (!full_) {
        NodeSubgraph s = full_subgraph(keys_, self_loops_);
        s.graph = graph_to(s.graph, device_);
        full_ = std::make_shared<NodeSubgraph>(std::move(s));
      }
      return index_select(subgraph_logits(*full_, features_), 0, index);
    }
    NodeSubgraph s = sample_neighbourhood(keys_, targets, fanouts_, seed, self_loops_);
    check(s.num_targets == b, "[{}] a batch of target nodes holds a node twice", name_);
    s.graph = graph_to(s.graph, device_);
    const Tensor local = from_vector(s.nodes, Shape{s.num_nodes()}).to(device_);
    return slice(subgraph_logits(s, index_select(features_, 0, local)), 0, 0, b);
  }

  Scored score(const std::vector<int64_t>& nodes) {
    Scored s;
    Tensors logits;
    const bool whole = uses_graph() && sampling_ == Sampling::full;
    const auto n = static_cast<int64_t>(nodes.size());
    const int64_t step = whole ? n : eval_batch_;
    for (int64_t start = 0; start < n; start += step) {
      const std::vector<int64_t> part(nodes.begin() + start,
                                      nodes.begin() + std::min(n, start + step));
      // A fixed sample per evaluation batch: every evaluation sees the same neighbourhoods.
      logits.push_back(target_logits(part, data::derive_seed(sample_seed_, 0xe7a1 + start))
                           .to(Device::cpu())
                           .astype(Dtype::f64));
    }
    const Tensor all = concat(logits, 0);  // (n, 2)
    for (int64_t v : nodes) s.labels.push_back(labels_[static_cast<size_t>(v)]);
    const Tensor target = from_vector(s.labels, Shape{n});
    s.loss =
        nn::cross_entropy(
            all, target,
            class_weight_.defined() ? class_weight_.to(Device::cpu()).astype(Dtype::f64) : Tensor())
            .item<double>();
    s.probability = slice(softmax(all, 1), 1, 1, 2).contiguous().to_vector<double>();
    return s;
  }

  Device device_;
  std::string name_;
  Config model_;
  std::vector<int64_t> labels_;
  data::NodeSplit split_;
  Tensor features_;  // (N, F) f32 on the device
  data::CsrMatrix adjacency_, keys_;
  bool self_loops_ = true;
  Sampling sampling_ = Sampling::full;
  std::vector<int64_t> fanouts_;
  int64_t eval_batch_ = 2048;
  Tensor class_weight_;
  std::string select_by_ = "roc_auc";
  uint64_t sample_seed_ = 0;
  int64_t epoch_ = 0;
  std::shared_ptr<NodeSubgraph> full_;
  data::DatasetPtr<data::Example> train_;
};

class GraphEtTask : public GraphNodeTask {
 public:
  explicit GraphEtTask(const train::TaskContext& ctx) : GraphNodeTask(ctx, "graph_et") {
    Config& model = model_config();
    GraphETOptions o;
    o.num_features = num_features();
    o.dim = model.get<int64_t>("dim", 64);
    check(o.dim > 0, "[config] model.dim: must be positive, got {}", o.dim);
    o.steps = static_cast<int>(model.get<int64_t>("steps", 4));
    check(o.steps >= 0, "[config] model.steps: must be >= 0, got {}", o.steps);
    o.step_size = model.get<double>("step_size", 0.5);
    check(o.step_size > 0, "[config] model.step_size: must be positive, got {}", o.step_size);
    o.learnable_step = model.get<bool>("learnable_step", false);
    o.pos_dim = model.get<int64_t>("pos_dim", 0);
    check(o.pos_dim >= 0 && o.pos_dim < num_nodes(),
          "[config] model.pos_dim: must lie in [0, {}), got {}", num_nodes(), o.pos_dim);
    o.encoder_hidden = model.get<std::vector<int64_t>>("encoder_hidden", {});
    for (int64_t w : o.encoder_hidden)
      check(w > 0, "[config] model.encoder_hidden: widths must be positive, got {}", w);
    o.feature_dropout = model.get<double>("feature_dropout", 0.0);
    check(o.feature_dropout >= 0 && o.feature_dropout < 1,
          "[config] model.feature_dropout: must lie in [0, 1), got {}", o.feature_dropout);
    o.dropout = model.get<double>("dropout", 0.0);
    check(o.dropout >= 0 && o.dropout < 1, "[config] model.dropout: must lie in [0, 1), got {}",
          o.dropout);
    const int64_t iterations = model.get<int64_t>("pos_iterations", 300);
    check(iterations > 0, "[config] model.pos_iterations: must be positive, got {}", iterations);
    Config block = model.section("block");
    block.get<int64_t>("heads", 2);
    block.get<int64_t>("head_dim", 32);
    net_ = std::make_shared<GraphEnergyTransformer>(
        o, energy::make_energy_transformer_block(block, o.dim));
    net_->to(device());
    if (o.pos_dim > 0) {
      LaplacianOptions lo;
      lo.k = o.pos_dim;
      lo.iterations = iterations;
      lo.seed = ctx.seed;
      pos_ = laplacian_positional_encoding(adjacency(), lo).to(device());
    }
  }

  nn::Module& model() override { return *net_; }

 protected:
  Tensor subgraph_logits(const NodeSubgraph& s, const Tensor& features) override {
    Tensor pos;
    if (pos_.defined()) {
      pos = index_select(pos_, 0, from_vector(s.nodes, Shape{s.num_nodes()}).to(device()));
      // Eigenvectors have no sign: flip each at random in training.
      if (net_->is_training()) {
        const Tensor signs = rand({1, pos.shape(1)});
        pos = pos * where(signs < 0.5, -1.0, ones_like(signs)).to(device());
      }
    }
    return net_->forward(features, s.graph, pos);
  }

 private:
  std::shared_ptr<GraphEnergyTransformer> net_;
  Tensor pos_;  // (N, pos_dim) or undefined
};

class GraphMlpTask : public GraphNodeTask {
 public:
  explicit GraphMlpTask(const train::TaskContext& ctx) : GraphNodeTask(ctx, "graph_mlp") {
    Config& model = model_config();
    const auto hidden = model.get<std::vector<int64_t>>("hidden", {64, 64});
    for (int64_t h : hidden)
      check(h > 0, "[config] model.hidden: widths must be positive, got {}", h);
    const double dropout = model.get<double>("dropout", 0.0);
    check(dropout >= 0 && dropout < 1, "[config] model.dropout: must lie in [0, 1), got {}",
          dropout);
    std::vector<int64_t> widths = {num_features()};
    widths.insert(widths.end(), hidden.begin(), hidden.end());
    widths.push_back(2);
    net_ = std::make_shared<nn::MLP>(widths, "relu", dropout);
    net_->to(device());
  }

  nn::Module& model() override { return *net_; }

 protected:
  Tensor subgraph_logits(const NodeSubgraph&, const Tensor& features) override {
    return net_->forward(features);
  }
  bool uses_graph() const override { return false; }

 private:
  std::shared_ptr<nn::MLP> net_;
};

class GraphGcnTask : public GraphNodeTask {
 public:
  explicit GraphGcnTask(const train::TaskContext& ctx) : GraphNodeTask(ctx, "graph_gcn") {
    Config& model = model_config();
    const int64_t hidden = model.get<int64_t>("hidden", 64);
    check(hidden > 0, "[config] model.hidden: must be positive, got {}", hidden);
    const double dropout = model.get<double>("dropout", 0.0);
    check(dropout >= 0 && dropout < 1, "[config] model.dropout: must lie in [0, 1), got {}",
          dropout);
    net_ = std::make_shared<GraphConvNet>(num_features(), hidden, 2, dropout);
    net_->to(device());
  }

  nn::Module& model() override { return *net_; }

 protected:
  Tensor subgraph_logits(const NodeSubgraph& s, const Tensor& features) override {
    return net_->forward(features, s.graph);
  }

 private:
  std::shared_ptr<GraphConvNet> net_;
};

BASIN_REGISTER_TASK("graph_et",
                    "graph Energy Transformer: node anomaly detection (data.type = \"graph\")",
                    [](const train::TaskContext& ctx) {
                      return std::make_unique<GraphEtTask>(ctx);
                    });
BASIN_REGISTER_TASK(
    "graph_mlp", "MLP on node features, the graph_et protocol's baseline (data.type = \"graph\")",
    [](const train::TaskContext& ctx) { return std::make_unique<GraphMlpTask>(ctx); });
BASIN_REGISTER_TASK("graph_gcn",
                    "2-layer GCN, the graph_et protocol's baseline (data.type = \"graph\")",
                    [](const train::TaskContext& ctx) {
                      return std::make_unique<GraphGcnTask>(ctx);
                    });

}  // namespace
}  // namespace basin::zoo
