// Op classes of the reduction family.
#pragma once

#include <vector>

#include "core/op.h"

namespace basin::prims {

/// Sum over `axes` (sorted, normalised); the output keeps the reduced axes as size 1 when
/// `keepdim`.
class Sum final : public Op {
 public:
  Sum(std::vector<int> axes, bool keepdim) : axes_(std::move(axes)), keepdim_(keepdim) {}
  const char* name() const override { return "Sum"; }
  void eval_cpu(const Tensors& inputs, Tensor& out) override;
  BASIN_EVAL_CUDA
  Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
              const std::vector<int>& argnums) override;
  const std::vector<int>& axes() const { return axes_; }
  bool keepdim() const { return keepdim_; }

 private:
  std::vector<int> axes_;
  bool keepdim_;
};

}  // namespace basin::prims
