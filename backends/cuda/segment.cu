// CUDA forward of the segment family: segments checked and planned on the host (as on the CPU),
// then one thread per (segment, feature) folding the segment's rows in row order.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "backends/cuda/common.cuh"
#include "backends/segment_plan.h"
#include "core/prims/segment.h"

namespace basin::prims {
namespace {
using cuda::grid_for;
using cuda::kBlock;
using cuda::make_offset_calc;
using cuda::OffsetCalc;
using cuda::stream;
using segment_plan::SegmentPlan;

// --- kernels -------------------------------------------------------------------------------------

/// a + v, accumulated in Acc (double for floating x, int64 for integers, as on the CPU).
template <class Acc, class T>
struct SumOp {
  __device__ Acc operator()(Acc a, T v) const { return a + static_cast<Acc>(v); }
};

/// The larger of a and v; for floating T a NaN wins and stays, as on the CPU.
template <class T>
struct MaxOp {
  __device__ T operator()(T a, T v) const {
    if constexpr (std::is_floating_point_v<T>) {
      return (v > a || v != v) ? v : a;
    } else {
      return v > a ? v : a;
    }
  }
};

/// out[s, f] = fold of combine over the rows of segment s (offsets[s] .. offsets[s+1] - 1, through
/// `order` when it is not null), starting from `init`. Thread t is (s, f) = (t / F, t % F): a warp
/// reads neighbouring features of one row, and every output element has one writer folding in
/// row order, so the result is deterministic and equal to the CPU's.
template <class T, class Acc, class Combine>
__global__ void segment_reduce_kernel(T* out, const T* x, const int64_t* offsets,
                                      const int64_t* order, OffsetCalc<1> features,
                                      int64_t row_stride, int64_t n_features, Acc init, int64_t n,
                                      Combine combine) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < n; t += step) {
    const int64_t s = t / n_features;
    int64_t f[1];
    features.offsets(t % n_features, f);
    Acc acc = init;
    for (int64_t k = offsets[s]; k < offsets[s + 1]; ++k) {
      const int64_t r = order ? order[k] : k;
      acc = combine(acc, x[r * row_stride + f[0]]);
    }
    out[t] = static_cast<T>(acc);
  }
}

/// ids[r] = the segment s with offsets[s] <= r < offsets[s+1] (the last such s when empty
/// segments share the boundary), by binary search over the S + 1 checked offsets.
template <class I>
__global__ void offsets_to_ids_kernel(I* ids, const int64_t* offsets, int64_t segments, int64_t n) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r < n; r += step) {
    int64_t lo = 0, hi = segments - 1;
    while (lo < hi) {
      const int64_t mid = (lo + hi + 1) / 2;
      if (offsets[mid] <= r) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    ids[r] = static_cast<I>(lo);
  }
}

// --- launchers -----------------------------------------------------------------------------------

/// A 1-D index tensor on the device, read to the host.
std::vector<int64_t> read_index(const Tensor& t) {
  return segment_plan::read_index(t.to(Device::cpu()));
}

/// Copies host int64s to a fresh device block on `device`. The block returns to the cache when
/// the last reference goes; later users are ordered after the kernels on the stream.
std::shared_ptr<Storage> upload(const std::vector<int64_t>& host, Device device) {
  std::shared_ptr<Storage> dev =
      allocate(std::max<size_t>(host.size(), 1) * sizeof(int64_t), device);
  if (!host.empty()) {
    BASIN_CUDA_CHECK(cudaMemcpyAsync(dev->data, host.data(), host.size() * sizeof(int64_t),
                                     cudaMemcpyHostToDevice, stream()));
  }
  return dev;
}

template <class T, class Acc, class Combine>
void reduce_segments(const Tensor& x, const SegmentPlan& plan, Tensor& out, Acc init,
                     Combine combine) {
  out.allocate();
  if (out.numel() == 0) return;
  BASIN_CUDA_CHECK(cudaSetDevice(out.device().index));
  const int64_t segments = static_cast<int64_t>(plan.offsets.size()) - 1;
  const int64_t n_features = out.numel() / segments;
  // One upload: the offsets, then the row order when the ids were unsorted.
  std::vector<int64_t> host = plan.offsets;
  host.insert(host.end(), plan.order.begin(), plan.order.end());
  const std::shared_ptr<Storage> dev = upload(host, out.device());
  const int64_t* offsets = static_cast<const int64_t*>(dev->data);
  const int64_t* order = plan.order.empty() ? nullptr : offsets + segments + 1;
  const Shape features(x.shape().begin() + 1, x.shape().end());
  const Shape strides(x.strides().begin() + 1, x.strides().end());
  const int64_t n = out.numel();
  segment_reduce_kernel<T, Acc, Combine><<<grid_for(n), kBlock, 0, stream()>>>(
      static_cast<T*>(out.raw_data()), static_cast<const T*>(x.raw_data()), offsets, order,
      make_offset_calc<1>(features, {strides}), x.strides()[0], n_features, init, n, combine);
  BASIN_CUDA_CHECK_LAUNCH();
}

SegmentPlan plan_of(const Tensor& seg, SegmentLayout layout, int64_t count, int64_t rows,
                    const char* api) {
  return segment_plan::make_plan(seg.to(Device::cpu()), layout, count, rows, api);
}

}  // namespace

void SegmentSum::eval_cuda(const Tensors& in, Tensor& out) {
  const SegmentPlan plan = plan_of(in[1], layout_, num_segments_, in[0].shape()[0], api_);
  dispatch_numeric(in[0].dtype(), "SegmentSum", [&](auto tag) {
    using T = typename decltype(tag)::type;
    // As in sum: floating sums accumulate in double, integer sums in int64.
    using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
    reduce_segments<T, Acc>(in[0], plan, out, Acc{0}, SumOp<Acc, T>{});
  });
}

void SegmentMax::eval_cuda(const Tensors& in, Tensor& out) {
  const SegmentPlan plan = plan_of(in[1], layout_, num_segments_, in[0].shape()[0], api_);
  dispatch_numeric(in[0].dtype(), "SegmentMax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T init = std::numeric_limits<T>::lowest();
    if constexpr (std::is_floating_point_v<T>) init = -std::numeric_limits<T>::infinity();
    reduce_segments<T, T>(in[0], plan, out, init, MaxOp<T>{});
  });
}

void OffsetsToIds::eval_cuda(const Tensors& in, Tensor& out) {
  const std::vector<int64_t> off = read_index(in[0]);
  segment_plan::check_offsets(off, out.shape()[0], api_);
  out.allocate();
  const int64_t n = out.numel();
  if (n == 0) return;
  BASIN_CUDA_CHECK(cudaSetDevice(out.device().index));
  const std::shared_ptr<Storage> dev = upload(off, out.device());
  dispatch_index(out.dtype(), "OffsetsToIds", [&](auto tag) {
    using I = typename decltype(tag)::type;
    offsets_to_ids_kernel<I><<<grid_for(n), kBlock, 0, stream()>>>(
        static_cast<I*>(out.raw_data()), static_cast<const int64_t*>(dev->data),
        static_cast<int64_t>(off.size()) - 1, n);
    BASIN_CUDA_CHECK_LAUNCH();
  });
}

void IdsToOffsets::eval_cuda(const Tensors& in, Tensor& out) {
  // Checking that the ids are sorted and in range needs them all on the host anyway; counting
  // them there too leaves S + 1 numbers to send back.
  const SegmentPlan plan =
      segment_plan::plan_ids(read_index(in[0]), out.shape()[0] - 1, true, api_);
  out.allocate();
  BASIN_CUDA_CHECK(cudaSetDevice(out.device().index));
  dispatch_index(out.dtype(), "IdsToOffsets", [&](auto tag) {
    using I = typename decltype(tag)::type;
    const std::vector<I> host(plan.offsets.begin(), plan.offsets.end());
    // Synchronous: `host` goes out of scope right after.
    BASIN_CUDA_CHECK(
        cudaMemcpy(out.raw_data(), host.data(), host.size() * sizeof(I), cudaMemcpyHostToDevice));
  });
}

}  // namespace basin::prims
