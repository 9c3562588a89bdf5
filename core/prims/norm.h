// Op classes of the normalisation family: layer_norm and its input gradient as fused ops.
#pragma once

#include "autograd/fused_op.h"

namespace basin::prims {

/// Layer normalisation over the last dimension. Inputs: x, then the weight and the bias when
/// present (each of shape (x.shape(-1),)). The CPU forward is a fused kernel. Its vjp is written
/// with LayerNormGradInput and public ops (one pass per row instead of differentiating the
/// composite); tests hold it equal to the fallback's derivatives to second order.
class LayerNorm final : public FusedOp {
 public:
  LayerNorm(double eps, bool has_weight, bool has_bias)
      : eps_(eps), has_weight_(has_weight), has_bias_(has_bias) {}
  const char* name() const override { return "LayerNorm"; }
  /// (x - mean) * rsqrt(mean((x - mean)^2) + eps) * weight + bias, with public ops.
  Tensor fallback(const Tensors& inputs) const override;
  void eval_cpu(const Tensors& inputs, Tensor& out) override;
  BASIN_EVAL_CUDA
  Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
              const std::vector<int>& argnums) override;
  double eps() const { return eps_; }
  bool has_weight() const { return has_weight_; }
  bool has_bias() const { return has_bias_; }

 private:
  double eps_;
  bool has_weight_;
  bool has_bias_;
};

/// The cotangent of layer_norm's x. Inputs: x, the weight when present, and the output's
/// cotangent g. With x̂ the normalised x, r = rsqrt(var + eps) and h = g * weight:
/// r * (h - mean(h) - x̂ * mean(h * x̂)) per row. Fused on the CPU; its own derivatives come
/// from the fallback.
class LayerNormGradInput final : public FusedOp {
 public:
  LayerNormGradInput(double eps, bool has_weight) : eps_(eps), has_weight_(has_weight) {}
  const char* name() const override { return "LayerNormGradInput"; }
  Tensor fallback(const Tensors& inputs) const override;
  void eval_cpu(const Tensors& inputs, Tensor& out) override;
  BASIN_EVAL_CUDA

 private:
  double eps_;
  bool has_weight_;
};

}  // namespace basin::prims
