// HopfieldEnergy: the Energy Transformer's memory term (a Hopfield network in place of the MLP),
// E = −Σ_B F(ξ g_B) for a ReLU², log-sum-exp or user-given F.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "core/random.h"
#include "models/energy/energy.h"

namespace basin::energy {

enum class HopfieldKind {
  relu2,  ///< F = ½ ReLU² (the paper's CHNReLU)
  lse,    ///< F = (1/β) log-sum-exp over the memories of β h (CHNSoftmax, HNN_LSE)
  custom  ///< a user function of h
};

/// "relu2", "lse", "custom".
const char* hopfield_kind_name(HopfieldKind kind);
/// The kind named `name` ("relu2" or "lse"; "custom" needs a function, so not from a name).
HopfieldKind hopfield_kind_from_name(const std::string& name);

struct HopfieldEnergyOptions {
  HopfieldKind kind = HopfieldKind::relu2;
  /// β of the log-sum-exp kind (flax_core.py CHNSoftmax `beta_init` = 0.01).
  double beta = 0.01;
  /// β as a trained parameter "beta" (as in the paper code); otherwise a buffer "beta".
  bool learnable_beta = true;
  /// For HopfieldKind::custom: maps h = g ξᵀ (..., M) to a tensor whose sum is Σ F; the energy is
  /// −sum(F(h)). Written with public ops, so dE/dg and its derivatives come from autograd.
  std::function<Tensor(const Tensor&)> fn;
  /// ξ starts N(0, init_std²) (flax_core.py CHNReLU: normal(0.02)).
  double init_std = 0.02;
  /// Dtype of the parameters (float32, or float64 for reference computations).
  Dtype dtype = Dtype::f32;
};

/// The Hopfield-network energy of token states g (..., D) with memories ξ (M, D)
/// (mission-anchors §2.5; energy-transformer-jax `architecture.py` HopfieldNetwork, flax_core.py
/// CHNReLU / CHNSoftmax), with h_{Bμ} = ξ_μ·g_B:
///   ReLU²:        E = −½ Σ_{B,μ} ReLU(h_{Bμ})²             dE/dg_B = −Σ_μ ξ_μ ReLU(h_{Bμ})
///   log-sum-exp:  E = −(1/β) Σ_B log Σ_μ exp(β h_{Bμ})       dE/dg_B = −Σ_μ ξ_μ softmax_μ(β h_B)
///   custom:       E = −Σ F(h)                                 dE/dg from autograd
/// Parameter "xi" (M, D); for log-sum-exp, β "beta" (0-d), a parameter when learnable. The
/// ReLU² and log-sum-exp gradients run as the fused op prims::HopfieldEnergyGrad.
class HopfieldEnergy : public EnergyModule {
 public:
  /// dim D, memories M. ξ draws from `gen` (the default generator when null).
  HopfieldEnergy(int64_t dim, int64_t memories, HopfieldEnergyOptions options = {},
                 Generator* gen = nullptr);

  /// One scalar, summed over every token.
  Tensor energy(const Tensor& g) override;
  /// Closed form (fused) for ReLU² and log-sum-exp; autograd of energy() for a custom F.
  Tensor energy_grad(const Tensor& g) override;
  std::pair<Tensor, Tensor> energy_and_grad(const Tensor& g) override;

  int64_t dim() const { return dim_; }
  int64_t memories() const { return memories_; }
  HopfieldKind kind() const { return options_.kind; }
  const HopfieldEnergyOptions& options() const { return options_; }

  Tensor xi;    // (M, D)
  Tensor beta;  // (); log-sum-exp only

 protected:
  std::string extra_repr() const override;

 private:
  int64_t dim_, memories_;
  HopfieldEnergyOptions options_;
};

// Functional forms for the ReLU² and log-sum-exp kinds, with ξ and β as arguments (β is ignored
// by relu2 and may be undefined there). Errors start with "[HopfieldEnergy]".

/// E of g (..., D) against memories xi (M, D).
Tensor hopfield_energy(const Tensor& g, const Tensor& xi, HopfieldKind kind,
                       const Tensor& beta = Tensor());
/// Its closed-form gradient dE/dg (the fused prims::HopfieldEnergyGrad), of g's shape.
Tensor hopfield_energy_grad(const Tensor& g, const Tensor& xi, HopfieldKind kind,
                            const Tensor& beta = Tensor());

}  // namespace basin::energy
