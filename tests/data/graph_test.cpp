// Graphs: the TAM and CARE-GNN .mat layouts (plain and zipped), zip and layout errors, edge lists,
// adjacency helpers, feature scaling, the node split, and the shared Amazon graph.
#include "data/graph.h"

#include <gtest/gtest.h>
#include <matio.h>
#include <zip.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include "data/split.h"
#include "tests/data/mat_writer.h"
#include "tests/test_util.h"

namespace basin::data {
namespace {

namespace fs = std::filesystem;
using basin::testing::MatWriter;
using basin::testing::read_bytes;
using basin::testing::TempDir;
using basin::testing::throws_error;
using basin::testing::write_bytes;

// Writes a zip archive; a member name ending in '/' is a directory. `store` leaves the data
// uncompressed (so a test can corrupt it in place).
void write_zip(const std::string& path,
               const std::vector<std::pair<std::string, std::string>>& members,
               bool store = false) {
  int code = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code);
  ASSERT_NE(z, nullptr);
  for (const auto& [name, bytes] : members) {
    if (name.back() == '/') {
      ASSERT_GE(zip_dir_add(z, name.c_str(), 0), 0);
      continue;
    }
    zip_source_t* src = zip_source_buffer(z, bytes.data(), bytes.size(), 0);
    ASSERT_NE(src, nullptr);
    const zip_int64_t index = zip_file_add(z, name.c_str(), src, ZIP_FL_OVERWRITE);
    ASSERT_GE(index, 0);
    if (store) zip_set_file_compression(z, static_cast<zip_uint64_t>(index), ZIP_CM_STORE, 0);
  }
  ASSERT_EQ(zip_close(z), 0);
}

// The 4-node path 0 - 1 - 2 - 3 (symmetric, column-major, so the same either way).
std::vector<double> path4() {
  std::vector<double> a(16, 0.0);
  for (size_t i = 0; i + 1 < 4; ++i) a[i + 4 * (i + 1)] = a[(i + 1) + 4 * i] = 1.0;
  return a;
}

// Four nodes with 2 features, node i = [i, 10 i], column-major.
std::vector<float> features4() { return {0, 1, 2, 3, 0, 10, 20, 30}; }

void write_tam(const std::string& path) {
  MatWriter w(path);
  w.sparse("Network", 4, 4, path4());
  w.dense("Label", MAT_C_INT64, MAT_T_INT64, {1, 4}, std::vector<int64_t>{0, 1, 0, 0});
  w.dense("Attributes", MAT_C_SINGLE, MAT_T_SINGLE, {4, 2}, features4());
}

void write_care(const std::string& path) {
  MatWriter w(path);
  std::vector<double> a = path4(), b(16, 0.0);
  b[0 + 4 * 3] = b[3 + 4 * 0] = 1.0;  // relation b: 0 - 3
  std::vector<double> homo = a;
  homo[0 + 4 * 3] = homo[3 + 4 * 0] = 1.0;
  w.sparse("homo", 4, 4, homo);
  w.sparse("net_a", 4, 4, a);
  w.sparse("net_b", 4, 4, b);
  const std::vector<float> f = features4();
  const std::vector<double> x(f.begin(), f.end());
  w.sparse("features", 4, 2, x);
  w.dense("label", MAT_C_DOUBLE, MAT_T_UINT8, {4, 1}, std::vector<uint8_t>{1, 0, 0, 1});
}

void expect_path4(const Graph& g) {
  EXPECT_EQ(g.num_nodes, 4);
  EXPECT_EQ(g.features.dtype(), Dtype::f32);
  EXPECT_EQ(g.features.shape(), (Shape{4, 2}));
  EXPECT_EQ(g.features.to_vector<float>(), (std::vector<float>{0, 0, 1, 10, 2, 20, 3, 30}));
  EXPECT_EQ(g.labels.dtype(), Dtype::i64);
  EXPECT_EQ(g.labels.shape(), (Shape{4}));
  g.adjacency.validate("adjacency");
}

TEST(GraphReader, ReadsTheTamLayout) {
  TempDir dir;
  write_tam(dir / "Amazon.mat");
  const Graph g = read_graph(dir / "Amazon.mat");
  expect_path4(g);
  EXPECT_EQ(g.num_edges(), 6);
  EXPECT_EQ(g.adjacency.row_ptr, (std::vector<int64_t>{0, 1, 3, 5, 6}));
  EXPECT_EQ(g.adjacency.col, (std::vector<int64_t>{1, 0, 2, 1, 3, 2}));
  EXPECT_EQ(g.labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 0, 0}));
  EXPECT_TRUE(g.relations.empty());
}

TEST(GraphReader, ReadsTheCareGnnLayoutInAZip) {
  TempDir dir;
  write_care(dir / "care.mat");
  write_zip(dir / "care.zip", {{"data/", ""},
                               {"README.txt", "not a mat file"},
                               {"__MACOSX/._care.mat", "resource fork"},
                               {"data/care.mat", read_bytes(dir / "care.mat")}});
  const Graph g = read_graph(dir / "care.zip");
  expect_path4(g);
  EXPECT_EQ(g.num_edges(), 8);
  EXPECT_EQ(g.labels.to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 0, 1}));
  ASSERT_EQ(g.relations.size(), 2u);
  EXPECT_EQ(g.relations.at("net_a").nnz(), 6);
  EXPECT_EQ(g.relations.at("net_b").col, (std::vector<int64_t>{3, 0}));
  // A zip is told by its content, whatever its name.
  fs::copy_file(dir / "care.zip", dir / "care.bin");
  EXPECT_EQ(read_graph(dir / "care.bin").num_edges(), 8);
}

TEST(GraphReader, ZipErrors) {
  TempDir dir;
  write_tam(dir / "g.mat");
  const std::string mat = read_bytes(dir / "g.mat");
  const std::string p = dir / "g.zip";

  write_zip(p, {{"notes.txt", "hello"}});
  EXPECT_TRUE(throws_error([&] { read_graph(p); },
                           {p, "exactly one .mat file, it holds 0", "'notes.txt'"}));
  write_zip(p, {{"a.mat", mat}, {"b.MAT", mat}});
  EXPECT_TRUE(throws_error([&] { read_graph(p); }, {p, "it holds 2", "'a.mat'", "'b.MAT'"}));
  write_zip(p, {{"x.mat", "not a mat file"}});
  EXPECT_TRUE(throws_error([&] { read_graph(p); }, {p + ":x.mat", "not a readable MAT-file"}));

  // Truncated archive and garbage that starts like a zip.
  write_zip(p, {{"g.mat", mat}});
  const std::string zip = read_bytes(p);
  write_bytes(p, zip.substr(0, zip.size() / 2));
  EXPECT_TRUE(throws_error([&] { read_graph(p); }, {p, "cannot open the zip archive"}));
  write_bytes(p, "PK\x03\x04 this is not really a zip archive");
  EXPECT_TRUE(throws_error([&] { read_graph(p); }, {p, "cannot open the zip archive"}));
  write_bytes(dir / "text.zip", "plain text");
  EXPECT_TRUE(throws_error([&] { read_graph(dir / "text.zip"); }, {"text.zip", "zip archive"}));

  // A stored member whose bytes were changed: the CRC check catches it.
  write_zip(p, {{"g.mat", mat}}, /*store=*/true);
  std::string damaged = read_bytes(p);
  const size_t at = damaged.find("MATLAB 5.0");
  ASSERT_NE(at, std::string::npos);
  damaged[at + 300] ^= 0x55;
  write_bytes(p, damaged);
  EXPECT_TRUE(throws_error([&] { read_graph(p); }, {p, "member 'g.mat' is corrupt"}));
  EXPECT_TRUE(throws_error([&] { read_graph(dir / "missing.zip"); }, {"missing.zip", "no such"}));
}

TEST(GraphReader, LayoutErrors) {
  TempDir dir;
  const std::string p = dir / "bad.mat";
  {
    MatWriter w(p);
    w.dense("A", MAT_C_DOUBLE, MAT_T_DOUBLE, {2, 2}, std::vector<double>{0, 1, 1, 0});
  }
  EXPECT_TRUE(throws_error([&] { read_graph(p); },
                           {p, "unknown graph layout", "'Network'", "'homo'", "holds 'A'"}));
  {
    MatWriter w(p);
    w.sparse("Network", 4, 3, std::vector<double>(12, 1.0));
  }
  EXPECT_TRUE(throws_error([&] { read_graph(p); }, {p, "'Network' is 4×3, not square"}));
  {
    MatWriter w(p);
    w.sparse("Network", 4, 4, path4());
    w.dense("Label", MAT_C_DOUBLE, MAT_T_DOUBLE, {1, 3}, std::vector<double>{0, 1, 0});
    w.dense("Attributes", MAT_C_SINGLE, MAT_T_SINGLE, {4, 2}, features4());
  }
  EXPECT_TRUE(throws_error([&] { read_graph(p); }, {p, "'Label' has 3 labels for the 4 nodes"}));
  {
    MatWriter w(p);
    w.sparse("Network", 4, 4, path4());
    w.dense("Label", MAT_C_DOUBLE, MAT_T_DOUBLE, {1, 4}, std::vector<double>{0, 1, 0.5, 0});
    w.dense("Attributes", MAT_C_SINGLE, MAT_T_SINGLE, {4, 2}, features4());
  }
  EXPECT_TRUE(throws_error([&] { read_graph(p); }, {p, "'Label'", "0.5"}));
  {
    std::vector<float> x = features4();
    x[6] = std::numeric_limits<float>::infinity();  // node 2, feature 1
    MatWriter w(p);
    w.sparse("Network", 4, 4, path4());
    w.dense("Label", MAT_C_DOUBLE, MAT_T_DOUBLE, {1, 4}, std::vector<double>{0, 1, 0, 0});
    w.dense("Attributes", MAT_C_SINGLE, MAT_T_SINGLE, {4, 2}, x);
  }
  EXPECT_TRUE(
      throws_error([&] { read_graph(p); }, {p, "'Attributes' has inf at node 2, feature 1"}));
  {
    MatWriter w(p);
    w.sparse("Network", 4, 4, path4());
    w.dense("Label", MAT_C_DOUBLE, MAT_T_DOUBLE, {1, 4}, std::vector<double>{0, 1, 0, 0});
    w.dense("Attributes", MAT_C_SINGLE, MAT_T_SINGLE, {2, 2}, std::vector<float>{1, 2, 3, 4});
  }
  EXPECT_TRUE(throws_error([&] { read_graph(p); }, {p, "'Attributes' has shape (2, 2)"}));
  {
    MatWriter w(p);
    w.sparse("Network", 4, 4, path4());
    w.dense("Label", MAT_C_DOUBLE, MAT_T_DOUBLE, {1, 4}, std::vector<double>{0, 1, 0, 0});
  }
  EXPECT_TRUE(throws_error([&] { read_graph(p); }, {p, "no variable 'Attributes'", "'Network'"}));
  write_bytes(p, std::string(200, '\0'));
  EXPECT_TRUE(throws_error([&] { read_graph(p); }, {p}));
}

TEST(GraphReader, ReadsEdgeLists) {
  TempDir dir;
  std::ofstream(dir / "edges.csv") << "src,dst,weight\n# a comment\n0,1,2.5\n1,2\n\n0,1,4\n3,3,1\n";
  std::ofstream(dir / "x.txt") << "% features\n1 2\n3\t4\n5 6\n7 8\n";
  std::ofstream(dir / "y.csv") << "label\n0\n1\n1.0\n0\n";
  const Graph g = read_edge_list(dir / "edges.csv", dir / "x.txt", dir / "y.csv");
  EXPECT_EQ(g.num_nodes, 4);
  EXPECT_EQ(g.features.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(g.labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 1, 0}));
  g.adjacency.validate("edges");
  EXPECT_EQ(g.adjacency.row_ptr, (std::vector<int64_t>{0, 1, 2, 2, 3}));
  EXPECT_EQ(g.adjacency.col, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(g.adjacency.values, (std::vector<double>{4, 1, 1}));  // the duplicate keeps 4

  const auto edges = [&](const std::string& text) {
    std::ofstream(dir / "e.csv") << text;
    return read_edge_list(dir / "e.csv", dir / "x.txt", dir / "y.csv");
  };
  EXPECT_TRUE(
      throws_error([&] { edges("0,1\n2,4\n"); }, {"e.csv' line 2", "node 4 is outside [0, 4)"}));
  EXPECT_TRUE(throws_error([&] { edges("0,1\n-1,2\n"); }, {"line 2", "node -1"}));
  EXPECT_TRUE(throws_error([&] { edges("0,1\n1,x\n"); }, {"line 2", "'x' is not an integer"}));
  EXPECT_TRUE(throws_error([&] { edges("0,1,nan\n"); }, {"line 1", "weight 'nan'"}));
  EXPECT_TRUE(throws_error([&] { edges("0\n"); }, {"line 1", "1 fields"}));
  std::ofstream(dir / "x2.txt") << "1,2\n3\n";
  EXPECT_TRUE(
      throws_error([&] { read_edge_list(dir / "edges.csv", dir / "x2.txt", dir / "y.csv"); },
                   {"x2.txt' line 2", "1 features, but the first row has 2"}));
  std::ofstream(dir / "x3.txt") << "1,2\n3,inf\n";
  EXPECT_TRUE(
      throws_error([&] { read_edge_list(dir / "edges.csv", dir / "x3.txt", dir / "y.csv"); },
                   {"x3.txt' line 2", "field 2 is 'inf'"}));
  std::ofstream(dir / "y2.csv") << "0\n1\n";
  EXPECT_TRUE(
      throws_error([&] { read_edge_list(dir / "edges.csv", dir / "x.txt", dir / "y2.csv"); },
                   {"y2.csv' has 2 labels", "has 4 nodes"}));
  std::ofstream(dir / "empty.txt") << "";
  EXPECT_TRUE(
      throws_error([&] { read_edge_list(dir / "edges.csv", dir / "empty.txt", dir / "y.csv"); },
                   {"empty.txt", "no feature rows"}));
}

CsrMatrix small_directed() {
  // 0 -> 1 (2.0), 1 -> 0 (3.0), 1 -> 1 (5.0), 2 -> 0 (1.0); node 3 isolated.
  CsrMatrix a;
  a.rows = a.cols = 4;
  a.row_ptr = {0, 1, 3, 4, 4};
  a.col = {1, 0, 1, 0};
  a.values = {2, 3, 5, 1};
  return a;
}

TEST(GraphHelpers, SelfLoopsSymmetrizeDegrees) {
  const CsrMatrix a = small_directed();
  const CsrMatrix loops = add_self_loops(a, 7.0);
  loops.validate("loops");
  EXPECT_EQ(loops.row_ptr, (std::vector<int64_t>{0, 2, 4, 6, 7}));
  EXPECT_EQ(loops.col, (std::vector<int64_t>{0, 1, 0, 1, 0, 2, 3}));
  EXPECT_EQ(loops.values, (std::vector<double>{7, 2, 3, 5, 1, 7, 7}));  // (1, 1) keeps 5

  const CsrMatrix s = symmetrize(a);
  s.validate("sym");
  EXPECT_EQ(s.row_ptr, (std::vector<int64_t>{0, 2, 4, 5, 5}));
  EXPECT_EQ(s.col, (std::vector<int64_t>{1, 2, 0, 1, 0}));
  EXPECT_EQ(s.values, (std::vector<double>{3, 1, 3, 5, 1}));  // (0, 1) and (1, 0): max 3

  const DegreeStats d = degree_stats(a);
  EXPECT_EQ(d.min, 0);
  EXPECT_EQ(d.max, 1);
  EXPECT_DOUBLE_EQ(d.mean, 3.0 / 4.0);
  EXPECT_EQ(d.isolated, 1);
  EXPECT_EQ(d.self_loops, 1);
  EXPECT_FALSE(d.symmetric);
  EXPECT_TRUE(degree_stats(s).symmetric);
  EXPECT_EQ(degree_stats(add_self_loops(s)).isolated, 1);

  CsrMatrix rect;
  rect.rows = 1;
  rect.cols = 2;
  rect.row_ptr = {0, 0};
  EXPECT_TRUE(throws_error([&] { symmetrize(rect); }, {"[symmetrize]", "square", "1×2"}));
  EXPECT_TRUE(throws_error([&] { add_self_loops(rect); }, {"[add_self_loops]"}));
}

TEST(GraphHelpers, FeatureScaling) {
  const Tensor x = tensor<float>({{1, -3}, {0, 0}, {2, 2}});
  EXPECT_EQ(row_normalize(x).to_vector<float>(),
            (std::vector<float>{0.25f, -0.75f, 0, 0, 0.5f, 0.5f}));
  EXPECT_EQ(row_normalize(x).dtype(), Dtype::f32);
  // Fitted on rows 0 and 2 only: means (1.5, -0.5), stds (0.5, 2.5).
  const Tensor z = standardize_features(x, std::vector<int64_t>{0, 2});
  EXPECT_TRUE(
      basin::testing::all_close(z, tensor<float>({{-1, -1}, {-3, 0.2f}, {1, 1}}), 1e-6, 1e-6));
  const Tensor all = standardize_features(tensor<float>({{1, 5}, {3, 5}}));
  EXPECT_EQ(all.to_vector<float>(), (std::vector<float>{-1, 0, 1, 0}));  // constant column: std 1
  EXPECT_TRUE(throws_error([&] { standardize_features(x, std::vector<int64_t>{3}); },
                           {"row 3 is out of range"}));
}

TEST(GraphHelpers, SplitNodesLikeTheReferenceCode) {
  std::vector<int64_t> labels(1000, 0);
  for (size_t i = 0; i < labels.size(); i += 10) labels[i] = 1;  // 100 anomalies
  const NodeSplit s = split_nodes(labels, 0.4, 7);
  EXPECT_EQ(s.train.size(), 400u);
  EXPECT_EQ(s.test.size(), 402u);  // ceil(0.67 · 600)
  EXPECT_EQ(s.val.size(), 198u);
  const auto positives = [&](const std::vector<int64_t>& idx) {
    int64_t n = 0;
    for (int64_t i : idx) n += labels[i];
    return n;
  };
  EXPECT_EQ(positives(s.train), 40);
  EXPECT_NEAR(static_cast<double>(positives(s.test)), 40.2, 1.0);
  std::set<int64_t> seen(s.train.begin(), s.train.end());
  seen.insert(s.val.begin(), s.val.end());
  seen.insert(s.test.begin(), s.test.end());
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_TRUE(std::is_sorted(s.val.begin(), s.val.end()));
  EXPECT_EQ(split_nodes(labels, 0.4, 7).test, s.test);
  EXPECT_NE(split_nodes(labels, 0.4, 8).test, s.test);

  const NodeSplit small = split_nodes(labels, 0.01, 1, /*first_node=*/300);
  EXPECT_EQ(small.train.size(), 7u);  // floor(0.01 · 700)
  EXPECT_EQ(small.train.size() + small.val.size() + small.test.size(), 700u);
  EXPECT_GE(*std::min_element(small.test.begin(), small.test.end()), 300);
  EXPECT_GE(*std::min_element(small.train.begin(), small.train.end()), 300);
  EXPECT_TRUE(throws_error([&] { split_nodes(labels, 1.0, 0); }, {"train_ratio"}));
  EXPECT_TRUE(throws_error([&] { split_nodes(labels, 0.5, 0, 1000); }, {"first_node"}));
}

TEST(GraphReader, ReadsTheSharedAmazonGraph) {
  const std::string path = std::string(BASIN_SHARED_DATA_DIR) + "/fraud-amazon-tam/Amazon.zip";
  if (!fs::exists(path)) GTEST_SKIP() << "the Amazon graph is not at " << path;
  const Graph g = read_graph(path);
  EXPECT_EQ(g.num_nodes, 10224);
  EXPECT_EQ(g.num_edges(), 351216);  // 175,608 undirected edges, both directions
  EXPECT_EQ(g.features.shape(), (Shape{10224, 25}));
  const auto labels = g.labels.to_vector<int64_t>();
  EXPECT_EQ(std::count(labels.begin(), labels.end(), 1), 693);
  EXPECT_EQ(std::count(labels.begin(), labels.end(), 0), 9531);
  g.adjacency.validate("Network");
  const DegreeStats d = degree_stats(g.adjacency);
  EXPECT_EQ(d.min, 1);
  EXPECT_EQ(d.max, 511);
  EXPECT_NEAR(d.mean, 34.35, 0.005);
  EXPECT_EQ(d.isolated, 0);
  EXPECT_EQ(d.self_loops, 0);
  EXPECT_TRUE(d.symmetric);
  EXPECT_EQ(symmetrize(g.adjacency).col, g.adjacency.col);
  const auto x = g.features.to_vector<float>();
  EXPECT_EQ(*std::min_element(x.begin(), x.end()), -1.0f);
  EXPECT_NEAR(*std::max_element(x.begin(), x.end()), 5525.0f, 1.0f);
  EXPECT_TRUE(g.relations.empty());

  const NodeSplit s = split_nodes(labels, 0.01, 0);
  EXPECT_EQ(s.train.size(), 102u);
  EXPECT_EQ(s.val.size(), 3340u);
  EXPECT_EQ(s.test.size(), 6782u);
}

}  // namespace
}  // namespace basin::data
