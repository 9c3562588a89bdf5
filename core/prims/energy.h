// Op classes of the energy layers' closed-form gradients (models/energy): fused CPU kernels that
// keep an ops-only fallback, so gradients of these gradients still work to any order.
#pragma once

#include "autograd/fused_op.h"

namespace basin::prims {

/// dE/dg of the Energy Transformer's attention energy (mission-anchors §2.5, flax_core.py
/// `manual_grad`): with Q = W_Q g + b_Q, K = W_K g + b_K per head and P_{hCB} = softmax over the
/// allowed keys B of β_h K_B·Q_C,
///   dE/dg_C = − Σ_h Σ_B P_{hCB} W_Qᵀ K_{hB} − Σ_h Σ_{C'} P_{hC'C} W_Kᵀ Q_{hC'}.
/// Inputs: g (B, N, D), wq and wk (H, Y, D), beta (H), then bq and bk (H, Y) when `has_bias`,
/// then the bool mask (N, N) or (B, N, N) (mask[.., C, B]: query C may attend to key B) when
/// `has_mask`. `exclude_self` also forbids B = C. A query with no allowed key contributes
/// nothing. The fallback (models/energy/attention.cpp) states this with softmax and matmuls; the
/// CPU kernel (backends/cpu/energy.cpp) runs it head by head with BLAS, one N × N block per
/// thread, never recording anything; the CUDA kernel (backends/cuda/energy.cu) never holds the
/// N × N scores (flash-style passes with an online log-sum-exp).
class EnergyAttentionGrad final : public FusedOp {
 public:
  EnergyAttentionGrad(bool has_bias, bool has_mask, bool exclude_self)
      : has_bias_(has_bias), has_mask_(has_mask), exclude_self_(exclude_self) {}
  const char* name() const override { return "EnergyAttentionGrad"; }
  Tensor fallback(const Tensors& inputs) const override;
  void eval_cpu(const Tensors& inputs, Tensor& out) override;
  BASIN_EVAL_CUDA
  /// The closed form (models/energy/attention.cpp): projections and products in public ops
  /// around EnergyAttentionCoreVjp, so no pass re-evaluates and differentiates the fallback.
  Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
              const std::vector<int>& argnums) override;
  bool has_bias() const { return has_bias_; }
  bool has_mask() const { return has_mask_; }
  bool exclude_self() const { return exclude_self_; }

 private:
  bool has_bias_;
  bool has_mask_;
  bool exclude_self_;
};

/// The attention energy E(g) = −Σ_b Σ_h (1/β_h) Σ_C log Σ_B exp(β_h K_B·Q_C) over the allowed keys
/// (a query with none contributes 0), a 0-d result. Inputs as EnergyAttentionGrad's. The fallback
/// (models/energy/attention.cpp) forms the (B, H, N, N) scores; the CUDA kernel never does: one
/// warp per (batch, head, query) runs an online log-sum-exp over the keys, then one block sums
/// the rows. Its derivatives are the fallback's.
class EnergyAttentionValue final : public FusedOp {
 public:
  EnergyAttentionValue(bool has_bias, bool has_mask, bool exclude_self)
      : has_bias_(has_bias), has_mask_(has_mask), exclude_self_(exclude_self) {}
  const char* name() const override { return "EnergyAttentionValue"; }
  Tensor fallback(const Tensors& inputs) const override;
  BASIN_EVAL_CUDA

 private:
  bool has_bias_;
  bool has_mask_;
  bool exclude_self_;
};

/// The per-(batch, head) part of EnergyAttentionGrad's vector-Jacobian product. With Q, K the
/// projections, P the masked softmax of β Q Kᵀ over the keys, and Ū, V̄ the cotangents of
/// U = P K and V = Pᵀ Q:
///   P̄ = Ū Kᵀ + Q V̄ᵀ,   S̄ = P ⊙ (P̄ − rowsum(P ⊙ P̄))   (the cotangent of the scores β Q Kᵀ)
///   Q̄ = P V̄ + β S̄ K,   K̄ = Pᵀ Ū + β S̄ᵀ Q,   R = S̄ K   (β's cotangent is Σ Q ⊙ R per head)
/// Inputs: [Q | K] and [Ū | V̄] (B, N, 2·H·Y), each half with the heads side by side, beta (H),
/// then the bool mask when `has_mask`. Output (B, N, 5·H·Y): [U | V | Q̄ | K̄ | R], so that the
/// products around it treat Q and K together. The fallback states it with matmuls and softmax;
/// the CPU kernel does one (batch, head) pair per task with BLAS on per-thread N × N scratch, the
/// CUDA kernel one pair per block in shared memory.
class EnergyAttentionCoreVjp final : public FusedOp {
 public:
  EnergyAttentionCoreVjp(int64_t heads, bool has_mask, bool exclude_self)
      : heads_(heads), has_mask_(has_mask), exclude_self_(exclude_self) {}
  const char* name() const override { return "EnergyAttentionCoreVjp"; }
  Tensor fallback(const Tensors& inputs) const override;
  void eval_cpu(const Tensors& inputs, Tensor& out) override;
  BASIN_EVAL_CUDA

 private:
  int64_t heads_;
  bool has_mask_;
  bool exclude_self_;
};

/// The per-edge core of the attention energy's gradient on a graph (graph ET): for the edges
/// e = (B → C) of a CSR graph, the scores s_e = β_h Q_C·K_B, P the softmax of s over each query
/// C's edges (−inf on B = C when `exclude_self`; a query with no edge left gets zeros), and
///   U_C = Σ_{e into C} P_e K_B,   V_B = Σ_{e out of B} P_e Q_C.
/// The layer's dE/dg is then −[U V] [W_Q ; W_K], with the projections in public ops around it.
/// Inputs: [Q | K] (N, 2·H·Y) with the heads side by side, beta (H), the CSR offsets (N + 1) and
/// src (E) (int32 or int64). Output (N, 2·H·Y): [U | V]. The fallback
/// (models/energy/attention.cpp) uses gathers and segment ops over (E, H, Y) rows; the CPU
/// kernel (backends/cpu/graph_energy.cpp) goes through each query's edges once, then each key's
/// through a transposed index, and holds only the (E, H) probabilities. The vjp is the closed
/// form of EnergyAttentionGraphCoreVjp.
class EnergyAttentionGraphCore final : public FusedOp {
 public:
  EnergyAttentionGraphCore(int64_t heads, bool exclude_self)
      : heads_(heads), exclude_self_(exclude_self) {}
  const char* name() const override { return "EnergyAttentionGraphCore"; }
  Tensor fallback(const Tensors& inputs) const override;
  void eval_cpu(const Tensors& inputs, Tensor& out) override;
  Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
              const std::vector<int>& argnums) override;
  int64_t heads() const { return heads_; }
  bool exclude_self() const { return exclude_self_; }

 private:
  int64_t heads_;
  bool exclude_self_;
};

/// EnergyAttentionGraphCore's vector-Jacobian product, edge by edge as the dense
/// EnergyAttentionCoreVjp: with Ū, V̄ the cotangents of U and V, per edge e = (B → C)
///   P̄_e = Ū_C·K_B + V̄_B·Q_C,   S̄_e = P_e (P̄_e − Σ_{e' into C} P_e' P̄_e'),
///   Q̄_C = Σ_{e into C} P_e V̄_B + β R_C,   R_C = Σ_{e into C} S̄_e K_B,
///   K̄_B = Σ_{e out of B} (P_e Ū_C + β S̄_e Q_C),   and β's cotangent Σ Q ⊙ R per head.
/// Inputs: [Q | K] and [Ū | V̄] (N, 2·H·Y), beta (H), offsets, src. Output (N, 3·H·Y):
/// [Q̄ | K̄ | R]. The fallback states it with segment ops, so it differentiates again.
class EnergyAttentionGraphCoreVjp final : public FusedOp {
 public:
  EnergyAttentionGraphCoreVjp(int64_t heads, bool exclude_self)
      : heads_(heads), exclude_self_(exclude_self) {}
  const char* name() const override { return "EnergyAttentionGraphCoreVjp"; }
  Tensor fallback(const Tensors& inputs) const override;
  void eval_cpu(const Tensors& inputs, Tensor& out) override;

 private:
  int64_t heads_;
  bool exclude_self_;
};

/// dE/dg of the Hopfield-network energy (mission-anchors §2.5, flax_core.py CHNReLU/CHNSoftmax
/// `manual_grad`), with h = g ξᵀ per token:
///   ReLU² (E = −½ Σ ReLU(h)²):        dE/dg = − ReLU(h) ξ
///   log-sum-exp (E = −1/β Σ lse(βh)):  dE/dg = − softmax(β h) ξ
/// Inputs: g (..., D), xi (M, D), and beta (0-d) for log-sum-exp. The fallback
/// (models/energy/hopfield_energy.cpp) uses public ops; the CPU kernel works through blocks of
/// tokens with BLAS, so the (tokens × M) activations never exist at once.
class HopfieldEnergyGrad final : public FusedOp {
 public:
  explicit HopfieldEnergyGrad(bool log_sum_exp) : log_sum_exp_(log_sum_exp) {}
  const char* name() const override { return "HopfieldEnergyGrad"; }
  Tensor fallback(const Tensors& inputs) const override;
  void eval_cpu(const Tensors& inputs, Tensor& out) override;
  BASIN_EVAL_CUDA
  /// The closed form in public ops (models/energy/hopfield_energy.cpp), with A = ReLU(h) or
  /// softmax(β h) and Ā = −cot ξᵀ: h̄ = Ā ⊙ [h > 0], or β A ⊙ (Ā − rowsum(A ⊙ Ā));
  /// ḡ = h̄ ξ, ξ̄ = h̄ᵀ g − Aᵀ cot, β̄ = Σ h̄ ⊙ h / β.
  Tensors vjp(const Tensors& inputs, const Tensor& out, const Tensor& cotangent,
              const std::vector<int>& argnums) override;
  bool log_sum_exp() const { return log_sum_exp_; }

 private:
  bool log_sum_exp_;
};

}  // namespace basin::prims
