// Op classes of the movement family. View ops only set the output's layout, so one eval serves
// every device.
#pragma once

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

/// A contiguous input seen with a new shape.
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

}  // namespace basin::prims
