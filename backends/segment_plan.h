// Host-side reading and validation of segment offsets and ids, shared by the CPU and CUDA
// backends so that both accept the same segments and raise the same errors.
#pragma once

#include <cstdint>
#include <vector>

#include "core/prims/segment.h"
#include "core/tensor.h"

namespace basin::segment_plan {

/// Segment s is the rows order[offsets[s]] .. order[offsets[s+1] - 1]; with an empty `order`,
/// rows offsets[s] .. offsets[s+1] - 1.
struct SegmentPlan {
  std::vector<int64_t> offsets;
  std::vector<int64_t> order;
};

/// A 1-D int32/int64 tensor of any stride, on the host, read into int64s.
std::vector<int64_t> read_index(const Tensor& t);

/// Checks CSR offsets: they start at 0, never decrease and end at `rows`. `api` names the caller.
void check_offsets(const std::vector<int64_t>& off, int64_t rows, const char* api);

/// CSR boundaries of segment ids in [0, count); unsorted ids also get a stable row order (a
/// counting sort), so each segment still folds its rows in increasing row order. With
/// `require_sorted`, unsorted ids are an error.
SegmentPlan plan_ids(const std::vector<int64_t>& ids, int64_t count, bool require_sorted,
                     const char* api);

/// The plan of a segment reduction over `rows` rows into `count` segments described by the host
/// tensor `seg` in `layout`; invalid segments are errors naming `api`.
SegmentPlan make_plan(const Tensor& seg, prims::SegmentLayout layout, int64_t count, int64_t rows,
                      const char* api);

}  // namespace basin::segment_plan
