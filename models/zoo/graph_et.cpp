// The graph Energy Transformer, the GCN baseline, neighbourhood sampling and Laplacian
// positional encodings.
#include "models/zoo/graph_et.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "core/grad_mode.h"
#include "core/ops.h"

namespace basin::zoo {

// --- graphs -------------------------------------------------------------------------------------

namespace {

Tensor index_tensor(const std::vector<int64_t>& v) {
  return from_vector(v, Shape{static_cast<int64_t>(v.size())});
}

/// A CSR graph over local nodes from per-query key lists.
energy::AttentionGraph csr_graph(const std::vector<std::vector<int64_t>>& keys) {
  std::vector<int64_t> offsets{0}, src;
  for (const auto& row : keys) {
    src.insert(src.end(), row.begin(), row.end());
    offsets.push_back(static_cast<int64_t>(src.size()));
  }
  return energy::AttentionGraph::from_csr(index_tensor(offsets), index_tensor(src));
}

void check_square(const data::CsrMatrix& a, const char* who) {
  check(a.rows == a.cols, "[{}] the adjacency must be square, got {} x {}", who, a.rows, a.cols);
  check(static_cast<int64_t>(a.row_ptr.size()) == a.rows + 1,
        "[{}] the adjacency has {} row offsets for {} rows", who, a.row_ptr.size(), a.rows);
}

}  // namespace

data::CsrMatrix in_neighbours(const data::CsrMatrix& adjacency) {
  check_square(adjacency, "in_neighbours");
  return adjacency.transposed();
}

NodeSubgraph full_subgraph(const data::CsrMatrix& keys, bool self_loops) {
  check_square(keys, "full_subgraph");
  const int64_t n = keys.rows;
  NodeSubgraph s;
  s.nodes.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) s.nodes[i] = i;
  s.num_targets = n;
  std::vector<int64_t> offsets{0}, src;
  src.reserve(static_cast<size_t>(keys.nnz() + n));
  for (int64_t c = 0; c < n; ++c) {
    bool has_self = false;
    for (int64_t e = keys.row_ptr[c]; e < keys.row_ptr[c + 1]; ++e) {
      src.push_back(keys.col[e]);
      has_self = has_self || keys.col[e] == c;
    }
    if (self_loops && !has_self) src.push_back(c);
    offsets.push_back(static_cast<int64_t>(src.size()));
  }
  s.graph = energy::AttentionGraph::from_csr(index_tensor(offsets), index_tensor(src));
  return s;
}

NodeSubgraph sample_neighbourhood(const data::CsrMatrix& keys, std::span<const int64_t> targets,
                                  std::span<const int64_t> fanouts, uint64_t seed,
                                  bool self_loops) {
  check_square(keys, "sample_neighbourhood");
  check(!targets.empty(), "[sample_neighbourhood] no target node");
  NodeSubgraph s;
  std::unordered_map<int64_t, int64_t> local;
  auto add = [&](int64_t global) -> std::pair<int64_t, bool> {
    auto [it, inserted] = local.emplace(global, static_cast<int64_t>(s.nodes.size()));
    if (inserted) s.nodes.push_back(global);
    return {it->second, inserted};
  };
  std::vector<int64_t> frontier;
  for (int64_t t : targets) {
    check(t >= 0 && t < keys.rows,
          "[sample_neighbourhood] target node {} is outside the graph's {} nodes", t, keys.rows);
    if (add(t).second) frontier.push_back(t);
  }
  s.num_targets = s.num_nodes();
  std::vector<std::vector<int64_t>> rows(s.nodes.size());  // local keys of each local query
  std::vector<int64_t> pool;
  for (size_t hop = 0; hop < fanouts.size(); ++hop) {
    const int64_t fanout = fanouts[hop];
    std::vector<int64_t> next;
    for (int64_t v : frontier) {
      const int64_t begin = keys.row_ptr[v], degree = keys.row_size(v);
      pool.assign(keys.col.begin() + begin, keys.col.begin() + begin + degree);
      int64_t take = degree;
      if (fanout >= 0 && degree > fanout) {
        // A partial Fisher–Yates shuffle from a stream of its own for (seed, hop, node).
        PhiloxStream rng(seed, (static_cast<uint64_t>(hop) << 40) ^ static_cast<uint64_t>(v));
        for (int64_t i = 0; i < fanout; ++i)
          std::swap(pool[i], pool[i + rng.below_double(degree - i)]);
        take = fanout;
      }
      const int64_t q = local.at(v);
      for (int64_t i = 0; i < take; ++i) {
        const auto [k, fresh] = add(pool[i]);
        if (fresh) {
          next.push_back(pool[i]);
          rows.emplace_back();
        }
        rows[q].push_back(k);
      }
    }
    frontier = std::move(next);
  }
  rows.resize(s.nodes.size());
  if (self_loops) {
    for (size_t c = 0; c < rows.size(); ++c) {
      auto& r = rows[c];
      if (std::find(r.begin(), r.end(), static_cast<int64_t>(c)) == r.end())
        r.push_back(static_cast<int64_t>(c));
    }
  }
  s.graph = csr_graph(rows);
  return s;
}

Tensor gcn_edge_weights(const energy::AttentionGraph& graph, int64_t num_nodes, Dtype dtype) {
  check(graph.offsets.defined() && graph.offsets.numel() == num_nodes + 1,
        "[gcn_edge_weights] needs a CSR graph of {} nodes", num_nodes);
  const std::vector<int64_t> offsets = graph.offsets.astype(Dtype::i64).to_vector<int64_t>();
  const std::vector<int64_t> src = graph.src.astype(Dtype::i64).to_vector<int64_t>();
  std::vector<double> w(src.size());
  for (int64_t c = 0; c < num_nodes; ++c) {
    for (int64_t e = offsets[c]; e < offsets[c + 1]; ++e) {
      const int64_t b = src[e];
      const auto deg_c = static_cast<double>(offsets[c + 1] - offsets[c]);
      const auto deg_b = static_cast<double>(offsets[b + 1] - offsets[b]);
      // A key without keys of its own (a sampled node of the last hop) counts degree 1.
      w[e] = 1.0 / std::sqrt(deg_c * std::max(deg_b, 1.0));
    }
  }
  return from_vector(w, Shape{static_cast<int64_t>(w.size())}).astype(dtype);
}

Tensor propagate(const Tensor& h, const energy::AttentionGraph& graph, const Tensor& weights) {
  check(h.ndim() == 2 && graph.offsets.defined() && graph.offsets.numel() == h.shape(0) + 1,
        "[propagate] needs node states (N, D) and a CSR graph of N nodes, got {} and {} offsets",
        shape_str(h.shape()), graph.offsets.defined() ? graph.offsets.numel() : 0);
  const Tensor messages = index_select(h, 0, graph.src) * unsqueeze(weights, 1);  // (E, D)
  return segment_sum(messages, graph.offsets);                                    // (N, D)
}

// --- Laplacian positional encodings -------------------------------------------------------------

namespace {

/// Eigen-decomposition of a small symmetric matrix a (n × n, row-major) by cyclic Jacobi
/// rotations: eigenvalues into `values`, eigenvectors as the columns of `vectors`.
void symmetric_eigen(std::vector<double> a, int64_t n, std::vector<double>& values,
                     std::vector<double>& vectors) {
  vectors.assign(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) vectors[i * n + i] = 1.0;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) off += a[p * n + q] * a[p * n + q];
    if (off < 1e-30) break;
    for (int64_t p = 0; p < n; ++p) {
      for (int64_t q = p + 1; q < n; ++q) {
        const double apq = a[p * n + q];
        if (std::fabs(apq) < 1e-300) continue;
        const double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const double t =
            (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int64_t k = 0; k < n; ++k) {  // columns p, q
          const double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (int64_t k = 0; k < n; ++k) {  // rows p, q
          const double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (int64_t k = 0; k < n; ++k) {
          const double vkp = vectors[k * n + p], vkq = vectors[k * n + q];
          vectors[k * n + p] = c * vkp - s * vkq;
          vectors[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  values.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) values[i] = a[i * n + i];
}

}  // namespace

Tensor laplacian_positional_encoding(const data::CsrMatrix& adjacency, LaplacianOptions options) {
  check_square(adjacency, "laplacian_positional_encoding");
  const int64_t n = adjacency.rows, k = options.k;
  check(k > 0 && k < n, "[laplacian_positional_encoding] k must lie in [1, {}), got {}", n, k);
  check(options.iterations > 0, "[laplacian_positional_encoding] iterations must be positive");
  // Degrees without self-loops, and the connected components (for the trivial eigenvectors).
  std::vector<double> inv_sqrt_deg(static_cast<size_t>(n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t d = 0;
    for (int64_t e = adjacency.row_ptr[i]; e < adjacency.row_ptr[i + 1]; ++e)
      d += adjacency.col[e] != i;
    inv_sqrt_deg[i] = d > 0 ? 1.0 / std::sqrt(static_cast<double>(d)) : 0.0;
  }
  std::vector<int64_t> component(static_cast<size_t>(n), -1), stack;
  int64_t components = 0;
  for (int64_t s = 0; s < n; ++s) {
    if (component[s] >= 0 || inv_sqrt_deg[s] == 0) continue;
    component[s] = components;
    stack.push_back(s);
    while (!stack.empty()) {
      const int64_t v = stack.back();
      stack.pop_back();
      for (int64_t e = adjacency.row_ptr[v]; e < adjacency.row_ptr[v + 1]; ++e) {
        const int64_t u = adjacency.col[e];
        if (component[u] < 0) component[u] = components, stack.push_back(u);
      }
    }
    ++components;
  }
  // The trivial eigenvector of each component is D^{1/2} 1 there: its norm per component.
  std::vector<double> trivial_norm(static_cast<size_t>(components), 0.0);
  for (int64_t i = 0; i < n; ++i)
    if (component[i] >= 0) trivial_norm[component[i]] += 1.0 / (inv_sqrt_deg[i] * inv_sqrt_deg[i]);
  for (double& v : trivial_norm) v = std::sqrt(v);

  // Column-major block Q (n × k).
  std::vector<double> q(static_cast<size_t>(n * k)), mq(q.size());
  PhiloxStream rng(options.seed, 0x1a91ace);
  for (double& v : q) v = rng.uniform_double() - 0.5;
  auto deflate_and_orthonormalise = [&](std::vector<double>& block) {
    std::vector<double> dot(static_cast<size_t>(components));
    for (int64_t j = 0; j < k; ++j) {
      double* col = block.data() + j * n;
      std::fill(dot.begin(), dot.end(), 0.0);
      for (int64_t i = 0; i < n; ++i) {
        if (component[i] < 0) {
          col[i] = 0;  // isolated nodes
          continue;
        }
        dot[component[i]] += col[i] / inv_sqrt_deg[i] / trivial_norm[component[i]];
      }
      for (int64_t i = 0; i < n; ++i)
        if (component[i] >= 0)
          col[i] -= dot[component[i]] / inv_sqrt_deg[i] / trivial_norm[component[i]];
      for (int pass = 0; pass < 2; ++pass) {  // Gram–Schmidt, twice for stability
        for (int64_t m = 0; m < j; ++m) {
          const double* prev = block.data() + m * n;
          double d = 0;
          for (int64_t i = 0; i < n; ++i) d += col[i] * prev[i];
          for (int64_t i = 0; i < n; ++i) col[i] -= d * prev[i];
        }
      }
      double norm = 0;
      for (int64_t i = 0; i < n; ++i) norm += col[i] * col[i];
      norm = std::sqrt(norm);
      if (norm > 0)
        for (int64_t i = 0; i < n; ++i) col[i] /= norm;
    }
  };
  // M = 2I − L = I + D^{-1/2} A D^{-1/2}: the smallest eigenvalues of L are M's largest.
  auto apply_m = [&](const std::vector<double>& in, std::vector<double>& out) {
    for (int64_t j = 0; j < k; ++j) {
      const double* x = in.data() + j * n;
      double* y = out.data() + j * n;
      for (int64_t i = 0; i < n; ++i) {
        double s = x[i];
        for (int64_t e = adjacency.row_ptr[i]; e < adjacency.row_ptr[i + 1]; ++e) {
          const int64_t u = adjacency.col[e];
          if (u != i) s += inv_sqrt_deg[i] * inv_sqrt_deg[u] * x[u];
        }
        y[i] = s;
      }
    }
  };
  deflate_and_orthonormalise(q);
  for (int64_t it = 0; it < options.iterations; ++it) {
    apply_m(q, mq);
    std::swap(q, mq);
    deflate_and_orthonormalise(q);
  }
  // Rayleigh–Ritz: rotate the block onto the eigenvectors of Qᵀ M Q, largest first.
  apply_m(q, mq);
  std::vector<double> h(static_cast<size_t>(k * k)), values, vectors;
  for (int64_t a = 0; a < k; ++a) {
    for (int64_t b = 0; b < k; ++b) {
      double d = 0;
      for (int64_t i = 0; i < n; ++i) d += q[a * n + i] * mq[b * n + i];
      h[a * k + b] = d;
    }
  }
  for (int64_t a = 0; a < k; ++a)
    for (int64_t b = a + 1; b < k; ++b)
      h[a * k + b] = h[b * k + a] = 0.5 * (h[a * k + b] + h[b * k + a]);
  symmetric_eigen(h, k, values, vectors);
  std::vector<int64_t> order(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](int64_t a, int64_t b) { return values[a] > values[b]; });
  std::vector<float> out(static_cast<size_t>(n * k));  // row-major (n, k)
  for (int64_t j = 0; j < k; ++j) {
    const int64_t c = order[j];
    for (int64_t i = 0; i < n; ++i) {
      double v = 0;
      for (int64_t m = 0; m < k; ++m) v += q[m * n + i] * vectors[m * k + c];
      out[i * k + j] = static_cast<float>(v);
    }
  }
  return from_vector(out, Shape{n, k});
}

// --- the graph Energy Transformer ---------------------------------------------------------------

GraphEnergyTransformer::GraphEnergyTransformer(
    GraphETOptions options, std::shared_ptr<energy::EnergyTransformerBlock> block, Generator* gen)
    : nn::Module("GraphEnergyTransformer"), options_(options), block_(std::move(block)) {
  const auto& o = options_;
  check(o.num_features > 0, "[GraphEnergyTransformer] num_features must be positive, got {}",
        o.num_features);
  check(o.dim > 0, "[GraphEnergyTransformer] dim must be positive, got {}", o.dim);
  check(o.steps >= 0, "[GraphEnergyTransformer] steps must be >= 0, got {}", o.steps);
  check(o.step_size > 0, "[GraphEnergyTransformer] step_size must be positive, got {}",
        o.step_size);
  check(o.pos_dim >= 0, "[GraphEnergyTransformer] pos_dim must be >= 0, got {}", o.pos_dim);
  check(o.feature_dropout >= 0 && o.feature_dropout < 1,
        "[GraphEnergyTransformer] feature_dropout must lie in [0, 1), got {}", o.feature_dropout);
  check(o.dropout >= 0 && o.dropout < 1,
        "[GraphEnergyTransformer] dropout must lie in [0, 1), got {}", o.dropout);
  check(block_ != nullptr, "[GraphEnergyTransformer] the energy block is null");
  check(block_->norm()->dim() == o.dim,
        "[GraphEnergyTransformer] the energy block has dimension {}, the model {}",
        block_->norm()->dim(), o.dim);
  if (o.learnable_step) alpha_ = register_parameter("step_size", scalar(o.step_size, o.dtype));
  for (int64_t w : o.encoder_hidden)
    check(w > 0, "[GraphEnergyTransformer] encoder_hidden widths must be positive, got {}", w);
  if (o.encoder_hidden.empty()) {
    encoder =
        register_module("encoder", std::make_shared<nn::Linear>(o.num_features, o.dim, true, gen));
  } else {
    std::vector<int64_t> widths = {o.num_features};
    widths.insert(widths.end(), o.encoder_hidden.begin(), o.encoder_hidden.end());
    widths.push_back(o.dim);
    encoder = register_module("encoder", std::make_shared<nn::MLP>(widths, "relu", 0.0, true, gen));
  }
  if (o.pos_dim > 0)
    pos_encoder =
        register_module("pos_encoder", std::make_shared<nn::Linear>(o.pos_dim, o.dim, true, gen));
  register_module("et", block_);
  classifier = register_module("classifier", std::make_shared<nn::Linear>(2 * o.dim, 2, true, gen));
  if (o.dtype != Dtype::f32) {
    encoder->to(o.dtype);
    classifier->to(o.dtype);
    if (pos_encoder) pos_encoder->to(o.dtype);
  }
}

std::string GraphEnergyTransformer::extra_repr() const {
  const auto& o = options_;
  std::string s =
      fmt::format("features={}, dim={}, steps={}, step_size={}{}, pos_dim={}", o.num_features,
                  o.dim, o.steps, o.step_size, o.learnable_step ? " (learnable)" : "", o.pos_dim);
  if (!o.encoder_hidden.empty())
    s += fmt::format(", encoder_hidden=[{}]", fmt::join(o.encoder_hidden, ", "));
  if (o.feature_dropout > 0) s += fmt::format(", feature_dropout={}", o.feature_dropout);
  if (o.dropout > 0) s += fmt::format(", dropout={}", o.dropout);
  return s;
}

Tensor GraphEnergyTransformer::forward(const Tensor&) {
  fail("[GraphEnergyTransformer] forward(x) has no graph: call forward(features, graph)");
}

Tensor GraphEnergyTransformer::step_size() const {
  return alpha_.defined() ? alpha_ : scalar(options_.step_size, options_.dtype);
}

Tensor GraphEnergyTransformer::embed(const Tensor& features, const Tensor& pos) {
  const auto& o = options_;
  check(features.defined() && features.ndim() == 2 && features.shape(1) == o.num_features,
        "[GraphEnergyTransformer] expected features (N, {}), got {}", o.num_features,
        features.defined() ? shape_str(features.shape()) : "undefined");
  Tensor x = encoder->forward(
      dropout(features.astype(o.dtype), o.feature_dropout, is_training()));  // (N, D)
  if (o.pos_dim > 0) {
    check(pos.defined() && pos.ndim() == 2 && pos.shape(0) == features.shape(0) &&
              pos.shape(1) == o.pos_dim,
          "[GraphEnergyTransformer] expected positional encodings ({}, {}), got {}",
          features.shape(0), o.pos_dim, pos.defined() ? shape_str(pos.shape()) : "undefined");
    x = x + pos_encoder->forward(pos.astype(o.dtype));
  }
  return x;
}

Tensor GraphEnergyTransformer::energy(const Tensor& x, const energy::AttentionGraph& graph) {
  const Tensor g = block_->norm()->forward(x);
  return block_->attention()->energy_graph(g, graph) + block_->memory()->energy(g);
}

Tensor GraphEnergyTransformer::descend(const Tensor& x0, const energy::AttentionGraph& graph,
                                       GraphEnergyTrace* trace) {
  Tensor x = x0;
  const Tensor alpha = step_size().to(x.device()).astype(x.dtype());
  auto record = [&](const Tensor& state) {
    NoGradGuard no_grad;
    trace->push_back(energy(state.detach(), graph).item<double>());
  };
  if (trace) trace->clear();
  for (int t = 0; t < options_.steps; ++t) {
    if (trace) record(x);
    const Tensor g = block_->norm()->forward(x);  // (N, D)
    const Tensor grad =
        block_->attention()->energy_graph_grad(g, graph) + block_->memory()->energy_grad(g);
    x = x - alpha * grad;
  }
  if (trace) record(x);
  return x;
}

Tensor GraphEnergyTransformer::forward(const Tensor& features, const energy::AttentionGraph& graph,
                                       const Tensor& pos, GraphEnergyTrace* trace) {
  check(!graph.offsets.defined() || graph.offsets.numel() == features.shape(0) + 1,
        "[GraphEnergyTransformer] the graph has {} nodes, the features {}",
        graph.offsets.numel() - 1, features.shape(0));
  const Tensor x0 = embed(features, pos);
  const Tensor x = descend(x0, graph, trace);
  const Tensor readout = concat({block_->norm()->forward(x), x0}, 1);  // (N, 2D)
  return classifier->forward(dropout(readout, options_.dropout, is_training()));
}

// --- the GCN baseline ---------------------------------------------------------------------------

GraphConvNet::GraphConvNet(int64_t num_features, int64_t hidden, int64_t num_classes,
                           double dropout, Generator* gen)
    : nn::Module("GraphConvNet"), dropout_(dropout) {
  check(num_features > 0 && hidden > 0 && num_classes > 0,
        "[GraphConvNet] sizes must be positive, got features {}, hidden {}, classes {}",
        num_features, hidden, num_classes);
  check(dropout >= 0 && dropout < 1, "[GraphConvNet] dropout must lie in [0, 1), got {}", dropout);
  conv1 = register_module("conv1", std::make_shared<nn::Linear>(num_features, hidden, true, gen));
  conv2 = register_module("conv2", std::make_shared<nn::Linear>(hidden, num_classes, true, gen));
}

Tensor GraphConvNet::forward(const Tensor&) {
  fail("[GraphConvNet] forward(x) has no graph: call forward(features, graph)");
}

Tensor GraphConvNet::forward(const Tensor& features, const energy::AttentionGraph& graph) {
  check(features.defined() && features.ndim() == 2 && features.shape(1) == conv1->in_features(),
        "[GraphConvNet] expected features (N, {}), got {}", conv1->in_features(),
        features.defined() ? shape_str(features.shape()) : "undefined");
  const int64_t n = features.shape(0);
  const Tensor x = features.astype(conv1->weight.dtype());
  const Tensor w = gcn_edge_weights(graph, n, x.dtype()).to(x.device());
  auto layer = [&](const nn::Linear& linear, const Tensor& in) {
    const Tensor xw = matmul(dropout(in, dropout_, is_training()), transpose(linear.weight));
    return propagate(xw, graph, w) + linear.bias;  // Â (X W) + b
  };
  return layer(*conv2, relu(layer(*conv1, x)));
}

Tensor anomaly_class_weights(std::span<const int64_t> train_labels) {
  int64_t anomalous = 0, normal = 0;
  for (int64_t y : train_labels) {
    check(y == 0 || y == 1, "[anomaly_class_weights] labels must be 0 or 1, got {}", y);
    (y == 1 ? anomalous : normal) += 1;
  }
  check(anomalous > 0 && normal > 0,
        "[anomaly_class_weights] the training nodes need both classes, got {} normal and {} "
        "anomalous",
        normal, anomalous);
  return tensor<float>(
      {1.0f, static_cast<float>(static_cast<double>(normal) / static_cast<double>(anomalous))});
}

}  // namespace basin::zoo
