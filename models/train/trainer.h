// Trainer: the loop basin-train runs. It builds the task named by the config, an optimizer and a
// schedule, and trains for train.steps steps with seeded per-epoch shuffling, batching on a
// background thread, gradient clipping, periodic evaluation, metrics.jsonl, plots, checkpoints
// (keeping the last K and the best) and exact resume.
//
//   [train]
//   steps = 1000            # optimizer steps (or: epochs = 5, converted with the batch count)
//   batch_size = 64
//   drop_last = true        # drop the short batch at the end of an epoch
//   log_every = 50          # a metrics.jsonl line and a progress line
//   eval_every = 500        # evaluate and checkpoint (0: only at the end)
//   keep_last = 2           # checkpoints kept besides the best
//   clip_norm = 0.0         # global gradient-norm clipping (0: off)
//   prefetch = 2            # batches prepared ahead on a background thread
//   seed = 0                # drives parameter init, data order and every random stream
//   device = "cpu"          # or "cuda", "cuda:1"
//   deterministic = false   # bitwise-reproducible runs (records and checks the thread count)
#pragma once

#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>

#include "core/config.h"
#include "core/error.h"
#include "models/optim/optimizer.h"
#include "models/optim/schedule.h"
#include "models/train/checkpoint.h"
#include "models/train/task.h"

namespace basin::train {

/// Thrown when the loss or the gradient norm is not finite; the run's last checkpoint is intact.
class Diverged : public Error {
 public:
  using Error::Error;
};

struct TrainerOptions {
  std::string run_dir;        ///< the run folder (created; must not hold a run unless resuming)
  bool resume = false;        ///< continue the run in run_dir from its latest checkpoint
  bool progress_tty = false;  ///< draw a progress bar (else plain lines)
  bool quiet = false;         ///< no progress output at all (tests)
  bool dry_run = false;       ///< build and check everything, touch no file (--print-config)
  int64_t stop_at = 0;        ///< when > 0: checkpoint and stop at this step (continue with resume)
  std::ostream* log = nullptr;  ///< human-readable output (stderr when null)
};

class Trainer {
 public:
  /// Builds everything from `config` and checks that it has no unknown key, before touching the
  /// run folder: a bad config leaves the disk as it was. With options.resume, loads the latest
  /// checkpoint of run_dir (an error when there is none or it does not fit the model).
  Trainer(Config config, TrainerOptions options);
  ~Trainer();

  /// Trains until train.steps; returns the last evaluation's metrics.
  Metrics run();

  Task& task() { return *task_; }
  optim::Optimizer& optimizer() { return *optimizer_; }
  const TrainerState& state() const { return state_; }
  int64_t total_steps() const { return total_steps_; }
  /// The resolved config (every default that was read filled in).
  const Config& config() const { return config_; }

 private:
  void evaluate_and_checkpoint(Metrics& last_eval);
  void log_json(const std::string& line);
  std::ostream& log();

  Config config_;
  TrainerOptions options_;
  std::unique_ptr<Task> task_;
  std::unique_ptr<optim::Optimizer> optimizer_;
  std::unique_ptr<optim::Schedule> schedule_;
  TrainerState state_;
  int64_t total_steps_ = 0, batch_size_ = 0, log_every_ = 0, eval_every_ = 0, prefetch_ = 2;
  int keep_last_ = 2;
  bool drop_last_ = true, deterministic_ = false;
  double clip_norm_ = 0;
  Device device_;
};

}  // namespace basin::train
