// basin::Error, the one exception type the library throws, and helpers to raise it.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace basin {

/// Thrown for every user-facing error: bad shapes, dtypes, axes, devices, files, configs.
/// The message starts with the op or function in brackets, e.g. "[matmul] inner dimensions ...".
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Throws basin::Error with a fmt-formatted message.
template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

/// Throws basin::Error with the formatted message when `cond` is false.
template <class... Args>
void check(bool cond, fmt::format_string<Args...> format, Args&&... args) {
  if (!cond) throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace basin
