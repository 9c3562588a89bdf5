// cuBLAS handles (one per device) and the row-major GEMM helper of backends/cuda/blas.h.
#include "backends/cuda/blas.h"

#include <climits>
#include <map>
#include <mutex>

#include "backends/cuda/common.cuh"
#include "core/counters.h"

namespace basin::cuda {
namespace {

/// cuBLAS's recommended workspace on Hopper; without one it allocates per call, or picks
/// kernels that need none.
constexpr size_t kWorkspaceBytes = size_t{32} << 20;

}  // namespace

cublasHandle_t blas_handle(int device) {
  static std::mutex mutex;
  static std::map<int, cublasHandle_t> handles;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = handles.find(device);
  if (it != handles.end()) return it->second;
  cublasHandle_t handle = nullptr;
  BASIN_CUBLAS_CHECK(cublasCreate(&handle));
  void* workspace = nullptr;
  BASIN_CUDA_CHECK(cudaMalloc(&workspace, kWorkspaceBytes));
  BASIN_CUBLAS_CHECK(cublasSetWorkspace(handle, workspace, kWorkspaceBytes));
  BASIN_CUBLAS_CHECK(cublasSetStream(handle, stream()));
  // Handles and workspaces live until the process exits: destroying them from a static
  // destructor could run after the CUDA runtime has shut down.
  handles.emplace(device, handle);
  return handle;
}

// cuBLAS is column-major: the row-major C = op(A) op(B) is, in the same memory, the column-major
// Cᵀ = op(B)ᵀ op(A)ᵀ, so B goes first with the dimensions (n, m, k).
template <class T>
void gemm(int device, bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (m > INT_MAX || n > INT_MAX || k > INT_MAX || lda > INT_MAX || ldb > INT_MAX ||
      ldc > INT_MAX) {
    fail("[cuda gemm] dimensions above 2^31 - 1 are not supported: ({}, {}) @ ({}, {})", m, k, k,
         n);
  }
  count_matmul_flops(2 * m * n * k);
  BASIN_CUBLAS_CHECK(cublasGemmEx(
      blas_handle(device), tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
      static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &alpha, b, GemmTypes<T>::data,
      static_cast<int>(ldb), a, GemmTypes<T>::data, static_cast<int>(lda), &beta, c,
      GemmTypes<T>::data, static_cast<int>(ldc), GemmTypes<T>::compute(), CUBLAS_GEMM_DEFAULT));
}

template void gemm<float>(int, bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t);
template void gemm<double>(int, bool, bool, int64_t, int64_t, int64_t, double, const double*,
                           int64_t, const double*, int64_t, double, double*, int64_t);

}  // namespace basin::cuda
