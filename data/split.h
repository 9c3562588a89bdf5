// Dataset splits as index lists: train/test splits, k-fold, stratified, repeated and nested
// cross-validation, all seeded through basin's Philox generator (the same folds on any machine).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace basin::data {

// Conventions shared by every split below:
// - Indices refer to the samples 0..n-1 (or to positions in `labels`); each list is sorted
//   ascending, so data::subset(dataset, fold.train) keeps the dataset's order.
// - Randomness comes from basin::randperm under a Generator seeded with `seed`: the same arguments
//   give the same split everywhere, and different seeds give (almost always) different splits.
// - Labels are arbitrary int64 class ids (not necessarily 0..C-1); classes are taken in ascending
//   order of their id wherever order matters.
// - Bad arguments are a basin::Error naming the function: "[kfold] k must be at least 2, ...".

/// One split of a data set: the indices to train on and the indices to evaluate on.
struct Fold {
  std::vector<int64_t> train, test;
};

/// A seed for stream `stream` derived from `seed` (the first two words of the Philox block
/// (seed, counter = stream, 0x5eed5eed5eed5eed)): how repeats and inner folds get their own seeds.
uint64_t derive_seed(uint64_t seed, uint64_t stream);

/// A random split of n samples: the test part has ceil(test_fraction * n) samples (as sklearn's
/// train_test_split, with a relative tolerance of 1e-12 so that 0.1 of 30 is 3, not 4), the train
/// part the rest. test_fraction must lie in (0, 1) and both parts must be non-empty.
Fold train_test_split(int64_t n, double test_fraction, uint64_t seed);

/// A random split that keeps the class proportions: the test size is that of train_test_split, and
/// it is shared among classes as sklearn's StratifiedShuffleSplit does (each class gets the floor
/// of its exact share, the samples left over go to the classes with the largest remainders), except
/// that equal remainders are broken by class order instead of at random. Every class needs at least
/// two members; a class whose share rounds down to zero gets no test sample.
Fold stratified_train_test_split(std::span<const int64_t> labels, double test_fraction,
                                 uint64_t seed);

/// k folds of n samples as sklearn's KFold: the test parts partition 0..n-1 into consecutive runs
/// of a permutation (randperm under `seed` when `shuffle`, else the identity, and `seed` is unused)
/// whose sizes differ by at most one, the first n % k folds being the larger. 2 <= k <= n.
std::vector<Fold> kfold(int64_t n, int64_t k, bool shuffle, uint64_t seed = 0);

/// k folds that each hold every class in proportion, as sklearn's StratifiedKFold(shuffle=True):
/// the per-fold counts of each class come from dealing the label-sorted samples round robin over
/// the folds (so fold sizes, and each class's count per fold, differ by at most one), then each
/// class's members are assigned to those slots in a random order. Unlike sklearn, which only warns,
/// every class must have at least k members, so that every test fold sees every class (ROC-AUC is
/// undefined on a fold without positives).
std::vector<Fold> stratified_kfold(std::span<const int64_t> labels, int64_t k, uint64_t seed);

/// `repeats` independent rounds of stratified_kfold; round r is
/// stratified_kfold(labels, k, derive_seed(seed, r)) and fills folds [r k, (r + 1) k).
std::vector<Fold> repeated_stratified_kfold(std::span<const int64_t> labels, int64_t k,
                                            int64_t repeats, uint64_t seed);

/// One outer fold of nested cross-validation with the inner folds of its training part.
struct NestedFold {
  /// The outer split: model selection sees only outer.train, outer.test is held out.
  Fold outer;
  /// inner_k stratified folds of outer.train (indices into the original data set).
  std::vector<Fold> inner;
};

/// Nested stratified cross-validation (the protocol of the Hopfield MIL benchmarks): the outer
/// folds are stratified_kfold(labels, outer_k, seed); the inner folds of outer fold i are
/// stratified_kfold of the labels of its training part with seed derive_seed(seed, i), mapped back
/// to indices of the original data set. Every class needs outer_k members, and inner_k members in
/// every outer training part. For repeated nested CV, call it with derive_seed(seed, r).
std::vector<NestedFold> nested_stratified_kfold(std::span<const int64_t> labels, int64_t outer_k,
                                                int64_t inner_k, uint64_t seed);

}  // namespace basin::data
