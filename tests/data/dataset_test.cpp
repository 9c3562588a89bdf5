// Dataset wrappers: subset, take, split, map, shuffle, tensor_dataset, batch and the collates.
#include "data/dataset.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <thread>

#include "tests/test_util.h"

namespace basin::data {
namespace {

using basin::testing::throws_error;

// Item i is 10 * i: a dataset of plain values exercises the templates without tensors.
class Tens : public Dataset<int64_t> {
 public:
  explicit Tens(int64_t n) : n_(n) {}
  int64_t size() const override { return n_; }
  int64_t get(int64_t index) const override {
    check_index("tens", index, n_);
    return 10 * index;
  }

 private:
  int64_t n_;
};

std::shared_ptr<Tens> tens(int64_t n) { return std::make_shared<Tens>(n); }

template <class T>
std::vector<T> all_items(const DatasetPtr<T>& ds) {
  std::vector<T> out;
  for (int64_t i = 0; i < ds->size(); ++i) out.push_back(ds->get(i));
  return out;
}

std::vector<int64_t> times_ten(std::vector<int64_t> v) {
  for (int64_t& x : v) x *= 10;
  return v;
}

// Items {"x": (2,) f32 = (i, -i), "y": () i64 = i}.
DatasetPtr<Example> pairs(int64_t n) {
  std::vector<float> x;
  std::vector<int64_t> y;
  for (int64_t i = 0; i < n; ++i) {
    x.push_back(static_cast<float>(i));
    x.push_back(static_cast<float>(-i));
    y.push_back(i);
  }
  return tensor_dataset({{"x", from_vector(x, {n, 2})}, {"y", from_vector(y, {n})}});
}

TEST(Dataset, CheckIndex) {
  EXPECT_TRUE(throws_error([] { tens(3)->get(3); }, {"[tens]", "index 3", "3 items"}));
  EXPECT_TRUE(throws_error([] { tens(3)->get(-1); }, {"[tens]", "index -1"}));
}

TEST(Dataset, Subset) {
  auto s = subset(tens(5), {4, 0, 2, 2});
  EXPECT_EQ(s->size(), 4);
  EXPECT_EQ(all_items(s), (std::vector<int64_t>{40, 0, 20, 20}));
  EXPECT_TRUE(throws_error(
      [] {
        subset(tens(5), {1, 5});
      },
      {"[subset]", "indices[1] = 5", "5 items"}));
  EXPECT_TRUE(throws_error([] { subset(tens(5), {-1}); }, {"[subset]", "-1"}));
  EXPECT_TRUE(throws_error([&] { s->get(4); }, {"[subset]", "index 4"}));
  EXPECT_EQ(subset(tens(5), {})->size(), 0);
}

TEST(Dataset, Take) {
  EXPECT_EQ(all_items(take(tens(5), 3)), (std::vector<int64_t>{0, 10, 20}));
  EXPECT_EQ(take(tens(5), 9)->size(), 5);
  EXPECT_EQ(take(tens(5), 0)->size(), 0);
  EXPECT_TRUE(throws_error([] { take(tens(5), -1); }, {"[take]", "non-negative"}));
  EXPECT_TRUE(throws_error([] { take(std::shared_ptr<Tens>(), 1); }, {"[take]", "null"}));
}

TEST(Dataset, PermutationIsPinned) {
  // The order behind shuffle and split must never change: resumed runs rely on it.
  const std::vector<int64_t> p = permutation(10, 42, 3);
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> identity(10);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(sorted, identity);
  EXPECT_EQ(p, (std::vector<int64_t>{0, 6, 2, 7, 5, 1, 8, 4, 3, 9}));
  EXPECT_EQ(permutation(10, 42, 3), p);
  EXPECT_NE(permutation(10, 42, 4), p);
  EXPECT_NE(permutation(10, 43, 3), p);
  EXPECT_TRUE(permutation(0, 1).empty());
  EXPECT_TRUE(throws_error([] { permutation(-1, 0); }, {"[permutation]", "non-negative"}));
  EXPECT_TRUE(throws_error([] { permutation(3, 0, -1); }, {"[permutation]", "epoch"}));
}

TEST(Dataset, SplitByFraction) {
  auto [a, b] = split(tens(10), 0.8, 7);
  EXPECT_EQ(a->size(), 8);
  EXPECT_EQ(b->size(), 2);
  std::vector<int64_t> both = all_items(a);
  for (int64_t v : all_items(b)) both.push_back(v);
  EXPECT_EQ(both, times_ten(permutation(10, 7)));  // seeded shuffle, then cut

  auto [a2, b2] = split(tens(10), 0.8, 7);
  EXPECT_EQ(all_items(a2), all_items(a));
  auto [a3, b3] = split(tens(10), 0.8, 8);
  EXPECT_NE(all_items(a3), all_items(a));

  EXPECT_EQ(split(tens(10), 0.0, 1).first->size(), 0);
  EXPECT_EQ(split(tens(10), 1.0, 1).second->size(), 0);
  EXPECT_EQ(split(tens(3), 0.5, 1).first->size(), 2);  // llround(1.5)
  EXPECT_TRUE(throws_error([] { split(tens(3), 1.5, 1); }, {"[split]", "[0, 1]", "1.5"}));
  EXPECT_TRUE(throws_error([] { split(tens(3), -0.1, 1); }, {"[split]", "fraction"}));
}

TEST(Dataset, SplitBySizes) {
  auto parts = split(tens(10), {5, 0, 3, 2}, 3);
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(parts[0]->size(), 5);
  EXPECT_EQ(parts[1]->size(), 0);
  std::vector<int64_t> all;
  for (const auto& p : parts) {
    for (int64_t v : all_items(p)) all.push_back(v);
  }
  EXPECT_EQ(all, times_ten(permutation(10, 3)));
  EXPECT_TRUE(throws_error([] { split(tens(10), {5, 4}, 3); }, {"[split]", "9", "10 items"}));
  EXPECT_TRUE(throws_error([] { split(tens(10), {11, -1}, 3); }, {"[split]", "non-negative"}));
}

TEST(Dataset, Map) {
  auto m = map(tens(3), [](int64_t v) { return std::to_string(v + 1); });
  static_assert(std::is_same_v<decltype(m), DatasetPtr<std::string>>);
  EXPECT_EQ(all_items(m), (std::vector<std::string>{"1", "11", "21"}));
  EXPECT_TRUE(throws_error([&] { m->get(3); }, {"[map]", "index 3"}));
  EXPECT_TRUE(
      throws_error([] { map(tens(3), std::function<int(int64_t)>()); }, {"[map]", "empty"}));

  auto scaled = map(pairs(3), [](Example e) {
    e.at("x") = e.at("x") * 2.0;
    return e;
  });
  EXPECT_EQ(scaled->get(2).at("x").to_vector<float>(), (std::vector<float>{4, -4}));
  EXPECT_EQ(scaled->get(2).at("y").item<int64_t>(), 2);
}

TEST(Dataset, ShuffleIsAPermutationDrawnFromSeedAndEpoch) {
  auto s = shuffle(tens(20), 5);
  EXPECT_EQ(s->size(), 20);
  EXPECT_EQ(s->seed(), 5u);
  EXPECT_EQ(s->epoch(), 0);
  const std::vector<int64_t> e0 = all_items<int64_t>(s);
  EXPECT_EQ(e0, times_ten(permutation(20, 5, 0)));
  EXPECT_EQ(s->order(), permutation(20, 5, 0));
  std::vector<int64_t> sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, all_items<int64_t>(tens(20)));

  // The same (seed, epoch) gives the same order in another instance; other epochs differ.
  s->set_epoch(1);
  const std::vector<int64_t> e1 = all_items<int64_t>(s);
  EXPECT_NE(e1, e0);
  EXPECT_EQ(all_items<int64_t>(shuffle(tens(20), 5, 1)), e1);
  s->set_epoch(2);
  EXPECT_NE(all_items<int64_t>(s), e1);
  EXPECT_NE(all_items<int64_t>(s), e0);
  s->set_epoch(0);
  EXPECT_EQ(all_items<int64_t>(s), e0);
  EXPECT_NE(all_items<int64_t>(shuffle(tens(20), 6)), e0);

  EXPECT_TRUE(throws_error([&] { s->set_epoch(-1); }, {"[shuffle]", "epoch"}));
  EXPECT_TRUE(throws_error([&] { s->get(20); }, {"[shuffle]", "index 20"}));
  EXPECT_TRUE(throws_error([] { shuffle(DatasetPtr<int64_t>(), 1); }, {"[shuffle]", "null"}));
  // A Shuffled pointer composes with the other wrappers directly.
  EXPECT_EQ(all_items(take(s, 2)), (std::vector<int64_t>{e0[0], e0[1]}));
}

TEST(Dataset, ConcurrentGetsAgreeWithSerialOnes) {
  auto s = shuffle(pairs(500), 11);
  std::vector<float> want;
  for (int64_t i = 0; i < s->size(); ++i) want.push_back(s->get(i).at("x").to_vector<float>()[0]);
  std::vector<std::vector<float>> got(4, std::vector<float>(want.size()));
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int64_t i = 0; i < s->size(); ++i) {
        got[t][static_cast<size_t>(i)] = s->get(i).at("x").to_vector<float>()[0];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& g : got) EXPECT_EQ(g, want);
}

TEST(Dataset, TensorDataset) {
  auto ds = pairs(4);
  EXPECT_EQ(ds->size(), 4);
  const Example e = ds->get(3);
  EXPECT_EQ(e.at("x").shape(), (Shape{2}));
  EXPECT_EQ(e.at("x").to_vector<float>(), (std::vector<float>{3, -3}));
  EXPECT_EQ(e.at("y").shape(), (Shape{}));
  EXPECT_EQ(e.at("y").item<int64_t>(), 3);
  EXPECT_TRUE(throws_error([&] { ds->get(4); }, {"[tensor_dataset]", "index 4"}));
  EXPECT_TRUE(throws_error([] { tensor_dataset({}); }, {"[tensor_dataset]", "at least one"}));
  EXPECT_TRUE(throws_error(
      [] {
        tensor_dataset({{"a", zeros({3})}, {"b", zeros({4, 2})}});
      },
      {"[tensor_dataset]", "'b' has 4 items", "'a' has 3"}));
  EXPECT_TRUE(throws_error(
      [] {
        tensor_dataset({{"a", scalar(1.0)}});
      },
      {"[tensor_dataset]", "'a' is 0-d"}));
  EXPECT_TRUE(throws_error(
      [] {
        tensor_dataset({{"a", Tensor()}});
      },
      {"[tensor_dataset]", "undefined"}));
}

TEST(Collate, StackAddsAnAxis) {
  const Example b = stack_collate({pairs(3)->get(0), pairs(3)->get(2)});
  EXPECT_EQ(b.at("x").shape(), (Shape{2, 2}));
  EXPECT_EQ(b.at("x").to_vector<float>(), (std::vector<float>{0, 0, 2, -2}));
  EXPECT_EQ(b.at("y").shape(), (Shape{2}));
  EXPECT_EQ(b.at("y").dtype(), Dtype::i64);
  EXPECT_EQ(b.at("y").to_vector<int64_t>(), (std::vector<int64_t>{0, 2}));
}

TEST(Collate, StackErrors) {
  EXPECT_TRUE(throws_error([] { stack_collate({}); }, {"[stack_collate]", "at least one item"}));
  EXPECT_TRUE(throws_error(
      [] {
        stack_collate({{{"p", zeros({3})}}, {{"p", zeros({4})}}});
      },
      {"[stack_collate]", "field 'p'", "(4,) in item 1", "(3,) in item 0", "ragged_collate"}));
  EXPECT_TRUE(throws_error(
      [] {
        stack_collate({{{"a", zeros({1})}}, {{"b", zeros({1})}}});
      },
      {"[stack_collate]", "item 1 has fields {b}", "item 0 has {a}"}));
  EXPECT_TRUE(throws_error(
      [] {
        stack_collate({{{"a", zeros({1})}}, {{"a", zeros({1})}, {"b", zeros({1})}}});
      },
      {"[stack_collate]", "{a, b}"}));
  EXPECT_TRUE(throws_error(
      [] {
        stack_collate({{{"a", Tensor()}}});
      },
      {"[stack_collate]", "'a' of item 0 is undefined"}));
}

TEST(Collate, RaggedConcatenatesAndAddsOffsets) {
  const std::vector<Example> items = {
      {{"nodes", from_vector<float>({1, 2, 3, 4}, {2, 2})}, {"label", scalar(1, Dtype::i64)}},
      {{"nodes", zeros({0, 2})}, {"label", scalar(0, Dtype::i64)}},
      {{"nodes", from_vector<float>({5, 6, 7, 8, 9, 10}, {3, 2})},
       {"label", scalar(1, Dtype::i64)}},
  };
  const Example b = ragged_collate(items);
  EXPECT_EQ(b.size(), 3u);
  EXPECT_EQ(b.at("nodes").shape(), (Shape{5, 2}));
  EXPECT_EQ(b.at("nodes").to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(b.at("nodes_offsets").dtype(), Dtype::i64);
  EXPECT_EQ(b.at("nodes_offsets").to_vector<int64_t>(), (std::vector<int64_t>{0, 2, 2, 5}));
  EXPECT_EQ(b.at("label").to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(b.count("label_offsets"), 0u);

  // Offsets appear even when the sizes happen to agree, so every batch has the same fields.
  const Example same = ragged_collate({{{"v", zeros({2})}}, {{"v", zeros({2})}}});
  EXPECT_EQ(same.at("v").shape(), (Shape{4}));
  EXPECT_EQ(same.at("v_offsets").to_vector<int64_t>(), (std::vector<int64_t>{0, 2, 4}));
}

TEST(Collate, RaggedErrors) {
  EXPECT_TRUE(throws_error([] { ragged_collate({}); }, {"[ragged_collate]", "at least one item"}));
  EXPECT_TRUE(throws_error(
      [] {
        ragged_collate({{{"n", zeros({2, 3})}}, {{"n", zeros({2, 4})}}});
      },
      {"[ragged_collate]", "field 'n'", "(2, 4) in item 1", "only the first dimension"}));
  EXPECT_TRUE(throws_error(
      [] {
        ragged_collate({{{"n", scalar(1.0)}}, {{"n", zeros({2})}}});
      },
      {"[ragged_collate]", "'n' is 0-d in item 0", "(2,) in item 1"}));
  EXPECT_TRUE(throws_error(
      [] {
        ragged_collate({{{"n", zeros({2})}}, {{"n", scalar(1.0)}}});
      },
      {"[ragged_collate]", "field 'n'", "() in item 1"}));
  EXPECT_TRUE(throws_error(
      [] {
        ragged_collate({{{"n", zeros({2})}, {"n_offsets", zeros({2})}}});
      },
      {"[ragged_collate]", "'n_offsets', which is already a field"}));
}

TEST(Batch, SizesAndTails) {
  auto ds = pairs(10);
  auto b = batch(ds, 3);
  ASSERT_EQ(b->size(), 4);
  EXPECT_EQ(b->get(0).at("y").to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(b->get(3).at("y").to_vector<int64_t>(), (std::vector<int64_t>{9}));
  EXPECT_EQ(b->get(3).at("x").shape(), (Shape{1, 2}));
  auto dropped = batch(ds, 3, /*drop_last=*/true);
  ASSERT_EQ(dropped->size(), 3);
  EXPECT_EQ(dropped->get(2).at("y").to_vector<int64_t>(), (std::vector<int64_t>{6, 7, 8}));
  EXPECT_EQ(batch(ds, 5, true)->size(), 2);  // no tail to drop
  EXPECT_EQ(batch(ds, 11)->size(), 1);
  EXPECT_EQ(batch(ds, 11, true)->size(), 0);
  EXPECT_EQ(batch(take(ds, 0), 4)->size(), 0);
  EXPECT_TRUE(throws_error([&] { b->get(4); }, {"[batch]", "index 4"}));
  EXPECT_TRUE(throws_error([&] { batch(ds, 0); }, {"[batch]", "positive"}));
  EXPECT_TRUE(throws_error([&] { batch(ds, 2, false, Collate()); }, {"[batch]", "collate"}));
  EXPECT_TRUE(throws_error([&] { batch(nullptr, 2); }, {"[batch]", "null"}));
}

TEST(Batch, StackedBatchEqualsStackedItems) {
  auto s = shuffle(pairs(7), 2, 1);
  auto b = batch(s, 4);
  const Example got = b->get(1);
  EXPECT_TRUE(basin::testing::all_close(
      got.at("x"), stack({s->get(4).at("x"), s->get(5).at("x"), s->get(6).at("x")})));
}

TEST(Batch, RaggedCollate) {
  // Item i holds i rows.
  auto ds = map(tens(4), [](int64_t v) {
    const int64_t rows = v / 10;
    return Example{{"rows", full({rows, 2}, static_cast<double>(rows))}};
  });
  auto b = batch(ds, 4, false, ragged_collate);
  const Example e = b->get(0);
  EXPECT_EQ(e.at("rows").shape(), (Shape{6, 2}));
  EXPECT_EQ(e.at("rows_offsets").to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 1, 3, 6}));
  EXPECT_TRUE(throws_error([&] { batch(ds, 4)->get(0); }, {"[stack_collate]", "'rows'"}));
}

}  // namespace
}  // namespace basin::data
