// CPU forward of the segment family (one deterministic driver folding each segment's rows), and the
// host-side segment plans the CUDA backend shares.
#include <algorithm>
#include <limits>
#include <type_traits>
#include <vector>

#include "backends/cpu/parallel.h"
#include "backends/segment_plan.h"
#include "core/prims/segment.h"

namespace basin {
namespace segment_plan {

std::vector<int64_t> read_index(const Tensor& t) {
  return dispatch_index(t.dtype(), "segment", [&](auto tag) {
    using I = typename decltype(tag)::type;
    const I* p = static_cast<const I*>(t.raw_data());
    const int64_t stride = t.strides()[0];
    std::vector<int64_t> v(static_cast<size_t>(t.numel()));
    for (size_t i = 0; i < v.size(); ++i) v[i] = p[static_cast<int64_t>(i) * stride];
    return v;
  });
}

void check_offsets(const std::vector<int64_t>& off, int64_t rows, const char* api) {
  if (off[0] != 0) fail("[{}] offsets must start at 0, got offsets[0] = {}", api, off[0]);
  for (size_t s = 1; s < off.size(); ++s) {
    if (off[s] < off[s - 1]) {
      fail("[{}] offsets must be nondecreasing, got offsets[{}] = {} after offsets[{}] = {}", api,
           s, off[s], s - 1, off[s - 1]);
    }
  }
  if (off.back() != rows) {
    fail("[{}] the last offset, offsets[{}] = {}, must equal the number of rows {}", api,
         off.size() - 1, off.back(), rows);
  }
}

SegmentPlan plan_ids(const std::vector<int64_t>& ids, int64_t count, bool require_sorted,
                     const char* api) {
  SegmentPlan plan;
  plan.offsets.assign(static_cast<size_t>(count) + 1, 0);
  bool sorted = true;
  for (size_t n = 0; n < ids.size(); ++n) {
    if (ids[n] < 0 || ids[n] >= count) {
      fail("[{}] segment id ids[{}] = {} is out of range [0, {})", api, n, ids[n], count);
    }
    if (n > 0 && ids[n] < ids[n - 1]) {
      if (require_sorted) {
        fail("[{}] segment ids must be sorted, got ids[{}] = {} after ids[{}] = {}", api, n, ids[n],
             n - 1, ids[n - 1]);
      }
      sorted = false;
    }
    ++plan.offsets[static_cast<size_t>(ids[n]) + 1];
  }
  for (size_t s = 1; s < plan.offsets.size(); ++s) plan.offsets[s] += plan.offsets[s - 1];
  if (!sorted) {
    std::vector<int64_t> cursor(plan.offsets.begin(), plan.offsets.end() - 1);
    plan.order.resize(ids.size());
    for (size_t n = 0; n < ids.size(); ++n) {
      plan.order[static_cast<size_t>(cursor[static_cast<size_t>(ids[n])]++)] =
          static_cast<int64_t>(n);
    }
  }
  return plan;
}

SegmentPlan make_plan(const Tensor& seg, prims::SegmentLayout layout, int64_t count, int64_t rows,
                      const char* api) {
  if (layout == prims::SegmentLayout::ids) return plan_ids(read_index(seg), count, false, api);
  SegmentPlan plan{read_index(seg), {}};
  check_offsets(plan.offsets, rows, api);
  return plan;
}

}  // namespace segment_plan

namespace prims {
namespace {
using cpu::parallel_for;

using segment_plan::check_offsets;
using segment_plan::make_plan;
using segment_plan::plan_ids;
using segment_plan::read_index;
using segment_plan::SegmentPlan;

/// Element offsets of every feature (row-major over x.shape[1:]) within a row of x.
std::vector<int64_t> feature_offsets(const Tensor& x) {
  std::vector<int64_t> table{0};
  for (int d = 1; d < x.ndim(); ++d) {
    std::vector<int64_t> next;
    next.reserve(table.size() * static_cast<size_t>(x.shape()[d]));
    for (int64_t base : table) {
      for (int64_t k = 0; k < x.shape()[d]; ++k) next.push_back(base + k * x.strides()[d]);
    }
    table.swap(next);
  }
  return table;
}

/// How far ahead, in rows, a permuted walk asks for its rows.
constexpr int64_t kPrefetchRows = 8;

/// Asks for up to 1 KiB starting at p to be brought into cache.
inline void prefetch(const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (size_t b = 0; b < std::min<size_t>(bytes, 1024); b += 64) __builtin_prefetch(c + b);
}

/// Below this many features per block, splitting a segment's features is not worth a thread.
constexpr int64_t kMinFeatureBlock = 256;

/// out[s, f] = fold of combine(acc, x[r, f]) over the rows r of segment s, starting from `init`.
/// Parallel over segments: each output element has one writer and folds its rows in row order,
/// so results do not depend on the thread count.
template <class T, class Acc, class Combine>
void reduce_segments(const Tensor& x, const SegmentPlan& plan, Tensor& out, Acc init,
                     Combine combine) {
  out.allocate();
  if (out.numel() == 0) return;
  const int64_t segments = static_cast<int64_t>(plan.offsets.size()) - 1;
  const int64_t features = out.numel() / segments;
  const std::vector<int64_t> foff = feature_offsets(x);
  bool unit = true;
  for (size_t f = 0; f < foff.size() && unit; ++f) unit = foff[f] == static_cast<int64_t>(f);
  // Few segments with many features (one bag, a handful of graphs): split the features too so
  // the threads have work; each (segment, feature block) still has one writer.
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  int64_t blocks = 1;
  if (segments < threads) {
    blocks =
        std::clamp<int64_t>(features / kMinFeatureBlock, 1, (threads + segments - 1) / segments);
  }
  const int64_t width = (features + blocks - 1) / blocks;
  const int64_t rows = x.shape()[0];
  const int64_t rows_per_segment = rows / segments + 1;
  const T* xp = static_cast<const T*>(x.raw_data());
  const int64_t row_stride = x.strides()[0];
  T* yp = static_cast<T*>(out.raw_data());
  parallel_for(segments * blocks, rows_per_segment * width, [&](int64_t begin, int64_t end) {
    std::vector<Acc> acc(static_cast<size_t>(width));
    for (int64_t t = begin; t < end; ++t) {
      const int64_t s = t / blocks;
      const int64_t f0 = (t % blocks) * width;
      const int64_t n = std::min(features, f0 + width) - f0;
      if (n <= 0) continue;
      std::fill_n(acc.begin(), n, init);
      for (int64_t k = plan.offsets[s]; k < plan.offsets[s + 1]; ++k) {
        const int64_t r = plan.order.empty() ? k : plan.order[k];
        const T* row = xp + r * row_stride;
        // Rows of unsorted ids are scattered in memory, out of the hardware prefetcher's reach.
        if (!plan.order.empty() && k + kPrefetchRows < rows) {
          prefetch(xp + plan.order[k + kPrefetchRows] * row_stride + f0, n * sizeof(T));
        }
        if (unit) {
          for (int64_t f = 0; f < n; ++f) acc[f] = combine(acc[f], row[f0 + f]);
        } else {
          for (int64_t f = 0; f < n; ++f) acc[f] = combine(acc[f], row[foff[f0 + f]]);
        }
      }
      T* y = yp + s * features + f0;
      for (int64_t f = 0; f < n; ++f) y[f] = static_cast<T>(acc[f]);
    }
  });
}

}  // namespace

void SegmentSum::eval_cpu(const Tensors& in, Tensor& out) {
  const SegmentPlan plan = make_plan(in[1], layout_, num_segments_, in[0].shape()[0], api_);
  dispatch_numeric(in[0].dtype(), "SegmentSum", [&](auto tag) {
    using T = typename decltype(tag)::type;
    // As in sum: floating sums accumulate in double, integer sums in int64.
    using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
    reduce_segments<T, Acc>(in[0], plan, out, Acc{0},
                            [](Acc a, T v) { return a + static_cast<Acc>(v); });
  });
}

void SegmentMax::eval_cpu(const Tensors& in, Tensor& out) {
  const SegmentPlan plan = make_plan(in[1], layout_, num_segments_, in[0].shape()[0], api_);
  dispatch_numeric(in[0].dtype(), "SegmentMax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_floating_point_v<T>) {
      // NaN wins: once the accumulator is NaN no comparison replaces it.
      reduce_segments<T, T>(in[0], plan, out, -std::numeric_limits<T>::infinity(),
                            [](T a, T v) { return (v > a || v != v) ? v : a; });
    } else {
      reduce_segments<T, T>(in[0], plan, out, std::numeric_limits<T>::lowest(),
                            [](T a, T v) { return std::max(a, v); });
    }
  });
}

void OffsetsToIds::eval_cpu(const Tensors& in, Tensor& out) {
  const std::vector<int64_t> off = read_index(in[0]);
  check_offsets(off, out.shape()[0], api_);
  out.allocate();
  const int64_t segments = static_cast<int64_t>(off.size()) - 1;
  dispatch_index(out.dtype(), "OffsetsToIds", [&](auto tag) {
    using I = typename decltype(tag)::type;
    I* y = static_cast<I*>(out.raw_data());
    parallel_for(segments, out.numel() / std::max<int64_t>(segments, 1) + 1,
                 [&](int64_t begin, int64_t end) {
                   for (int64_t s = begin; s < end; ++s) {
                     std::fill(y + off[s], y + off[s + 1], static_cast<I>(s));
                   }
                 });
  });
}

void IdsToOffsets::eval_cpu(const Tensors& in, Tensor& out) {
  const SegmentPlan plan = plan_ids(read_index(in[0]), out.shape()[0] - 1, true, api_);
  out.allocate();
  dispatch_index(out.dtype(), "IdsToOffsets", [&](auto tag) {
    using I = typename decltype(tag)::type;
    I* y = static_cast<I*>(out.raw_data());
    for (size_t s = 0; s < plan.offsets.size(); ++s) y[s] = static_cast<I>(plan.offsets[s]);
  });
}

}  // namespace prims
}  // namespace basin
