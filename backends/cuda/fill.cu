// Filling device memory with one value (zeros, ones, full and the scalars of tensor-scalar ops),
// queued on basin's stream: no host copy, so the host never waits for the queued work.
#include <cmath>

#include "backends/cuda/common.cuh"
#include "core/allocator.h"

namespace basin {
namespace {

template <class T>
__global__ void fill_kernel(T* dst, T value, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    dst[i] = value;
  }
}

}  // namespace

namespace cuda_backend {

void fill(void* dst, Dtype dtype, double value, int64_t n, int device) {
  if (n == 0) return;
  BASIN_CUDA_CHECK(cudaSetDevice(device));
  dispatch_all(dtype, "fill", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T v = static_cast<T>(value);
    if (value == 0.0 && !std::signbit(value)) {  // all bits zero (not −0.0)
      BASIN_CUDA_CHECK(cudaMemsetAsync(dst, 0, static_cast<size_t>(n) * sizeof(T), cuda::stream()));
      return;
    }
    fill_kernel<T>
        <<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(static_cast<T*>(dst), v, n);
    BASIN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace cuda_backend
}  // namespace basin
