// CUDA forward of Concat, Pad and Flip: one strided-copy kernel (and a fill) over OffsetCalc.
#include <cstdint>

#include "backends/cuda/common.cuh"
#include "backends/cuda/copy.h"
#include "core/prims/movement.h"

namespace basin {
namespace cuda {
namespace {

// --- kernels -------------------------------------------------------------------------------------

/// dst[offset 0] = src[offset 1] for each of the n positions of `calc`. U is an unsigned word of
/// the element's size: a copy needs no knowledge of the dtype.
template <class U>
__global__ void strided_copy_kernel(U* dst, const U* src, OffsetCalc<2> calc, int64_t n) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t o[2];
    calc.offsets(i, o);
    dst[o[0]] = src[o[1]];
  }
}

template <class T>
__global__ void fill_kernel(T* dst, T value, int64_t n) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step)
    dst[i] = value;
}

// --- launchers -----------------------------------------------------------------------------------

template <class U>
void launch_copy(void* dst, const void* src, const OffsetCalc<2>& calc, int64_t n) {
  strided_copy_kernel<U><<<grid_for(n), kBlock, 0, stream()>>>(static_cast<U*>(dst),
                                                               static_cast<const U*>(src), calc, n);
  BASIN_CUDA_CHECK_LAUNCH();
}

}  // namespace

void copy_strided(void* dst, const Shape& dst_strides, const void* src, const Shape& src_strides,
                  const Shape& shape, size_t itemsize) {
  const int64_t n = numel(shape);
  if (n == 0) return;
  const OffsetCalc<2> calc = make_offset_calc<2>(shape, {dst_strides, src_strides});
  // Regions dense in both operands merge into one dimension of unit strides: a plain memcpy.
  if (calc.ndim == 1 && calc.strides[0][0] == 1 && calc.strides[1][0] == 1) {
    BASIN_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * itemsize,
                                     cudaMemcpyDeviceToDevice, stream()));
    return;
  }
  switch (itemsize) {
    case 1:
      return launch_copy<uint8_t>(dst, src, calc, n);
    case 2:
      return launch_copy<uint16_t>(dst, src, calc, n);
    case 4:
      return launch_copy<uint32_t>(dst, src, calc, n);
    case 8:
      return launch_copy<uint64_t>(dst, src, calc, n);
    default:
      fail("[cuda] no strided copy for elements of {} bytes", itemsize);
  }
}

void fill(void* dst, Dtype dtype, int64_t n, double value) {
  if (n == 0) return;
  dispatch_all(dtype, "fill", [&](auto tag) {
    using T = typename decltype(tag)::type;
    fill_kernel<T>
        <<<grid_for(n), kBlock, 0, stream()>>>(static_cast<T*>(dst), static_cast<T>(value), n);
    BASIN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace cuda

namespace prims {

void Concat::eval_cuda(const Tensors& in, Tensor& out) {
  out.allocate();
  if (out.numel() == 0) return;
  BASIN_CUDA_CHECK(cudaSetDevice(out.device().index));
  const size_t size = itemsize(out.dtype());
  char* y = static_cast<char*>(out.raw_data());
  int64_t start = 0;
  for (const Tensor& x : in) {
    // Each input lands at its offset along the axis, read in its own layout.
    const int64_t at = start * out.strides()[axis_] * static_cast<int64_t>(size);
    cuda::copy_strided(y + at, out.strides(), x.raw_data(), x.strides(), x.shape(), size);
    start += x.shape()[axis_];
  }
}

void Pad::eval_cuda(const Tensors& in, Tensor& out) {
  out.allocate();
  if (out.numel() == 0) return;
  BASIN_CUDA_CHECK(cudaSetDevice(out.device().index));
  cuda::fill(out.raw_data(), out.dtype(), out.numel(), value_);
  const Tensor& x = in[0];
  // The input lands at low[d] along each dimension, every interior[d] + 1 elements.
  int64_t start = 0;
  Shape strides(out.ndim());
  for (int d = 0; d < out.ndim(); ++d) {
    start += low_[d] * out.strides()[d];
    strides[d] = out.strides()[d] * (interior_[d] + 1);
  }
  const size_t size = itemsize(out.dtype());
  cuda::copy_strided(static_cast<char*>(out.raw_data()) + start * static_cast<int64_t>(size),
                     strides, x.raw_data(), x.strides(), x.shape(), size);
}

void Flip::eval_cuda(const Tensors& in, Tensor& out) {
  out.allocate();
  if (out.numel() == 0) return;
  BASIN_CUDA_CHECK(cudaSetDevice(out.device().index));
  // Read the input from its last element backwards along the flipped axes: negative strides.
  const Tensor& x = in[0];
  Shape strides = x.strides();
  int64_t start = 0;
  for (int a : axes_) {
    start += (x.shape()[a] - 1) * strides[a];
    strides[a] = -strides[a];
  }
  const size_t size = itemsize(out.dtype());
  cuda::copy_strided(out.raw_data(), out.strides(),
                     static_cast<const char*>(x.raw_data()) + start * static_cast<int64_t>(size),
                     strides, x.shape(), size);
}

}  // namespace prims
}  // namespace basin
