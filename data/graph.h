// Node-classification graphs (fraud / anomaly detection): readers for the .mat layouts of TAM and
// CARE-GNN (plain or inside a .zip) and for plain edge lists, adjacency helpers, feature scaling
// and the reference code's stratified train/validation/test split of the nodes.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/mat.h"

namespace basin::data {

/// A graph with one feature vector and one label per node.
struct Graph {
  int64_t num_nodes = 0;
  /// (N, N): row i holds the out-neighbours of node i, values are edge weights. For the .mat
  /// layouts this is the matrix as stored (symmetric there: each undirected edge twice).
  CsrMatrix adjacency;
  Tensor features;  ///< (N, F) float32
  Tensor labels;    ///< (N,) int64
  /// Named relations of a multi-relation graph, each (N, N) (CARE-GNN: "net_upu", "net_usu",
  /// "net_uvu" or "net_rur", "net_rtr", "net_rsr"); empty for a single-relation graph.
  std::map<std::string, CsrMatrix> relations;

  /// The number of stored adjacency entries (directed edges; an undirected edge counts twice).
  int64_t num_edges() const { return adjacency.nnz(); }
};

/// Reads a graph from a .mat file, or from a .zip archive holding exactly one .mat file (directory
/// entries, "__MACOSX/" and "._*" entries are ignored); the kind is told by the content (a zip
/// starts with "PK") or a ".zip" name. Two .mat layouts are recognised, any numeric storage type:
/// - TAM / single relation (e.g. Amazon.mat, YelpChi.mat of TAM): `Network` (N×N, sparse or
///   dense), `Label` (N values), `Attributes` (N×F, sparse or dense);
/// - CARE-GNN / multi-relation: `homo` (N×N, the union of the relations), `label` (N values),
///   `features` (N×F), and every variable named `net_*` (N×N) as a relation.
/// Errors name the file (and the zip member): not a zip or a corrupt one (bad CRC, truncated), no
/// or several .mat members, neither layout (listing the variables present), a non-square
/// adjacency, sizes that differ, non-integer labels, NaN or infinite features.
Graph read_graph(const std::string& path);

/// Reads a graph from three text files (node ids are 0-based):
/// - `edges_path`: one directed edge per line, `src,dst` or `src,dst,weight` (weight 1 when
///   absent); edges listed twice are merged, keeping the larger weight. Call symmetrize() for an
///   undirected graph.
/// - `features_path`: one line per node (node i on the i-th data line), F >= 1 numbers per line,
///   the same F on every line; N is the number of lines.
/// - `labels_path`: one integer label per line, N lines.
/// In all three, fields are separated by commas or by spaces/tabs, blank lines and lines starting
/// with '#' or '%' are skipped, and the first remaining line is skipped as a header when its
/// first field is not a number. Errors name the file and line: a node id outside [0, N), a field
/// that is not a (finite) number, a row of a different width, a label count other than N.
Graph read_edge_list(const std::string& edges_path, const std::string& features_path,
                     const std::string& labels_path);

/// `a` with an entry (i, i) of value `weight` added to every row that lacks one (existing
/// diagonal entries are kept as they are). `a` must be square.
CsrMatrix add_self_loops(const CsrMatrix& a, double weight = 1.0);

/// The union of `a` and its transpose: (i, j) is stored when (i, j) or (j, i) is, with the larger
/// of the two values where both are. `a` must be square.
CsrMatrix symmetrize(const CsrMatrix& a);

/// Degrees of a square adjacency, counted as stored entries per row leaving out self-loops.
struct DegreeStats {
  int64_t min = 0, max = 0;
  double mean = 0.0;
  int64_t isolated = 0;    ///< rows with no entry other than a self-loop
  int64_t self_loops = 0;  ///< diagonal entries
  bool symmetric = false;  ///< whether (j, i) is stored for every stored (i, j)
};

/// The degree statistics of `a` (square).
DegreeStats degree_stats(const CsrMatrix& a);

/// Each row of `features` (N, F) divided by its L1 norm (sum of absolute values); all-zero rows
/// stay zero. The result has features' dtype.
Tensor row_normalize(const Tensor& features);

/// `features` (N, F) standardised per column, x' = (x - mean) / std with the population std and
/// std 0 replaced by 1, the statistics taken over the rows `fit_rows` (all rows when empty; pass
/// the training nodes so nothing leaks from the test nodes). The result has features' dtype.
Tensor standardize_features(const Tensor& features, std::span<const int64_t> fit_rows = {});

/// Node indices of the train, validation and test parts (each ascending).
struct NodeSplit {
  std::vector<int64_t> train, val, test;
};

/// The split of the ET graph-anomaly code (sklearn train_test_split twice, both stratified):
/// among the nodes first_node..N-1, train gets floor(train_ratio · n) nodes in the class
/// proportions, and the rest is split into validation and test with test_fraction of it (ceil)
/// going to test (the reference uses 0.67, i.e. 1:2). The two draws use derive_seed(seed, 0) and
/// derive_seed(seed, 1) with stratified_train_test_split, so the split is reproducible but not the
/// same as sklearn's for a given random_state. first_node is 3305 for CARE-GNN's Amazon (whose
/// first 3305 nodes are unlabelled) and 0 otherwise. Every class needs enough members to appear
/// in both parts of each draw.
NodeSplit split_nodes(std::span<const int64_t> labels, double train_ratio, uint64_t seed,
                      int64_t first_node = 0, double test_fraction = 0.67);

}  // namespace basin::data
