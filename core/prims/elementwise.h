// Op classes of the elementwise family: unary, binary (broadcasting), where, and copy/cast.
#pragma once

#include "core/op.h"

namespace basin::prims {

#define BASIN_ELEMENTWISE_OP(Name)                                                 \
  class Name final : public Op {                                                   \
   public:                                                                         \
    const char* name() const override { return #Name; }                            \
    void eval_cpu(const Tensors& inputs, Tensor& out) override;                    \
    BASIN_EVAL_CUDA                                                                \
    Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent, \
                const std::vector<int>& argnums) override;                         \
  };

// Unary.
BASIN_ELEMENTWISE_OP(Neg)
BASIN_ELEMENTWISE_OP(Abs)
BASIN_ELEMENTWISE_OP(Sign)
BASIN_ELEMENTWISE_OP(Exp)
BASIN_ELEMENTWISE_OP(Log)
BASIN_ELEMENTWISE_OP(Log1p)
BASIN_ELEMENTWISE_OP(Expm1)
BASIN_ELEMENTWISE_OP(Sqrt)
BASIN_ELEMENTWISE_OP(Rsqrt)
BASIN_ELEMENTWISE_OP(Square)
BASIN_ELEMENTWISE_OP(Sin)
BASIN_ELEMENTWISE_OP(Cos)
BASIN_ELEMENTWISE_OP(Tanh)
BASIN_ELEMENTWISE_OP(Sigmoid)
BASIN_ELEMENTWISE_OP(Relu)
BASIN_ELEMENTWISE_OP(Erf)
BASIN_ELEMENTWISE_OP(Softplus)
BASIN_ELEMENTWISE_OP(LogicalNot)

// Binary, with NumPy broadcasting.
BASIN_ELEMENTWISE_OP(Add)
BASIN_ELEMENTWISE_OP(Sub)
BASIN_ELEMENTWISE_OP(Mul)
BASIN_ELEMENTWISE_OP(Div)
BASIN_ELEMENTWISE_OP(Pow)
BASIN_ELEMENTWISE_OP(Maximum)
BASIN_ELEMENTWISE_OP(Minimum)
BASIN_ELEMENTWISE_OP(Atan2)
BASIN_ELEMENTWISE_OP(Equal)
BASIN_ELEMENTWISE_OP(NotEqual)
BASIN_ELEMENTWISE_OP(Less)
BASIN_ELEMENTWISE_OP(LessEqual)
BASIN_ELEMENTWISE_OP(Greater)
BASIN_ELEMENTWISE_OP(GreaterEqual)
BASIN_ELEMENTWISE_OP(LogicalAnd)
BASIN_ELEMENTWISE_OP(LogicalOr)
BASIN_ELEMENTWISE_OP(LogicalXor)

// where(cond, a, b), broadcasting all three.
BASIN_ELEMENTWISE_OP(Where)

#undef BASIN_ELEMENTWISE_OP

/// x^p for a scalar exponent.
class PowScalar final : public Op {
 public:
  explicit PowScalar(double p) : p_(p) {}
  const char* name() const override { return "PowScalar"; }
  void eval_cpu(const Tensors& inputs, Tensor& out) override;
  BASIN_EVAL_CUDA
  Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
              const std::vector<int>& argnums) override;
  double exponent() const { return p_; }

 private:
  double p_;
};

/// ELU: x for x > 0, alpha * (exp(x) - 1) otherwise.
class Elu final : public Op {
 public:
  explicit Elu(double alpha) : alpha_(alpha) {}
  const char* name() const override { return "Elu"; }
  void eval_cpu(const Tensors& inputs, Tensor& out) override;
  BASIN_EVAL_CUDA
  Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
              const std::vector<int>& argnums) override;
  double alpha() const { return alpha_; }

 private:
  double alpha_;
};

/// Copies its input into the output's layout, converting to the output's dtype. The output may
/// already have a buffer (Tensor::assign writes in place this way).
class AsType final : public Op {
 public:
  const char* name() const override { return "AsType"; }
  void eval_cpu(const Tensors& inputs, Tensor& out) override;
  BASIN_EVAL_CUDA
  Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
              const std::vector<int>& argnums) override;
};

/// Moves a tensor between devices.
class ToDevice final : public Op {
 public:
  const char* name() const override { return "ToDevice"; }
  void eval_cpu(const Tensors& inputs, Tensor& out) override;
  void eval_cuda(const Tensors& inputs, Tensor& out) override;
  Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
              const std::vector<int>& argnums) override;
};

}  // namespace basin::prims
