// Checkpoints: one folder per saved step, in the layout of the Hugging Face Trainer,
//
//   checkpoint-<step>/model.safetensors      parameters and buffers by PyTorch-style dotted name
//   checkpoint-<step>/optimizer.safetensors  "state.<param name>.<key>" (exp_avg, ..., step)
//   checkpoint-<step>/trainer_state.json     step, epoch, data position, RNG, best metric, versions
//   checkpoint-<step>/config.toml            the resolved config of the run
//
// written under a temporary name and renamed into place, so a crash mid-save never leaves a
// half-written checkpoint behind a valid name. Python opens the tensors with
// safetensors.numpy.load_file / safetensors.torch.load_file.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "models/nn/module.h"
#include "models/optim/optimizer.h"

namespace basin::train {

/// Where a run stands: enough to continue it as if it had never stopped.
struct TrainerState {
  int64_t step = 0;            ///< optimizer steps taken
  int64_t epoch = 0;           ///< the epoch the next batch belongs to
  int64_t batch_in_epoch = 0;  ///< the next batch's position in that epoch's order
  uint64_t seed = 0;           ///< the run's seed (data order, default generator)
  uint64_t rng_offset = 0;     ///< the default generator's position
  std::string best_metric_name;
  std::optional<double> best_metric;  ///< the best value of the primary metric so far
  int64_t best_step = -1;             ///< the step of the checkpoint that holds it
  double wall_time = 0;               ///< seconds spent training so far, across resumes
  /// The training-log window since the last metrics line: its step count, loss sum and the sums
  /// of the task's own logged values (so a resumed run logs the same averages).
  int64_t window_steps = 0;
  double window_loss = 0;
  std::map<std::string, double> window_logs;
  std::map<std::string, std::string> versions;  ///< build_info() of the machine that saved it
};

/// "checkpoint-<step>".
std::string checkpoint_name(int64_t step);

/// Writes `run_dir`/checkpoint-<step>/ (replacing one of the same step) and returns its path.
/// Optimizer state is named after `model`'s parameters: the optimizer must have been built from
/// model.parameters() in that order.
std::string save_checkpoint(const std::string& run_dir, const nn::Module& model,
                            const optim::Optimizer& optimizer, const TrainerState& state,
                            const std::string& config_toml);

/// Loads a checkpoint folder into `model` (strict names and shapes) and, when given,
/// `optimizer`; returns its trainer state. Every problem (missing folder or file, damaged file,
/// a model that does not match) is an error naming the checkpoint.
TrainerState load_checkpoint(const std::string& checkpoint_dir, nn::Module& model,
                             optim::Optimizer* optimizer);

/// Reads only trainer_state.json of a checkpoint folder.
TrainerState read_trainer_state(const std::string& checkpoint_dir);

/// The checkpoints in `run_dir` as (step, path), sorted by step; temporary folders are ignored.
std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& run_dir);

/// Deletes all but the newest `keep_last` checkpoints, never the one at `keep_step` (the best).
void prune_checkpoints(const std::string& run_dir, int keep_last, int64_t keep_step);

}  // namespace basin::train
