// cuBLAS for basin's kernels: one handle per device bound to basin's stream, and row-major GEMM
// helpers for kernels that chain products with their own passes (the energy kernels).
#pragma once

#include <cublas_v2.h>

#include <cstdint>
#include <type_traits>

#include "core/cuda_options.h"

namespace basin::cuda {

/// The cuBLAS handle of `device` with its workspace, bound to basin's stream. Every thread shares
/// it: cuBLAS allows that, and since all of basin's work on a device goes to one stream, two
/// GEMMs never use the workspace at the same time.
cublasHandle_t blas_handle(int device);

/// Element type and compute type of a GEMM on T. float32 uses TF32 tensor cores only when the
/// user opted in; otherwise cuBLAS keeps full float32 products, matching the CPU.
template <class T>
struct GemmTypes {
  static constexpr cudaDataType_t data = std::is_same_v<T, float> ? CUDA_R_32F : CUDA_R_64F;
  static cublasComputeType_t compute() {
    if constexpr (std::is_same_v<T, float>) {
      return cuda_allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    } else {
      return CUBLAS_COMPUTE_64F;
    }
  }
};

/// Row-major C (m × n) = alpha op(A) op(B) + beta C on `device`, with op(A) (m × k) and op(B)
/// (k × n), leading dimensions as stored. Counts its FLOPs like the CPU kernels do.
template <class T>
void gemm(int device, bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

}  // namespace basin::cuda
