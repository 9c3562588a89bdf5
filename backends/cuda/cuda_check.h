// Error checks for CUDA runtime and cuBLAS calls: a failure throws basin::Error naming the call,
// the file and the line.
#pragma once

#include <cuda_runtime.h>

#include <string>

namespace basin::cuda {

[[noreturn]] void raise_cuda_error(cudaError_t err, const char* call, const char* file, int line);

}  // namespace basin::cuda

#define BASIN_CUDA_CHECK(call)                                                   \
  do {                                                                           \
    cudaError_t basin_err_ = (call);                                             \
    if (basin_err_ != cudaSuccess) {                                             \
      ::basin::cuda::raise_cuda_error(basin_err_, #call, __FILE__, __LINE__);    \
    }                                                                            \
  } while (0)
