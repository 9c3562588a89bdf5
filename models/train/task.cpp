#include "models/train/task.h"

#include <mutex>

#include "core/error.h"

namespace basin::train {
namespace {

struct Entry {
  std::string description;
  TaskFactory factory;
};

// Function-local so that registrations from other translation units' static initialisers find
// it constructed.
std::map<std::string, Entry>& registry() {
  static std::map<std::string, Entry> tasks;
  return tasks;
}

std::mutex& registry_mutex() {
  static std::mutex mutex;
  return mutex;
}

// "a, b, c": the registered names, for error messages.
std::string registered_names() {
  std::string names;
  for (const auto& [name, description] : registered_tasks()) {
    if (!names.empty()) names += ", ";
    names += name;
  }
  return names;
}

}  // namespace

void register_task(const std::string& name, const std::string& description, TaskFactory factory) {
  check(!name.empty(), "[register_task] the name is empty");
  check(static_cast<bool>(factory), "[register_task] '{}': the factory is empty", name);
  std::lock_guard lock(registry_mutex());
  auto [it, inserted] = registry().emplace(name, Entry{description, std::move(factory)});
  check(inserted, "[register_task] '{}' is already registered", name);
}

std::vector<std::pair<std::string, std::string>> registered_tasks() {
  std::lock_guard lock(registry_mutex());
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, entry] : registry()) out.emplace_back(name, entry.description);
  return out;
}

std::unique_ptr<Task> make_task(const TaskContext& context) {
  Config model = Config(context.config).section("model");
  check(model.has("type"), "[config] missing key model.type (the model to train; one of {})",
        registered_names());
  const std::string type = model.get<std::string>("type");
  TaskFactory factory;
  {
    std::lock_guard lock(registry_mutex());
    auto it = registry().find(type);
    if (it != registry().end()) factory = it->second.factory;
  }
  check(static_cast<bool>(factory), "[config] model.type: unknown model '{}' (registered: {})",
        type, registered_names());
  std::unique_ptr<Task> task = factory(context);
  check(task != nullptr, "[make_task] the factory of '{}' returned nothing", type);
  return task;
}

}  // namespace basin::train
