// Cross-validation of a training config: stratified k-fold, repeated, with an optional nested grid
// search, one Trainer run per fold in a subfolder of the run folder and a summary of the test
// metrics over the repetitions (the protocol of the Hopfield MIL benchmarks). A [cv] section
// turns it on (basin-train --cv K / --repeats R set the first two keys):
//
//   [cv]
//   folds = 10               # stratified folds of the items (>= 2)
//   repeats = 5              # independent repetitions of the k-fold split
//   seed = 0                 # the split's seed (not train.seed: configs share their folds)
//   inner_folds = 0          # >= 2 with a grid: nested search on each outer training part
//   grid = ["optim.lr=[1e-3, 1e-4]", "model.heads=[4, 8]"]  # KEY=[values] in --set syntax
//   keep_checkpoints = true  # false: delete each outer run's checkpoints once it is evaluated
//
// Each run's config is the protocol's with cv.repeat and cv.fold set (and cv.inner_fold for the
// inner runs of the search), a train.seed of its own derived from the protocol's, and the chosen
// grid values; a task trains on that split by reading it with read_cv_options() and taking
// cv_fold() of its items' labels. A config with cv.fold is a single run (so a fold can be rerun,
// resumed or evaluated on its own); a config with [cv] and no cv.fold is a protocol.
//
// Run folder:
//   config.toml                           the resolved config of the protocol
//   repeat-R/fold-F/                      the run of outer fold F of repetition R (a Trainer run
//                                         folder, plus cv_result.json once it is done)
//   repeat-R/fold-F/inner/point-G/fold-J  the nested search's runs (no checkpoints kept)
//   cv_summary.json, cv_summary.md        every run's metrics, per-repeat means, mean ± std
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/config.h"
#include "data/split.h"
#include "models/train/task.h"

namespace basin::train {

/// The [cv] section, and which split a single run trains on.
struct CvOptions {
  int64_t folds = 10;
  int64_t repeats = 5;
  uint64_t seed = 0;
  /// Folds of the nested search on each outer training part (0: no search).
  int64_t inner_folds = 0;
  /// The search space: (dotted config key, TOML literals of its values), in the config's order.
  std::vector<std::pair<std::string, std::vector<std::string>>> grid;
  bool keep_checkpoints = true;
  /// The split of this run: repetition, outer fold and inner fold (-1: the outer split).
  int64_t repeat = 0, fold = 0, inner_fold = -1;
  /// Whether the config names its fold (cv.fold): a single run rather than a protocol.
  bool single_run = false;

  /// The number of points of the grid (1 without one).
  int64_t grid_size() const;
  /// The --set assignments ("optim.lr=0.001", ...) of grid point `index`; the last key varies
  /// fastest.
  std::vector<std::string> grid_point(int64_t index) const;
  /// Whether a nested search runs (inner_folds >= 2 and a grid).
  bool nested() const { return inner_folds >= 2 && !grid.empty(); }
};

/// Reads every key of `config`'s [cv] section (the root config is given); nullopt when there is
/// none. Errors name the key: folds < 2, repeats < 1, inner_folds of 1, a repeat or fold out of
/// range, an inner_fold without inner_folds, a grid entry that is not KEY=[v1, v2, ...].
std::optional<CvOptions> read_cv_options(Config config);

/// Whether `config` asks for a cross-validation protocol: a [cv] section without cv.fold.
bool runs_cross_validation(const Config& config);

/// The train/test split `cv` selects over items with these labels: fold `cv.fold` of
/// repetition `cv.repeat` of data::repeated_stratified_kfold(labels, folds, repeats, seed) or,
/// for an inner run, inner fold `cv.inner_fold` of that outer fold's training part
/// (data::nested_stratified_kfold with derive_seed(seed, repeat)). Indices are sorted.
data::Fold cv_fold(std::span<const int64_t> labels, const CvOptions& cv);

/// One finished run of a protocol.
struct CvRun {
  int64_t repeat = 0, fold = 0;
  Metrics metrics;  ///< the task's evaluation at the run's last step
  int64_t steps = 0;
  double wall_time = 0;
  /// The grid values the nested search chose ("optim.lr=0.001", ...); empty without a search.
  std::vector<std::string> selected;
};

/// The outcome of a protocol.
struct CvSummary {
  std::string primary_metric;
  std::vector<CvRun> runs;  ///< in (repeat, fold) order
  /// Per metric: the mean over each repetition's folds, one value per repetition.
  std::map<std::string, std::vector<double>> per_repeat;
  /// Per metric: mean and sample standard deviation (divisor R − 1; 0 for one repetition) of
  /// per_repeat.
  Metrics mean, stddev;
  double wall_time = 0;  ///< seconds for the whole protocol (this invocation)
};

struct CrossValidationOptions {
  std::string run_dir;          ///< the protocol's folder (must not hold a run unless resuming)
  bool resume = false;          ///< continue: finished runs are read back, unfinished ones resumed
  bool quiet = false;           ///< no progress lines
  bool dry_run = false;         ///< only check the config (--print-config); the folder is not read
  std::ostream* log = nullptr;  ///< human-readable output (stderr when null)
};

/// Runs a protocol. The constructor checks everything first (each grid point's config is built
/// into a task and optimizer, without training) and touches no file, so a bad config leaves the
/// disk as it was; run() then trains every fold in turn.
class CrossValidation {
 public:
  CrossValidation(Config config, CrossValidationOptions options);
  ~CrossValidation();

  /// Trains and evaluates every run; writes cv_summary.json and cv_summary.md.
  CvSummary run();

  const CvOptions& cv() const { return cv_; }
  /// The resolved config of the protocol (what config.toml holds).
  const Config& config() const { return resolved_; }
  /// Trainer runs the protocol makes (outer and inner).
  int64_t num_runs() const;

 private:
  struct Job;
  CvRun run_job(const Job& job);
  Config run_config(const Job& job) const;
  std::ostream& log();

  std::string base_toml_;
  Config resolved_;
  CrossValidationOptions options_;
  CvOptions cv_;
  std::string primary_metric_;
  bool higher_is_better_ = true;
  int64_t base_seed_ = 0;
};

/// The summary as a Markdown table: one row per repetition (the mean over its folds) and a last
/// row "mean ± std", one column per metric (the primary metric first).
std::string cv_table(const CvSummary& summary);

}  // namespace basin::train
