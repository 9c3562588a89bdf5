// Train/test splits and (stratified, repeated, nested) k-fold cross-validation as index lists.
#include "data/split.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <numeric>
#include <string>
#include <utility>

#include "core/error.h"
#include "core/random.h"

namespace basin::data {
namespace {

/// A random permutation of 0..n-1 drawn from `gen`.
std::vector<int64_t> permutation_of(int64_t n, Generator& gen) {
  return randperm(n, Device::cpu(), &gen).to_vector<int64_t>();
}

/// Folds from the test fold of every sample: fold f tests the samples assigned to it and trains on
/// all others, both in ascending order.
std::vector<Fold> folds_from_assignment(const std::vector<int64_t>& fold_of, int64_t k) {
  std::vector<Fold> folds(static_cast<size_t>(k));
  for (size_t i = 0; i < fold_of.size(); ++i) {
    const auto index = static_cast<int64_t>(i);
    for (int64_t f = 0; f < k; ++f) {
      auto& part = f == fold_of[i] ? folds[f].test : folds[f].train;
      part.push_back(index);
    }
  }
  return folds;
}

/// The number of test samples for n samples: ceil(test_fraction * n), with a small relative
/// tolerance so that a product like 0.1 * 30 = 3.0000000000000004 counts as 3.
int64_t test_size(const char* who, int64_t n, double test_fraction) {
  if (!(test_fraction > 0.0 && test_fraction < 1.0)) {
    fail("[{}] test_fraction must lie in (0, 1), got {}", who, test_fraction);
  }
  const auto n_test =
      static_cast<int64_t>(std::ceil(test_fraction * static_cast<double>(n) * (1.0 - 1e-12)));
  if (n_test < 1 || n_test >= n) {
    fail(
        "[{}] test_fraction {} of {} samples leaves {} for training and {} for testing; both "
        "need at least one",
        who, test_fraction, n, n - n_test, n_test);
  }
  return n_test;
}

/// The classes of `labels` in ascending order of id, with the positions of their members.
std::map<int64_t, std::vector<int64_t>> members_by_class(const char* who,
                                                         std::span<const int64_t> labels) {
  if (labels.empty()) fail("[{}] labels is empty", who);
  std::map<int64_t, std::vector<int64_t>> members;
  for (size_t i = 0; i < labels.size(); ++i) members[labels[i]].push_back(static_cast<int64_t>(i));
  return members;
}

void check_k(const char* who, const char* name, int64_t k) {
  if (k < 2) fail("[{}] {} must be at least 2, got {}", who, name, k);
}

/// stratified_kfold, with `who`, `name` (the argument holding k) and `where` (which labels these
/// are, if not all) for the errors.
std::vector<Fold> stratified_kfold_impl(const char* who, const char* name,
                                        std::span<const int64_t> labels, int64_t k, uint64_t seed,
                                        const std::string& where = "") {
  check_k(who, name, k);
  const auto members = members_by_class(who, labels);
  for (const auto& [label, idx] : members) {
    if (static_cast<int64_t>(idx.size()) < k) {
      fail(
          "[{}] class {} has {} member(s){}, fewer than {} = {}: every test fold must hold "
          "every class",
          who, label, idx.size(), where, name, k);
    }
  }
  Generator gen(seed);
  std::vector<int64_t> fold_of(labels.size());
  int64_t start = 0;  // position of the class's first member in the label-sorted order
  for (const auto& [label, idx] : members) {
    // Dealing the sorted samples round robin gives sample `start + m` to fold (start + m) % k;
    // these are the class's slots, sorted, then handed to its members in a random order.
    const auto count = static_cast<int64_t>(idx.size());
    std::vector<int64_t> slots(idx.size());
    for (int64_t m = 0; m < count; ++m) slots[m] = (start + m) % k;
    std::sort(slots.begin(), slots.end());
    const std::vector<int64_t> order = permutation_of(count, gen);
    for (int64_t m = 0; m < count; ++m) fold_of[idx[m]] = slots[order[m]];
    start += count;
  }
  return folds_from_assignment(fold_of, k);
}

}  // namespace

uint64_t derive_seed(uint64_t seed, uint64_t stream) {
  const auto r = philox4x32(seed, stream, 0x5eed5eed5eed5eedULL);
  return uint64_t{r[0]} << 32 | r[1];
}

Fold train_test_split(int64_t n, double test_fraction, uint64_t seed) {
  const int64_t n_test = test_size("train_test_split", n, test_fraction);
  Generator gen(seed);
  const std::vector<int64_t> perm = permutation_of(n, gen);
  Fold fold{{perm.begin() + n_test, perm.end()}, {perm.begin(), perm.begin() + n_test}};
  std::sort(fold.train.begin(), fold.train.end());
  std::sort(fold.test.begin(), fold.test.end());
  return fold;
}

Fold stratified_train_test_split(std::span<const int64_t> labels, double test_fraction,
                                 uint64_t seed) {
  const char* who = "stratified_train_test_split";
  const auto members = members_by_class(who, labels);
  const auto n = static_cast<int64_t>(labels.size());
  const int64_t n_test = test_size(who, n, test_fraction);
  for (const auto& [label, idx] : members) {
    if (idx.size() < 2) {
      fail("[{}] class {} has only one member; it needs two to be split", who, label);
    }
  }
  // Each class's exact share is count * n_test / n: take the floor, then give the samples left
  // over to the largest remainders (ties: the class with the smaller id, by the stable sort).
  struct Share {
    int64_t label, take, remainder;
  };
  std::vector<Share> shares;
  int64_t given = 0;
  for (const auto& [label, idx] : members) {
    const int64_t exact = static_cast<int64_t>(idx.size()) * n_test;
    shares.push_back({label, exact / n, exact % n});
    given += exact / n;
  }
  std::vector<size_t> by_remainder(shares.size());
  std::iota(by_remainder.begin(), by_remainder.end(), size_t{0});
  std::stable_sort(by_remainder.begin(), by_remainder.end(),
                   [&](size_t x, size_t y) { return shares[x].remainder > shares[y].remainder; });
  for (size_t i = 0; given < n_test; ++i, ++given) ++shares[by_remainder[i]].take;

  // Walk one permutation of all samples: each class's first `take` members go to the test part.
  std::map<int64_t, int64_t> left;
  for (const Share& s : shares) left[s.label] = s.take;
  Generator gen(seed);
  Fold fold;
  for (int64_t i : permutation_of(n, gen)) {
    int64_t& l = left[labels[i]];
    auto& part = l > 0 ? fold.test : fold.train;
    part.push_back(i);
    if (l > 0) --l;
  }
  std::sort(fold.train.begin(), fold.train.end());
  std::sort(fold.test.begin(), fold.test.end());
  return fold;
}

std::vector<Fold> kfold(int64_t n, int64_t k, bool shuffle, uint64_t seed) {
  check_k("kfold", "k", k);
  if (k > n) fail("[kfold] k = {} folds need at least {} samples, got {}", k, k, n);
  std::vector<int64_t> order(static_cast<size_t>(n));
  if (shuffle) {
    Generator gen(seed);
    order = permutation_of(n, gen);
  } else {
    std::iota(order.begin(), order.end(), int64_t{0});
  }
  std::vector<int64_t> fold_of(static_cast<size_t>(n));
  int64_t pos = 0;
  for (int64_t f = 0; f < k; ++f) {
    const int64_t size = n / k + (f < n % k ? 1 : 0);
    for (int64_t j = 0; j < size; ++j) fold_of[order[pos++]] = f;
  }
  return folds_from_assignment(fold_of, k);
}

std::vector<Fold> stratified_kfold(std::span<const int64_t> labels, int64_t k, uint64_t seed) {
  return stratified_kfold_impl("stratified_kfold", "k", labels, k, seed);
}

std::vector<Fold> repeated_stratified_kfold(std::span<const int64_t> labels, int64_t k,
                                            int64_t repeats, uint64_t seed) {
  const char* who = "repeated_stratified_kfold";
  if (repeats < 1) fail("[{}] repeats must be at least 1, got {}", who, repeats);
  std::vector<Fold> folds;
  for (int64_t r = 0; r < repeats; ++r) {
    auto round = stratified_kfold_impl(who, "k", labels, k, derive_seed(seed, r));
    folds.insert(folds.end(), std::make_move_iterator(round.begin()),
                 std::make_move_iterator(round.end()));
  }
  return folds;
}

std::vector<NestedFold> nested_stratified_kfold(std::span<const int64_t> labels, int64_t outer_k,
                                                int64_t inner_k, uint64_t seed) {
  const char* who = "nested_stratified_kfold";
  check_k(who, "inner_k", inner_k);
  std::vector<NestedFold> nested;
  for (Fold& outer : stratified_kfold_impl(who, "outer_k", labels, outer_k, seed)) {
    std::vector<int64_t> train_labels(outer.train.size());
    for (size_t i = 0; i < outer.train.size(); ++i) train_labels[i] = labels[outer.train[i]];
    const auto i = static_cast<uint64_t>(nested.size());
    std::vector<Fold> inner =
        stratified_kfold_impl(who, "inner_k", train_labels, inner_k, derive_seed(seed, i),
                              fmt::format(" in the training part of outer fold {}", i));
    for (Fold& f : inner) {  // positions in outer.train -> indices of the data set
      for (int64_t& j : f.train) j = outer.train[j];
      for (int64_t& j : f.test) j = outer.train[j];
    }
    nested.push_back({std::move(outer), std::move(inner)});
  }
  return nested;
}

}  // namespace basin::data
