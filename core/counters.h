// Process-wide counters for benchmarks: the floating-point operations done by matrix products
// (2·m·n·k per product) in every backend kernel, so a benchmark can report achieved GFLOP/s
// from the work actually executed rather than from a formula.
#pragma once

#include <cstdint>

namespace basin {

/// Adds `flops` to the matmul counter (kernels call this; relaxed and thread-safe).
void count_matmul_flops(int64_t flops);
/// The matmul FLOPs counted since the start or the last reset.
int64_t matmul_flops();
void reset_matmul_flops();

}  // namespace basin
