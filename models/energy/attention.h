// EnergyAttention: the Energy Transformer's attention, stated as an energy of the token states,
// over all tokens (dense, with an optional mask) or over the edges of a graph (graph ET).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "core/random.h"
#include "models/energy/energy.h"

namespace basin::energy {

struct AttentionOptions {
  /// β for every head; 1/√Y when unset (flax_core.py MultiheadAttention `beta_init`).
  std::optional<double> beta;
  /// β as a trained parameter "beta" (H) (the graph-classification code); otherwise a buffer
  /// "beta" (the paper code, where β is fixed).
  bool learnable_beta = false;
  /// Sum over keys B ≠ C only (amtutorial's `prevent_self_attention`). The paper code and its
  /// released weights attend to every key, self included.
  bool exclude_self = false;
  /// Biases "bq", "bk" (H, Y), starting at 0, added to queries and keys (flax `use_bias`).
  bool bias = false;
  /// W_Q, W_K start N(0, init_std²) (flax_core.py: normal(0.002)).
  double init_std = 0.002;
  /// Dtype of the parameters (float32, or float64 for reference computations).
  Dtype dtype = Dtype::f32;
};

/// The parameters of an energy attention, for the functional forms below.
struct AttentionWeights {
  Tensor wq;    ///< (H, Y, D)
  Tensor wk;    ///< (H, Y, D)
  Tensor beta;  ///< (H)
  Tensor bq;    ///< (H, Y) or undefined
  Tensor bk;    ///< (H, Y) or undefined
};

/// The edges graph attention runs over: edge e lets node dst[e] (a query C) attend to node src[e]
/// (a key B), as DGL's messages src → dst. Indices are int32 or int64.
struct AttentionGraph {
  Tensor src;      ///< (E) the key node of each edge
  Tensor dst;      ///< (E) the query node of each edge
  Tensor offsets;  ///< (N + 1) CSR offsets of the edges grouped by dst, when built from_csr

  /// Edges in any order.
  static AttentionGraph from_edges(const Tensor& src, const Tensor& dst);
  /// Edges grouped by query node: node C's keys are src[offsets[C] .. offsets[C + 1]). The
  /// segment reductions then run on the offsets (no sort, no per-edge ids needed).
  static AttentionGraph from_csr(const Tensor& offsets, const Tensor& src);
  /// Every ordered pair (B, C) of n nodes (with B = C when `self_loops`), in CSR order: graph
  /// attention over it equals dense attention.
  static AttentionGraph complete(int64_t n, bool self_loops = true);
  int64_t num_edges() const { return src.defined() ? src.numel() : 0; }
};

/// Energy attention (mission-anchors §2.5; energy-transformer-jax `architecture.py`,
/// flax_core.py MultiheadAttention). For tokens g_C (D), per head h:
///   K_{hB} = W^K_h g_B (+ b^K_h),  Q_{hC} = W^Q_h g_C (+ b^Q_h),  A_{hBC} = K_{hB}·Q_{hC}
///   E = − Σ_h (1/β_h) Σ_C log Σ_{B allowed for C} exp(β_h A_{hBC})
/// where the keys allowed for query C are all tokens, or those of a mask row, without C itself
/// when exclude_self, or C's in-neighbours in a graph. A query with no allowed key contributes 0.
/// There is no value matrix. Parameters "wq", "wk" (H, Y, D); β "beta" (H) is a parameter when
/// learnable, a buffer otherwise; "bq", "bk" (H, Y) with bias.
///
/// dE/dg has a closed form (both terms of §2.5; flax `manual_grad`): energy_grad runs it as the
/// fused op prims::EnergyAttentionGrad, whose derivatives (a closed-form vjp) equal those of its
/// ops-only fallback; on a graph it is written with segment softmax and segment sums.
class EnergyAttention : public EnergyModule {
 public:
  /// dim D, heads H, head_dim Y. Weights draw from `gen` (the default generator when null).
  EnergyAttention(int64_t dim, int64_t heads, int64_t head_dim, AttentionOptions options = {},
                  Generator* gen = nullptr);

  /// E(g) for g (B, N, D) or (N, D): over the graph when one is set, else densely with the mask
  /// set by set_mask (if any). One scalar, summed over the batch.
  Tensor energy(const Tensor& g) override;
  /// Closed-form dE/dg (fused), with the same graph or mask as energy(g).
  Tensor energy_grad(const Tensor& g) override;
  /// Both, without differentiating the energy.
  std::pair<Tensor, Tensor> energy_and_grad(const Tensor& g) override;

  /// Dense energy and gradient with an explicit bool mask (N, N) or (B, N, N): mask[.., C, B]
  /// says whether query C may attend to key B. An undefined mask allows every key.
  Tensor energy(const Tensor& g, const Tensor& mask);
  Tensor energy_grad(const Tensor& g, const Tensor& mask);

  /// Graph energy and gradient for node states g (N, D).
  Tensor energy_graph(const Tensor& g, const AttentionGraph& graph);
  Tensor energy_graph(const Tensor& g, const Tensor& src, const Tensor& dst);
  Tensor energy_graph_grad(const Tensor& g, const AttentionGraph& graph);

  /// The mask energy(g) uses (checked against g's shape at each call); undefined clears it.
  void set_mask(const Tensor& mask);
  const Tensor& mask() const { return mask_; }
  /// The graph energy(g) uses instead of dense attention; std::nullopt goes back to dense.
  void set_graph(std::optional<AttentionGraph> graph);
  const std::optional<AttentionGraph>& graph() const { return graph_; }

  /// The parameters as the functional forms take them.
  AttentionWeights weights() const { return {wq, wk, beta, bq, bk}; }
  int64_t dim() const { return dim_; }
  int64_t heads() const { return heads_; }
  int64_t head_dim() const { return head_dim_; }
  const AttentionOptions& options() const { return options_; }

  Tensor wq;    // (H, Y, D)
  Tensor wk;    // (H, Y, D)
  Tensor beta;  // (H)
  Tensor bq;    // (H, Y); undefined without bias
  Tensor bk;    // (H, Y); undefined without bias

 protected:
  std::string extra_repr() const override;

 private:
  int64_t dim_, heads_, head_dim_;
  AttentionOptions options_;
  Tensor mask_;
  std::optional<AttentionGraph> graph_;
};

// Functional forms, with the parameters as arguments (what gradchecks in the weights use). Errors
// start with "[EnergyAttention]".

/// Dense energy attention of g (B, N, D) or (N, D), with an optional bool mask (N, N) or
/// (B, N, N) and B ≠ C when exclude_self.
Tensor energy_attention(const Tensor& g, const AttentionWeights& w, const Tensor& mask = Tensor(),
                        bool exclude_self = false);
/// Its closed-form gradient dE/dg (the fused prims::EnergyAttentionGrad), of g's shape.
Tensor energy_attention_grad(const Tensor& g, const AttentionWeights& w,
                             const Tensor& mask = Tensor(), bool exclude_self = false);
/// Graph energy attention of node states g (N, D): per node, a segment log-sum-exp over its
/// in-edges. exclude_self drops the edges with src = dst.
Tensor energy_attention_graph(const Tensor& g, const AttentionWeights& w,
                              const AttentionGraph& graph, bool exclude_self = false);
/// Its closed-form gradient (segment softmax, gathers and segment sums; recorded like any
/// composite, so it is differentiable to any order).
Tensor energy_attention_graph_grad(const Tensor& g, const AttentionWeights& w,
                                   const AttentionGraph& graph, bool exclude_self = false);

}  // namespace basin::energy
