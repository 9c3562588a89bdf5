// Op classes of the reduction family: folds over a set of axes (sum, prod, max, min, logsumexp)
// and the arg-reductions over one axis.
#pragma once

#include <vector>

#include "core/op.h"

namespace basin::prims {

// A reduction over `axes` (sorted, normalised, possibly empty = no axis); the output keeps the
// reduced axes as size 1 when `keepdim`.
#define BASIN_REDUCE_OP(Name)                                                                \
  class Name final : public Op {                                                             \
   public:                                                                                   \
    Name(std::vector<int> axes, bool keepdim) : axes_(std::move(axes)), keepdim_(keepdim) {} \
    const char* name() const override { return #Name; }                                      \
    void eval_cpu(const Tensors& inputs, Tensor& out) override;                              \
    BASIN_EVAL_CUDA                                                                          \
    Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,           \
                const std::vector<int>& argnums) override;                                   \
    const std::vector<int>& axes() const { return axes_; }                                   \
    bool keepdim() const { return keepdim_; }                                                \
                                                                                             \
   private:                                                                                  \
    std::vector<int> axes_;                                                                  \
    bool keepdim_;                                                                           \
  };

/// Sum; floating inputs accumulate in double.
BASIN_REDUCE_OP(Sum)
/// Product; floating inputs accumulate in double.
BASIN_REDUCE_OP(Prod)
/// Largest element (NaN if any element is NaN); the reduced sub-space must not be empty.
BASIN_REDUCE_OP(Max)
/// Smallest element (NaN if any element is NaN); the reduced sub-space must not be empty.
BASIN_REDUCE_OP(Min)
/// log(sum(exp(x))), computed as m + log(sum(exp(x - m))) with m the maximum: -inf where every
/// element is -inf (and for an empty sub-space), +inf where an element is +inf.
BASIN_REDUCE_OP(LogSumExp)

#undef BASIN_REDUCE_OP

// Index (int64) of the first largest / smallest element along one axis (normalised); NaN counts
// as the extreme, as in NumPy. Not differentiable.
#define BASIN_ARG_REDUCE_OP(Name)                                                  \
  class Name final : public Op {                                                   \
   public:                                                                         \
    Name(int axis, bool keepdim) : axis_(axis), keepdim_(keepdim) {}               \
    const char* name() const override { return #Name; }                            \
    void eval_cpu(const Tensors& inputs, Tensor& out) override;                    \
    BASIN_EVAL_CUDA                                                                \
    Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent, \
                const std::vector<int>& argnums) override;                         \
    int axis() const { return axis_; }                                             \
    bool keepdim() const { return keepdim_; }                                      \
                                                                                   \
   private:                                                                        \
    int axis_;                                                                     \
    bool keepdim_;                                                                 \
  };

BASIN_ARG_REDUCE_OP(ArgMax)
BASIN_ARG_REDUCE_OP(ArgMin)

#undef BASIN_ARG_REDUCE_OP

}  // namespace basin::prims
