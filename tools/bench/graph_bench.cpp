// basin-bench et-graph-step: one training step of the graph Energy Transformer at the size of
// ../shared/bench/torch_ref/et_graph.py: a random graph of 10,000 nodes and 50,000 undirected
// edges (mean degree 10), 32 features, 10 % anomalous nodes (feature shift); each step draws 256
// centre nodes, each with its token set [centre, up to 16 neighbours of a fixed neighbour table],
// D = 128, 4 heads × 32, M = 512 ReLU² memories, T = 12, α = 0.1, cross entropy, Adam lr 1e-3.
//
// The PyTorch model runs each token set densely (17 tokens, padding masked); basin's graph ET runs
// the same sets as one sparse graph: one local token per (set, member), every token of a set
// attending to every other token of that set (B ≠ C), so the attention and memory energies are
// those of the masked dense sets. The readout differs as the models do: PyTorch classifies
// LN(x_T) of the centre token (with a learned token-type embedding), basin [LN(x_T) ; x_0].
// et-graph-step-padded keeps the padding as isolated zero-feature tokens, so that it processes
// as many tokens as PyTorch does (the same matmul work; the padded tokens' memory energy is not
// masked, which changes the values, not the cost).
#include <omp.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include <fmt/format.h>

#include "basin/basin.h"
#include "core/counters.h"
#include "core/random.h"
#include "models/nn/loss.h"
#include "models/zoo/graph_et.h"
#include "tools/bench/bench.h"

namespace basin::bench {
namespace {

/// The random graph of et_graph.py's random_graph(): m distinct undirected edges without self
/// loops from 3m uniform draws, a fixed neighbour table (n, cap) of the first `cap` neighbours of
/// each node in random order (-1: none), N(0, 1) features and ~10 % anomalous nodes whose first
/// F/4 features are shifted by +1. Drawn with basin's Philox streams (not torch's generator).
struct RandomGraph {
  int64_t n = 0, cap = 0, num_features = 0, num_edges = 0;
  std::vector<int64_t> neighbours;  // (n, cap)
  std::vector<int64_t> labels;      // (n)
  Tensor features;                  // (n, F) f32
  double mean_degree = 0, frac_full = 0;
};

RandomGraph random_graph(int64_t n, int64_t m, int64_t num_features, int64_t cap, uint64_t seed) {
  PhiloxStream rng(seed, 0x67726170);
  std::vector<int64_t> keys;
  keys.reserve(static_cast<size_t>(3 * m));
  for (int64_t i = 0; i < 3 * m; ++i) {
    const int64_t s = rng.below(n), d = rng.below(n);
    if (s != d) keys.push_back(std::min(s, d) * n + std::max(s, d));
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  for (size_t i = keys.size(); i > 1; --i)  // Fisher–Yates, then keep the first m
    std::swap(keys[i - 1], keys[static_cast<size_t>(rng.below(static_cast<int64_t>(i)))]);
  keys.resize(static_cast<size_t>(std::min<int64_t>(m, static_cast<int64_t>(keys.size()))));

  RandomGraph g;
  g.n = n;
  g.cap = cap;
  g.num_features = num_features;
  g.num_edges = static_cast<int64_t>(keys.size());
  std::vector<std::vector<int64_t>> adj(static_cast<size_t>(n));
  for (int64_t k : keys) {
    adj[k / n].push_back(k % n);
    adj[k % n].push_back(k / n);
  }
  g.neighbours.assign(static_cast<size_t>(n * cap), -1);
  int64_t degrees = 0, full = 0;
  for (int64_t v = 0; v < n; ++v) {
    auto& row = adj[v];
    for (size_t i = row.size(); i > 1; --i)
      std::swap(row[i - 1], row[static_cast<size_t>(rng.below(static_cast<int64_t>(i)))]);
    const auto take = std::min<int64_t>(cap, static_cast<int64_t>(row.size()));
    std::copy_n(row.begin(), take, g.neighbours.begin() + v * cap);
    degrees += static_cast<int64_t>(row.size());
    full += take == cap;
  }
  g.mean_degree = static_cast<double>(degrees) / static_cast<double>(n);
  g.frac_full = static_cast<double>(full) / static_cast<double>(n);

  Generator gen(seed + 7);
  g.features = normal({n, num_features}, 0, 1, Dtype::f32, Device::cpu(), &gen);
  float* x = g.features.data<float>();
  g.labels.resize(static_cast<size_t>(n));
  for (int64_t v = 0; v < n; ++v) {
    g.labels[v] = rng.uniform_double() < 0.1 ? 1 : 0;
    if (g.labels[v] == 1)
      for (int64_t f = 0; f < num_features / 4; ++f) x[v * num_features + f] += 1.0f;
  }
  return g;
}

/// The token sets of `centres` as one graph: local tokens 0..B-1 are the centres (the targets),
/// then each set's neighbours; every token of a set attends to every other token of its set.
/// With `padded`, each set is filled up to 1 + cap tokens with tokens of node -1 (no edges,
/// zero features). Nodes gives the global id of every local token (-1: padding).
zoo::NodeSubgraph token_sets(const RandomGraph& g, const std::vector<int64_t>& centres,
                             bool padded) {
  const auto b = static_cast<int64_t>(centres.size());
  zoo::NodeSubgraph s;
  s.num_targets = b;
  s.nodes = centres;
  std::vector<std::vector<int64_t>> members(static_cast<size_t>(b));  // local ids per set
  for (int64_t i = 0; i < b; ++i) {
    members[i].push_back(i);
    for (int64_t j = 0; j < g.cap; ++j) {
      const int64_t v = g.neighbours[centres[i] * g.cap + j];
      if (v < 0 && !padded) break;
      if (v >= 0) members[i].push_back(s.num_nodes());
      s.nodes.push_back(v);
    }
  }
  // Keys of each local token, in local order: the other valid members of its set.
  std::vector<std::vector<int64_t>> keys(s.nodes.size());
  for (const auto& set : members)
    for (int64_t c : set)
      for (int64_t k : set)
        if (k != c) keys[c].push_back(k);
  std::vector<int64_t> offsets{0}, src;
  for (const auto& row : keys) {
    src.insert(src.end(), row.begin(), row.end());
    offsets.push_back(static_cast<int64_t>(src.size()));
  }
  s.graph = energy::AttentionGraph::from_csr(
      from_vector(offsets, Shape{static_cast<int64_t>(offsets.size())}),
      from_vector(src, Shape{static_cast<int64_t>(src.size())}));
  return s;
}

Json et_graph_step(const std::string& name, bool padded) {
  constexpr int64_t kNodes = 10000, kEdges = 50000, kFeatures = 32, kCap = 16, kBatch = 256;
  constexpr int64_t kDim = 128;
  manual_seed(0);
  const RandomGraph g = random_graph(kNodes, kEdges, kFeatures, kCap, 0);
  // A zero row after the features: the padding tokens' input.
  const Tensor table = concat({g.features, zeros({1, kFeatures})}, 0);

  zoo::GraphETOptions o;
  o.num_features = kFeatures;
  o.dim = kDim;
  o.steps = 12;
  o.step_size = 0.1;
  // No self edges in the token-set graph, so exclude_self has nothing to drop.
  Config block = Config::parse("heads = 4\nhead_dim = 32\nmemories = 512\n");
  auto model = std::make_shared<zoo::GraphEnergyTransformer>(
      o, energy::make_energy_transformer_block(block, kDim));
  optim::Adam adam(model->parameters(), 1e-3);

  PhiloxStream centre_rng(1, 0x63656e74);
  int64_t tokens = 0, edges = 0;
  auto step = [&] {
    std::vector<int64_t> centres(kBatch);
    for (auto& c : centres) c = centre_rng.below(kNodes);
    const zoo::NodeSubgraph s = token_sets(g, centres, padded);
    std::vector<int64_t> rows(s.nodes);
    for (auto& r : rows) r = r < 0 ? kNodes : r;
    const Tensor features =
        index_select(table, 0, from_vector(rows, Shape{static_cast<int64_t>(rows.size())}));
    std::vector<int64_t> y(kBatch);
    for (int64_t i = 0; i < kBatch; ++i) y[i] = g.labels[centres[i]];
    const Tensor logits = slice(model->forward(features, s.graph), 0, 0, kBatch);
    const Tensor loss = nn::cross_entropy(logits, from_vector(y, Shape{kBatch}));
    adam.zero_grad();
    loss.backward();
    adam.step();
    tokens = s.num_nodes();
    edges = s.graph.num_edges();
    return loss.item<double>();
  };
  const StepTiming t = time_steps(step, 20, 3);
  return {
      {"bench", name},
      {"ms_per_step", t.ms_median},
      {"ms_min", t.ms_min},
      {"peak_rss_mib", peak_rss_mib()},
      {"gflops", t.matmul_gflop / (t.ms_median / 1e3)},
      {"matmul_gflop_per_step", t.matmul_gflop},
      {"threads", omp_get_max_threads()},
      {"loss", t.last_loss},
      {"tokens_last_step", tokens},
      {"edges_last_step", edges},
      {"mean_degree", g.mean_degree},
      {"frac_full_sets", g.frac_full},
      {"size",
       fmt::format("{} nodes, {} undirected edges, {} features, batch {} centres x (1 + "
                   "up to {}) tokens{}, D=128, 4x32 heads, M=512, T=12, alpha=0.1, "
                   "Adam lr 1e-3",
                   kNodes, g.num_edges, kFeatures, kBatch, kCap, padded ? " padded to 17" : "")}};
}

const Register r1("et-graph-step", [] { return et_graph_step("et-graph-step", false); });
const Register r2("et-graph-step-padded",
                  [] { return et_graph_step("et-graph-step-padded", true); });

}  // namespace
}  // namespace basin::bench
