#include "models/train/task.h"

#include "core/error.h"
#include "core/registry.h"

namespace basin::train {
namespace {

// Function-local so that registrations from other translation units' static initialisers find
// it constructed.
Registry<TaskFactory>& registry() {
  static Registry<TaskFactory> tasks("register_task");
  return tasks;
}

}  // namespace

std::string Task::attention_json(const std::string& split) {
  (void)split;
  fail("this model has no attention weights to export");
}

void register_task(const std::string& name, const std::string& description, TaskFactory factory) {
  registry().add(name, description, std::move(factory));
}

std::vector<std::pair<std::string, std::string>> registered_tasks() { return registry().entries(); }

std::unique_ptr<Task> make_task(const TaskContext& context) {
  Config model = Config(context.config).section("model");
  check(model.has("type"), "[config] missing key model.type (the model to train; one of {})",
        registry().names());
  const std::string type = model.get<std::string>("type");
  const TaskFactory factory = registry().find(type);
  check(static_cast<bool>(factory), "[config] model.type: unknown model '{}' (registered: {})",
        type, registry().names());
  std::unique_ptr<Task> task = factory(context);
  check(task != nullptr, "[make_task] the factory of '{}' returned nothing", type);
  return task;
}

}  // namespace basin::train
