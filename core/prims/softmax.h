// Op classes of the softmax family: softmax and log-softmax along one axis.
#pragma once

#include <vector>

#include "core/op.h"

namespace basin::prims {

// Normalises along `axis` (normalised); stable (the maximum is subtracted first). A slice whose
// elements are all -inf gives 0 (softmax) or -inf (log-softmax) instead of NaN.
#define BASIN_SOFTMAX_OP(Name)                                                     \
  class Name final : public Op {                                                   \
   public:                                                                         \
    explicit Name(int axis) : axis_(axis) {}                                       \
    const char* name() const override { return #Name; }                            \
    void eval_cpu(const Tensors& inputs, Tensor& out) override;                    \
    BASIN_EVAL_CUDA                                                                \
    Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent, \
                const std::vector<int>& argnums) override;                         \
    int axis() const { return axis_; }                                             \
                                                                                   \
   private:                                                                        \
    int axis_;                                                                     \
  };

/// exp(x - m) / sum(exp(x - m)) along the axis.
BASIN_SOFTMAX_OP(Softmax)
/// x - m - log(sum(exp(x - m))) along the axis.
BASIN_SOFTMAX_OP(LogSoftmax)

#undef BASIN_SOFTMAX_OP

}  // namespace basin::prims
