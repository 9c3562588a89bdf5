// Op class of the matmul family: a batched matrix product over operands already broadcast.
#pragma once

#include "core/op.h"

namespace basin::prims {

/// (..., M, K) @ (..., K, N) -> (..., M, N). Both inputs have the output's batch dimensions
/// (broadcast operands arrive as zero-stride views; the kernel walks them without copying).
class Matmul final : public Op {
 public:
  const char* name() const override { return "Matmul"; }
  void eval_cpu(const Tensors& inputs, Tensor& out) override;
  BASIN_EVAL_CUDA
  Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
              const std::vector<int>& argnums) override;
};

}  // namespace basin::prims
