// Block-level pieces shared by the CUDA reduction, softmax and layer-norm kernels: how a block's
// threads split into groups that each reduce one slice, and the fixed tree that combines a
// group's partial results (fixed, so that results do not depend on timing). C++17 (nvcc).
#pragma once

#include <cstdint>

#include "backends/cuda/common.cuh"

namespace basin::cuda {

/// How a block's kBlock threads split into `groups` groups of `lanes` threads (powers of two,
/// groups * lanes == kBlock), one group per slice. In the row layout a group's lanes are
/// consecutive threads, which suits a slice contiguous in memory; in the column layout
/// consecutive threads belong to consecutive groups, which suits slices that lie side by side
/// (consecutive slices' elements adjacent in memory).
struct GroupLayout {
  int lanes = kBlock;
  int groups = 1;
  bool column = false;

  __device__ int group() const {
    return column ? static_cast<int>(threadIdx.x) % groups : static_cast<int>(threadIdx.x) / lanes;
  }
  __device__ int lane() const {
    return column ? static_cast<int>(threadIdx.x) / groups : static_cast<int>(threadIdx.x) % lanes;
  }
};

/// Smallest power of two >= n, clamped to [1, kBlock].
inline int lanes_for(int64_t n) {
  int p = 1;
  while (p < kBlock && p < n) p *= 2;
  return p;
}

/// The layout for `n_slices` slices of `n` elements each. `side_by_side` says that consecutive
/// slices are closer in memory than consecutive elements of a slice: then, with enough slices to
/// fill a warp, consecutive threads take consecutive slices (coalesced reads) and a few lanes
/// share each slice; otherwise a group's lanes stride through its slice.
inline GroupLayout choose_layout(int64_t n_slices, int64_t n, bool side_by_side) {
  GroupLayout g;
  g.column = side_by_side && n_slices >= 32;
  g.lanes = g.column ? (n < 8 ? lanes_for(n) : 8) : lanes_for(n);
  g.groups = kBlock / g.lanes;
  return g;
}

/// Offset of element `i` through a one-operand calculator; the common single-dimension case
/// skips the division.
__device__ __forceinline__ int64_t offset_of(const OffsetCalc<1>& c, int64_t i) {
  if (c.ndim == 1) return i * c.strides[0][0];
  int64_t off[1];
  c.offsets(i, off);
  return off[0];
}

/// Combines the values `v` of each group's lanes with `op.combine` along a fixed tree and returns
/// the group's total to all its threads. Every thread of the block must call it (it
/// synchronises); `scratch` holds kBlock values and may be reused once it returns.
template <class Acc, class Op>
__device__ Acc group_reduce(Acc v, Acc* scratch, const GroupLayout& g, const Op& op) {
  const int lane = g.lane();
  // Column layout: a group's slots are `groups` apart, so consecutive threads hit consecutive
  // slots (no bank conflicts).
  const int step = g.column ? g.groups : 1;
  Acc* mine = scratch + (g.column ? g.group() : g.group() * g.lanes);
  mine[lane * step] = v;
  __syncthreads();
  for (int s = g.lanes / 2; s > 0; s /= 2) {
    if (lane < s) mine[lane * step] = op.combine(mine[lane * step], mine[(lane + s) * step]);
    __syncthreads();
  }
  const Acc total = mine[0];
  __syncthreads();
  return total;
}

/// Shared memory for group_reduce over Acc values, declared once per kernel.
template <class Acc>
__device__ Acc* group_scratch() {
  __shared__ alignas(16) unsigned char raw[kBlock * sizeof(Acc)];
  return reinterpret_cast<Acc*>(raw);
}

}  // namespace basin::cuda
