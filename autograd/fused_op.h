// FusedOp: a kernel-backed op that keeps its maths as an ops-only fallback. Transforms
// differentiate the fallback, so fusing a kernel never blocks gradients of gradients.
#pragma once

#include "core/op.h"

namespace basin {

/// Base of fused ops. A subclass states fallback() with public ops and may override eval_cpu /
/// eval_cuda with a fused kernel; vjp differentiates the fallback unless the subclass states it in
/// closed form (with public ops, so still differentiable). Every fused op is tested equal
/// to its fallback in value, gradient and second derivative.
class FusedOp : public Op {
 public:
  /// The op's maths, written with public ops only.
  virtual Tensor fallback(const Tensors& inputs) const = 0;

  /// Default forward on any device: evaluates the fallback.
  void eval_cpu(const Tensors& inputs, Tensor& out) override;
  void eval_cuda(const Tensors& inputs, Tensor& out) override;
  /// Differentiates the fallback; recorded when the enclosing pass is, so it can be
  /// differentiated again.
  Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
              const std::vector<int>& argnums) override;

 protected:
  /// Evaluates the fallback unrecorded and makes `out` share its result.
  void eval_fallback(const Tensors& inputs, Tensor& out) const;
};

}  // namespace basin
