// CUDA kernels of layer_norm and its input gradient: a group of threads per row, the row's sums
// in double and the same arithmetic as the CPU's fused kernels.
#include <cmath>
#include <cstdint>

#include "backends/cuda/common.cuh"
#include "backends/cuda/group_reduce.cuh"
#include "backends/layer_norm_stats.h"
#include "core/prims/norm.h"

namespace basin::prims {
namespace {
using cuda::GroupLayout;
using cuda::kBlock;

// --- kernels ------------------------------------------------------------------------------------

struct SumCombine {
  __device__ double combine(double a, double b) const { return a + b; }
};

/// Two passes over the row, as the composite: the sum, then the centred sum of squares (no
/// cancellation). Every thread of the block must call it; inactive groups pass d = 0.
template <class T>
__device__ RowStats<T> row_stats(const T* x, int64_t d, int64_t n, double eps,
                                 const GroupLayout& g) {
  double* scratch = cuda::group_scratch<double>();
  double s = 0.0;
  for (int64_t j = g.lane(); j < n; j += g.lanes) s += static_cast<double>(x[j]);
  const double mean = cuda::group_reduce(s, scratch, g, SumCombine{}) / static_cast<double>(d);
  double q = 0.0;
  for (int64_t j = g.lane(); j < n; j += g.lanes) {
    const double c = static_cast<double>(x[j]) - mean;
    q += c * c;
  }
  q = cuda::group_reduce(q, scratch, g, SumCombine{});
  return RowStats<T>::from_sums(mean, q, d, eps);
}

/// y = normalised(x) * w + b per row of d elements (w, b optional: null when absent).
template <class T>
__global__ void layer_norm_kernel(const T* x, const T* w, const T* b, T* y, int64_t rows, int64_t d,
                                  double eps, GroupLayout g) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * g.groups + g.group();
  const bool active = row < rows;  // inactive groups still take part in the trees
  const T* xr = x + (active ? row * d : 0);
  const RowStats<T> st = row_stats(xr, d, active ? d : 0, eps, g);
  if (!active) return;
  T* yr = y + row * d;
  for (int64_t j = g.lane(); j < d; j += g.lanes) {
    T v = st.normalised(xr[j]);
    if (w) v *= w[j];
    if (b) v += b[j];
    yr[j] = v;
  }
}

/// The cotangent of x: r * (h - mean(h) - x̂ * mean(h * x̂)) per row, h = g * w (w optional).
template <class T>
__global__ void layer_norm_grad_kernel(const T* x, const T* w, const T* gy, T* dx, int64_t rows,
                                       int64_t d, double eps, GroupLayout g) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * g.groups + g.group();
  const bool active = row < rows;
  const int64_t n = active ? d : 0;
  const T* xr = x + (active ? row * d : 0);
  const T* gr = gy + (active ? row * d : 0);
  const RowStats<T> st = row_stats(xr, d, n, eps, g);
  double sh = 0.0, shx = 0.0;  // sums of h = g * w and of h * x̂
  for (int64_t j = g.lane(); j < n; j += g.lanes) {
    double h = static_cast<double>(gr[j]);
    if (w) h *= static_cast<double>(w[j]);
    sh += h;
    shx += h * (static_cast<double>(xr[j]) - st.mean) * st.rstd;
  }
  double* scratch = cuda::group_scratch<double>();
  sh = cuda::group_reduce(sh, scratch, g, SumCombine{});
  shx = cuda::group_reduce(shx, scratch, g, SumCombine{});
  if (!active) return;
  const T mean_h = static_cast<T>(sh / static_cast<double>(d));
  const T mean_hx = static_cast<T>(shx / static_cast<double>(d));
  T* out = dx + row * d;
  for (int64_t j = g.lane(); j < d; j += g.lanes) {
    T h = gr[j];
    if (w) h *= w[j];
    out[j] = st.r * (h - mean_h - st.normalised(xr[j]) * mean_hx);
  }
}

// --- launchers ----------------------------------------------------------------------------------

/// One group per row: lanes up to a block for long rows, several rows per block for short ones.
/// Rows up to 1024 elements get at most a warp each (8 rows per block for the ET's D = 128): a
/// shorter reduction tree, and 4 times the blocks of lanes = 128.
GroupLayout row_layout(int64_t d) {
  GroupLayout g = cuda::choose_layout(1, d, false);
  if (d <= 1024 && g.lanes > 32) {
    g.lanes = 32;
    g.groups = cuda::kBlock / g.lanes;
  }
  return g;
}

unsigned blocks_for(int64_t rows, const GroupLayout& g) {
  return static_cast<unsigned>((rows + g.groups - 1) / g.groups);
}

}  // namespace

void LayerNorm::eval_cuda(const Tensors& in, Tensor& out) {
  out.allocate();
  if (out.numel() == 0) return;
  BASIN_CUDA_CHECK(cudaSetDevice(out.device().index));
  const Tensor x = in[0].contiguous();
  const Tensor w = has_weight_ ? in[1].contiguous() : Tensor();
  const Tensor b = has_bias_ ? in[has_weight_ ? 2 : 1].contiguous() : Tensor();
  const int64_t d = x.shape(-1), rows = x.numel() / d;
  const GroupLayout g = row_layout(d);
  dispatch_float(x.dtype(), "LayerNorm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* wp = w.defined() ? static_cast<const T*>(w.raw_data()) : nullptr;
    const T* bp = b.defined() ? static_cast<const T*>(b.raw_data()) : nullptr;
    layer_norm_kernel<<<blocks_for(rows, g), kBlock, 0, cuda::stream()>>>(
        static_cast<const T*>(x.raw_data()), wp, bp, static_cast<T*>(out.raw_data()), rows, d, eps_,
        g);
    BASIN_CUDA_CHECK_LAUNCH();
  });
}

void LayerNormGradInput::eval_cuda(const Tensors& in, Tensor& out) {
  out.allocate();
  if (out.numel() == 0) return;
  BASIN_CUDA_CHECK(cudaSetDevice(out.device().index));
  const Tensor x = in[0].contiguous();
  const Tensor w = has_weight_ ? in[1].contiguous() : Tensor();
  const Tensor gy = in[has_weight_ ? 2 : 1].contiguous();
  const int64_t d = x.shape(-1), rows = x.numel() / d;
  const GroupLayout g = row_layout(d);
  dispatch_float(x.dtype(), "LayerNormGradInput", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* wp = w.defined() ? static_cast<const T*>(w.raw_data()) : nullptr;
    layer_norm_grad_kernel<<<blocks_for(rows, g), kBlock, 0, cuda::stream()>>>(
        static_cast<const T*>(x.raw_data()), wp, static_cast<const T*>(gy.raw_data()),
        static_cast<T*>(out.raw_data()), rows, d, eps_, g);
    BASIN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace basin::prims
