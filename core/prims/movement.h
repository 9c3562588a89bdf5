// Op classes of the movement family: views (one eval for every device) and Concat, Pad, Flip.
#pragma once

#include <cstdint>
#include <vector>

#include "core/op.h"

namespace basin::prims {

/// Base of ops whose output is a view of their first input: eval_cpu and eval_cuda both call
/// make_view.
class ViewOp : public Op {
 public:
  void eval_cpu(const Tensors& inputs, Tensor& out) override { make_view(inputs[0], out); }
  void eval_cuda(const Tensors& inputs, Tensor& out) override { make_view(inputs[0], out); }
  virtual void make_view(const Tensor& x, Tensor& out) const = 0;
};

/// The input seen with a new shape; the caller has checked that its strides allow a view
/// (contiguous inputs always do).
class Reshape final : public ViewOp {
 public:
  const char* name() const override { return "Reshape"; }
  void make_view(const Tensor& x, Tensor& out) const override;
  Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
              const std::vector<int>& argnums) override;
};

class Permute final : public ViewOp {
 public:
  explicit Permute(std::vector<int> perm) : perm_(std::move(perm)) {}
  const char* name() const override { return "Permute"; }
  void make_view(const Tensor& x, Tensor& out) const override;
  Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
              const std::vector<int>& argnums) override;
  const std::vector<int>& perm() const { return perm_; }

 private:
  std::vector<int> perm_;
};

class BroadcastTo final : public ViewOp {
 public:
  const char* name() const override { return "BroadcastTo"; }
  void make_view(const Tensor& x, Tensor& out) const override;
  Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
              const std::vector<int>& argnums) override;
};

/// Elements start, start + step, ... of one axis (normalised, step > 0; the output's shape gives
/// the count). Its vjp is a Pad with interior padding step - 1.
class Slice final : public ViewOp {
 public:
  Slice(int axis, int64_t start, int64_t step) : axis_(axis), start_(start), step_(step) {}
  const char* name() const override { return "Slice"; }
  void make_view(const Tensor& x, Tensor& out) const override;
  Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
              const std::vector<int>& argnums) override;
  int axis() const { return axis_; }
  int64_t start() const { return start_; }
  int64_t step() const { return step_; }

 private:
  int axis_;
  int64_t start_;
  int64_t step_;
};

/// Inputs joined along `axis` into one contiguous buffer. Its vjp is one slice per input.
class Concat final : public Op {
 public:
  explicit Concat(int axis) : axis_(axis) {}
  const char* name() const override { return "Concat"; }
  void eval_cpu(const Tensors& inputs, Tensor& out) override;
  BASIN_EVAL_CUDA
  Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
              const std::vector<int>& argnums) override;
  int axis() const { return axis_; }

 private:
  int axis_;
};

/// XLA-style padding: along dimension d the output holds low[d] fill values, then the input's
/// elements with interior[d] fill values between neighbours, then high[d] fill values (all
/// amounts >= 0). Serves both pad (interior 0) and the vjp of a strided Slice; its own vjp is a
/// strided slice per dimension, so derivatives of any order stay within Slice and Pad.
class Pad final : public Op {
 public:
  Pad(Shape low, Shape high, Shape interior, double value)
      : low_(std::move(low)),
        high_(std::move(high)),
        interior_(std::move(interior)),
        value_(value) {}
  const char* name() const override { return "Pad"; }
  void eval_cpu(const Tensors& inputs, Tensor& out) override;
  BASIN_EVAL_CUDA
  Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
              const std::vector<int>& argnums) override;
  const Shape& low() const { return low_; }
  const Shape& high() const { return high_; }
  const Shape& interior() const { return interior_; }
  double value() const { return value_; }

 private:
  Shape low_, high_, interior_;
  double value_;
};

/// The input with the order of elements reversed along `axes` (normalised), copied.
class Flip final : public Op {
 public:
  explicit Flip(std::vector<int> axes) : axes_(std::move(axes)) {}
  const char* name() const override { return "Flip"; }
  void eval_cpu(const Tensors& inputs, Tensor& out) override;
  BASIN_EVAL_CUDA
  Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
              const std::vector<int>& argnums) override;
  const std::vector<int>& axes() const { return axes_; }

 private:
  std::vector<int> axes_;
};

}  // namespace basin::prims
