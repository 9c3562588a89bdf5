// The op profiler of core/profile.h: per-name totals, printed at exit.
#include "core/profile.h"

#include <fmt/core.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/allocator.h"

namespace basin::profile {
namespace {

struct Totals {
  int64_t calls = 0;
  double ms = 0;
};

struct Table {
  std::mutex mutex;
  std::map<std::string, Totals> ops;

  ~Table() {
    std::vector<std::pair<std::string, Totals>> rows(ops.begin(), ops.end());
    if (rows.empty()) return;
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
    double total = 0;
    int64_t calls = 0;
    for (const auto& [name, t] : rows) {
      total += t.ms;
      calls += t.calls;
    }
    std::fprintf(stderr, "basin profile: %lld ops, %.1f ms\n%-28s %10s %12s %8s %10s\n",
                 static_cast<long long>(calls), total, "op", "calls", "total ms", "share",
                 "us/call");
    for (const auto& [name, t] : rows) {
      std::fprintf(stderr, "%-28s %10lld %12.2f %7.1f%% %10.1f\n", name.c_str(),
                   static_cast<long long>(t.calls), t.ms, 100.0 * t.ms / total,
                   1e3 * t.ms / static_cast<double>(t.calls));
    }
  }
};

Table& table() {
  static Table t;
  return t;
}

thread_local int depth = 0;

void synchronize(Device device) {
  if (device.is_cuda()) cuda_backend::synchronize(device.index);
}

}  // namespace

bool enabled() {
  static const bool on = [] {
    const char* v = std::getenv("BASIN_PROFILE");
    return v != nullptr && *v != '\0' && std::string(v) != "0";
  }();
  return on;
}

OpScope::OpScope(const char* name, Device device)
    : name_(name), device_(device), outermost_(depth++ == 0) {
  if (!outermost_) return;
  table();  // constructed before the first record, so destroyed after the last
  synchronize(device_);
  start_ = std::chrono::steady_clock::now();
}

OpScope::~OpScope() {
  --depth;
  if (!outermost_) return;
  synchronize(device_);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
  std::lock_guard<std::mutex> lock(table().mutex);
  Totals& t = table().ops[name_];
  ++t.calls;
  t.ms += ms;
}

}  // namespace basin::profile
