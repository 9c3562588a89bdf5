// basin-bench: a registry of named benchmarks, each printing one JSON line, and timing helpers.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace basin::bench {

using Json = nlohmann::ordered_json;

/// Benchmarks register themselves by name; each returns its JSON result line.
std::map<std::string, std::function<Json()>>& registry();

struct Register {
  Register(const std::string& name, std::function<Json()> fn) { registry()[name] = std::move(fn); }
};

/// Median seconds of `reps` calls of fn after `warmup` calls.
double median_seconds(const std::function<void()>& fn, int reps, int warmup = 2);

/// Peak resident set size of this process, MiB.
double peak_rss_mib();

/// A training step's timing: median and fastest step, the matmul GFLOP per step counted by the
/// kernels (core/counters.h), and the last step's loss.
struct StepTiming {
  double ms_median = 0, ms_min = 0, matmul_gflop = 0;
  double last_loss = 0;
};

/// Times `steps` calls of step() (each returning the step's loss) after `warmup` calls.
StepTiming time_steps(const std::function<double()>& step, int steps, int warmup);

/// Runs fn with the OpenMP thread count set to `threads`, restoring it afterwards.
template <class F>
auto with_threads(int threads, F&& fn);

}  // namespace basin::bench

#include <omp.h>

namespace basin::bench {
template <class F>
auto with_threads(int threads, F&& fn) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  struct Restore {
    int n;
    ~Restore() { omp_set_num_threads(n); }
  } restore{saved};
  return fn();
}
}  // namespace basin::bench
