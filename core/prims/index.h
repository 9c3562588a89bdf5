// Op classes of the indexing family: gather along an axis and its adjoint, scatter-add.
#pragma once

#include "core/op.h"

namespace basin::prims {

/// out[p] = x[p with its `axis` coordinate replaced by index[p]] for every position p of the
/// index (inputs {x, index}); the output has the index's shape. The index may be a broadcast view.
/// `api` names the public function in out-of-range errors.
class Gather final : public Op {
 public:
  Gather(int axis, const char* api) : axis_(axis), api_(api) {}
  const char* name() const override { return "Gather"; }
  void eval_cpu(const Tensors& inputs, Tensor& out) override;
  BASIN_EVAL_CUDA
  Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
              const std::vector<int>& argnums) override;
  int axis() const { return axis_; }

 private:
  int axis_;
  const char* api_;
};

/// out = base, then out[p with its `axis` coordinate replaced by index[p]] += src[p] for every
/// position p of the index (inputs {base, index, src}, src of the index's shape). Duplicate
/// indices accumulate, in the index's row-major order.
class ScatterAdd final : public Op {
 public:
  ScatterAdd(int axis, const char* api) : axis_(axis), api_(api) {}
  const char* name() const override { return "ScatterAdd"; }
  void eval_cpu(const Tensors& inputs, Tensor& out) override;
  BASIN_EVAL_CUDA
  Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
              const std::vector<int>& argnums) override;
  int axis() const { return axis_; }

 private:
  int axis_;
  const char* api_;
};

}  // namespace basin::prims
