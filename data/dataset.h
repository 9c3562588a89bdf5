// Datasets: random-access collections of items, and the wrappers that compose them (subset, take,
// split, map, shuffle, batch) with the collate functions that turn items into batches.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"

namespace basin::data {

/// Named fields of one item or one batch: {"image": (28, 28) f32, "label": () i64}.
using Example = std::map<std::string, Tensor>;

/// A random-access collection of `size()` items. `get` is const and must be safe to call from
/// several threads at once (a Loader calls it on a background thread).
template <class T>
class Dataset {
 public:
  /// The type of one item.
  using Item = T;
  virtual ~Dataset() = default;
  /// The number of items.
  virtual int64_t size() const = 0;
  /// The item at `index` in [0, size()); any other index is a basin::Error.
  virtual T get(int64_t index) const = 0;
};

/// Datasets are shared, immutable (apart from an epoch) and handed around by pointer.
template <class T>
using DatasetPtr = std::shared_ptr<const Dataset<T>>;

/// A type derived from Dataset<D::Item>: the wrappers below take a std::shared_ptr to any such
/// type (a DatasetPtr, a std::shared_ptr<Shuffled<T>>, a user's own class) and deduce the item.
template <class D>
concept DatasetType = requires {
  typename D::Item;
}
&&std::derived_from<std::remove_const_t<D>, Dataset<typename D::Item>>;

/// Throws "[who] index i is out of range for a dataset of n items" unless 0 <= index < size.
inline void check_index(const char* who, int64_t index, int64_t size) {
  if (index < 0 || index >= size) {
    fail("[{}] index {} is out of range for a dataset of {} items", who, index, size);
  }
}

/// The permutation of 0..n-1 that Shuffled uses for (seed, epoch): Fisher–Yates (basin::randperm)
/// driven by Philox with key `seed`, starting at counter block epoch * n, so every epoch draws
/// from its own counters. The same arguments give the same order on any machine and thread count.
std::vector<int64_t> permutation(int64_t n, uint64_t seed, int64_t epoch = 0);

// --- subset, take, split ---------------------------------------------------------------------

/// The items of `base` at `indices`, in that order (repeats allowed).
template <class T>
class Subset : public Dataset<T> {
 public:
  /// Every index must lie in [0, base->size()).
  Subset(DatasetPtr<T> base, std::vector<int64_t> indices)
      : base_(std::move(base)), indices_(std::move(indices)) {
    if (!base_) fail("[subset] the dataset is null");
    const int64_t n = base_->size();
    for (size_t i = 0; i < indices_.size(); ++i) {
      if (indices_[i] < 0 || indices_[i] >= n) {
        fail("[subset] indices[{}] = {} is out of range for a dataset of {} items", i, indices_[i],
             n);
      }
    }
  }
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  T get(int64_t index) const override {
    check_index("subset", index, size());
    return base_->get(indices_[static_cast<size_t>(index)]);
  }
  /// The base dataset's index of each item.
  const std::vector<int64_t>& indices() const { return indices_; }

 private:
  DatasetPtr<T> base_;
  std::vector<int64_t> indices_;
};

/// The items of `ds` at `indices`, in that order; an index outside [0, ds->size()) is an error.
template <DatasetType D>
DatasetPtr<typename D::Item> subset(std::shared_ptr<D> ds, std::vector<int64_t> indices) {
  return std::make_shared<Subset<typename D::Item>>(std::move(ds), std::move(indices));
}

/// The first min(n, ds->size()) items of `ds`; n must be non-negative.
template <DatasetType D>
DatasetPtr<typename D::Item> take(std::shared_ptr<D> ds, int64_t n) {
  if (!ds) fail("[take] the dataset is null");
  if (n < 0) fail("[take] n must be non-negative, got {}", n);
  std::vector<int64_t> indices(static_cast<size_t>(std::min(n, ds->size())));
  for (size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<int64_t>(i);
  return subset(std::move(ds), std::move(indices));
}

/// Shuffles `ds` with permutation(size, seed) and cuts it into consecutive parts of the given
/// sizes, which must be non-negative and add up to ds->size(). Each part keeps the shuffled order.
template <DatasetType D>
std::vector<DatasetPtr<typename D::Item>> split(std::shared_ptr<D> ds,
                                                const std::vector<int64_t>& sizes, uint64_t seed) {
  if (!ds) fail("[split] the dataset is null");
  int64_t total = 0;
  for (int64_t s : sizes) {
    if (s < 0) fail("[split] part sizes must be non-negative, got {}", s);
    total += s;
  }
  if (total != ds->size()) {
    fail("[split] part sizes add up to {} but the dataset has {} items", total, ds->size());
  }
  const std::vector<int64_t> order = permutation(ds->size(), seed);
  std::vector<DatasetPtr<typename D::Item>> parts;
  auto begin = order.begin();
  for (int64_t s : sizes) {
    parts.push_back(subset(ds, std::vector<int64_t>(begin, begin + s)));
    begin += s;
  }
  return parts;
}

/// Shuffles `ds` with permutation(size, seed) and cuts it in two: the first part has
/// llround(fraction * size) items, the second the rest. `fraction` must lie in [0, 1].
template <DatasetType D>
std::pair<DatasetPtr<typename D::Item>, DatasetPtr<typename D::Item>> split(std::shared_ptr<D> ds,
                                                                            double fraction,
                                                                            uint64_t seed) {
  if (!ds) fail("[split] the dataset is null");
  if (!(fraction >= 0.0 && fraction <= 1.0)) {
    fail("[split] fraction must lie in [0, 1], got {}", fraction);
  }
  const int64_t n = ds->size();
  const int64_t first = std::llround(fraction * static_cast<double>(n));
  auto parts = split(std::move(ds), std::vector<int64_t>{first, n - first}, seed);
  return {std::move(parts[0]), std::move(parts[1])};
}

// --- map -------------------------------------------------------------------------------------

/// fn applied to each item of `base` when it is read.
template <class T, class U>
class Mapped : public Dataset<U> {
 public:
  Mapped(DatasetPtr<T> base, std::function<U(T)> fn) : base_(std::move(base)), fn_(std::move(fn)) {
    if (!base_) fail("[map] the dataset is null");
    if (!fn_) fail("[map] the function is empty");
  }
  int64_t size() const override { return base_->size(); }
  U get(int64_t index) const override {
    check_index("map", index, size());
    return fn_(base_->get(index));
  }

 private:
  DatasetPtr<T> base_;
  std::function<U(T)> fn_;
};

/// A dataset whose item i is fn(ds->get(i)), computed on each get. fn is called from the threads
/// that call get, possibly several at once, so it must be thread-safe (a pure function is).
template <DatasetType D, class F>
auto map(std::shared_ptr<D> ds, F fn) {
  using T = typename D::Item;
  using U = std::decay_t<std::invoke_result_t<const F&, T>>;
  return DatasetPtr<U>(std::make_shared<Mapped<T, U>>(std::move(ds), std::move(fn)));
}

// --- shuffle ---------------------------------------------------------------------------------

/// `base` in the order permutation(size, seed, epoch). The order changes only with set_epoch, so
/// a resumed run recovers its data order from (seed, epoch) and its position in the epoch.
/// get() may run on several threads; set_epoch is safe to call at any time, but a reader that
/// spans the change (a Loader started before it) sees items of both orders, so set the epoch
/// before starting an epoch's Loader.
template <class T>
class Shuffled : public Dataset<T> {
 public:
  Shuffled(DatasetPtr<T> base, uint64_t seed, int64_t epoch = 0)
      : base_(std::move(base)), seed_(seed) {
    if (!base_) fail("[shuffle] the dataset is null");
    set_epoch(epoch);
  }
  int64_t size() const override { return base_->size(); }
  T get(int64_t index) const override {
    check_index("shuffle", index, size());
    std::shared_ptr<const std::vector<int64_t>> order;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      order = order_;
    }
    return base_->get((*order)[static_cast<size_t>(index)]);
  }

  /// Draws the order of `epoch` (non-negative).
  void set_epoch(int64_t epoch) {
    if (epoch < 0) fail("[shuffle] epoch must be non-negative, got {}", epoch);
    auto order =
        std::make_shared<const std::vector<int64_t>>(permutation(base_->size(), seed_, epoch));
    std::lock_guard<std::mutex> lock(mutex_);
    order_ = std::move(order);
    epoch_ = epoch;
  }
  /// The epoch whose order get() follows.
  int64_t epoch() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return epoch_;
  }
  /// The key of the permutation.
  uint64_t seed() const { return seed_; }
  /// The current order: item i is base item order()[i].
  std::vector<int64_t> order() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return *order_;
  }

 private:
  DatasetPtr<T> base_;
  uint64_t seed_;
  mutable std::mutex mutex_;
  int64_t epoch_ = 0;
  std::shared_ptr<const std::vector<int64_t>> order_;
};

/// `ds` shuffled by (seed, epoch); call set_epoch on the result at the start of each epoch.
template <DatasetType D>
std::shared_ptr<Shuffled<typename D::Item>> shuffle(std::shared_ptr<D> ds, uint64_t seed,
                                                    int64_t epoch = 0) {
  return std::make_shared<Shuffled<typename D::Item>>(std::move(ds), seed, epoch);
}

// --- in-memory tensors -----------------------------------------------------------------------

/// A dataset over tensors that share their first dimension N: item i maps each name to its
/// tensor's slice i (a view of shape shape[1:], sharing the buffer: do not modify it in place).
DatasetPtr<Example> tensor_dataset(Example fields);

// --- batching --------------------------------------------------------------------------------

/// Turns the items of one batch into one Example.
using Collate = std::function<Example(const std::vector<Example>&)>;

/// Stacks each field along a new axis 0: n items of shape S give (n, ...S), dtype promoted as in
/// basin::stack. Every item needs the same fields and each field the same shape in every item;
/// otherwise an error names the field (use ragged_collate for fields of varying size).
Example stack_collate(const std::vector<Example>& items);

/// For fields whose items have varying first dimension (sets, graphs, MIL bags). Every item needs
/// the same fields. For each field `f`:
/// - 0-d in every item: stacked into shape (n,), as in stack_collate; no offsets.
/// - otherwise (at least 1-d, the same dimensions after the first in every item): concatenated
///   along axis 0 into (sum of first dims, ...), and "f_offsets" is added: int64 of shape (n + 1,),
///   CSR-style, item k's rows are [offsets[k], offsets[k + 1]).
/// The offsets are added for every such field, whether or not the sizes happen to vary in this
/// batch, so every batch has the same fields. A field already named "f_offsets" is an error.
Example ragged_collate(const std::vector<Example>& items);

/// Batches of `batch_size` consecutive items of `ds`, each collated into one Example. The last
/// batch holds the remainder (size % batch_size items) unless drop_last drops it.
DatasetPtr<Example> batch(DatasetPtr<Example> ds, int64_t batch_size, bool drop_last = false,
                          Collate collate = stack_collate);

}  // namespace basin::data
