// Graph readers (.mat through MatFile, .zip through libzip, text edge lists), CSR adjacency helpers
// and the stratified node split.
#include "data/graph.h"

#include <zip.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <tuple>

#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/index.h"
#include "core/ops/reduce.h"
#include "data/file_io.h"
#include "data/mil.h"
#include "data/split.h"

namespace basin::data {
namespace {

// --- zip -------------------------------------------------------------------------------------

struct ZipDiscard {
  void operator()(zip_t* z) const { zip_discard(z); }
};
struct ZipFileClose {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};

bool ignored_member(const std::string& name) {
  if (name.empty() || name.back() == '/') return true;  // a directory
  if (name.rfind("__MACOSX/", 0) == 0) return true;
  const size_t slash = name.rfind('/');
  const std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
  return base.rfind("._", 0) == 0;  // macOS resource forks
}

// The one .mat member of the zip archive at `path`: its name and its bytes.
std::pair<std::string, std::string> read_mat_member(const std::string& path) {
  int code = 0;
  std::unique_ptr<zip_t, ZipDiscard> archive(
      zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code));
  if (!archive) {
    zip_error_t error;
    zip_error_init_with_code(&error, code);
    const std::string message = zip_error_strerror(&error);
    zip_error_fini(&error);
    fail("[read_graph] '{}': cannot open the zip archive: {}", path, message);
  }
  const zip_int64_t count = zip_get_num_entries(archive.get(), 0);
  std::vector<zip_uint64_t> mats;
  std::string members;
  for (zip_int64_t i = 0; i < count; ++i) {
    const char* raw = zip_get_name(archive.get(), static_cast<zip_uint64_t>(i), 0);
    const std::string name = raw != nullptr ? raw : "";
    if (members.size() < 500) members += (members.empty() ? "'" : ", '") + name + "'";
    if (!ignored_member(name) && detail::ends_with_nocase(name, ".mat")) {
      mats.push_back(static_cast<zip_uint64_t>(i));
    }
  }
  if (mats.size() != 1) {
    fail("[read_graph] '{}': the zip archive must hold exactly one .mat file, it holds {} ({})",
         path, mats.size(), members.empty() ? std::string("no entries") : members);
  }
  const std::string name = zip_get_name(archive.get(), mats[0], 0);
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat_index(archive.get(), mats[0], 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE)) {
    fail("[read_graph] '{}': cannot read the entry of member '{}': {}", path, name,
         zip_strerror(archive.get()));
  }
  std::unique_ptr<zip_file_t, ZipFileClose> file(zip_fopen_index(archive.get(), mats[0], 0));
  if (!file) {
    fail("[read_graph] '{}': cannot open member '{}': {}", path, name, zip_strerror(archive.get()));
  }
  // Grow as the data arrives rather than trusting the declared size up front.
  std::string bytes;
  std::vector<char> chunk(1 << 20);
  while (true) {
    const zip_int64_t got = zip_fread(file.get(), chunk.data(), chunk.size());
    if (got < 0) {
      fail("[read_graph] '{}': member '{}' is corrupt: {}", path, name,
           zip_file_strerror(file.get()));
    }
    if (got == 0) break;
    bytes.append(chunk.data(), static_cast<size_t>(got));
    if (bytes.size() > st.size) break;
  }
  if (bytes.size() != st.size) {
    fail("[read_graph] '{}': member '{}' holds {} bytes, its entry says {}", path, name,
         bytes.size(), st.size);
  }
  return {name, std::move(bytes)};
}

bool looks_like_zip(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[2] = {0, 0};
  in.read(magic, 2);
  return in.gcount() == 2 && magic[0] == 'P' && magic[1] == 'K';
}

// --- .mat layouts ----------------------------------------------------------------------------

void check_finite(const Tensor& features, const std::string& file, const std::string& var) {
  const int64_t cols = features.shape(1);
  const float* x = features.data<float>();
  for (int64_t k = 0; k < features.numel(); ++k) {
    if (!std::isfinite(x[k])) {
      fail("[read_graph] '{}': '{}' has {} at node {}, feature {}", file, var, x[k], k / cols,
           k % cols);
    }
  }
}

Graph graph_from_mat(const MatFile& file) {
  const std::string& name = file.name();
  std::string adj, label, feat;
  if (file.has("Network")) {
    std::tie(adj, label, feat) = std::make_tuple("Network", "Label", "Attributes");
  } else if (file.has("homo")) {
    std::tie(adj, label, feat) = std::make_tuple("homo", "label", "features");
  } else {
    std::string vars;
    for (const MatVarInfo& v : file.variables())
      vars += (vars.empty() ? "'" : ", '") + v.name + "'";
    fail(
        "[read_graph] '{}': unknown graph layout: expected 'Network', 'Label', 'Attributes' (TAM) "
        "or 'homo', 'label', 'features', 'net_*' (CARE-GNN); the file holds {}",
        name, vars.empty() ? std::string("no variables") : vars);
  }
  Graph g;
  g.adjacency = file.read_sparse(adj);
  if (g.adjacency.rows != g.adjacency.cols) {
    fail("[read_graph] '{}': adjacency '{}' is {}×{}, not square", name, adj, g.adjacency.rows,
         g.adjacency.cols);
  }
  g.num_nodes = g.adjacency.rows;
  g.labels = file.read_vector(label, Dtype::i64);
  if (g.labels.numel() != g.num_nodes) {
    fail("[read_graph] '{}': '{}' has {} labels for the {} nodes of '{}'", name, label,
         g.labels.numel(), g.num_nodes, adj);
  }
  g.features = file.read(feat, Dtype::f32);
  if (g.features.ndim() != 2 || g.features.shape(0) != g.num_nodes) {
    fail("[read_graph] '{}': '{}' has shape {}; it needs one row for each of the {} nodes", name,
         feat, shape_str(g.features.shape()), g.num_nodes);
  }
  check_finite(g.features, name, feat);
  for (const MatVarInfo& v : file.variables()) {
    if (v.name.rfind("net_", 0) != 0) continue;
    CsrMatrix r = file.read_sparse(v.name);
    if (r.rows != g.num_nodes || r.cols != g.num_nodes) {
      fail("[read_graph] '{}': relation '{}' is {}×{}, but the graph has {} nodes", name, v.name,
           r.rows, r.cols, g.num_nodes);
    }
    g.relations.emplace(v.name, std::move(r));
  }
  return g;
}

// --- text tables -----------------------------------------------------------------------------

bool parse_int(std::string_view s, int64_t& out) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (!s.empty() && ec == std::errc() && end == s.data() + s.size()) return true;
  double d = 0.0;  // "3.0" or "1e3"
  if (!detail::parse_double(s, d) || d != std::trunc(d) || std::abs(d) > 9.0e15) return false;
  out = static_cast<int64_t>(d);
  return true;
}

// Calls fn(line_no, fields) for every data line of the text file at `path` (see read_edge_list
// for the rules: separators, comments, an optional header).
template <class F>
void for_each_row(const std::string& path, F&& fn) {
  const std::string text = detail::read_file(path, "read_edge_list");
  std::vector<std::string_view> fields;
  bool first = true;
  int64_t line_no = 0;
  std::string_view line;
  for (size_t pos = 0; detail::next_line(text, pos, line);) {
    ++line_no;
    if (line.empty() || line.front() == '#' || line.front() == '%') continue;
    if (line.find(',') != std::string_view::npos) {
      detail::split_commas(line, fields);
    } else {
      fields.clear();
      for (size_t start = 0; start < line.size();) {
        const size_t stop = std::min(line.find_first_of(" \t", start), line.size());
        if (stop > start) fields.push_back(line.substr(start, stop - start));
        start = stop + 1;
      }
    }
    if (first) {
      first = false;
      double unused = 0.0;
      if (!detail::parse_double(fields[0], unused)) continue;  // a header
    }
    fn(line_no, fields);
  }
}

// CSR from (row, col, value) triples; duplicates keep the larger value.
CsrMatrix csr_from_triples(int64_t n, std::vector<std::tuple<int64_t, int64_t, double>> triples) {
  std::sort(triples.begin(), triples.end());
  CsrMatrix m;
  m.rows = m.cols = n;
  m.row_ptr.assign(static_cast<size_t>(n) + 1, 0);
  int64_t last_row = -1;
  for (const auto& [r, c, v] : triples) {
    if (r == last_row && m.col.back() == c) {  // sorted: a duplicate follows its twin
      m.values.back() = std::max(m.values.back(), v);
      continue;
    }
    m.col.push_back(c);
    m.values.push_back(v);
    ++m.row_ptr[r + 1];
    last_row = r;
  }
  for (int64_t r = 0; r < n; ++r) m.row_ptr[r + 1] += m.row_ptr[r];
  return m;
}

void check_square(const CsrMatrix& a, const char* who) {
  if (a.rows != a.cols) fail("[{}] the adjacency must be square, got {}×{}", who, a.rows, a.cols);
}

}  // namespace

// --- readers ---------------------------------------------------------------------------------

Graph read_graph(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    fail("[read_graph] '{}': no such file (or not a regular file)", path);
  }
  if (looks_like_zip(path) || detail::ends_with_nocase(path, ".zip")) {
    auto [member, bytes] = read_mat_member(path);
    return graph_from_mat(MatFile::from_bytes(bytes, path + ":" + member));
  }
  return graph_from_mat(MatFile(path));
}

Graph read_edge_list(const std::string& edges_path, const std::string& features_path,
                     const std::string& labels_path) {
  Graph g;
  std::vector<float> x;
  int64_t width = -1, rows = 0;
  for_each_row(features_path, [&](int64_t line, const std::vector<std::string_view>& f) {
    if (width < 0) width = static_cast<int64_t>(f.size());
    if (static_cast<int64_t>(f.size()) != width) {
      fail("[read_edge_list] '{}' line {}: {} features, but the first row has {}", features_path,
           line, f.size(), width);
    }
    for (size_t k = 0; k < f.size(); ++k) {
      double v = 0.0;
      if (!detail::parse_double(f[k], v) || !std::isfinite(v)) {
        fail("[read_edge_list] '{}' line {}: field {} is '{}', not a finite number", features_path,
             line, k + 1, f[k]);
      }
      x.push_back(static_cast<float>(v));
    }
    ++rows;
  });
  if (rows == 0) fail("[read_edge_list] '{}': no feature rows", features_path);
  g.num_nodes = rows;
  g.features = from_vector(x, {rows, width});

  std::vector<int64_t> y;
  for_each_row(labels_path, [&](int64_t line, const std::vector<std::string_view>& f) {
    int64_t v = 0;
    if (f.size() != 1 || !parse_int(f[0], v)) {
      fail("[read_edge_list] '{}' line {}: expected one integer label, got '{}'", labels_path, line,
           f.empty() ? std::string_view() : f[0]);
    }
    y.push_back(v);
  });
  if (static_cast<int64_t>(y.size()) != rows) {
    fail("[read_edge_list] '{}' has {} labels but '{}' has {} nodes", labels_path, y.size(),
         features_path, rows);
  }
  g.labels = from_vector(y, {rows});

  std::vector<std::tuple<int64_t, int64_t, double>> edges;
  for_each_row(edges_path, [&](int64_t line, const std::vector<std::string_view>& f) {
    if (f.size() != 2 && f.size() != 3) {
      fail("[read_edge_list] '{}' line {}: {} fields; an edge is 'src,dst' or 'src,dst,weight'",
           edges_path, line, f.size());
    }
    int64_t node[2] = {0, 0};
    for (int k = 0; k < 2; ++k) {
      if (!parse_int(f[k], node[k])) {
        fail("[read_edge_list] '{}' line {}: node id '{}' is not an integer", edges_path, line,
             f[k]);
      }
      if (node[k] < 0 || node[k] >= rows) {
        fail("[read_edge_list] '{}' line {}: node {} is outside [0, {}) ('{}' has {} rows)",
             edges_path, line, node[k], rows, features_path, rows);
      }
    }
    double w = 1.0;
    if (f.size() == 3 && (!detail::parse_double(f[2], w) || !std::isfinite(w))) {
      fail("[read_edge_list] '{}' line {}: weight '{}' is not a finite number", edges_path, line,
           f[2]);
    }
    edges.emplace_back(node[0], node[1], w);
  });
  g.adjacency = csr_from_triples(rows, std::move(edges));
  return g;
}

// --- adjacency helpers -----------------------------------------------------------------------

CsrMatrix add_self_loops(const CsrMatrix& a, double weight) {
  check_square(a, "add_self_loops");
  CsrMatrix out;
  out.rows = a.rows;
  out.cols = a.cols;
  out.col.reserve(static_cast<size_t>(a.nnz() + a.rows));
  out.values.reserve(static_cast<size_t>(a.nnz() + a.rows));
  for (int64_t r = 0; r < a.rows; ++r) {
    bool placed = false;
    for (int64_t k = a.row_ptr[r]; k < a.row_ptr[r + 1]; ++k) {
      if (!placed && a.col[k] >= r) {
        if (a.col[k] != r) {
          out.col.push_back(r);
          out.values.push_back(weight);
        }
        placed = true;
      }
      out.col.push_back(a.col[k]);
      out.values.push_back(a.values[k]);
    }
    if (!placed) {
      out.col.push_back(r);
      out.values.push_back(weight);
    }
    out.row_ptr.push_back(out.nnz());
  }
  return out;
}

CsrMatrix symmetrize(const CsrMatrix& a) {
  check_square(a, "symmetrize");
  const CsrMatrix t = a.transposed();
  CsrMatrix out;
  out.rows = a.rows;
  out.cols = a.cols;
  for (int64_t r = 0; r < a.rows; ++r) {
    int64_t i = a.row_ptr[r], j = t.row_ptr[r];
    const int64_t i_end = a.row_ptr[r + 1], j_end = t.row_ptr[r + 1];
    while (i < i_end || j < j_end) {  // merge two ascending column lists
      if (j == j_end || (i < i_end && a.col[i] < t.col[j])) {
        out.col.push_back(a.col[i]);
        out.values.push_back(a.values[i++]);
      } else if (i == i_end || t.col[j] < a.col[i]) {
        out.col.push_back(t.col[j]);
        out.values.push_back(t.values[j++]);
      } else {
        out.col.push_back(a.col[i]);
        out.values.push_back(std::max(a.values[i++], t.values[j++]));
      }
    }
    out.row_ptr.push_back(out.nnz());
  }
  return out;
}

DegreeStats degree_stats(const CsrMatrix& a) {
  check_square(a, "degree_stats");
  DegreeStats s;
  if (a.rows == 0) return s;
  s.min = std::numeric_limits<int64_t>::max();
  int64_t total = 0;
  for (int64_t r = 0; r < a.rows; ++r) {
    int64_t d = a.row_size(r);
    for (int64_t k = a.row_ptr[r]; k < a.row_ptr[r + 1]; ++k) {
      if (a.col[k] == r) {
        --d;
        ++s.self_loops;
      }
    }
    s.min = std::min(s.min, d);
    s.max = std::max(s.max, d);
    s.isolated += d == 0 ? 1 : 0;
    total += d;
  }
  s.mean = static_cast<double>(total) / static_cast<double>(a.rows);
  const CsrMatrix t = a.transposed();
  s.symmetric = t.row_ptr == a.row_ptr && t.col == a.col;
  return s;
}

// --- features --------------------------------------------------------------------------------

Tensor row_normalize(const Tensor& features) {
  if (!features.defined() || features.ndim() != 2) {
    fail("[row_normalize] features must be (N, F)");
  }
  const Tensor x = features.astype(Dtype::f64);
  const Tensor l1 = sum(abs(x), {1}, /*keepdim=*/true);  // (N, 1)
  return div(x, where(equal(l1, zeros_like(l1)), ones_like(l1), l1)).astype(features.dtype());
}

Tensor standardize_features(const Tensor& features, std::span<const int64_t> fit_rows) {
  if (!features.defined() || features.ndim() != 2) {
    fail("[standardize_features] features must be (N, F)");
  }
  Tensor fit = features;
  if (!fit_rows.empty()) {
    const int64_t n = features.shape(0);
    for (int64_t r : fit_rows) {
      if (r < 0 || r >= n) fail("[standardize_features] row {} is out of range for {} rows", r, n);
    }
    fit = index_select(features, 0,
                       from_vector(std::vector<int64_t>(fit_rows.begin(), fit_rows.end()),
                                   {static_cast<int64_t>(fit_rows.size())}));
  }
  return fit_feature_scaler(fit).apply(features);
}

// --- split -----------------------------------------------------------------------------------

NodeSplit split_nodes(std::span<const int64_t> labels, double train_ratio, uint64_t seed,
                      int64_t first_node, double test_fraction) {
  const auto n = static_cast<int64_t>(labels.size());
  if (!(train_ratio > 0.0 && train_ratio < 1.0)) {
    fail("[split_nodes] train_ratio must lie in (0, 1), got {}", train_ratio);
  }
  if (first_node < 0 || first_node >= n) {
    fail("[split_nodes] first_node {} is outside [0, {})", first_node, n);
  }
  const std::vector<int64_t> candidates(labels.begin() + first_node, labels.end());
  const Fold outer =
      stratified_train_test_split(candidates, 1.0 - train_ratio, derive_seed(seed, 0));
  std::vector<int64_t> rest_labels;
  for (int64_t i : outer.test) rest_labels.push_back(candidates[i]);
  const Fold inner = stratified_train_test_split(rest_labels, test_fraction, derive_seed(seed, 1));
  NodeSplit s;
  for (int64_t i : outer.train) s.train.push_back(first_node + i);
  for (int64_t i : inner.train) s.val.push_back(first_node + outer.test[i]);
  for (int64_t i : inner.test) s.test.push_back(first_node + outer.test[i]);
  std::sort(s.val.begin(), s.val.end());
  std::sort(s.test.begin(), s.test.end());
  return s;
}

}  // namespace basin::data
