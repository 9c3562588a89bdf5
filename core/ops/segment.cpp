// Segment ops: argument checks, compositions over segment_sum/segment_max, and their gradients.
#include "core/ops/segment.h"

#include <limits>

#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/index.h"
#include "core/ops/movement.h"
#include "core/prims/segment.h"

namespace basin {
namespace {
using prims::SegmentLayout;
constexpr double kInf = std::numeric_limits<double>::infinity();

/// Segments of the rows of one x, checked for shape and dtype (their values are checked by the
/// kernels, which read them anyway).
struct Segments {
  Tensor seg;
  SegmentLayout layout;
  int64_t count;
  int64_t rows;
  const char* api;
};

void check_x(const char* api, const Tensor& x, const Tensor& seg) {
  if (!x.defined() || !seg.defined()) fail("[{}] got an undefined tensor", api);
  if (x.ndim() < 1) fail("[{}] x must have at least one dimension (the rows), got a scalar", api);
  if (seg.dtype() != Dtype::i32 && seg.dtype() != Dtype::i64) {
    fail("[{}] segment offsets/ids must be int32 or int64, got {}", api, dtype_name(seg.dtype()));
  }
}

Segments from_offsets(const char* api, const Tensor& x, const Tensor& offsets) {
  check_x(api, x, offsets);
  if (offsets.ndim() != 1 || offsets.numel() < 1) {
    fail("[{}] offsets must be 1-D with at least one entry (S + 1 for S segments), got shape {}",
         api, shape_str(offsets.shape()));
  }
  return {offsets, SegmentLayout::offsets, offsets.numel() - 1, x.shape()[0], api};
}

Segments from_ids(const char* api, const Tensor& x, const Tensor& ids, int64_t num_segments) {
  check_x(api, x, ids);
  if (ids.ndim() != 1 || ids.numel() != x.shape()[0]) {
    fail("[{}] segment ids must be 1-D with one id per row of x with shape {}, got shape {}", api,
         shape_str(x.shape()), shape_str(ids.shape()));
  }
  if (num_segments < 0) fail("[{}] num_segments must be non-negative, got {}", api, num_segments);
  return {ids, SegmentLayout::ids, num_segments, x.shape()[0], api};
}

/// The segment id of every row: gathers per-segment values back to the rows.
Tensor row_ids(const Segments& s) {
  if (s.layout == SegmentLayout::ids) return s.seg;
  return apply(std::make_shared<prims::OffsetsToIds>(s.api), {s.seg}, {s.rows}, s.seg.dtype());
}

/// y (S, ...) -> (N, ...): each row gets its segment's slice.
Tensor to_rows(const Tensor& y, const Tensor& ids) { return index_select(y, 0, ids); }

Shape out_shape(const Tensor& x, const Segments& s) {
  Shape shape = x.shape();
  shape[0] = s.count;
  return shape;
}

Tensor sum_of(const Tensor& x, const Segments& s) {
  if (x.dtype() == Dtype::boolean) return sum_of(x.astype(Dtype::i64), s);
  return apply(std::make_shared<prims::SegmentSum>(s.layout, s.count, s.api), {x, s.seg},
               out_shape(x, s), x.dtype());
}

Tensor max_of(const Tensor& x, const Segments& s) {
  if (x.dtype() == Dtype::boolean) fail("[{}] does not take bool tensors", s.api);
  return apply(std::make_shared<prims::SegmentMax>(s.layout, s.count, s.api), {x, s.seg},
               out_shape(x, s), x.dtype());
}

/// Per-segment values (S,) shaped to broadcast against (S, ...) results of x.
Tensor per_segment(const Tensor& v, const Tensor& x) {
  Shape shape(static_cast<size_t>(x.ndim()), 1);
  shape[0] = v.numel();
  return reshape(v, shape);
}

void check_floating(const Tensor& x, const Segments& s) {
  if (!is_floating(x.dtype())) {
    fail("[{}] needs a floating dtype (float32 or float64), got {}", s.api, dtype_name(x.dtype()));
  }
}

Tensor mean_of(const Tensor& x, const Segments& s) {
  check_floating(x, s);
  const Tensor counts = sum_of(ones({s.rows}, x.dtype(), x.device()), s);
  return sum_of(x, s) / per_segment(maximum(counts, scalar(1.0, x.dtype(), x.device())), x);
}

/// log-sum-exp per segment; `ids` are the row ids of s (softmax needs them too).
Tensor logsumexp_of(const Tensor& x, const Segments& s, const Tensor& ids) {
  // The shift is a constant (it cancels in value and gradient); infinite maxima (empty or all -inf
  // segments, +inf rows) are replaced by 0 so that no inf - inf appears.
  const Tensor m = max_of(x, s).detach();
  const Tensor shift = where(abs(m) < kInf, m, 0.0);
  const Tensor total = sum_of(exp(x - to_rows(shift, ids)), s);
  // Empty segments sum to 0: their log is taken of 1 and replaced by -inf, so neither the value
  // nor any derivative order sees log(0) or 0/0.
  const Tensor nonempty = total > 0.0;
  return where(nonempty, log(where(nonempty, total, 1.0)) + shift, -kInf);
}

Tensor softmax_of(const Tensor& x, const Segments& s) {
  check_floating(x, s);
  const Tensor ids = row_ids(s);
  const Tensor lse = logsumexp_of(x, s, ids);
  // A segment that is all -inf has lse -inf: shifting by 0 gives exp(-inf) = 0 instead of NaN.
  return exp(x - to_rows(where(lse == -kInf, 0.0, lse), ids));
}

}  // namespace

Tensor segment_sum(const Tensor& x, const Tensor& offsets) {
  return sum_of(x, from_offsets("segment_sum", x, offsets));
}
Tensor segment_sum(const Tensor& x, const Tensor& ids, int64_t num_segments) {
  return sum_of(x, from_ids("segment_sum", x, ids, num_segments));
}

Tensor segment_mean(const Tensor& x, const Tensor& offsets) {
  return mean_of(x, from_offsets("segment_mean", x, offsets));
}
Tensor segment_mean(const Tensor& x, const Tensor& ids, int64_t num_segments) {
  return mean_of(x, from_ids("segment_mean", x, ids, num_segments));
}

Tensor segment_max(const Tensor& x, const Tensor& offsets) {
  return max_of(x, from_offsets("segment_max", x, offsets));
}
Tensor segment_max(const Tensor& x, const Tensor& ids, int64_t num_segments) {
  return max_of(x, from_ids("segment_max", x, ids, num_segments));
}

Tensor segment_logsumexp(const Tensor& x, const Tensor& offsets) {
  const Segments s = from_offsets("segment_logsumexp", x, offsets);
  check_floating(x, s);
  return logsumexp_of(x, s, row_ids(s));
}
Tensor segment_logsumexp(const Tensor& x, const Tensor& ids, int64_t num_segments) {
  const Segments s = from_ids("segment_logsumexp", x, ids, num_segments);
  check_floating(x, s);
  return logsumexp_of(x, s, row_ids(s));
}

Tensor segment_softmax(const Tensor& x, const Tensor& offsets) {
  return softmax_of(x, from_offsets("segment_softmax", x, offsets));
}
Tensor segment_softmax(const Tensor& x, const Tensor& ids, int64_t num_segments) {
  return softmax_of(x, from_ids("segment_softmax", x, ids, num_segments));
}

Tensor segment_ids_from_offsets(const Tensor& offsets, int64_t num_rows) {
  const char* api = "segment_ids_from_offsets";
  if (!offsets.defined()) fail("[{}] got an undefined tensor", api);
  if (offsets.dtype() != Dtype::i32 && offsets.dtype() != Dtype::i64) {
    fail("[{}] offsets must be int32 or int64, got {}", api, dtype_name(offsets.dtype()));
  }
  if (offsets.ndim() != 1 || offsets.numel() < 1) {
    fail("[{}] offsets must be 1-D with at least one entry (S + 1 for S segments), got shape {}",
         api, shape_str(offsets.shape()));
  }
  if (num_rows < 0) num_rows = offsets.to_vector<int64_t>().back();
  if (num_rows < 0) fail("[{}] the last offset is negative: {}", api, num_rows);
  return apply(std::make_shared<prims::OffsetsToIds>(api), {offsets}, {num_rows}, offsets.dtype());
}

Tensor offsets_from_ids(const Tensor& ids, int64_t num_segments) {
  const char* api = "offsets_from_ids";
  if (!ids.defined()) fail("[{}] got an undefined tensor", api);
  if (ids.dtype() != Dtype::i32 && ids.dtype() != Dtype::i64) {
    fail("[{}] ids must be int32 or int64, got {}", api, dtype_name(ids.dtype()));
  }
  if (ids.ndim() != 1) fail("[{}] ids must be 1-D, got shape {}", api, shape_str(ids.shape()));
  if (num_segments < 0) fail("[{}] num_segments must be non-negative, got {}", api, num_segments);
  return apply(std::make_shared<prims::IdsToOffsets>(api), {ids}, {num_segments + 1}, ids.dtype());
}

// --- vector-Jacobian products --------------------------------------------------------------------
namespace prims {
namespace {

Segments segments_of(const SegmentReduce& op, const Tensors& in, const char* api) {
  return {in[1], op.layout(), op.num_segments(), in[0].shape()[0], api};
}

}  // namespace

Tensors SegmentSum::vjp(const Tensors& in, const Tensor&, const Tensor& cot,
                        const std::vector<int>&) {
  return {to_rows(cot, row_ids(segments_of(*this, in, api_)))};
}

Tensors SegmentMax::vjp(const Tensors& in, const Tensor& out, const Tensor& cot,
                        const std::vector<int>&) {
  const Segments s = segments_of(*this, in, api_);
  const Tensor ids = row_ids(s);
  // The rows equal to their segment's maximum share its cotangent equally. The mask is a
  // comparison, so the gradient is piecewise linear in the cotangent and constant in x.
  const Tensor hit = (in[0] == to_rows(out, ids)).astype(cot.dtype());
  const Tensor ties = sum_of(hit, s);
  const Tensor share = cot / maximum(ties, scalar(1.0, cot.dtype(), cot.device()));
  return {hit * to_rows(share, ids)};
}

Tensors OffsetsToIds::vjp(const Tensors&, const Tensor&, const Tensor&, const std::vector<int>&) {
  fail("[{}] is not differentiable", api_);
}

Tensors IdsToOffsets::vjp(const Tensors&, const Tensor&, const Tensor&, const std::vector<int>&) {
  fail("[{}] is not differentiable", api_);
}

}  // namespace prims
}  // namespace basin
