// Segment (ragged) reductions over the rows of x: CSR graph neighbourhoods, multiple-instance bags.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace basin {

// The ops work on segments of the rows of x (N, ...); reductions give (S, ...). Segments are
// given either as CSR `offsets` (int32/int64, length S + 1, nondecreasing, offsets[0] = 0,
// offsets[S] = N; segment s is rows offsets[s] to offsets[s+1] - 1) or as per-row `ids` (length
// N, values in [0, num_segments), sorted or not) with an explicit `num_segments`. Offsets suit
// graphs stored as CSR edge lists; ids suit bags whose rows arrive in any order. Invalid segments
// are errors.

/// Sum of each segment's rows; an empty segment gives 0. Deterministic for either layout.
/// Differentiable in x (the gradient of a row is its segment's cotangent).
Tensor segment_sum(const Tensor& x, const Tensor& offsets);
Tensor segment_sum(const Tensor& x, const Tensor& ids, int64_t num_segments);

/// Mean of each segment's rows (floating x); an empty segment gives 0.
Tensor segment_mean(const Tensor& x, const Tensor& offsets);
Tensor segment_mean(const Tensor& x, const Tensor& ids, int64_t num_segments);

/// Elementwise maximum of each segment's rows; NaN propagates; an empty segment gives -inf (the
/// lowest value for integer x, with zero gradient). Tied maxima share the gradient equally;
/// twice differentiable where the maximum is unique.
Tensor segment_max(const Tensor& x, const Tensor& offsets);
Tensor segment_max(const Tensor& x, const Tensor& ids, int64_t num_segments);

/// log(sum(exp(rows))) per segment (floating x), computed stably around the segment maximum. An
/// empty segment (or one whose rows are all -inf) gives -inf with zero gradient, never NaN.
Tensor segment_logsumexp(const Tensor& x, const Tensor& offsets);
Tensor segment_logsumexp(const Tensor& x, const Tensor& ids, int64_t num_segments);

/// Softmax of each row within its segment (floating x; same shape as x): exp(x - lse[segment]).
/// The rows of a segment sum to 1; rows of a segment that is all -inf give 0.
Tensor segment_softmax(const Tensor& x, const Tensor& offsets);
Tensor segment_softmax(const Tensor& x, const Tensor& ids, int64_t num_segments);

/// The segment id of each row, from CSR offsets (same index dtype). `num_rows` is N; -1 reads it
/// from the last offset (a host read).
Tensor segment_ids_from_offsets(const Tensor& offsets, int64_t num_rows = -1);

/// CSR offsets (length num_segments + 1, same index dtype) from sorted segment ids.
Tensor offsets_from_ids(const Tensor& ids, int64_t num_segments);

}  // namespace basin
