// An op profiler for finding where a step's time goes: with BASIN_PROFILE=1 in the environment,
// every op applied outside another op is timed (on a GPU with the device synchronised before and
// after, so the time is the op's own launches and kernels) and a table of the ops by total time
// goes to stderr when the process exits. Off, it costs one branch per op.
#pragma once

#include <chrono>

#include "core/device.h"

namespace basin::profile {

/// Whether BASIN_PROFILE is set to a non-empty value other than 0 (read once).
bool enabled();

/// Times one op evaluation on `device` while in scope; only the outermost scope of a thread
/// records (an op evaluated inside another, e.g. a fused op's fallback, counts as its parent).
class OpScope {
 public:
  OpScope(const char* name, Device device);
  ~OpScope();
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

 private:
  const char* name_;
  Device device_;
  bool outermost_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace basin::profile
