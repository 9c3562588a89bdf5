// Multiple-instance learning (MIL) bags: readers for the Andrews et al. .mat files (Elephant, Fox,
// Tiger, Musk1/2) and the UCI Musk CSV, a Dataset view, a padding collate, bag dropout and
// feature standardisation fitted on a training fold.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"
#include "data/dataset.h"

namespace basin::data {

/// One bag: a set of instances with one binary label.
struct MilBag {
  Tensor instances;        ///< (n_i, F) float32, one row per instance
  int64_t label = 0;       ///< 0 (negative) or 1 (positive)
  std::string id;          ///< the bag's id in the file ("1", "MUSK-188", ...)
  Tensor instance_labels;  ///< (n_i,) int64 in {0, 1} when the file has them, else undefined
};

/// The bags of one data set, all with the same number of features.
struct MilBags {
  std::vector<MilBag> bags;
  int64_t num_features = 0;

  /// The number of bags.
  int64_t size() const { return static_cast<int64_t>(bags.size()); }
  /// The number of instances over all bags.
  int64_t num_instances() const;
  /// The bag labels, in bag order (for stratified splits).
  std::vector<int64_t> labels() const;
};

/// Reads the MATLAB layout of Andrews, Tsochantaridis & Hofmann (NIPS 2002), shared by
/// Elephant, Fox, Tiger, Musk1 and Musk2: `features` (instances × F, sparse or dense),
/// `labels` (one per instance, sparse or dense, in {-1, +1} or {0, 1}) and `bag_ids` (one
/// integer per instance), any numeric storage type. An instance belongs to the bag of its id;
/// bags come in ascending order of id and each keeps its instances in file order (the ids need
/// not be contiguous). The bag label is the maximum of its instances' labels, which are kept as
/// instance_labels. An id that no instance carries is no bag: a gap in the numbering (ids 1, 2,
/// 4) gives no empty bag, since an empty bag would have no label. Errors name the file: a
/// missing variable (listing those present), lengths that differ, a label outside {-1, 0, 1}, a
/// non-integer bag id, a NaN or infinite feature (naming instance and feature), no instances.
MilBags read_mil_mat(const std::string& path);

/// Reads the UCI Musk CSV (`clean1.data`, `clean2.data`): one instance per line, fields
/// `molecule_name,conformation_name,f1,...,fF,class` with F >= 1 the same on every line and
/// class 0 or 1 (written "1." or "0." in the UCI files). The molecule is the bag: bags come in
/// order of first appearance, the conformations of a molecule need not be contiguous, the bag
/// label is the maximum of its instances' classes (kept as instance_labels). Blank lines are
/// skipped; CRLF line ends are accepted. Errors name the file and line: a field count that
/// differs from the first line's, a feature that is not a finite number, a class other than 0/1,
/// an empty file.
MilBags read_musk_csv(const std::string& path);

/// The bags as a dataset: item i is {"instances": (n_i, F) f32, "label": () i64,
/// "index": () i64 = i}. The tensors are shared with `bags` (do not modify them in place).
/// An empty bag is an error naming it (pooling over no instances is undefined).
DatasetPtr<Example> mil_dataset(MilBags bags);

/// Collates bags of varying size by padding: "instances" (n_i, F) items give "instances"
/// (B, N_max, F) f32 with zero rows after each bag's n_i, "padding_mask" (B, N_max) bool, true at
/// padding (the convention of HopfieldPooling's stored_padding_mask), and "sizes" (B,) i64.
/// Every other field must be 0-d in every item and is stacked to (B,) as in stack_collate. An
/// empty bag, instances with different F, or a field named "padding_mask" or "sizes" is an error.
Example collate_bags(const std::vector<Example>& items);

/// The rows of `instances` (n, F) with each row dropped with probability p in [0, 1], always
/// keeping at least one (when all would be dropped, the row with the largest draw is kept). Draws
/// n uniforms from `gen`; p = 0 or n <= 1 returns `instances` unchanged without drawing.
Tensor drop_instances(const Tensor& instances, double p, Generator& gen);

/// A dataset whose items are those of `base` with drop_instances applied to their "instances"
/// field. The draws of item i in epoch e come from a generator seeded by the Philox block
/// (seed, i, e), so they depend only on (seed, epoch, index): the same for any order, batching,
/// thread or machine. Call set_epoch at the start of each epoch.
class BagDropout : public Dataset<Example> {
 public:
  BagDropout(DatasetPtr<Example> base, double p, uint64_t seed, int64_t epoch = 0);
  int64_t size() const override { return base_->size(); }
  Example get(int64_t index) const override;
  /// Selects the epoch whose draws get() uses (non-negative). Thread-safe.
  void set_epoch(int64_t epoch);
  int64_t epoch() const { return epoch_.load(); }

 private:
  DatasetPtr<Example> base_;
  double p_;
  uint64_t seed_;
  std::atomic<int64_t> epoch_{0};
};

/// `ds` with bag dropout of probability p (see BagDropout).
std::shared_ptr<BagDropout> bag_dropout(DatasetPtr<Example> ds, double p, uint64_t seed,
                                        int64_t epoch = 0);

/// Per-feature standardisation x' = (x - mean) / std, fitted on some instances.
struct FeatureScaler {
  Tensor mean;    ///< (F,) f64
  Tensor stddev;  ///< (F,) f64, population std (divisor n), with 0 replaced by 1
  /// `x` (..., F) standardised, in x's dtype.
  Tensor apply(const Tensor& x) const;
};

/// Fits a FeatureScaler on the rows of `rows` (N, F), N >= 1.
FeatureScaler fit_feature_scaler(const Tensor& rows);

/// Fits a FeatureScaler on all instances of the bags at `bag_indices` (the training fold, so no
/// statistics leak from the test bags). The indices must be valid and hold at least one instance.
FeatureScaler fit_feature_scaler(const MilBags& bags, std::span<const int64_t> bag_indices);

/// `bags` with every bag's instances standardised by `scaler` (labels and ids unchanged).
MilBags standardize(const MilBags& bags, const FeatureScaler& scaler);

}  // namespace basin::data
