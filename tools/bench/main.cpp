// basin-bench NAME | all | list: runs the named benchmarks, one JSON line each on stdout.
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "core/counters.h"
#include "tools/bench/bench.h"

namespace basin::bench {

std::map<std::string, std::function<Json()>>& registry() {
  static std::map<std::string, std::function<Json()>> r;
  return r;
}

double median_seconds(const std::function<void()>& fn, int reps, int warmup) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

StepTiming time_steps(const std::function<double()>& step, int steps, int warmup) {
  for (int i = 0; i < warmup; ++i) step();
  std::vector<double> ms;
  reset_matmul_flops();
  double loss = 0;
  for (int i = 0; i < steps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    loss = step();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
  }
  const double flops = static_cast<double>(matmul_flops()) / steps;
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms.front(), flops / 1e9, loss};
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

}  // namespace basin::bench

int main(int argc, char** argv) {
  using basin::bench::registry;
  if (argc != 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::fprintf(stderr, "usage: basin-bench NAME | all | list\nbenchmarks:");
    for (const auto& [name, fn] : registry()) std::fprintf(stderr, " %s", name.c_str());
    std::fprintf(stderr, "\n");
    return argc == 2 ? 0 : 2;
  }
  const std::string which = argv[1];
  if (which == "list") {
    for (const auto& [name, fn] : registry()) std::printf("%s\n", name.c_str());
    return 0;
  }
  if (which != "all" && registry().count(which) == 0) {
    std::fprintf(stderr, "basin-bench: unknown benchmark '%s' (try 'basin-bench list')\n",
                 which.c_str());
    return 2;
  }
  for (const auto& [name, fn] : registry()) {
    if (which != "all" && which != name) continue;
    try {
      std::cout << fn().dump() << std::endl;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "basin-bench %s: %s\n", name.c_str(), e.what());
      return 1;
    }
  }
  return 0;
}
