// Splits: every fold a partition of the samples, sizes as sklearn's, class proportions, nested
// inner folds inside the outer training part, determinism per seed, and the error messages.
#include "data/split.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "tests/test_util.h"

namespace basin::data {
namespace {
using basin::testing::throws_error;

/// Checks that train and test are sorted, disjoint and together exactly `all` (sorted).
::testing::AssertionResult is_split_of(const Fold& f, const std::vector<int64_t>& all) {
  if (!std::is_sorted(f.train.begin(), f.train.end()) ||
      !std::is_sorted(f.test.begin(), f.test.end())) {
    return ::testing::AssertionFailure() << "index lists are not sorted";
  }
  std::vector<int64_t> joined;
  std::merge(f.train.begin(), f.train.end(), f.test.begin(), f.test.end(),
             std::back_inserter(joined));
  if (joined != all) {
    return ::testing::AssertionFailure() << "train and test overlap or do not cover the samples";
  }
  return ::testing::AssertionSuccess();
}

std::vector<int64_t> range(int64_t n) {
  std::vector<int64_t> r(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) r[i] = i;
  return r;
}

/// Checks that each fold splits `all` and that every index is in exactly one test fold.
::testing::AssertionResult is_cross_validation_of(const std::vector<Fold>& folds,
                                                  const std::vector<int64_t>& all) {
  std::vector<int64_t> tests;
  for (size_t i = 0; i < folds.size(); ++i) {
    auto r = is_split_of(folds[i], all);
    if (!r) return r << " (fold " << i << ")";
    tests.insert(tests.end(), folds[i].test.begin(), folds[i].test.end());
  }
  std::sort(tests.begin(), tests.end());
  if (tests != all) {
    return ::testing::AssertionFailure() << "the test folds do not partition the samples";
  }
  return ::testing::AssertionSuccess();
}

/// How many of `indices` have each label.
std::map<int64_t, int64_t> class_counts(const std::vector<int64_t>& indices,
                                        const std::vector<int64_t>& labels) {
  std::map<int64_t, int64_t> counts;
  for (int64_t i : indices) ++counts[labels[i]];
  return counts;
}

/// Deterministic labels: class c with the given count each, interleaved (not sorted by class).
std::vector<int64_t> labels_with(const std::vector<std::pair<int64_t, int64_t>>& counts) {
  std::vector<int64_t> labels;
  std::map<int64_t, int64_t> left(counts.begin(), counts.end());
  while (!left.empty()) {
    for (auto it = left.begin(); it != left.end();) {
      labels.push_back(it->first);
      it = --it->second == 0 ? left.erase(it) : std::next(it);
    }
  }
  return labels;
}

bool same(const std::vector<Fold>& a, const std::vector<Fold>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].train != b[i].train || a[i].test != b[i].test) return false;
  }
  return true;
}

// --- train/test -------------------------------------------------------------------------------

TEST(SplitTest, TrainTestSplitSizesAndDeterminism) {
  for (auto [n, fraction, want] : std::vector<std::tuple<int64_t, double, size_t>>{
           {30, 0.1, 3}, {10, 0.25, 3}, {100, 0.2, 20}, {7, 0.5, 4}, {2, 0.5, 1}}) {
    const Fold f = train_test_split(n, fraction, 5);
    EXPECT_EQ(f.test.size(), want) << n << " " << fraction;
    EXPECT_TRUE(is_split_of(f, range(n)));
  }
  const Fold a = train_test_split(50, 0.3, 1), b = train_test_split(50, 0.3, 1);
  EXPECT_EQ(a.test, b.test);
  EXPECT_NE(train_test_split(50, 0.3, 2).test, a.test);
  // Pinned: the same split on every machine and in every later version.
  EXPECT_EQ(train_test_split(10, 0.3, 42).test, (std::vector<int64_t>{1, 4, 6}));
}

TEST(SplitTest, StratifiedTrainTestSplitSharesTheTestPartByLargestRemainder) {
  // Shares of 5 test samples among 7, 3, 5: 2.33, 1, 1.67 -> 2, 1, 2.
  const auto labels = labels_with({{0, 7}, {1, 3}, {2, 5}});
  const Fold f = stratified_train_test_split(labels, 0.3, 3);
  EXPECT_TRUE(is_split_of(f, range(15)));
  EXPECT_EQ(class_counts(f.test, labels), (std::map<int64_t, int64_t>{{0, 2}, {1, 1}, {2, 2}}));
  // Class ids need not be 0..C-1; 90:10 stays 18:2 in the test part.
  const auto skewed = labels_with({{-5, 90}, {100, 10}});
  const Fold g = stratified_train_test_split(skewed, 0.2, 3);
  EXPECT_TRUE(is_split_of(g, range(100)));
  EXPECT_EQ(class_counts(g.test, skewed), (std::map<int64_t, int64_t>{{-5, 18}, {100, 2}}));
  // Equal remainders go to the smaller class id: 1 test sample among 2, 2 -> class 0.
  const auto pair = labels_with({{0, 2}, {1, 2}});
  EXPECT_EQ(class_counts(stratified_train_test_split(pair, 0.25, 0).test, pair),
            (std::map<int64_t, int64_t>{{0, 1}}));
}

TEST(SplitTest, StratifiedTrainTestSplitKeepsProportionsOnRandomLabels) {
  Generator gen(5);
  const auto labels = randint(0, 4, {503}, Dtype::i64, Device::cpu(), &gen).to_vector<int64_t>();
  const auto all = class_counts(range(503), labels);
  for (uint64_t seed : {0, 1, 2}) {
    const Fold f = stratified_train_test_split(labels, 0.2, seed);
    EXPECT_TRUE(is_split_of(f, range(503)));
    EXPECT_EQ(f.test.size(), 101u);
    for (const auto& [label, count] : class_counts(f.test, labels)) {
      const double exact = static_cast<double>(all.at(label)) * 101.0 / 503.0;  // its share
      EXPECT_LT(std::abs(static_cast<double>(count) - exact), 1.0) << "class " << label;
    }
  }
  EXPECT_EQ(stratified_train_test_split(labels, 0.2, 9).test,
            stratified_train_test_split(labels, 0.2, 9).test);
  EXPECT_NE(stratified_train_test_split(labels, 0.2, 9).test,
            stratified_train_test_split(labels, 0.2, 10).test);
}

// --- k-fold -----------------------------------------------------------------------------------

TEST(SplitTest, KFoldSizesAndOrder) {
  const auto plain = kfold(10, 3, false);
  ASSERT_EQ(plain.size(), 3u);
  EXPECT_TRUE(is_cross_validation_of(plain, range(10)));
  EXPECT_EQ(plain[0].test, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(plain[1].test, (std::vector<int64_t>{4, 5, 6}));
  EXPECT_EQ(plain[2].test, (std::vector<int64_t>{7, 8, 9}));
  EXPECT_TRUE(same(kfold(10, 3, false, 1), kfold(10, 3, false, 2)));  // no shuffle: seed unused

  for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{10, 3}, {17, 5}, {6, 6}, {100, 7}}) {
    const auto folds = kfold(n, k, true, 4);
    ASSERT_EQ(folds.size(), static_cast<size_t>(k));
    EXPECT_TRUE(is_cross_validation_of(folds, range(n)));
    for (int64_t i = 0; i < k; ++i) {
      EXPECT_EQ(static_cast<int64_t>(folds[i].test.size()), n / k + (i < n % k ? 1 : 0));
    }
  }
  EXPECT_TRUE(same(kfold(40, 4, true, 8), kfold(40, 4, true, 8)));
  EXPECT_FALSE(same(kfold(40, 4, true, 8), kfold(40, 4, true, 9)));
  EXPECT_FALSE(same(kfold(40, 4, true, 8), kfold(40, 4, false)));
}

TEST(SplitTest, StratifiedKFoldDealsEachClassRoundRobin) {
  // Sorted labels 0 x10 then 1 x5, dealt over 3 folds: class 0 -> 4, 3, 3; class 1 -> 1, 2, 2.
  const auto labels = labels_with({{0, 10}, {1, 5}});
  const auto folds = stratified_kfold(labels, 3, 0);
  ASSERT_EQ(folds.size(), 3u);
  EXPECT_TRUE(is_cross_validation_of(folds, range(15)));
  EXPECT_EQ(class_counts(folds[0].test, labels), (std::map<int64_t, int64_t>{{0, 4}, {1, 1}}));
  EXPECT_EQ(class_counts(folds[1].test, labels), (std::map<int64_t, int64_t>{{0, 3}, {1, 2}}));
  EXPECT_EQ(class_counts(folds[2].test, labels), (std::map<int64_t, int64_t>{{0, 3}, {1, 2}}));
}

TEST(SplitTest, StratifiedKFoldOnRandomLabels) {
  Generator gen(3);
  const auto labels = randint(0, 3, {211}, Dtype::i64, Device::cpu(), &gen).to_vector<int64_t>();
  const auto all = class_counts(range(211), labels);
  for (int64_t k : {2, 5, 10}) {
    const auto folds = stratified_kfold(labels, k, 17);
    ASSERT_EQ(folds.size(), static_cast<size_t>(k));
    EXPECT_TRUE(is_cross_validation_of(folds, range(211)));
    size_t smallest = folds[0].test.size(), largest = smallest;
    for (const Fold& f : folds) {
      smallest = std::min(smallest, f.test.size());
      largest = std::max(largest, f.test.size());
      for (const auto& [label, count] : all) {
        const int64_t in_fold = class_counts(f.test, labels)[label];
        EXPECT_GE(in_fold, count / k) << "class " << label << ", k " << k;
        EXPECT_LE(in_fold, (count + k - 1) / k) << "class " << label << ", k " << k;
      }
    }
    EXPECT_LE(largest - smallest, 1u) << "k " << k;
  }
  EXPECT_TRUE(same(stratified_kfold(labels, 5, 1), stratified_kfold(labels, 5, 1)));
  EXPECT_FALSE(same(stratified_kfold(labels, 5, 1), stratified_kfold(labels, 5, 2)));
}

TEST(SplitTest, RepeatedStratifiedKFoldUsesADerivedSeedPerRound) {
  const auto labels = labels_with({{0, 30}, {1, 12}, {7, 9}});
  const auto folds = repeated_stratified_kfold(labels, 3, 4, 99);
  ASSERT_EQ(folds.size(), 12u);
  std::set<std::vector<int64_t>> first_tests;
  for (int64_t r = 0; r < 4; ++r) {
    const std::vector<Fold> round(folds.begin() + 3 * r, folds.begin() + 3 * (r + 1));
    EXPECT_TRUE(is_cross_validation_of(round, range(51))) << "round " << r;
    EXPECT_TRUE(same(round, stratified_kfold(labels, 3, derive_seed(99, r)))) << "round " << r;
    first_tests.insert(round[0].test);
  }
  EXPECT_EQ(first_tests.size(), 4u);  // the rounds differ
  EXPECT_NE(derive_seed(99, 0), derive_seed(99, 1));
  EXPECT_NE(derive_seed(99, 0), derive_seed(98, 0));
  EXPECT_EQ(derive_seed(99, 3), derive_seed(99, 3));
}

TEST(SplitTest, NestedInnerFoldsSplitOnlyTheOuterTrainingPart) {
  const auto labels = labels_with({{0, 40}, {1, 17}});
  const auto nested = nested_stratified_kfold(labels, 5, 3, 2024);
  ASSERT_EQ(nested.size(), 5u);
  std::vector<Fold> outer;
  for (const NestedFold& n : nested) outer.push_back(n.outer);
  EXPECT_TRUE(is_cross_validation_of(outer, range(57)));
  EXPECT_TRUE(same(outer, stratified_kfold(labels, 5, 2024)));
  std::set<std::vector<int64_t>> inner_first;
  for (size_t i = 0; i < nested.size(); ++i) {
    const NestedFold& n = nested[i];
    ASSERT_EQ(n.inner.size(), 3u);
    // Inner folds partition outer.train, so they never touch outer.test.
    EXPECT_TRUE(is_cross_validation_of(n.inner, n.outer.train)) << "outer fold " << i;
    const auto outer_counts = class_counts(n.outer.train, labels);
    for (const Fold& f : n.inner) {
      for (const auto& [label, count] : outer_counts) {
        const int64_t in_fold = class_counts(f.test, labels)[label];
        EXPECT_GE(in_fold, count / 3);
        EXPECT_LE(in_fold, (count + 2) / 3);
      }
    }
    inner_first.insert(n.inner[0].test);
  }
  EXPECT_EQ(inner_first.size(), 5u);
  const auto again = nested_stratified_kfold(labels, 5, 3, 2024);
  for (size_t i = 0; i < nested.size(); ++i) EXPECT_TRUE(same(again[i].inner, nested[i].inner));
  EXPECT_FALSE(same(nested_stratified_kfold(labels, 5, 3, 2025)[0].inner, nested[0].inner));
}

// --- errors -------------------------------------------------------------------------------------

TEST(SplitTest, Errors) {
  const std::vector<int64_t> empty;
  const auto labels = labels_with({{0, 6}, {1, 3}});
  EXPECT_TRUE(throws_error([] { train_test_split(10, 0.0, 0); },
                           {"[train_test_split]", "test_fraction must lie in (0, 1)", "got 0"}));
  EXPECT_TRUE(throws_error([] { train_test_split(10, 1.0, 0); }, {"[train_test_split]", "(0, 1)"}));
  EXPECT_TRUE(throws_error([] { train_test_split(10, std::nan(""), 0); },
                           {"[train_test_split]", "(0, 1)"}));
  EXPECT_TRUE(throws_error([] { train_test_split(1, 0.5, 0); },
                           {"[train_test_split]", "leaves 0 for training and 1 for testing"}));
  EXPECT_TRUE(throws_error([] { train_test_split(10, 0.95, 0); },
                           {"[train_test_split]", "leaves 0 for training"}));
  EXPECT_TRUE(throws_error([&] { stratified_train_test_split(empty, 0.5, 0); },
                           {"[stratified_train_test_split]", "labels is empty"}));
  EXPECT_TRUE(throws_error(
      [] {
        stratified_train_test_split(std::vector<int64_t>{0, 0, 1, 0}, 0.5, 0);
      },
      {"[stratified_train_test_split]", "class 1 has only one member"}));
  EXPECT_TRUE(throws_error([] { kfold(10, 1, true, 0); }, {"[kfold]", "k must be at least 2"}));
  EXPECT_TRUE(throws_error([] { kfold(3, 4, true, 0); }, {"[kfold]", "at least 4 samples, got 3"}));
  EXPECT_TRUE(throws_error([&] { stratified_kfold(labels, 4, 0); },
                           {"[stratified_kfold]", "class 1 has 3 member(s), fewer than k = 4"}));
  EXPECT_TRUE(throws_error([&] { stratified_kfold(empty, 2, 0); },
                           {"[stratified_kfold]", "labels is empty"}));
  EXPECT_TRUE(throws_error([&] { repeated_stratified_kfold(labels, 3, 0, 0); },
                           {"[repeated_stratified_kfold]", "repeats must be at least 1"}));
  EXPECT_TRUE(throws_error([&] { repeated_stratified_kfold(labels, 5, 2, 0); },
                           {"[repeated_stratified_kfold]", "fewer than k = 5"}));
  EXPECT_TRUE(throws_error([&] { nested_stratified_kfold(labels, 3, 1, 0); },
                           {"[nested_stratified_kfold]", "inner_k must be at least 2"}));
  EXPECT_TRUE(throws_error([&] { nested_stratified_kfold(labels, 4, 2, 0); },
                           {"[nested_stratified_kfold]", "fewer than outer_k = 4"}));
  // Class 1 keeps 2 of its 3 members in each outer training part: too few for 3 inner folds.
  EXPECT_TRUE(throws_error(
      [&] { nested_stratified_kfold(labels, 3, 3, 0); },
      {"[nested_stratified_kfold]", "class 1 has 2 member(s) in the training part of outer fold 0",
       "fewer than inner_k = 3"}));
}

}  // namespace
}  // namespace basin::data
