// Registry: factories by name, for the things a config names (models, energy layers). Entries
// are added by static registration objects at load time, so the map is created on first use.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace basin {

template <class Factory>
class Registry {
 public:
  /// `what` names the kind of entry in errors ("register_task", ...).
  explicit Registry(std::string what) : what_(std::move(what)) {}

  /// Adds `name`; an empty name or factory, or a name already taken, is an error.
  void add(const std::string& name, const std::string& description, Factory factory) {
    check(!name.empty(), "[{}] the name is empty", what_);
    check(static_cast<bool>(factory), "[{}] '{}': the factory is empty", what_, name);
    std::lock_guard lock(mutex_);
    auto [it, inserted] = entries_.emplace(name, Entry{description, std::move(factory)});
    check(inserted, "[{}] '{}' is already registered", what_, name);
  }

  /// The factory of `name`, or an empty one.
  Factory find(const std::string& name) const {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(name);
    return it == entries_.end() ? Factory() : it->second.factory;
  }

  /// (name, description) of every entry, sorted by name.
  std::vector<std::pair<std::string, std::string>> entries() const {
    std::lock_guard lock(mutex_);
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [name, entry] : entries_) out.emplace_back(name, entry.description);
    return out;
  }

  /// "a, b, c": the names, for error messages.
  std::string names() const {
    std::string out;
    for (const auto& [name, description] : entries()) {
      if (!out.empty()) out += ", ";
      out += name;
    }
    return out;
  }

 private:
  struct Entry {
    std::string description;
    Factory factory;
  };
  std::string what_;
  mutable std::mutex mutex_;
  std::map<std::string, Entry> entries_;
};

}  // namespace basin
