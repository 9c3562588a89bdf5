#include "core/counters.h"

#include <atomic>

namespace basin {
namespace {
std::atomic<int64_t> g_matmul_flops{0};
}  // namespace

void count_matmul_flops(int64_t flops) {
  g_matmul_flops.fetch_add(flops, std::memory_order_relaxed);
}
int64_t matmul_flops() { return g_matmul_flops.load(std::memory_order_relaxed); }
void reset_matmul_flops() { g_matmul_flops.store(0, std::memory_order_relaxed); }

}  // namespace basin
