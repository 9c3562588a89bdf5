// MIL bags: the Andrews .mat layout and the UCI Musk CSV (small files written here and the shared
// Elephant, Fox and Musk1 files), the bag dataset and collate, bag dropout, standardisation.
#include "data/mil.h"

#include <gtest/gtest.h>
#include <matio.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>

#include "data/mat.h"
#include "tests/data/mat_writer.h"
#include "tests/test_util.h"

namespace basin::data {
namespace {

namespace fs = std::filesystem;
using basin::testing::MatWriter;
using basin::testing::TempDir;
using basin::testing::throws_error;

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// Five instances with 3 features (row i is [i + 1, 0, -(i + 1)], column-major here).
std::vector<double> five_by_three() {
  std::vector<double> x(15, 0.0);
  for (size_t i = 0; i < 5; ++i) {
    x[i] = static_cast<double>(i + 1);
    x[i + 10] = -static_cast<double>(i + 1);
  }
  return x;
}

// The Andrews layout: sparse features and labels (±1), bag_ids of class double stored as uint8.
void write_andrews(const std::string& path, const std::vector<double>& labels,
                   const std::vector<uint8_t>& bag_ids, size_t n = 5) {
  MatWriter w(path);
  w.sparse("features", n, 3, five_by_three(), /*pad_ir=*/true);
  w.sparse("labels", 1, labels.size(), labels, /*pad_ir=*/true);
  w.dense("bag_ids", MAT_C_DOUBLE, MAT_T_UINT8, {1, bag_ids.size()}, bag_ids);
}

TEST(MilBags, ReadsTheAndrewsLayout) {
  TempDir dir;
  write_andrews(dir / "bags.mat", {-1, -1, 1, 1, 1}, {1, 1, 2, 2, 2});
  const MilBags b = read_mil_mat(dir / "bags.mat");
  ASSERT_EQ(b.size(), 2);
  EXPECT_EQ(b.num_features, 3);
  EXPECT_EQ(b.num_instances(), 5);
  EXPECT_EQ(b.labels(), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(b.bags[0].id, "1");
  EXPECT_EQ(b.bags[1].id, "2");
  EXPECT_EQ(b.bags[0].instances.dtype(), Dtype::f32);
  EXPECT_EQ(b.bags[0].instances.shape(), (Shape{2, 3}));
  EXPECT_EQ(b.bags[1].instances.to_vector<float>(),
            (std::vector<float>{3, 0, -3, 4, 0, -4, 5, 0, -5}));
  EXPECT_EQ(b.bags[1].instance_labels.to_vector<int64_t>(), (std::vector<int64_t>{1, 1, 1}));
}

TEST(MilBags, BagLabelIsTheMaximumOverInstances) {
  TempDir dir;
  {
    MatWriter w(dir / "01.mat");
    w.sparse("features", 5, 3, five_by_three(), /*pad_ir=*/true);
    w.dense("labels", MAT_C_INT64, MAT_T_INT64, {5, 1}, std::vector<int64_t>{0, 1, 0, 0, 0});
    w.dense("bag_ids", MAT_C_INT32, MAT_T_INT32, {5, 1}, std::vector<int32_t>{7, 7, 9, 9, 9});
  }
  const MilBags b = read_mil_mat(dir / "01.mat");
  ASSERT_EQ(b.size(), 2);
  EXPECT_EQ(b.labels(), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(b.bags[0].instance_labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(b.bags[1].id, "9");
}

TEST(MilBags, GapsInBagIdsGiveNoEmptyBag) {
  TempDir dir;
  // Bag 3 has no instances: it is a gap in the numbering, not a bag.
  write_andrews(dir / "gap.mat", {1, 1, -1, 1, -1}, {1, 1, 2, 4, 4});
  const MilBags b = read_mil_mat(dir / "gap.mat");
  ASSERT_EQ(b.size(), 3);
  EXPECT_EQ(b.bags[2].id, "4");
  EXPECT_EQ(b.bags[2].instances.shape(0), 2);
  EXPECT_EQ(b.labels(), (std::vector<int64_t>{1, 0, 1}));
  // Instances of one bag need not be contiguous; they keep their file order.
  write_andrews(dir / "mixed.mat", {1, -1, 1, -1, -1}, {2, 1, 2, 1, 1});
  const MilBags m = read_mil_mat(dir / "mixed.mat");
  ASSERT_EQ(m.size(), 2);
  EXPECT_EQ(m.bags[0].instances.to_vector<float>(),
            (std::vector<float>{2, 0, -2, 4, 0, -4, 5, 0, -5}));
  EXPECT_EQ(m.bags[1].instances.to_vector<float>(), (std::vector<float>{1, 0, -1, 3, 0, -3}));
}

TEST(MilBags, BadMatFilesAreErrors) {
  TempDir dir;
  const std::string p = dir / "bad.mat";
  write_andrews(p, {1, 1, -1, -1}, {1, 1, 2, 2, 2});
  EXPECT_TRUE(throws_error([&] { read_mil_mat(p); }, {p, "lengths differ", "5 instances",
                                                      "'labels' has 4", "'bag_ids' has 5"}));
  write_andrews(p, {1, 1, -1, -1, 2}, {1, 1, 2, 2, 2});
  EXPECT_TRUE(throws_error([&] { read_mil_mat(p); }, {p, "'labels' has 2 at instance 4"}));
  {
    MatWriter w(p);
    w.sparse("features", 5, 3, five_by_three(), /*pad_ir=*/true);
    w.sparse("labels", 1, 5, {1, 1, -1, -1, -1}, /*pad_ir=*/true);
  }
  EXPECT_TRUE(throws_error([&] { read_mil_mat(p); },
                           {p, "no variable 'bag_ids'", "'features'", "'labels'"}));
  {
    std::vector<double> x = five_by_three();
    x[2 + 5 * 1] = std::numeric_limits<double>::quiet_NaN();  // instance 2, feature 1
    MatWriter w(p);
    w.sparse("features", 5, 3, x, /*pad_ir=*/true);
    w.sparse("labels", 1, 5, {1, 1, -1, -1, -1}, /*pad_ir=*/true);
    w.dense("bag_ids", MAT_C_DOUBLE, MAT_T_DOUBLE, {1, 5}, std::vector<double>{1, 1, 2, 2, 2});
  }
  EXPECT_TRUE(throws_error([&] { read_mil_mat(p); }, {p, "nan at instance 2, feature 1"}));
  {
    MatWriter w(p);
    w.sparse("features", 5, 3, five_by_three(), /*pad_ir=*/true);
    w.sparse("labels", 1, 5, {1, 1, -1, -1, -1}, /*pad_ir=*/true);
    w.dense("bag_ids", MAT_C_DOUBLE, MAT_T_DOUBLE, {1, 5}, std::vector<double>{1, 1, 2, 2, 2.5});
  }
  EXPECT_TRUE(throws_error([&] { read_mil_mat(p); }, {p, "'bag_ids'", "2.5"}));
  {
    MatWriter w(p);
    w.dense("features", MAT_C_DOUBLE, MAT_T_DOUBLE, {0, 3}, std::vector<double>{});
    w.dense("labels", MAT_C_DOUBLE, MAT_T_DOUBLE, {1, 0}, std::vector<double>{});
    w.dense("bag_ids", MAT_C_DOUBLE, MAT_T_DOUBLE, {1, 0}, std::vector<double>{});
  }
  EXPECT_TRUE(throws_error([&] { read_mil_mat(p); }, {p, "no instances"}));
  write_text(p, "MATLAB 5.0 MAT-file, but cut short");
  EXPECT_TRUE(throws_error([&] { read_mil_mat(p); }, {p}));
}

const char* kMuskCsv =
    "MUSK-1,1_1,10,-20,30,1.\r\n"
    "MUSK-1,1_2,11,-21,31,1.\r\n"
    "NON-MUSK-2,2_1,12,-22,32,0.\r\n"
    "\r\n"
    "MUSK-1,1_3,13,-23,33,0.\r\n";

TEST(MilBags, ReadsTheMuskCsv) {
  TempDir dir;
  write_text(dir / "musk.data", kMuskCsv);
  const MilBags b = read_musk_csv(dir / "musk.data");
  ASSERT_EQ(b.size(), 2);
  EXPECT_EQ(b.num_features, 3);
  EXPECT_EQ(b.bags[0].id, "MUSK-1");
  EXPECT_EQ(b.bags[0].label, 1);
  EXPECT_EQ(b.bags[0].instances.to_vector<float>(),
            (std::vector<float>{10, -20, 30, 11, -21, 31, 13, -23, 33}));
  EXPECT_EQ(b.bags[0].instance_labels.to_vector<int64_t>(), (std::vector<int64_t>{1, 1, 0}));
  EXPECT_EQ(b.bags[1].id, "NON-MUSK-2");
  EXPECT_EQ(b.bags[1].label, 0);
}

TEST(MilBags, BadMuskCsvIsAnError) {
  TempDir dir;
  const std::string p = dir / "musk.data";
  write_text(p, "MUSK-1,1_1,10,-20,30,1.\nMUSK-1,1_2,11,-21,1.\n");
  EXPECT_TRUE(throws_error([&] { read_musk_csv(p); }, {p, "line 2", "5 fields", "has 6"}));
  write_text(p, "MUSK-1,1_1,10,nan,30,1.\n");
  EXPECT_TRUE(throws_error([&] { read_musk_csv(p); }, {p, "line 1", "feature 1", "'nan'"}));
  write_text(p, "MUSK-1,1_1,10,?,30,1.\n");
  EXPECT_TRUE(throws_error([&] { read_musk_csv(p); }, {p, "'?', not a finite number"}));
  write_text(p, "MUSK-1,1_1,10,20,30,2.\n");
  EXPECT_TRUE(throws_error([&] { read_musk_csv(p); }, {p, "class is '2.'"}));
  write_text(p, "MUSK-1,1_1,1.\n");
  EXPECT_TRUE(throws_error([&] { read_musk_csv(p); }, {p, "3 fields"}));
  write_text(p, "\n\n");
  EXPECT_TRUE(throws_error([&] { read_musk_csv(p); }, {p, "no instances"}));
  EXPECT_TRUE(throws_error([&] { read_musk_csv(dir / "none.data"); }, {"none.data"}));
}

MilBags three_bags() {
  MilBags b;
  b.num_features = 2;
  b.bags.push_back({tensor<float>({{1, 2}, {3, 4}}), 1, "a", Tensor()});
  b.bags.push_back({tensor<float>({{5, 6}}), 0, "b", Tensor()});
  b.bags.push_back({tensor<float>({{7, 8}, {9, 10}, {11, 12}}), 1, "c", Tensor()});
  return b;
}

TEST(MilBags, DatasetAndCollate) {
  const DatasetPtr<Example> ds = mil_dataset(three_bags());
  ASSERT_EQ(ds->size(), 3);
  const Example item = ds->get(2);
  EXPECT_EQ(item.at("instances").shape(), (Shape{3, 2}));
  EXPECT_EQ(item.at("label").item<int64_t>(), 1);
  EXPECT_EQ(item.at("index").item<int64_t>(), 2);

  const Example collated = collate_bags({ds->get(0), ds->get(1), ds->get(2)});
  EXPECT_EQ(collated.at("instances").shape(), (Shape{3, 3, 2}));
  EXPECT_EQ(collated.at("instances").to_vector<float>(),
            (std::vector<float>{1, 2, 3, 4, 0, 0, 5, 6, 0, 0, 0, 0, 7, 8, 9, 10, 11, 12}));
  EXPECT_EQ(collated.at("padding_mask").dtype(), Dtype::boolean);
  EXPECT_EQ(collated.at("padding_mask").to_vector<int64_t>(),
            (std::vector<int64_t>{0, 0, 1, 0, 1, 1, 0, 0, 0}));
  EXPECT_EQ(collated.at("sizes").to_vector<int64_t>(), (std::vector<int64_t>{2, 1, 3}));
  EXPECT_EQ(collated.at("label").to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(collated.at("index").to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2}));

  // Through batch() and a fold subset; ragged_collate also works on these items.
  const auto batches = batch(subset(ds, {2, 0}), 2, false, collate_bags);
  EXPECT_EQ(batches->get(0).at("instances").shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(ragged_collate({ds->get(0), ds->get(2)}).at("instances_offsets").to_vector<int64_t>(),
            (std::vector<int64_t>{0, 2, 5}));
}

TEST(MilBags, EmptyBagsAndBadItemsAreErrors) {
  MilBags b = three_bags();
  b.bags[1].instances = zeros({0, 2}, Dtype::f32);
  EXPECT_TRUE(throws_error([&] { mil_dataset(b); }, {"bag 1 (id 'b') is empty"}));
  Example empty{{"instances", zeros({0, 2})}, {"label", scalar(0, Dtype::i64)}};
  Example one{{"instances", ones({1, 2})}, {"label", scalar(1, Dtype::i64)}};
  EXPECT_TRUE(throws_error([&] { collate_bags({one, empty}); }, {"item 1 is an empty bag"}));
  Example wide{{"instances", ones({1, 3})}, {"label", scalar(1, Dtype::i64)}};
  EXPECT_TRUE(throws_error([&] { collate_bags({one, wide}); }, {"item 1 has 3 features"}));
  Example vec{{"instances", ones({1, 2})}, {"label", ones({2})}};
  EXPECT_TRUE(throws_error([&] { collate_bags({vec}); }, {"'label'", "only 0-d"}));
  Example clash{{"instances", ones({1, 2})}, {"sizes", scalar(1)}};
  EXPECT_TRUE(throws_error([&] { collate_bags({clash}); }, {"'sizes'"}));
  EXPECT_TRUE(throws_error([&] { collate_bags({}); }, {"no items"}));
}

TEST(MilBags, BagDropout) {
  const Tensor x = reshape(arange(0.0, 40.0, 1.0, Dtype::f32), {20, 2});
  Generator g0(3);
  EXPECT_EQ(drop_instances(x, 0.0, g0).shape(0), 20);
  EXPECT_EQ(g0.offset(), 0u);  // p = 0 draws nothing
  Generator g1(3), g2(3);
  const Tensor a = drop_instances(x, 0.5, g1), b = drop_instances(x, 0.5, g2);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
  EXPECT_LT(a.shape(0), 20);
  EXPECT_GT(a.shape(0), 0);
  const auto rows = a.to_vector<float>();
  for (size_t i = 2; i < rows.size(); i += 2) EXPECT_LT(rows[i - 2], rows[i]);  // order kept
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Generator g(seed);
    EXPECT_EQ(drop_instances(x, 1.0, g).shape(0), 1);  // at least one is kept
  }
  EXPECT_TRUE(throws_error([&] { drop_instances(x, 1.5, g1); }, {"p must lie in [0, 1]"}));

  MilBags big;
  big.num_features = 2;
  for (int i = 0; i < 4; ++i) big.bags.push_back({x, i % 2, std::to_string(i), Tensor()});
  const auto dropped = bag_dropout(mil_dataset(big), 0.5, 11);
  const Tensor e0 = dropped->get(1).at("instances");
  EXPECT_EQ(dropped->get(1).at("instances").to_vector<float>(), e0.to_vector<float>());
  EXPECT_NE(dropped->get(2).at("instances").to_vector<float>(), e0.to_vector<float>());
  dropped->set_epoch(1);
  EXPECT_NE(dropped->get(1).at("instances").to_vector<float>(), e0.to_vector<float>());
  dropped->set_epoch(0);
  EXPECT_EQ(dropped->get(1).at("instances").to_vector<float>(), e0.to_vector<float>());
  EXPECT_EQ(dropped->get(1).at("label").item<int64_t>(), 1);
}

TEST(MilBags, StandardisationIsFittedOnTheTrainingBags) {
  MilBags b;
  b.num_features = 2;
  b.bags.push_back({tensor<float>({{1, 5}, {3, 5}}), 1, "a", Tensor()});
  b.bags.push_back({tensor<float>({{5, 5}}), 0, "b", Tensor()});
  b.bags.push_back({tensor<float>({{100, -7}}), 1, "test", Tensor()});
  const std::vector<int64_t> train = {0, 1};
  const FeatureScaler s = fit_feature_scaler(b, train);
  EXPECT_EQ(s.mean.to_vector<double>(), (std::vector<double>{3, 5}));
  // Feature 0: population std of {1, 3, 5} is sqrt(8/3); feature 1 is constant: std 1.
  EXPECT_NEAR(s.stddev.to_vector<double>()[0], std::sqrt(8.0 / 3.0), 1e-12);
  EXPECT_EQ(s.stddev.to_vector<double>()[1], 1.0);
  const MilBags z = standardize(b, s);
  const auto a = z.bags[0].instances.to_vector<float>();
  EXPECT_NEAR(a[0], -2.0 / std::sqrt(8.0 / 3.0), 1e-6);
  EXPECT_EQ(a[1], 0.0f);
  const auto t = z.bags[2].instances.to_vector<float>();
  EXPECT_NEAR(t[0], 97.0 / std::sqrt(8.0 / 3.0), 1e-4);  // test bag: training statistics
  EXPECT_EQ(t[1], -12.0f);
  EXPECT_EQ(z.bags[2].id, "test");
  EXPECT_EQ(b.bags[0].instances.to_vector<float>()[0], 1.0f);  // the input is unchanged
  EXPECT_TRUE(throws_error([&] { fit_feature_scaler(b, std::vector<int64_t>{3}); },
                           {"bag index 3 is out of range"}));
  EXPECT_TRUE(throws_error([&] { fit_feature_scaler(b, std::vector<int64_t>{}); }, {"no bags"}));
}

struct Expected {
  const char* path;
  int64_t bags, instances, features, positive_bags, positive_instances, min_size, max_size;
  float min_value, max_value;
};

TEST(MilBags, ReadsTheSharedBenchmarks) {
  const std::string root = BASIN_SHARED_DATA_DIR;
  const Expected files[] = {
      {"/elephant/elephant_100x100_matlab.mat", 200, 1391, 230, 100, 762, 2, 13, -4.48f, 66.17f},
      {"/fox/fox_100x100_matlab.mat", 200, 1320, 230, 100, 647, 2, 13, -4.15f, 66.87f},
      {"/musk1/musk1norm_matlab.mat", 92, 476, 166, 47, 207, 2, 40, -6.11f, 17.56f},
  };
  int read = 0;
  for (const Expected& e : files) {
    const std::string path = root + e.path;
    if (!fs::exists(path)) continue;
    SCOPED_TRACE(path);
    ++read;
    const MilBags b = read_mil_mat(path);
    EXPECT_EQ(b.size(), e.bags);
    EXPECT_EQ(b.num_instances(), e.instances);
    EXPECT_EQ(b.num_features, e.features);
    const auto labels = b.labels();
    EXPECT_EQ(std::accumulate(labels.begin(), labels.end(), int64_t{0}), e.positive_bags);
    int64_t positive_instances = 0, min_size = 1 << 30, max_size = 0;
    float lo = 1e30f, hi = -1e30f;
    for (const MilBag& bag : b.bags) {
      const int64_t n = bag.instances.shape(0);
      min_size = std::min(min_size, n);
      max_size = std::max(max_size, n);
      positive_instances += bag.label * n;
      for (float v : bag.instances.to_vector<float>()) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
    }
    EXPECT_EQ(positive_instances, e.positive_instances);
    EXPECT_EQ(min_size, e.min_size);
    EXPECT_EQ(max_size, e.max_size);
    EXPECT_NEAR(lo, e.min_value, 0.01);
    EXPECT_NEAR(hi, e.max_value, 0.01);
    EXPECT_EQ(b.bags.front().id, "1");
  }
  if (read == 0) GTEST_SKIP() << "no MIL benchmark files in " << root;
}

TEST(MilBags, MuskCsvMatchesTheNormalisedMatFile) {
  const std::string root = std::string(BASIN_SHARED_DATA_DIR) + "/musk1";
  if (!fs::exists(root + "/clean1.data") || !fs::exists(root + "/musk1norm_matlab.mat")) {
    GTEST_SKIP() << "Musk1 is not in " << root;
  }
  const MilBags csv = read_musk_csv(root + "/clean1.data");
  const MilBags mat = read_mil_mat(root + "/musk1norm_matlab.mat");
  EXPECT_EQ(csv.size(), 92);
  EXPECT_EQ(csv.num_instances(), 476);
  EXPECT_EQ(csv.num_features, 166);
  EXPECT_EQ(csv.labels(), mat.labels());
  EXPECT_EQ(csv.bags[0].id, "MUSK-188");
  // The .mat features are the CSV's z-scored per column with the sample std (n - 1).
  std::vector<int64_t> all(static_cast<size_t>(csv.size()));
  std::iota(all.begin(), all.end(), int64_t{0});
  const MilBags z = standardize(csv, fit_feature_scaler(csv, all));
  const double n = 476.0, to_sample = std::sqrt((n - 1.0) / n);
  double worst = 0.0;
  for (int64_t i = 0; i < csv.size(); ++i) {
    ASSERT_EQ(z.bags[i].instances.shape(), mat.bags[i].instances.shape());
    const auto a = z.bags[i].instances.to_vector<float>();
    const auto b = mat.bags[i].instances.to_vector<float>();
    for (size_t k = 0; k < a.size(); ++k) {
      worst = std::max(worst, std::abs(a[k] * to_sample - static_cast<double>(b[k])));
    }
  }
  EXPECT_LT(worst, 1e-3);
}

}  // namespace
}  // namespace basin::data
