// Loader: background prefetching in dataset order, resuming, early destruction, errors.
#include "data/loader.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "tests/test_util.h"

namespace basin::data {
namespace {

using basin::testing::throws_error;

// Item i is {"i": () i64 = i}; counts its calls, may sleep, and may throw at one index.
class Probe : public Dataset<Example> {
 public:
  Probe(int64_t n, int64_t throw_at = -1, int sleep_ms = 0, bool basin_error = true)
      : n_(n), throw_at_(throw_at), sleep_ms_(sleep_ms), basin_error_(basin_error) {}
  int64_t size() const override { return n_; }
  Example get(int64_t index) const override {
    check_index("probe", index, n_);
    calls_.fetch_add(1);
    if (sleep_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_));
    if (index == throw_at_) {
      if (basin_error_) fail("[probe] item {} is broken", index);
      throw std::runtime_error("not a basin error");
    }
    return {{"i", from_vector<int64_t>({index}, {})}};
  }
  int64_t calls() const { return calls_.load(); }

 private:
  int64_t n_, throw_at_;
  int sleep_ms_;
  bool basin_error_;
  mutable std::atomic<int64_t> calls_{0};
};

std::vector<int64_t> drain(Loader& loader) {
  std::vector<int64_t> out;
  while (auto e = loader.next()) out.push_back(e->at("i").item<int64_t>());
  return out;
}

TEST(Loader, OrderEqualsDirectIteration) {
  std::vector<float> x(60);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 0.5f;
  auto batches = batch(shuffle(tensor_dataset({{"x", from_vector(x, {30, 2})}}), 9), 4);
  Loader loader(batches, 0, 3);
  EXPECT_EQ(loader.size(), 8);
  int64_t k = 0;
  while (auto b = loader.next()) {
    ASSERT_LT(k, batches->size());
    EXPECT_TRUE(basin::testing::all_close(b->at("x"), batches->get(k).at("x"), 0, 0));
    ++k;
    EXPECT_EQ(loader.position(), k);
  }
  EXPECT_EQ(k, 8);
  EXPECT_FALSE(loader.next().has_value());  // stays at the end
}

TEST(Loader, StartsAtAnOffset) {
  auto ds = std::make_shared<Probe>(10);
  Loader loader(ds, 7);
  EXPECT_EQ(loader.position(), 7);
  EXPECT_EQ(drain(loader), (std::vector<int64_t>{7, 8, 9}));
  EXPECT_EQ(loader.position(), 10);
  Loader at_end(ds, 10);
  EXPECT_FALSE(at_end.next().has_value());
  Loader empty(std::make_shared<Probe>(0));
  EXPECT_FALSE(empty.next().has_value());
}

TEST(Loader, ResumesWhereAnotherStopped) {
  auto ds = std::make_shared<Probe>(12);
  int64_t saved = 0;
  std::vector<int64_t> seen;
  {
    Loader first(ds, 0, 2);
    for (int k = 0; k < 5; ++k) seen.push_back(first.next()->at("i").item<int64_t>());
    saved = first.position();
  }
  Loader second(ds, saved);
  for (int64_t v : drain(second)) seen.push_back(v);
  std::vector<int64_t> want(12);
  for (int64_t i = 0; i < 12; ++i) want[static_cast<size_t>(i)] = i;
  EXPECT_EQ(seen, want);
}

TEST(Loader, PrefetchIsBounded) {
  auto ds = std::make_shared<Probe>(100);
  Loader loader(ds, 0, 3);
  ASSERT_TRUE(loader.next().has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // One taken, at most 3 queued and at most one more being made while the queue is full.
  EXPECT_LE(ds->calls(), 5);
  EXPECT_GE(ds->calls(), 2);
}

TEST(Loader, DestroyedBeforeDraining) {
  auto slow = std::make_shared<Probe>(1000, -1, 2);
  { Loader never_read(slow); }
  {
    Loader read_once(slow, 0, 4);
    EXPECT_EQ(read_once.next()->at("i").item<int64_t>(), 0);
  }
  EXPECT_LT(slow->calls(), 20);  // the workers stopped early
}

TEST(Loader, RethrowsTheErrorOfGet) {
  auto ds = std::make_shared<Probe>(6, 3);
  Loader loader(ds);
  for (int64_t i = 0; i < 3; ++i) EXPECT_EQ(loader.next()->at("i").item<int64_t>(), i);
  EXPECT_TRUE(throws_error([&] { loader.next(); }, {"[probe] item 3 is broken"}));
  EXPECT_EQ(loader.position(), 3);
  EXPECT_FALSE(loader.next().has_value());
}

TEST(Loader, RethrowsOtherExceptionsToo) {
  Loader loader(std::make_shared<Probe>(3, 0, 0, false));
  EXPECT_THROW(loader.next(), std::runtime_error);
}

TEST(Loader, ErrorWhileUnread) {
  // The worker fails while nobody reads: destruction must still be clean.
  Loader loader(std::make_shared<Probe>(3, 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

TEST(Loader, BadArguments) {
  auto ds = std::make_shared<Probe>(4);
  EXPECT_TRUE(throws_error([&] { Loader l(ds, 5); }, {"[Loader]", "start 5", "[0, 4]"}));
  EXPECT_TRUE(throws_error([&] { Loader l(ds, -1); }, {"[Loader]", "start -1"}));
  EXPECT_TRUE(throws_error([&] { Loader l(ds, 0, 0); }, {"[Loader]", "prefetch"}));
  EXPECT_TRUE(throws_error([&] { Loader l(nullptr); }, {"[Loader]", "null"}));
}

}  // namespace
}  // namespace basin::data
