// Shared pieces of the CUDA kernels: strided offset calculators built on the host and passed by
// value, launch helpers, and the per-device stream. C++17 (nvcc); no fmt here.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <cstdint>

#include "backends/cuda/cuda_check.h"
#include "core/tensor.h"

namespace basin::cuda {

inline constexpr int kMaxDims = 10;
inline constexpr int kBlock = 256;

/// The stream all of basin's work on a device goes to (the legacy default stream for now:
/// synchronisation with host copies is then implicit).
inline cudaStream_t stream() { return nullptr; }

/// Grid size for n threads of kBlock, capped for grid-stride loops.
inline unsigned grid_for(int64_t n, int block = kBlock) {
  const int64_t blocks = (n + block - 1) / block;
  return static_cast<unsigned>(blocks < 65535 * 32 ? (blocks > 0 ? blocks : 1) : 65535 * 32);
}

/// Maps a row-major linear index over a shape to the element offsets of N strided operands.
/// Dimensions contiguous in every operand are merged on the host, so most calls walk 1–3 dims.
template <int N>
struct OffsetCalc {
  int ndim = 0;
  int64_t sizes[kMaxDims];
  int64_t strides[N][kMaxDims];

  __host__ __device__ void offsets(int64_t linear, int64_t (&out)[N]) const {
    for (int k = 0; k < N; ++k) out[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t i = linear % sizes[d];
      linear /= sizes[d];
      for (int k = 0; k < N; ++k) out[k] += i * strides[k][d];
    }
  }
};

/// Builds an OffsetCalc for `shape` with one stride list per operand (a broadcast operand has 0
/// strides along its broadcast dimensions).
template <int N>
OffsetCalc<N> make_offset_calc(const Shape& shape, const std::array<Shape, N>& strides) {
  OffsetCalc<N> c;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = c.ndim > 0;
    for (int k = 0; k < N && merge; ++k) {
      merge = c.strides[k][c.ndim - 1] == strides[k][d] * shape[d];
    }
    if (merge) {
      c.sizes[c.ndim - 1] *= shape[d];
      for (int k = 0; k < N; ++k) c.strides[k][c.ndim - 1] = strides[k][d];
    } else {
      if (c.ndim == kMaxDims)
        fail("[cuda] tensors of more than {} dimensions are not supported", kMaxDims);
      c.sizes[c.ndim] = shape[d];
      for (int k = 0; k < N; ++k) c.strides[k][c.ndim] = strides[k][d];
      ++c.ndim;
    }
  }
  if (c.ndim == 0) {
    c.ndim = 1;
    c.sizes[0] = 1;
    for (int k = 0; k < N; ++k) c.strides[k][0] = 0;
  }
  return c;
}

/// Strides of a tensor viewed as broadcast to `out_shape` (0 along broadcast dimensions).
inline Shape broadcast_strides(const Tensor& t, const Shape& out_shape) {
  Shape out(out_shape.size(), 0);
  const size_t lead = out_shape.size() - t.shape().size();
  for (size_t i = 0; i < t.shape().size(); ++i)
    out[lead + i] = t.shape()[i] == 1 ? 0 : t.strides()[i];
  return out;
}

/// Checks the last kernel launch (configuration errors surface here, with file and line).
#define BASIN_CUDA_CHECK_LAUNCH() BASIN_CUDA_CHECK(cudaGetLastError())

}  // namespace basin::cuda
