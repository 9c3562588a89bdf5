// The graph Energy Transformer for node anomaly detection (mission-anchors §2.7; zhuergou's
// Energy-Transformer-for-Graph-Anomaly-Detection): one token per node, attention restricted to
// each node's graph neighbours, T weight-tied descent steps, and the readout [h_T ; h_0] → 2
// logits. Also the baselines of the same protocol (a 2-layer GCN; the MLP is nn::MLP), the
// neighbourhood sampler of mini-batch training and Laplacian-eigenvector positional encodings.
//
// Parameter names: encoder.{weight,bias} (encoder.layers.{0,2,..}.{weight,bias} with hidden
// layers), pos_encoder.{weight,bias} (with positional encodings), et.norm.{gamma,delta},
// et.attn.{wq,wk,beta} (H, Y, D), et.hn.xi (M, D), classifier.{weight,bias} (2, 2D), and step_size
// when α is trained.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"
#include "data/mat.h"
#include "models/energy/et_block.h"
#include "models/nn/layers.h"

namespace basin::zoo {

// --- graphs the models run on -------------------------------------------------------------------

/// A set of nodes of a larger graph with the edges the models use among them, in local ids.
struct NodeSubgraph {
  /// Global id of each local node; the targets (whose outputs are wanted) come first.
  std::vector<int64_t> nodes;
  /// The first num_targets local nodes are the targets.
  int64_t num_targets = 0;
  /// Edges grouped by query node (CSR, int64): node C attends to / aggregates from its keys
  /// src[offsets[C] .. offsets[C + 1]).
  energy::AttentionGraph graph;

  int64_t num_nodes() const { return static_cast<int64_t>(nodes.size()); }
};

/// The in-neighbour CSR of `adjacency` (row i holds the out-neighbours of node i, as in
/// data::Graph): row C of the result lists the nodes B with an edge B → C, i.e. C's keys. Equal
/// to the input for a symmetric graph.
data::CsrMatrix in_neighbours(const data::CsrMatrix& adjacency);

/// The whole graph of `keys` (an in-neighbour CSR, N × N): every node is a target, with its keys
/// in stored order and, with `self_loops`, an edge C → C for each node that lacks one.
NodeSubgraph full_subgraph(const data::CsrMatrix& keys, bool self_loops = true);

/// The k-hop neighbourhood of `targets` sampled as in GraphSAGE: hop h draws, without
/// replacement, up to fanouts[h] keys of every node first reached at hop h (all of them when
/// fanouts[h] < 0 or the node has no more), from the in-neighbour CSR `keys`. The subgraph holds
/// the sampled edges (key → query), and with `self_loops` an edge C → C for every node; nodes of
/// the last hop keep only their self-loop. Repeated targets are kept once. The draw depends only
/// on (targets, fanouts, seed). Errors start with "[sample_neighbourhood]".
NodeSubgraph sample_neighbourhood(const data::CsrMatrix& keys, std::span<const int64_t> targets,
                                  std::span<const int64_t> fanouts, uint64_t seed,
                                  bool self_loops = true);

/// Symmetric GCN normalisation of a subgraph's edges: w_e = 1 / √(deg(dst_e) · deg(src_e)), where
/// deg counts the keys of a node in `graph` (self-loop included when present), so that a
/// symmetric graph with self-loops gives D^{-1/2} (A + I) D^{-1/2}. (E) of `dtype`.
Tensor gcn_edge_weights(const energy::AttentionGraph& graph, int64_t num_nodes,
                        Dtype dtype = Dtype::f32);

/// Σ_{e: dst_e = C} w_e h[src_e] for every node C of a CSR graph: (N, D) from h (N, D) and edge
/// weights (E). Differentiable in h and w.
Tensor propagate(const Tensor& h, const energy::AttentionGraph& graph, const Tensor& weights);

struct LaplacianOptions {
  int64_t k = 8;             ///< eigenvectors kept (the k smallest non-trivial eigenvalues)
  int64_t iterations = 300;  ///< block power iterations
  uint64_t seed = 0;         ///< the starting block
};

/// Laplacian-eigenvector positional encodings (Dwivedi & Bresson; mission-anchors §2.8): the k
/// eigenvectors of L = I − D^{-1/2} A D^{-1/2} with the smallest eigenvalues after the first,
/// computed for a large sparse graph by block power iteration on 2I − L with Rayleigh–Ritz, and
/// deflation of the trivial eigenvector D^{1/2} 1 (per connected component the trivial vectors
/// are not all removed, so a graph with many components keeps some of them). `adjacency`
/// (N × N, symmetric; self-loops are ignored). (N, k) f32, columns of unit norm, their sign
/// arbitrary (flip them at random in training). Isolated nodes get 0.
Tensor laplacian_positional_encoding(const data::CsrMatrix& adjacency, LaplacianOptions options);

// --- the graph Energy Transformer ---------------------------------------------------------------

struct GraphETOptions {
  int64_t num_features = 0;     ///< F, node features
  int64_t dim = 64;             ///< D, the token dimension
  int steps = 4;                ///< T, descent steps
  double step_size = 0.5;       ///< α
  bool learnable_step = false;  ///< α as the parameter "step_size"
  int64_t pos_dim = 0;          ///< positional-encoding inputs (0: none)
  /// Hidden widths of the encoder: empty for one Linear (F → D), else an nn::MLP F → hidden →
  /// D with ReLU between its layers.
  std::vector<int64_t> encoder_hidden;
  double feature_dropout = 0.0;  ///< dropout on the node features, in training
  double dropout = 0.0;          ///< dropout on the readout's input [LN(x_T) ; x_0], in training
  Dtype dtype = Dtype::f32;
};

/// Per-step energies E(LN(x_t)) of a descent over a whole graph, t = 0..T.
using GraphEnergyTrace = std::vector<double>;

/// Graph ET: x_0 = encoder(features) (+ pos_encoder(pos)); x ← x − α ∂E/∂g with g = LN(x) for T
/// steps, where E = E^ATT(g) (attention of each node over its keys in the graph, the energy
/// block's options: heads, β, exclude_self, ...) + E^HN(g); logits = classifier([LN(x_T) ; x_0]).
/// In training, options.feature_dropout drops node features before the encoder and
/// options.dropout drops entries of the readout's input; both draw from the default generator.
class GraphEnergyTransformer : public nn::Module {
 public:
  /// `block` supplies the energy (its dimension must be options.dim); it is the child "et".
  GraphEnergyTransformer(GraphETOptions options,
                         std::shared_ptr<energy::EnergyTransformerBlock> block,
                         Generator* gen = nullptr);

  /// Logits (N, 2) of every node of `graph`, from features (N, F) and, with options.pos_dim > 0,
  /// positional encodings pos (N, pos_dim). With `trace`, records the energy at each step.
  Tensor forward(const Tensor& features, const energy::AttentionGraph& graph,
                 const Tensor& pos = Tensor(), GraphEnergyTrace* trace = nullptr);
  /// Not used: the model needs a graph (an error).
  Tensor forward(const Tensor& x) override;

  /// x_0 (N, D).
  Tensor embed(const Tensor& features, const Tensor& pos = Tensor());
  /// x_T after T steps over `graph`.
  Tensor descend(const Tensor& x0, const energy::AttentionGraph& graph,
                 GraphEnergyTrace* trace = nullptr);
  /// E(LN(x)) of node states x (N, D) over `graph`: one scalar.
  Tensor energy(const Tensor& x, const energy::AttentionGraph& graph);

  const GraphETOptions& options() const { return options_; }
  energy::EnergyTransformerBlock& block() { return *block_; }
  /// α as a tensor (the parameter when learnable).
  Tensor step_size() const;

  /// An nn::Linear, or an nn::MLP with options.encoder_hidden.
  std::shared_ptr<nn::Module> encoder;
  std::shared_ptr<nn::Linear> pos_encoder, classifier;

 protected:
  std::string extra_repr() const override;

 private:
  GraphETOptions options_;
  std::shared_ptr<energy::EnergyTransformerBlock> block_;
  Tensor alpha_;
};

/// The 2-layer GCN baseline (Kipf & Welling): logits = Â ReLU(Â X W_1 + b_1) W_2 + b_2 with
/// Â the symmetric normalisation of the graph (gcn_edge_weights), dropout before each layer.
/// Children "conv1", "conv2" (Linear).
class GraphConvNet : public nn::Module {
 public:
  GraphConvNet(int64_t num_features, int64_t hidden, int64_t num_classes = 2, double dropout = 0.0,
               Generator* gen = nullptr);
  /// Logits (N, num_classes) of every node, features (N, F).
  Tensor forward(const Tensor& features, const energy::AttentionGraph& graph);
  Tensor forward(const Tensor& x) override;  ///< not used: an error

  std::shared_ptr<nn::Linear> conv1, conv2;

 private:
  double dropout_;
};

/// Class-weighted cross entropy of the protocol: weight (2) = [1, #normal / #anomalous]
/// of `train_labels` (0 normal, 1 anomalous; both must occur), as f32.
Tensor anomaly_class_weights(std::span<const int64_t> train_labels);

}  // namespace basin::zoo
