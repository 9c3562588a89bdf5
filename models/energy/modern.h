// The modern continuous Hopfield network (Ramsauer et al., ICLR 2021): continuous states,
// retrieval by the update ξ ← X softmax(β Xᵀ ξ), exponential storage capacity.
#pragma once

#include <cstdint>
#include <string>

#include "models/energy/classical.h"
#include "models/energy/energy.h"

namespace basin::energy {

/// Modern continuous Hopfield network with stored patterns x_1..x_N (the rows of `patterns`,
/// (N, d)) and inverse temperature β:
///
///   E(ξ) = −lse(β, Xᵀξ) + ½ ξᵀξ + β⁻¹ log N + ½ M²,   lse(β, z) = β⁻¹ log Σ_i exp(β z_i),
///   M = max_i ‖x_i‖,   0 ≤ E ≤ 2M² for ‖ξ‖ ≤ M (e.g. after an update),
///   dE/dξ = ξ − X softmax(β Xᵀ ξ),
///   update (CCCP): ξ ← X softmax(β Xᵀ ξ)  = ξ − dE/dξ, so a Descent with α = 1 is this update.
///
/// The update never raises E and converges to a fixed point; well-separated patterns are
/// retrieved in one update (Ramsauer et al. Theorems 1–5; reference/mission-anchors.md §2.3).
///
/// As an EnergyModule, energy(ξ) sums E over every leading (batch) dimension of ξ (..., d), so
/// the Descent runner and autograd apply. The patterns are the buffer "patterns", or the
/// parameter of that name when learnable.
class ModernHopfield : public EnergyModule {
 public:
  ModernHopfield(const Tensor& patterns, double beta, bool learnable = false);

  int64_t n_patterns() const { return patterns.shape(0); }
  int64_t dim() const { return patterns.shape(1); }
  double beta() const { return beta_; }

  /// softmax(β Xᵀ ξ): the weight of each stored pattern, (..., N) for ξ (..., d).
  Tensor attention(const Tensor& xi) const;
  /// X softmax(β Xᵀ ξ), of ξ's shape.
  Tensor update(const Tensor& xi) const;
  /// E(ξ) of each state: (...) for ξ (..., d).
  Tensor energies(const Tensor& xi) const;
  /// Σ of energies(ξ): one scalar.
  Tensor energy(const Tensor& xi) override;
  /// Repeats the update until a state moves by at most `tolerance` (‖Δξ‖₂) or `max_steps`
  /// updates; a batch (B, d) stops sample by sample (each is frozen once it converges).
  /// `sweeps` counts updates; the status is fixed_point or max_steps.
  RetrievalResult retrieve(const Tensor& xi, int max_steps = 100, double tolerance = 1e-6) const;

  Tensor patterns;  // (N, d)

 protected:
  std::string extra_repr() const override;

 private:
  void check_state(const Tensor& xi) const;
  double beta_;
  bool learnable_;
};

}  // namespace basin::energy
