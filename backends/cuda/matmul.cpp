// CUDA matmul: batched GEMM on strided operands through cuBLAS, reading them in place.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <map>
#include <memory>
#include <mutex>
#include <type_traits>
#include <vector>

#include "backends/cuda/common.cuh"
#include "backends/gemm_layout.h"
#include "core/cuda_options.h"
#include "core/prims/matmul.h"

namespace basin::prims {
namespace {
using gemm_layout::batch_offsets;
using gemm_layout::Operand;
using gemm_layout::prepare;

// --- cuBLAS handles ------------------------------------------------------------------------------

/// cuBLAS's recommended workspace on Hopper; without one it allocates per call, or picks
/// kernels that need none.
constexpr size_t kWorkspaceBytes = size_t{32} << 20;

/// The cuBLAS handle of one device with its workspace, bound to basin's stream. Every thread
/// shares it: cuBLAS allows that, and since all of basin's work on a device goes to one stream,
/// two GEMMs never use the workspace at the same time.
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
  BASIN_CUBLAS_CHECK(cublasSetStream(handle, cuda::stream()));
  // Handles and workspaces live until the process exits: destroying them from a static
  // destructor could run after the CUDA runtime has shut down.
  handles.emplace(device, handle);
  return handle;
}

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

cublasOperation_t op_of(const Operand& x) { return x.trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

// --- launcher ------------------------------------------------------------------------------------
// cuBLAS is column-major, basin row-major: the row-major C = A @ B is, in the same memory, the
// column-major C^T = B^T @ A^T. So every call passes B before A with the dimensions (n, m, k),
// and an operand stored transposed (Operand::trans) is passed with CUBLAS_OP_T, no copy.

template <class T>
void matmul_cuda(const Tensor& x, const Tensor& y, Tensor& out) {
  out.allocate();
  const int nb = out.ndim() - 2;
  const Shape batch(out.shape().begin(), out.shape().begin() + nb);
  const int64_t m = out.shape()[nb], n = out.shape()[nb + 1], k = x.shape()[nb + 1];
  if (out.numel() == 0) return;
  BASIN_CUDA_CHECK(cudaSetDevice(out.device().index));
  T* c = static_cast<T*>(out.raw_data());
  if (k == 0) {
    BASIN_CUDA_CHECK(cudaMemsetAsync(c, 0, out.nbytes(), cuda::stream()));
    return;
  }
  if (m > INT_MAX || n > INT_MAX || k > INT_MAX) {
    fail("[matmul] matrix dimensions above 2^31 - 1 are not supported: ({}, {}) @ ({}, {})", m, k,
         k, n);
  }
  const Operand a = prepare(x, nb), b = prepare(y, nb);
  const T* pa = static_cast<const T*>(a.data.raw_data());
  const T* pb = static_cast<const T*>(b.data.raw_data());
  const std::vector<int64_t> oa = batch_offsets(batch, a.batch_strides);
  const std::vector<int64_t> ob = batch_offsets(batch, b.batch_strides);
  const int64_t count = static_cast<int64_t>(oa.size());

  cublasHandle_t handle = blas_handle(out.device().index);
  const cudaDataType_t type = GemmTypes<T>::data;
  const cublasComputeType_t compute = GemmTypes<T>::compute();
  const T one = 1, zero = 0;
  const int in = static_cast<int>(n), ik = static_cast<int>(k);
  const int lda = static_cast<int>(a.ld), ldb = static_cast<int>(b.ld);

  // Entries i0 .. i0 + batches - 1 of the batch whose operands are `stride_a` and `stride_b`
  // elements apart (0 for a shared operand), with `rows` rows of C each.
  auto strided = [&](int64_t i0, int64_t batches, int64_t rows, int64_t stride_a,
                     int64_t stride_b) {
    BASIN_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        handle, op_of(b), op_of(a), in, static_cast<int>(rows), ik, &one, pb + ob[i0], type, ldb,
        stride_b, pa + oa[i0], type, lda, stride_a, &zero, c + i0 * m * n, type, in, m * n,
        static_cast<int>(batches), compute, CUBLAS_GEMM_DEFAULT));
  };

  // A right operand shared by every batch entry and a left operand whose entries follow each
  // other row by row form one tall product.
  if (count == 1 || gemm_layout::folds_into_one(a, oa, ob, m)) {
    strided(0, 1, m * count, 0, 0);
    return;
  }
  // Entries evenly spaced in both operands (broadcast ones 0 apart) are one strided-batched call;
  // cuBLAS counts the batch in an int, hence the chunks.
  const int64_t stride_a = oa[1] - oa[0], stride_b = ob[1] - ob[0];
  bool even = true;
  for (int64_t i = 0; even && i < count; ++i)
    even = oa[i] == oa[0] + i * stride_a && ob[i] == ob[0] + i * stride_b;
  if (even) {
    for (int64_t i0 = 0; i0 < count; i0 += INT_MAX)
      strided(i0, std::min<int64_t>(count - i0, INT_MAX), m, stride_a, stride_b);
    return;
  }
  // Any other spacing (a broadcast dimension between two that are not, strides that do not
  // nest): one batched call on arrays of pointers, which cuBLAS reads from device memory.
  if (count > INT_MAX) fail("[matmul] batches above 2^31 - 1 entries are not supported");
  std::vector<const void*> pointers(static_cast<size_t>(3 * count));
  for (int64_t i = 0; i < count; ++i) {
    pointers[i] = pb + ob[i];
    pointers[count + i] = pa + oa[i];
    pointers[2 * count + i] = c + i * m * n;
  }
  const size_t bytes = pointers.size() * sizeof(void*);
  // Kept until the call returns; a later user of the block is ordered after the GEMM on the
  // stream, so releasing it before the GEMM finishes is safe.
  const std::shared_ptr<Storage> table = allocate(bytes, out.device());
  BASIN_CUDA_CHECK(
      cudaMemcpyAsync(table->data, pointers.data(), bytes, cudaMemcpyHostToDevice, cuda::stream()));
  // From pageable memory the copy has read `pointers` by the time it returns, so the vector may
  // go out of scope before the GEMM runs.
  const void* const* dev = static_cast<const void* const*>(table->data);
  BASIN_CUBLAS_CHECK(cublasGemmBatchedEx(handle, op_of(b), op_of(a), in, static_cast<int>(m), ik,
                                         &one, dev, type, ldb, dev + count, type, lda, &zero,
                                         const_cast<void* const*>(dev + 2 * count), type, in,
                                         static_cast<int>(count), compute, CUBLAS_GEMM_DEFAULT));
}

}  // namespace

void Matmul::eval_cuda(const Tensors& in, Tensor& out) {
  dispatch_float(out.dtype(), "matmul", [&](auto tag) {
    using T = typename decltype(tag)::type;
    matmul_cuda<T>(in[0], in[1], out);
  });
}

}  // namespace basin::prims
