// OpenMP helpers for CPU kernels: parallel only above a work threshold, so small ops stay serial.
#pragma once

#include <algorithm>
#include <cstdint>

#include <omp.h>

namespace basin::cpu {

/// Below this many units of work a loop runs on the calling thread.
inline constexpr int64_t kParallelGrain = 32768;

/// Calls fn(begin, end) on disjoint ranges covering [0, n). `cost` is the work per item (e.g.
/// elements per row) and decides whether threads are worth starting.
template <class F>
void parallel_for(int64_t n, int64_t cost, F&& fn) {
  if (n <= 0) return;
  const int max_threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const int64_t work = n * std::max<int64_t>(cost, 1);
  int threads = static_cast<int>(std::min<int64_t>({max_threads, n, work / kParallelGrain + 1}));
  if (threads <= 1) {
    fn(int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    const int nt = omp_get_num_threads();
    const int64_t chunk = (n + nt - 1) / nt;
    const int64_t begin = std::min<int64_t>(n, t * chunk);
    const int64_t end = std::min<int64_t>(n, begin + chunk);
    if (begin < end) fn(begin, end);
  }
}

}  // namespace basin::cpu
