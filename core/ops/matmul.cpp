// Matmul: NumPy promotion of 1-D operands, batch broadcasting, and the vector-Jacobian product.
#include "core/ops/matmul.h"

#include "core/ops/movement.h"
#include "core/prims/matmul.h"

namespace basin {

Tensor matmul(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) fail("[matmul] got an undefined tensor");
  const std::string shapes = fmt::format("{} @ {}", shape_str(a.shape()), shape_str(b.shape()));
  if (a.ndim() == 0 || b.ndim() == 0) {
    fail("[matmul] needs operands with at least one dimension, got {}", shapes);
  }
  const Dtype dtype = promote_types(a.dtype(), b.dtype());
  if (!is_floating(dtype)) {
    fail("[matmul] needs floating tensors (float32 or float64), got {} and {} for {}",
         dtype_name(a.dtype()), dtype_name(b.dtype()), shapes);
  }
  if (a.device() != b.device()) {
    fail("[matmul] operands are on different devices: {} and {} for {}", a.device().str(),
         b.device().str(), shapes);
  }
  Tensor a2 = a.ndim() == 1 ? unsqueeze(a, 0) : a;
  Tensor b2 = b.ndim() == 1 ? unsqueeze(b, 1) : b;
  const int64_t m = a2.shape(-2), k = a2.shape(-1), n = b2.shape(-1);
  if (b2.shape(-2) != k) fail("[matmul] inner dimensions differ: {}", shapes);

  // Batch dimensions broadcast as in NumPy; checked here so the message names both operands.
  const Shape batch_a(a2.shape().begin(), a2.shape().end() - 2);
  const Shape batch_b(b2.shape().begin(), b2.shape().end() - 2);
  const size_t nb = std::max(batch_a.size(), batch_b.size());
  Shape batch(nb);
  for (size_t i = 0; i < nb; ++i) {
    const int64_t da = i < nb - batch_a.size() ? 1 : batch_a[i - (nb - batch_a.size())];
    const int64_t db = i < nb - batch_b.size() ? 1 : batch_b[i - (nb - batch_b.size())];
    if (da != db && da != 1 && db != 1)
      fail("[matmul] batch dimensions do not broadcast: {}", shapes);
    batch[i] = da == 1 ? db : da;
  }
  Shape result = batch;
  if (a.ndim() > 1) result.push_back(m);
  if (b.ndim() > 1) result.push_back(n);
  a2 = a2.astype(dtype);
  b2 = b2.astype(dtype);

  // (..., M, K) @ (K, N) with a contiguous left operand is one (batch * M, K) @ (K, N) product;
  // its gradient in b is then one product too, instead of a product per batch entry and a sum.
  if (b2.ndim() == 2 && a2.ndim() > 2 && a2.is_contiguous()) {
    const int64_t rows = numel(batch) * m;
    const Tensor flat = reshape(a2, {rows, k});
    return reshape(apply(std::make_shared<prims::Matmul>(), {flat, b2}, {rows, n}, dtype), result);
  }
  Shape shape_a = batch, shape_b = batch, shape_out = batch;
  shape_a.insert(shape_a.end(), {m, k});
  shape_b.insert(shape_b.end(), {k, n});
  shape_out.insert(shape_out.end(), {m, n});
  const Tensor out =
      apply(std::make_shared<prims::Matmul>(),
            {broadcast_to(a2, shape_a), broadcast_to(b2, shape_b)}, shape_out, dtype);
  return reshape(out, result);
}

namespace prims {

// dA = g B^T and dB = A^T g, batch by batch; the broadcast_to views the inputs came through sum
// these back to the operands' own batch shapes.
Tensors Matmul::vjp(const Tensors& in, const Tensor&, const Tensor& cot,
                    const std::vector<int>& argnums) {
  Tensors g;
  for (int i : argnums) {
    g.push_back(i == 0 ? matmul(cot, transpose(in[1], -2, -1))
                       : matmul(transpose(in[0], -2, -1), cot));
  }
  return g;
}

}  // namespace prims
}  // namespace basin
