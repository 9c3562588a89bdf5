// Error checks for CUDA runtime and cuBLAS calls: a failure throws basin::Error naming the call,
// the file and the line.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

namespace basin::cuda {

/// Throws basin::Error for a failed CUDA runtime call (used by BASIN_CUDA_CHECK).
[[noreturn]] void raise_cuda_error(cudaError_t err, const char* call, const char* file, int line);
/// Throws basin::Error for a failed cuBLAS call (used by BASIN_CUBLAS_CHECK).
[[noreturn]] void raise_cublas_error(cublasStatus_t status, const char* call, const char* file,
                                     int line);

}  // namespace basin::cuda

#define BASIN_CUDA_CHECK(call)                                                \
  do {                                                                        \
    cudaError_t basin_err_ = (call);                                          \
    if (basin_err_ != cudaSuccess) {                                          \
      ::basin::cuda::raise_cuda_error(basin_err_, #call, __FILE__, __LINE__); \
    }                                                                         \
  } while (0)

#define BASIN_CUBLAS_CHECK(call)                                                   \
  do {                                                                             \
    cublasStatus_t basin_status_ = (call);                                         \
    if (basin_status_ != CUBLAS_STATUS_SUCCESS) {                                  \
      ::basin::cuda::raise_cublas_error(basin_status_, #call, __FILE__, __LINE__); \
    }                                                                              \
  } while (0)
