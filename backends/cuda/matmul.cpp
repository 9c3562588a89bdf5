// CUDA matmul: batched GEMM on strided operands through cuBLAS, reading them in place.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <vector>

#include "backends/cuda/blas.h"
#include "backends/cuda/common.cuh"
#include "backends/gemm_layout.h"
#include "core/counters.h"
#include "core/prims/matmul.h"

namespace basin::prims {
namespace {
using gemm_layout::batch_offsets;
using gemm_layout::Operand;
using gemm_layout::prepare;

using cuda::blas_handle;
using cuda::GemmTypes;

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
  count_matmul_flops(2 * m * n * k * count);

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
  // Evenly spaced along the last batch dimension and along the others (the (batch, head)
  // blocks of a (B, N, H, Y) tensor viewed as (B, H, N, Y)): one strided-batched call per index
  // of the shorter of the two levels, which needs no pointer table on the device.
  if (nb >= 2 && count <= INT_MAX) {
    const int64_t inner = batch.back(), outer = count / inner;
    // Entries first, first + step, ... (len of them) evenly spaced in both operands.
    auto even_run = [&](int64_t first, int64_t len, int64_t step) {
      if (len < 2) return true;
      const int64_t da = oa[first + step] - oa[first], db = ob[first + step] - ob[first];
      for (int64_t j = 0; j < len; ++j) {
        const int64_t i = first + j * step;
        if (oa[i] != oa[first] + j * da || ob[i] != ob[first] + j * db) return false;
      }
      return true;
    };
    auto run = [&](int64_t first, int64_t len, int64_t step) {
      const int64_t da = len > 1 ? oa[first + step] - oa[first] : 0;
      const int64_t db = len > 1 ? ob[first + step] - ob[first] : 0;
      BASIN_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
          handle, op_of(b), op_of(a), in, static_cast<int>(m), ik, &one, pb + ob[first], type, ldb,
          db, pa + oa[first], type, lda, da, &zero, c + first * m * n, type, in, step * m * n,
          static_cast<int>(len), compute, CUBLAS_GEMM_DEFAULT));
    };
    bool ok_inner = true, ok_outer = true;
    for (int64_t h = 0; ok_inner && h < inner; ++h) ok_inner = even_run(h, outer, inner);
    for (int64_t o = 0; ok_outer && o < outer; ++o) ok_outer = even_run(o * inner, inner, 1);
    const bool by_inner = ok_inner && (!ok_outer || inner <= outer);
    if (by_inner || ok_outer) {
      const int64_t calls = by_inner ? inner : outer;
      if (calls <= 64) {
        for (int64_t i = 0; i < calls; ++i) {
          if (by_inner) {
            run(i, outer, inner);
          } else {
            run(i * inner, inner, 1);
          }
        }
        return;
      }
    }
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
