// CUDA forward of the softmax family: one kernel, a group of threads per slice along the axis,
// three passes per slice (maximum, sum of exponentials in double, write) as on the CPU.
#include <cuda/std/limits>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "backends/cuda/common.cuh"
#include "backends/cuda/group_reduce.cuh"
#include "core/prims/softmax.h"

namespace basin::prims {
namespace {
using cuda::GroupLayout;
using cuda::kBlock;
using cuda::OffsetCalc;

// --- kernel -------------------------------------------------------------------------------------

/// Running maximum in which a NaN wins, so that it propagates to the whole slice.
struct MaxCombine {
  template <class T>
  __device__ T combine(T a, T b) const {
    return b > a || b != b ? b : a;
  }
};

struct SumCombine {
  __device__ double combine(double a, double b) const { return a + b; }
};

/// Slice s (a group of the block) of n elements: x at kept offset + j * xa, y likewise with ya.
/// A slice whose maximum is -inf (all -inf) is shifted by 0, so its exponentials are 0 rather
/// than exp(-inf + inf) = NaN; it gives 0 (softmax) or -inf (log-softmax).
template <class T, bool Log>
__global__ void softmax_kernel(const T* x, T* y, OffsetCalc<2> kept, int64_t n_slices, int64_t n,
                               int64_t xa, int64_t ya, GroupLayout g) {
  const T ninf = -::cuda::std::numeric_limits<T>::infinity();
  const int64_t s = static_cast<int64_t>(blockIdx.x) * g.groups + g.group();
  const bool active = s < n_slices;  // inactive threads still take part in the trees
  int64_t off[2] = {0, 0};
  if (active) kept.offsets(s, off);
  const T* xs = x + off[0];
  T* ys = y + off[1];
  const int lane = g.lane();

  T m = ninf;
  if (active) {
    for (int64_t j = lane; j < n; j += g.lanes) m = MaxCombine{}.combine(m, xs[j * xa]);
  }
  m = cuda::group_reduce(m, cuda::group_scratch<T>(), g, MaxCombine{});
  const bool empty = m == ninf;
  const T shift = empty ? T(0) : m;

  double sum = 0.0;
  if (active) {
    for (int64_t j = lane; j < n; j += g.lanes) {
      sum += static_cast<double>(std::exp(static_cast<T>(xs[j * xa] - shift)));
    }
  }
  sum = cuda::group_reduce(sum, cuda::group_scratch<double>(), g, SumCombine{});
  if (!active) return;

  if constexpr (Log) {
    // (x - m) - log(s) rather than x - (m + log(s)), which rounds at the scale of m.
    const T log_s = empty ? T(0) : static_cast<T>(std::log(sum));
    for (int64_t j = lane; j < n; j += g.lanes) ys[j * ya] = (xs[j * xa] - shift) - log_s;
  } else {
    const T inv = empty ? T(0) : static_cast<T>(1.0 / sum);
    for (int64_t j = lane; j < n; j += g.lanes) {
      ys[j * ya] = std::exp(static_cast<T>(xs[j * xa] - shift)) * inv;
    }
  }
}

// --- launcher -----------------------------------------------------------------------------------

/// Softmax (or log-softmax) of x along `axis` (normalised; x has at least one dimension).
template <class T, bool Log>
void softmax(const Tensor& x, Tensor& out, int axis) {
  out.allocate();
  if (out.numel() == 0) return;
  BASIN_CUDA_CHECK(cudaSetDevice(out.device().index));
  // The slices: every dimension but the axis, with x's and out's strides.
  Shape kept_shape;
  std::array<Shape, 2> kept_strides;
  for (int d = 0; d < x.ndim(); ++d) {
    if (d == axis) continue;
    kept_shape.push_back(x.shape()[d]);
    kept_strides[0].push_back(x.strides()[d]);
    kept_strides[1].push_back(out.strides()[d]);
  }
  const int64_t n = x.shape()[axis], xa = x.strides()[axis], ya = out.strides()[axis];
  const int64_t n_slices = out.numel() / n;
  const OffsetCalc<2> kept = cuda::make_offset_calc<2>(kept_shape, kept_strides);
  const int64_t kept_step = std::abs(kept.strides[0][kept.ndim - 1]);
  const GroupLayout g = cuda::choose_layout(n_slices, n, n > 1 && kept_step < std::abs(xa));
  const int64_t blocks = (n_slices + g.groups - 1) / g.groups;
  softmax_kernel<T, Log><<<static_cast<unsigned>(blocks), kBlock, 0, cuda::stream()>>>(
      static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), kept, n_slices, n, xa,
      ya, g);
  BASIN_CUDA_CHECK_LAUNCH();
}

}  // namespace

void Softmax::eval_cuda(const Tensors& in, Tensor& out) {
  dispatch_float(in[0].dtype(), "Softmax", [&](auto tag) {
    softmax<typename decltype(tag)::type, false>(in[0], out, axis_);
  });
}

void LogSoftmax::eval_cuda(const Tensors& in, Tensor& out) {
  dispatch_float(in[0].dtype(), "LogSoftmax",
                 [&](auto tag) { softmax<typename decltype(tag)::type, true>(in[0], out, axis_); });
}

}  // namespace basin::prims
