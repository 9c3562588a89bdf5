// EnergyLayerNorm: the Energy Transformer's activation function, a layer norm with a scalar gain
// that is the gradient of a convex Lagrangian, so it comes with an energy of its own.
#pragma once

#include <cstdint>
#include <string>

#include "models/nn/module.h"

namespace basin::energy {

/// The λ of RegularizedEnergyLayerNorm in the paper code (flax_core.py): g gains λx.
inline constexpr double kEnergyLayerNormRegularization = 1e-3;

/// Energy layer norm over the last dimension of x (..., D), with a scalar γ and a vector δ
/// (mission-anchors §2.5; energy-transformer-jax `architecture.py` EnergyLayerNorm):
///   g_A = γ (x_A − x̄_A) / sqrt((1/D) Σ_j (x_{jA} − x̄_A)² + ε) + δ  (+ λ x_A when regularized)
///   L(x_A) = D γ sqrt((1/D) Σ_j (x_{jA} − x̄_A)² + ε) + δ·x_A  (+ λ/2 ‖x_A‖²),  g_A = ∂L/∂x_A
///   E^LN = Σ_A [g_A·x_A − L(x_A)]  (the Legendre transform of L) = Σ_A [−D γ ε / sqrt(var_A + ε)
///          (+ λ/2 ‖x_A‖²)], the form it is computed in (δ cancels; no float32 cancellation).
/// Parameters "gamma" (0-d, starts at 1) and "delta" (D, starts at 0). L is convex for γ > 0,
/// which is why x ← x − α ∂E/∂g lowers any energy E(g) (mission-anchors §2.5); the regularized
/// form (λ = 1e-3) makes its Hessian strictly positive.
class EnergyLayerNorm : public nn::Module {
 public:
  /// Parameters are created with `dtype` (float32, or float64 for reference computations).
  explicit EnergyLayerNorm(int64_t dim, double eps = 1e-5, bool regularized = false,
                           Dtype dtype = Dtype::f32);

  /// g = ∂L/∂x, of x's shape.
  Tensor forward(const Tensor& x) override;
  /// Σ_A L(x_A) over every token (and batch entry): one scalar.
  Tensor lagrangian(const Tensor& x);
  /// Σ_A [g_A·x_A − L(x_A)]: one scalar.
  Tensor energy(const Tensor& x);

  int64_t dim() const { return dim_; }
  double eps() const { return eps_; }
  bool regularized() const { return regularized_; }
  /// λ: kEnergyLayerNormRegularization when regularized, else 0.
  double regularization() const { return regularized_ ? kEnergyLayerNormRegularization : 0.0; }

  Tensor gamma;  // ()
  Tensor delta;  // (D)

 protected:
  std::string extra_repr() const override;

 private:
  int64_t dim_;
  double eps_;
  bool regularized_;
};

// Functional forms, with the parameters as arguments (what gradchecks in γ and δ use). x is
// (..., D), gamma 0-d (or one element), delta (D); lambda is the regularization λ (0: none).

/// g = γ (x − x̄) / sqrt(var + ε) + δ + λ x over the last dimension (the fused layer_norm kernel).
Tensor energy_layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& delta,
                         double eps = 1e-5, double lambda = 0.0);
/// Σ_A [D γ sqrt(var_A + ε) + δ·x_A + λ/2 ‖x_A‖²].
Tensor energy_layer_norm_lagrangian(const Tensor& x, const Tensor& gamma, const Tensor& delta,
                                    double eps = 1e-5, double lambda = 0.0);
/// Σ_A [g_A·x_A − L(x_A)], computed as Σ_A [−D γ ε / sqrt(var_A + ε) + λ/2 ‖x_A‖²].
Tensor energy_layer_norm_energy(const Tensor& x, const Tensor& gamma, const Tensor& delta,
                                double eps = 1e-5, double lambda = 0.0);

}  // namespace basin::energy
