// How a batched matmul's strided operands map onto BLAS calls, shared by the CPU and CUDA
// backends: which matrices BLAS reads in place (row-major or transposed) and where each batch
// entry starts.
#pragma once

#include <algorithm>
#include <climits>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace basin::gemm_layout {

/// One operand as BLAS reads it: the tensor read (the input itself or a packed copy), whether
/// its matrices are stored transposed, their leading dimension, and its strides along the
/// output's batch dimensions (0 where broadcast).
struct Operand {
  Tensor data;
  bool trans = false;
  int64_t ld = 1;
  Shape batch_strides;
};

/// Whether BLAS can read a rows x cols matrix with element strides (s0, s1) in place: row-major
/// (trans false) or the transpose of a row-major matrix (trans true). Sets the leading dimension.
inline bool blas_layout(int64_t rows, int64_t cols, int64_t s0, int64_t s1, bool& trans,
                        int64_t& ld) {
  if ((cols == 1 || s1 == 1) && (rows == 1 || s0 >= std::max<int64_t>(cols, 1))) {
    trans = false;
    ld = rows == 1 ? std::max<int64_t>(cols, 1) : s0;
  } else if ((rows == 1 || s0 == 1) && (cols == 1 || s1 >= std::max<int64_t>(rows, 1))) {
    trans = true;
    ld = cols == 1 ? std::max<int64_t>(rows, 1) : s1;
  } else {
    return false;
  }
  return ld <= INT_MAX;
}

/// Reads `x` (batch..., rows, cols) in place when BLAS allows, otherwise packs its distinct
/// matrices (broadcast batch dimensions stay size 1) into a contiguous copy on x's device.
inline Operand prepare(const Tensor& x, int nb) {
  const Shape& st = x.strides();
  const int64_t rows = x.shape()[nb], cols = x.shape()[nb + 1];
  Operand op;
  op.batch_strides.assign(st.begin(), st.begin() + nb);
  for (int d = 0; d < nb; ++d) {
    if (x.shape()[d] == 1) op.batch_strides[d] = 0;
  }
  if (blas_layout(rows, cols, st[nb], st[nb + 1], op.trans, op.ld)) {
    op.data = x;
    return op;
  }
  Shape compact = x.shape();
  for (int d = 0; d < nb; ++d) {
    if (op.batch_strides[d] == 0) compact[d] = 1;
  }
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = compact;
  impl->dtype = x.dtype();
  impl->device = x.device();
  const Tensor view(impl);
  view.share_storage(x, st, x.offset());
  op.data = view.contiguous();
  op.trans = false;
  op.ld = std::max<int64_t>(cols, 1);
  for (int d = 0; d < nb; ++d) op.batch_strides[d] = compact[d] == 1 ? 0 : op.data.strides()[d];
  return op;
}

/// Element offset of every batch entry (row-major over `batch`) for the given batch strides.
inline std::vector<int64_t> batch_offsets(const Shape& batch, const Shape& strides) {
  const int nb = static_cast<int>(batch.size());
  std::vector<int64_t> off(static_cast<size_t>(numel(batch)));
  std::vector<int64_t> index(nb, 0);
  int64_t o = 0;
  for (size_t i = 0; i < off.size(); ++i) {
    off[i] = o;
    for (int d = nb - 1; d >= 0; --d) {
      o += strides[d];
      if (++index[d] < batch[d]) break;
      o -= strides[d] * batch[d];
      index[d] = 0;
    }
  }
  return off;
}

/// Whether a batch of `count` products with left operand `a` (m rows) at offsets `oa` and right
/// operand at offsets `ob` is one (m * count, k) @ (k, n) product: the right operand is shared
/// and the left operand's entries follow each other row by row.
inline bool folds_into_one(const Operand& a, const std::vector<int64_t>& oa,
                           const std::vector<int64_t>& ob, int64_t m) {
  const int64_t count = static_cast<int64_t>(oa.size());
  bool fold = count > 1 && !a.trans && m * count <= INT_MAX;
  for (int64_t i = 0; fold && i < count; ++i)
    fold = ob[i] == ob[0] && oa[i] == oa[0] + i * m * a.ld;
  return fold;
}

}  // namespace basin::gemm_layout
