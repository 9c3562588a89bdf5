// Task: what basin-train trains. A task owns a model, its data, its loss and its metrics; the
// trainer owns everything else (optimizer, schedule, data order, checkpoints, logs). Tasks are
// registered under the name a config gives as `model.type`, so a new model is one file:
//
//   class MyTask : public basin::train::Task { ... };
//   BASIN_REGISTER_TASK("my_model", "what it is", [](const basin::train::TaskContext& ctx) {
//     return std::make_unique<MyTask>(ctx);
//   });
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/device.h"
#include "data/dataset.h"
#include "models/nn/module.h"

namespace basin::train {

/// Metric values by name ("loss", "accuracy", "roc_auc", ...).
using Metrics = std::map<std::string, double>;

/// What a task factory is given: the whole config (a task reads its `model` and `data` sections;
/// every key it reads is recorded, and keys nobody reads are reported as unknown), the device to
/// build on, and the run's seed. Parameters are initialised from the default generator, which
/// the trainer has seeded before the call.
struct TaskContext {
  Config config;
  Device device;
  uint64_t seed = 0;
};

/// A trainable model with its data. get() of the training set must be thread-safe (a background
/// thread prefetches batches).
class Task {
 public:
  virtual ~Task() = default;

  /// The model whose parameters are trained and checkpointed.
  virtual nn::Module& model() = 0;
  /// The training items, unbatched; the trainer shuffles them per epoch and batches them.
  virtual data::DatasetPtr<data::Example> train_data() = 0;
  /// Called before each epoch's batches are drawn, on resume too: datasets whose items depend
  /// on the epoch (random augmentation, e.g. data::ImageFolder::set_epoch) follow it here.
  virtual void set_epoch(int64_t epoch) { (void)epoch; }
  /// How items become a batch (stacking by default; ragged items need data::ragged_collate).
  virtual data::Collate collate() const { return data::stack_collate; }
  /// The scalar training loss of one batch, in training mode, on the task's device. May add
  /// values to `logs` (e.g. the batch accuracy) for the metrics log.
  virtual Tensor loss(const data::Example& batch, Metrics& logs) = 0;
  /// Metrics on a held-out split ("test" unless the task has others), in evaluation mode and
  /// without recording gradients.
  virtual Metrics evaluate(const std::string& split) = 0;
  /// The splits evaluate() accepts; the first is the one the trainer evaluates.
  virtual std::vector<std::string> splits() const { return {"test"}; }
  /// The metric that picks the best checkpoint, and whether higher is better.
  virtual std::string primary_metric() const = 0;
  virtual bool higher_is_better() const { return true; }
  /// Optionally writes samples (images, plots) of the model's current output into `dir`.
  virtual void write_samples(const std::string& dir) { (void)dir; }
  /// The model's attention weights on each item of `split`, as the text of one JSON object
  /// (basin-eval --export-attention; the layout is the task's, documented with it). Called in
  /// evaluation mode without recording gradients. The default is an error: the model has no
  /// attention to export.
  virtual std::string attention_json(const std::string& split);
};

using TaskFactory = std::function<std::unique_ptr<Task>(const TaskContext&)>;

/// Registers a task under `name` (an error if the name is taken).
void register_task(const std::string& name, const std::string& description, TaskFactory factory);
/// Builds the task named by the config's `model.type`; an unknown name is an error listing the
/// registered ones.
std::unique_ptr<Task> make_task(const TaskContext& context);
/// Registered names and their descriptions, sorted by name.
std::vector<std::pair<std::string, std::string>> registered_tasks();

namespace detail {
struct TaskRegistration {
  TaskRegistration(const char* name, const char* description, TaskFactory factory) {
    register_task(name, description, std::move(factory));
  }
};
}  // namespace detail

}  // namespace basin::train

#define BASIN_TASK_CONCAT_(a, b) a##b
#define BASIN_TASK_CONCAT(a, b) BASIN_TASK_CONCAT_(a, b)
/// Registers a task factory at load time: BASIN_REGISTER_TASK("name", "description", factory).
#define BASIN_REGISTER_TASK(name, description, ...)                        \
  static const ::basin::train::detail::TaskRegistration BASIN_TASK_CONCAT( \
      basin_task_registration_, __LINE__)(name, description, __VA_ARGS__)
