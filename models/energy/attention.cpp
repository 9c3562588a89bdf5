// EnergyAttention: dense and graph energies with public ops, the closed-form gradients (the fused
// op's fallback, and the graph form), argument checks and the "attention" registration.
#include "models/energy/attention.h"

#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "core/ops.h"
#include "core/prims/energy.h"

namespace basin::energy {
namespace {

constexpr double kInf = INFINITY;

bool is_index(Dtype d) { return d == Dtype::i32 || d == Dtype::i64; }

/// Checks the weights against g and returns the dtype every operand is computed in.
Dtype check_weights(const Tensor& g, const AttentionWeights& w) {
  check(g.defined(), "[EnergyAttention] g is undefined");
  check(w.wq.defined() && w.wk.defined() && w.beta.defined(),
        "[EnergyAttention] wq, wk and beta must all be defined");
  check(w.wq.ndim() == 3, "[EnergyAttention] wq must have shape (heads, head_dim, dim), got {}",
        shape_str(w.wq.shape()));
  check(w.wk.shape() == w.wq.shape(), "[EnergyAttention] wk has shape {} but wq has shape {}",
        shape_str(w.wk.shape()), shape_str(w.wq.shape()));
  const int64_t h = w.wq.shape(0), y = w.wq.shape(1), d = w.wq.shape(2);
  check(w.beta.shape() == Shape{h}, "[EnergyAttention] beta must have shape ({},), got {}", h,
        shape_str(w.beta.shape()));
  check(w.bq.defined() == w.bk.defined(), "[EnergyAttention] bq and bk come together");
  for (const Tensor& b : {w.bq, w.bk}) {
    check(!b.defined() || b.shape() == Shape{h, y},
          "[EnergyAttention] a bias must have shape ({}, {}), got {}", h, y,
          b.defined() ? shape_str(b.shape()) : "");
  }
  check(g.ndim() == 2 || g.ndim() == 3,
        "[EnergyAttention] g must have shape (tokens, dim) or (batch, tokens, dim), got {}",
        shape_str(g.shape()));
  check(is_floating(g.dtype()), "[EnergyAttention] g needs a floating dtype, got {}",
        dtype_name(g.dtype()));
  check(g.shape(-1) == d, "[EnergyAttention] g has {} features but the weights expect {} (g {})",
        g.shape(-1), d, shape_str(g.shape()));
  Dtype dtype = g.dtype();
  for (const Tensor& t : {w.wq, w.wk, w.beta, w.bq, w.bk}) {
    if (!t.defined()) continue;
    check(t.device() == g.device(), "[EnergyAttention] a weight is on {}, g on {}",
          t.device().str(), g.device().str());
    dtype = promote_types(dtype, t.dtype());
  }
  check(is_floating(dtype), "[EnergyAttention] needs floating tensors, got {}", dtype_name(dtype));
  return dtype;
}

/// The weights cast to `dtype` (casts are recorded, so gradients reach the originals).
AttentionWeights cast(const AttentionWeights& w, Dtype dtype) {
  auto as = [dtype](const Tensor& t) { return t.defined() ? t.astype(dtype) : t; };
  return {as(w.wq), as(w.wk), as(w.beta), as(w.bq), as(w.bk)};
}

void check_mask(const Tensor& mask, const Tensor& g) {
  if (!mask.defined()) return;
  check(mask.dtype() == Dtype::boolean, "[EnergyAttention] the mask must be bool, got {}",
        dtype_name(mask.dtype()));
  check(mask.device() == g.device(), "[EnergyAttention] the mask is on {}, g on {}",
        mask.device().str(), g.device().str());
  const int64_t n = g.shape(-2);
  const bool square = mask.ndim() >= 2 && mask.shape(-1) == n && mask.shape(-2) == n;
  const bool batched = mask.ndim() == 3 && g.ndim() == 3 && mask.shape(0) == g.shape(0);
  check(square && (mask.ndim() == 2 || batched),
        "[EnergyAttention] the mask of shape {} must be (N, N){} for g of shape {}",
        shape_str(mask.shape()), g.ndim() == 3 ? " or (B, N, N)" : "", shape_str(g.shape()));
}

/// Queries and keys of every head, (..., H, N, Y), from g (..., N, D).
std::pair<Tensor, Tensor> project_dense(const Tensor& g, const AttentionWeights& w) {
  // All heads in one product, (..., N, D) @ (D, H·Y), then split: one large GEMM (and one for
  // each weight gradient) instead of a small product per sample and head.
  const int64_t h = w.wq.shape(0), y = w.wq.shape(1), d = w.wq.shape(2), n = g.shape(-2);
  Shape split(g.shape().begin(), g.shape().end() - 2);
  split.insert(split.end(), {n, h, y});
  auto project = [&](const Tensor& weight, const Tensor& bias) {
    Tensor out = matmul(g, transpose(reshape(weight, {h * y, d})));  // (..., N, H·Y)
    if (bias.defined()) out = out + reshape(bias, {h * y});
    return swapaxes(reshape(out, split), -3, -2);  // (..., H, N, Y)
  };
  return {project(w.wq, w.bq), project(w.wk, w.bk)};
}

/// Which keys each query may use, broadcastable to the scores (..., H, N, N); undefined when all.
Tensor allowed_keys(const Tensor& mask, bool exclude_self, int64_t n, Device device) {
  Tensor allowed = mask;
  if (allowed.defined() && allowed.ndim() == 3) allowed = unsqueeze(allowed, 1);  // (B, 1, N, N)
  if (exclude_self) {
    const Tensor idx = arange(n, Dtype::i64, device);
    const Tensor off_diagonal = not_equal(reshape(idx, {n, 1}), reshape(idx, {1, n}));
    allowed = allowed.defined() ? logical_and(allowed, off_diagonal) : off_diagonal;
  }
  return allowed;
}

/// β_h Q_C·K_B for every head, query C and key B, (..., H, N_C, N_B); -inf where not allowed.
Tensor dense_scores(const Tensor& q, const Tensor& k, const Tensor& beta, const Tensor& allowed) {
  const int64_t h = beta.shape(0);
  Tensor s = matmul(q, transpose(k)) * reshape(beta, {h, 1, 1});
  if (allowed.defined()) s = where(allowed, s, -kInf);
  return s;
}

/// The inputs of the dense fused ops: g (B, N, D), wq, wk, beta, [bq, bk], [mask].
Tensors dense_inputs(const Tensor& x, const AttentionWeights& w, const Tensor& mask) {
  Tensors inputs{x, w.wq, w.wk, w.beta};
  if (w.bq.defined()) {
    inputs.push_back(w.bq);
    inputs.push_back(w.bk);
  }
  if (mask.defined()) inputs.push_back(mask);
  return inputs;
}

/// −Σ_h (1/β_h) Σ_C lse_{hC}, where a query with no allowed key (lse = -inf) contributes 0.
Tensor energy_from_lse(Tensor lse, const Tensor& beta, int h_axis_from_end) {
  lse = where(lse > -kInf, lse, 0.0);
  Shape bshape(static_cast<size_t>(h_axis_from_end), 1);
  bshape[0] = beta.shape(0);
  return neg(sum(lse / reshape(beta, bshape)));
}

// --- graphs ------------------------------------------------------------------------------------

void check_graph(const AttentionGraph& graph, const Tensor& g) {
  check(g.ndim() == 2, "[EnergyAttention] graph attention needs node states (N, D), got {}",
        shape_str(g.shape()));
  check(graph.src.defined() && graph.dst.defined(),
        "[EnergyAttention] the graph needs src and dst (build it with AttentionGraph::from_edges "
        "or from_csr)");
  for (const Tensor& t : {graph.src, graph.dst, graph.offsets}) {
    if (!t.defined()) continue;
    check(is_index(t.dtype()), "[EnergyAttention] graph indices must be int32 or int64, got {}",
          dtype_name(t.dtype()));
    check(t.ndim() == 1, "[EnergyAttention] graph indices must be 1-D, got shape {}",
          shape_str(t.shape()));
    check(t.device() == g.device(), "[EnergyAttention] the graph is on {}, g on {}",
          t.device().str(), g.device().str());
  }
  check(graph.src.numel() == graph.dst.numel(), "[EnergyAttention] src has {} edges but dst has {}",
        graph.src.numel(), graph.dst.numel());
  check(!graph.offsets.defined() || graph.offsets.numel() == g.shape(0) + 1,
        "[EnergyAttention] CSR offsets of length {} do not match {} nodes (need N + 1)",
        graph.offsets.numel(), g.shape(0));
}

/// Per edge: the query and key of every head, (E, H, Y) each, and the scores β_h K_src·Q_dst
/// (E, H), -inf on self-edges when exclude_self.
struct EdgeTerms {
  Tensor q_dst, k_src, scores;
};

EdgeTerms edge_terms(const Tensor& g, const AttentionWeights& w, const AttentionGraph& graph,
                     bool exclude_self) {
  const int64_t n = g.shape(0), h = w.wq.shape(0), y = w.wq.shape(1), d = w.wq.shape(2);
  Tensor q = reshape(matmul(g, transpose(reshape(w.wq, {h * y, d}))), {n, h, y});
  Tensor k = reshape(matmul(g, transpose(reshape(w.wk, {h * y, d}))), {n, h, y});
  if (w.bq.defined()) {
    q = q + w.bq;
    k = k + w.bk;
  }
  EdgeTerms e;
  e.q_dst = index_select(q, 0, graph.dst);
  e.k_src = index_select(k, 0, graph.src);
  e.scores = sum(e.q_dst * e.k_src, {-1}) * w.beta;
  if (exclude_self) {
    e.scores = where(unsqueeze(equal(graph.src, graph.dst), 1), -kInf, e.scores);
  }
  return e;
}

/// Reduces edge rows into their query node: by offsets when the graph is CSR, else by dst.
Tensor sum_into_queries(const Tensor& rows, const AttentionGraph& graph, int64_t n) {
  return graph.offsets.defined() ? segment_sum(rows, graph.offsets)
                                 : segment_sum(rows, graph.dst, n);
}

}  // namespace

// --- functional forms --------------------------------------------------------------------------

Tensor energy_attention(const Tensor& g, const AttentionWeights& weights, const Tensor& mask,
                        bool exclude_self) {
  const Dtype dtype = check_weights(g, weights);
  check_mask(mask, g);
  const AttentionWeights w = cast(weights, dtype);
  const Tensor x = g.ndim() == 2 ? unsqueeze(g.astype(dtype), 0) : g.astype(dtype);
  const Tensors inputs = dense_inputs(x, w, mask);
  return apply(
      std::make_shared<prims::EnergyAttentionValue>(w.bq.defined(), mask.defined(), exclude_self),
      inputs, Shape{}, dtype);
}

Tensor energy_attention_grad(const Tensor& g, const AttentionWeights& weights, const Tensor& mask,
                             bool exclude_self) {
  const Dtype dtype = check_weights(g, weights);
  check_mask(mask, g);
  const AttentionWeights w = cast(weights, dtype);
  const Tensor x = g.ndim() == 2 ? unsqueeze(g.astype(dtype), 0) : g.astype(dtype);
  const Tensors inputs = dense_inputs(x, w, mask);
  const Tensor out = apply(
      std::make_shared<prims::EnergyAttentionGrad>(w.bq.defined(), mask.defined(), exclude_self),
      inputs, x.shape(), dtype);
  return g.ndim() == 2 ? reshape(out, g.shape()) : out;
}

Tensor energy_attention_graph(const Tensor& g, const AttentionWeights& weights,
                              const AttentionGraph& graph, bool exclude_self) {
  const Dtype dtype = check_weights(g, weights);
  check_graph(graph, g);
  const AttentionWeights w = cast(weights, dtype);
  const Tensor x = g.astype(dtype);
  const int64_t n = x.shape(0);
  const EdgeTerms e = edge_terms(x, w, graph, exclude_self);
  const Tensor lse = graph.offsets.defined() ? segment_logsumexp(e.scores, graph.offsets)
                                             : segment_logsumexp(e.scores, graph.dst, n);
  return energy_from_lse(lse, w.beta, 1);  // lse (N, H)
}

Tensor energy_attention_graph_grad(const Tensor& g, const AttentionWeights& weights,
                                   const AttentionGraph& graph, bool exclude_self) {
  const Dtype dtype = check_weights(g, weights);
  check_graph(graph, g);
  const AttentionWeights w = cast(weights, dtype);
  const Tensor x = g.astype(dtype);
  const int64_t n = x.shape(0), h = w.wq.shape(0), y = w.wq.shape(1), d = w.wq.shape(2);
  if (graph.offsets.defined() && h * y > 0) {
    // CSR: the per-edge work is one fused op between the projections, −[U V] [W_Q ; W_K] with
    // [U V] from [Q K] = g [W_Q ; W_K]ᵀ (+ biases).
    const Tensor wqk = concat({reshape(w.wq, {h * y, d}), reshape(w.wk, {h * y, d})}, 0);
    Tensor qk = matmul(x, transpose(wqk));
    if (w.bq.defined()) qk = qk + concat({reshape(w.bq, {h * y}), reshape(w.bk, {h * y})}, 0);
    const Tensor uv = apply(std::make_shared<prims::EnergyAttentionGraphCore>(h, exclude_self),
                            {qk, w.beta, graph.offsets, graph.src}, {n, 2 * h * y}, dtype);
    return neg(matmul(uv, wqk));
  }
  const EdgeTerms e = edge_terms(x, w, graph, exclude_self);
  const Tensor p = unsqueeze(graph.offsets.defined() ? segment_softmax(e.scores, graph.offsets)
                                                     : segment_softmax(e.scores, graph.dst, n),
                             -1);  // (E, H, 1)
  // Queries pulled towards their neighbours' keys; keys towards the queries attending to them.
  const Tensor dq = reshape(sum_into_queries(p * e.k_src, graph, n), {n, h * y});
  const Tensor dk = reshape(segment_sum(p * e.q_dst, graph.src, n), {n, h * y});
  return neg(matmul(dq, reshape(w.wq, {h * y, d})) + matmul(dk, reshape(w.wk, {h * y, d})));
}

// --- graphs ------------------------------------------------------------------------------------

AttentionGraph AttentionGraph::from_edges(const Tensor& src, const Tensor& dst) {
  check(src.defined() && dst.defined(), "[AttentionGraph] src and dst must be defined");
  check(is_index(src.dtype()) && is_index(dst.dtype()),
        "[AttentionGraph] src and dst must be int32 or int64, got {} and {}",
        dtype_name(src.dtype()), dtype_name(dst.dtype()));
  check(src.ndim() == 1 && src.shape() == dst.shape(),
        "[AttentionGraph] src and dst must be 1-D of one length, got {} and {}",
        shape_str(src.shape()), shape_str(dst.shape()));
  return {src, dst, Tensor()};
}

AttentionGraph AttentionGraph::from_csr(const Tensor& offsets, const Tensor& src) {
  check(offsets.defined() && src.defined(), "[AttentionGraph] offsets and src must be defined");
  check(is_index(offsets.dtype()) && is_index(src.dtype()),
        "[AttentionGraph] offsets and src must be int32 or int64, got {} and {}",
        dtype_name(offsets.dtype()), dtype_name(src.dtype()));
  check(offsets.ndim() == 1 && offsets.numel() >= 1 && src.ndim() == 1,
        "[AttentionGraph] offsets (N + 1) and src (E) must be 1-D, got {} and {}",
        shape_str(offsets.shape()), shape_str(src.shape()));
  return {src, segment_ids_from_offsets(offsets, src.numel()), offsets};
}

AttentionGraph AttentionGraph::complete(int64_t n, bool self_loops) {
  check(n >= 0, "[AttentionGraph] the number of nodes must be non-negative, got {}", n);
  std::vector<int64_t> offsets{0}, src;
  for (int64_t c = 0; c < n; ++c) {
    for (int64_t b = 0; b < n; ++b) {
      if (self_loops || b != c) src.push_back(b);
    }
    offsets.push_back(static_cast<int64_t>(src.size()));
  }
  const auto e = static_cast<int64_t>(src.size());
  return from_csr(from_vector(offsets, {n + 1}), from_vector(src, {e}));
}

// --- the module --------------------------------------------------------------------------------

EnergyAttention::EnergyAttention(int64_t dim, int64_t heads, int64_t head_dim,
                                 AttentionOptions options, Generator* gen)
    : EnergyModule("EnergyAttention"),
      dim_(dim),
      heads_(heads),
      head_dim_(head_dim),
      options_(options) {
  check(dim > 0 && heads > 0 && head_dim > 0,
        "[EnergyAttention] dim, heads and head_dim must be positive, got {}, {}, {}", dim, heads,
        head_dim);
  check(options.init_std >= 0.0, "[EnergyAttention] init_std must be non-negative, got {}",
        options.init_std);
  check(is_floating(options.dtype), "[EnergyAttention] needs a floating dtype, got {}",
        dtype_name(options.dtype));
  const double b = options.beta.value_or(1.0 / std::sqrt(static_cast<double>(head_dim)));
  check(b > 0.0 && std::isfinite(b), "[EnergyAttention] beta must be positive, got {}", b);
  const Dtype dt = options.dtype;
  const Shape wshape{heads, head_dim, dim};
  wq = register_parameter("wq", normal(wshape, 0.0, options.init_std, dt, Device::cpu(), gen));
  wk = register_parameter("wk", normal(wshape, 0.0, options.init_std, dt, Device::cpu(), gen));
  const Tensor betas = full({heads}, b, dt);
  beta =
      options.learnable_beta ? register_parameter("beta", betas) : register_buffer("beta", betas);
  if (options.bias) {
    bq = register_parameter("bq", zeros({heads, head_dim}, dt));
    bk = register_parameter("bk", zeros({heads, head_dim}, dt));
  }
}

Tensor EnergyAttention::energy(const Tensor& g) {
  return graph_ ? energy_graph(g, *graph_) : energy(g, mask_);
}

Tensor EnergyAttention::energy_grad(const Tensor& g) {
  return graph_ ? energy_graph_grad(g, *graph_) : energy_grad(g, mask_);
}

std::pair<Tensor, Tensor> EnergyAttention::energy_and_grad(const Tensor& g) {
  return {energy(g), energy_grad(g)};
}

Tensor EnergyAttention::energy(const Tensor& g, const Tensor& mask) {
  return energy_attention(g, weights(), mask, options_.exclude_self);
}

Tensor EnergyAttention::energy_grad(const Tensor& g, const Tensor& mask) {
  return energy_attention_grad(g, weights(), mask, options_.exclude_self);
}

Tensor EnergyAttention::energy_graph(const Tensor& g, const AttentionGraph& graph) {
  return energy_attention_graph(g, weights(), graph, options_.exclude_self);
}

Tensor EnergyAttention::energy_graph(const Tensor& g, const Tensor& src, const Tensor& dst) {
  return energy_graph(g, AttentionGraph::from_edges(src, dst));
}

Tensor EnergyAttention::energy_graph_grad(const Tensor& g, const AttentionGraph& graph) {
  return energy_attention_graph_grad(g, weights(), graph, options_.exclude_self);
}

void EnergyAttention::set_mask(const Tensor& mask) {
  if (mask.defined()) {
    check(mask.dtype() == Dtype::boolean, "[EnergyAttention] the mask must be bool, got {}",
          dtype_name(mask.dtype()));
    check((mask.ndim() == 2 || mask.ndim() == 3) && mask.shape(-1) == mask.shape(-2),
          "[EnergyAttention] the mask must have shape (N, N) or (B, N, N), got {}",
          shape_str(mask.shape()));
  }
  mask_ = mask;
}

void EnergyAttention::set_graph(std::optional<AttentionGraph> graph) {
  if (graph) {
    check(graph->src.defined() && graph->dst.defined(),
          "[EnergyAttention] the graph needs src and dst (build it with "
          "AttentionGraph::from_edges or from_csr)");
  }
  graph_ = std::move(graph);
}

std::string EnergyAttention::extra_repr() const {
  const double b = options_.beta.value_or(1.0 / std::sqrt(static_cast<double>(head_dim_)));
  return fmt::format("dim={}, heads={}, head_dim={}, beta={}{}{}{}", dim_, heads_, head_dim_, b,
                     options_.learnable_beta ? ", learnable_beta=true" : "",
                     options_.exclude_self ? ", exclude_self=true" : "",
                     options_.bias ? ", bias=true" : "");
}

// --- registration ------------------------------------------------------------------------------

BASIN_REGISTER_ENERGY(
    "attention",
    "Energy Transformer attention: heads (12), head_dim (64), beta (1/sqrt(head_dim)), "
    "learnable_beta, exclude_self, bias, init_std (0.002)",
    [](const EnergyContext& context) -> std::shared_ptr<EnergyModule> {
      Config config = context.config;
      const auto heads = config.get<int64_t>("heads", 12);
      const auto head_dim = config.get<int64_t>("head_dim", 64);
      AttentionOptions o;
      if (config.has("beta")) o.beta = config.get<double>("beta");
      o.learnable_beta = config.get<bool>("learnable_beta", o.learnable_beta);
      o.exclude_self = config.get<bool>("exclude_self", o.exclude_self);
      o.bias = config.get<bool>("bias", o.bias);
      o.init_std = config.get<double>("init_std", o.init_std);
      return std::make_shared<EnergyAttention>(context.dim, heads, head_dim, o);
    });

}  // namespace basin::energy

// --- the fused gradient's fallback ------------------------------------------------------------

namespace basin::prims {

Tensor EnergyAttentionGrad::fallback(const Tensors& in) const {
  // in: g (B, N, D), wq, wk (H, Y, D), beta (H), [bq, bk (H, Y)], [mask (N, N) or (B, N, N)]
  energy::AttentionWeights w{in[1], in[2], in[3], Tensor(), Tensor()};
  size_t next = 4;
  if (has_bias_) {
    w.bq = in[next++];
    w.bk = in[next++];
  }
  const Tensor mask = has_mask_ ? in[next] : Tensor();
  const Tensor& g = in[0];
  const auto [q, k] = energy::project_dense(g, w);  // (B, H, N, Y)
  const Tensor allowed = energy::allowed_keys(mask, exclude_self_, g.shape(1), g.device());
  const Tensor p = softmax(energy::dense_scores(q, k, w.beta, allowed), -1);  // (B, H, N_C, N_B)
  const Tensor dq = matmul(p, k);                                             // Σ_B P_CB K_B
  const Tensor dk = matmul(transpose(p), q);                                  // Σ_C P_CB Q_C
  // Σ_h (dq_h W_Q,h + dk_h W_K,h) as one product over the joined (head, Y) axis per term.
  const int64_t b = g.shape(0), n = g.shape(1), h = w.wq.shape(0), y = w.wq.shape(1);
  auto join = [&](const Tensor& t) { return reshape(swapaxes(t, 1, 2), {b, n, h * y}); };
  auto flat = [&](const Tensor& weight) { return reshape(weight, {h * y, weight.shape(2)}); };
  return neg(matmul(join(dq), flat(w.wq)) + matmul(join(dk), flat(w.wk)));
}

namespace {

/// (B, N, H·Y) with the heads side by side ↔ (B, H, N, Y).
Tensor split_heads(const Tensor& t, int64_t heads) {
  const int64_t b = t.shape(0), n = t.shape(1), y = t.shape(2) / heads;
  return swapaxes(reshape(t, {b, n, heads, y}), 1, 2);
}
Tensor join_heads(const Tensor& t) {
  const int64_t b = t.shape(0), h = t.shape(1), n = t.shape(2), y = t.shape(3);
  return reshape(swapaxes(t, 1, 2), {b, n, h * y});
}

}  // namespace

Tensor EnergyAttentionValue::fallback(const Tensors& in) const {
  const Tensor& x = in[0];
  const energy::AttentionWeights w{in[1], in[2], in[3], has_bias_ ? in[4] : Tensor(),
                                   has_bias_ ? in[5] : Tensor()};
  const Tensor mask = has_mask_ ? in[has_bias_ ? 6 : 4] : Tensor();
  const auto [q, k] = energy::project_dense(x, w);
  const Tensor allowed = energy::allowed_keys(mask, exclude_self_, x.shape(-2), x.device());
  const Tensor s = energy::dense_scores(q, k, w.beta, allowed);
  return energy::energy_from_lse(logsumexp(s, {-1}), w.beta, 2);  // lse (B, H, N)
}

Tensors EnergyAttentionGrad::vjp(const Tensors& in, const Tensor&, const Tensor& cot,
                                 const std::vector<int>& argnums) {
  const Tensor &g = in[0], &wq = in[1], &wk = in[2], &beta = in[3];
  const int64_t b = g.shape(0), n = g.shape(1), d = g.shape(2);
  const int64_t h = wq.shape(0), y = wq.shape(1), hy = h * y;
  const Tensor mask = has_mask_ ? in[has_bias_ ? 6 : 4] : Tensor();
  if (hy == 0) {  // no heads: the output is 0 whatever the inputs
    Tensors zero;
    for (int i : argnums) zero.push_back(zeros_like(in[static_cast<size_t>(i)]));
    return zero;
  }
  // Both projections side by side, so each product below is one GEMM for Q and K together:
  // W = [W_Q ; W_K] (2·H·Y, D), and out = −[U V] W with U, V (B, N, H·Y).
  const Tensor w = concat({reshape(wq, {hy, d}), reshape(wk, {hy, d})}, 0);
  const Tensor g2 = reshape(g, {b * n, d});
  Tensor qk = matmul(g2, transpose(w));  // (B·N, 2·H·Y): [Q | K]
  if (has_bias_) qk = qk + concat({reshape(in[4], {hy}), reshape(in[5], {hy})}, 0);
  const Tensor neg_cot = reshape(neg(cot), {b * n, d});
  Tensors core_in{reshape(qk, {b, n, 2 * hy}),
                  reshape(matmul(neg_cot, transpose(w)), {b, n, 2 * hy}), beta};
  if (has_mask_) core_in.push_back(mask);
  const Tensor core =
      reshape(apply(std::make_shared<EnergyAttentionCoreVjp>(h, has_mask_, exclude_self_), core_in,
                    {b, n, 5 * hy}, g.dtype()),
              {b * n, 5 * hy});
  const Tensor uv = narrow(core, 1, 0, 2 * hy), qkbar = narrow(core, 1, 2 * hy, 2 * hy);
  // d[W_Q ; W_K] = [U V]ᵀ (−cot) + [Q̄ K̄]ᵀ g, computed once for both when either is asked for.
  Tensor dw;
  auto weight_grads = [&] {
    if (!dw.defined()) dw = matmul(transpose(uv), neg_cot) + matmul(transpose(qkbar), g2);
    return dw;
  };
  Tensors grads;
  for (int i : argnums) {
    if (i == 0) {
      grads.push_back(reshape(matmul(qkbar, w), {b, n, d}));
    } else if (i == 1 || i == 2) {
      grads.push_back(reshape(narrow(weight_grads(), 0, i == 1 ? 0 : hy, hy), {h, y, d}));
    } else if (i == 3) {
      const Tensor r = narrow(core, 1, 4 * hy, hy);
      grads.push_back(sum(reshape(narrow(qk, 1, 0, hy) * r, {b * n, h, y}), {0, 2}));
    } else if (has_bias_ && (i == 4 || i == 5)) {
      grads.push_back(reshape(sum(narrow(qkbar, 1, i == 4 ? 0 : hy, hy), {0}), {h, y}));
    } else {
      fail("[EnergyAttentionGrad] no gradient with respect to the mask");
    }
  }
  return grads;
}

Tensor EnergyAttentionCoreVjp::fallback(const Tensors& in) const {
  const int64_t heads = heads_, hy = in[0].shape(2) / 2;
  const Tensor q = split_heads(narrow(in[0], 2, 0, hy), heads);  // (B, H, N, Y)
  const Tensor k = split_heads(narrow(in[0], 2, hy, hy), heads);
  const Tensor ubar = split_heads(narrow(in[1], 2, 0, hy), heads);
  const Tensor vbar = split_heads(narrow(in[1], 2, hy, hy), heads);
  const Tensor& beta = in[2];
  const Tensor mask = has_mask_ ? in[3] : Tensor();
  const int64_t n = q.shape(2);
  const Tensor allowed = energy::allowed_keys(mask, exclude_self_, n, q.device());
  const Tensor p = softmax(energy::dense_scores(q, k, beta, allowed), -1);  // (B, H, N_C, N_B)
  const Tensor pbar = matmul(ubar, transpose(k)) + matmul(q, transpose(vbar));
  const Tensor sbar = p * (pbar - sum(p * pbar, {-1}, true));
  const Tensor b = reshape(beta, {heads, 1, 1});
  const Tensor sk = matmul(sbar, k);
  const Tensor u = matmul(p, k), v = matmul(transpose(p), q);
  const Tensor qbar = matmul(p, vbar) + b * sk;
  const Tensor kbar = matmul(transpose(p), ubar) + b * matmul(transpose(sbar), q);
  return concat({join_heads(u), join_heads(v), join_heads(qbar), join_heads(kbar), join_heads(sk)},
                2);
}

// --- the graph core ----------------------------------------------------------------------------

namespace {

/// The per-edge terms both graph-core fallbacks share: Q, K (N, H, Y) from [Q | K], the query of
/// every edge, the gathered rows and the softmax P (E, H, 1) over each query's edges.
struct GraphCoreTerms {
  Tensor q, k, dst, q_dst, k_src, p;
};

GraphCoreTerms graph_core_terms(const Tensor& qk, const Tensor& beta, const Tensor& offsets,
                                const Tensor& src, int64_t heads, bool exclude_self) {
  const int64_t n = qk.shape(0), hy = qk.shape(1) / 2;
  GraphCoreTerms t;
  t.q = reshape(narrow(qk, 1, 0, hy), {n, heads, hy / heads});
  t.k = reshape(narrow(qk, 1, hy, hy), {n, heads, hy / heads});
  t.dst = segment_ids_from_offsets(offsets, src.numel());
  t.q_dst = index_select(t.q, 0, t.dst);
  t.k_src = index_select(t.k, 0, src);
  Tensor scores = sum(t.q_dst * t.k_src, {-1}) * beta;  // (E, H)
  if (exclude_self) {
    scores = where(unsqueeze(equal(src, t.dst), 1), -energy::kInf, scores);
  }
  t.p = unsqueeze(segment_softmax(scores, offsets), -1);
  return t;
}

}  // namespace

Tensor EnergyAttentionGraphCore::fallback(const Tensors& in) const {
  const Tensor &offsets = in[2], &src = in[3];
  const int64_t n = in[0].shape(0), hy = in[0].shape(1) / 2;
  const GraphCoreTerms t = graph_core_terms(in[0], in[1], offsets, src, heads_, exclude_self_);
  const Tensor u = segment_sum(t.p * t.k_src, offsets), v = segment_sum(t.p * t.q_dst, src, n);
  return concat({reshape(u, {n, hy}), reshape(v, {n, hy})}, 1);
}

Tensors EnergyAttentionGraphCore::vjp(const Tensors& in, const Tensor&, const Tensor& cot,
                                      const std::vector<int>& argnums) {
  const Tensor &qk = in[0], &beta = in[1];
  const int64_t n = qk.shape(0), hy = qk.shape(1) / 2;
  const Tensor core = apply(std::make_shared<EnergyAttentionGraphCoreVjp>(heads_, exclude_self_),
                            {qk, cot, beta, in[2], in[3]}, {n, 3 * hy}, qk.dtype());  // [Q̄ | K̄ | R]
  Tensors grads;
  for (int i : argnums) {
    if (i == 0) {
      grads.push_back(narrow(core, 1, 0, 2 * hy));
    } else if (i == 1) {
      const Tensor qr = narrow(qk, 1, 0, hy) * narrow(core, 1, 2 * hy, hy);
      grads.push_back(sum(reshape(qr, {n, heads_, hy / heads_}), {0, 2}));
    } else {
      fail("[EnergyAttentionGraphCore] no gradient with respect to the graph");
    }
  }
  return grads;
}

Tensor EnergyAttentionGraphCoreVjp::fallback(const Tensors& in) const {
  const Tensor &beta = in[2], &offsets = in[3], &src = in[4];
  const int64_t n = in[0].shape(0), hy = in[0].shape(1) / 2, y = hy / heads_;
  const GraphCoreTerms t = graph_core_terms(in[0], beta, offsets, src, heads_, exclude_self_);
  const Tensor ubar_dst = index_select(reshape(narrow(in[1], 1, 0, hy), {n, heads_, y}), 0, t.dst);
  const Tensor vbar_src = index_select(reshape(narrow(in[1], 1, hy, hy), {n, heads_, y}), 0, src);
  const Tensor pbar = sum(ubar_dst * t.k_src + vbar_src * t.q_dst, {-1}, true);  // (E, H, 1)
  const Tensor mean = index_select(segment_sum(t.p * pbar, offsets), 0, t.dst);
  const Tensor sbar = t.p * (pbar - mean);
  const Tensor b = reshape(beta, {1, heads_, 1});
  const Tensor r = segment_sum(sbar * t.k_src, offsets);
  const Tensor qbar = segment_sum(t.p * vbar_src, offsets) + b * r;
  const Tensor kbar = segment_sum(t.p * ubar_dst + b * sbar * t.q_dst, src, n);
  return concat({reshape(qbar, {n, hy}), reshape(kbar, {n, hy}), reshape(r, {n, hy})}, 1);
}

}  // namespace basin::prims
