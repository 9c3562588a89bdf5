// DrDAM, the distributed (random-feature) Dense Associative Memory (Hoover et al., NeurIPS 2024,
// "Dense Associative Memory Through the Lens of Random Features"): the memories are summed into
// one fixed-size feature vector, so adding a memory is an addition and the energy's cost does
// not grow with their number.
#pragma once

#include <cstdint>
#include <string>

#include "models/energy/energy.h"

namespace basin::energy {

/// The random feature map φ of DrDAM, with directions ω_1..ω_Y ~ N(0, I_D).
enum class RandomFeatures {
  trigonometric,  ///< φ(x) = Y^{−1/2} [cos ω_iᵀx, sin ω_iᵀx]_{i=1..Y}  (2Y entries)
  positive,  ///< φ(x) = Y^{−1/2} [exp(ω_iᵀx − ‖x‖²)]_{i=1..Y}  (Y entries, all > 0)
};

/// "trigonometric" or "positive".
std::string to_string(RandomFeatures features);
/// The inverse of to_string; an error listing the names otherwise.
RandomFeatures random_features_from_string(const std::string& name);

struct DrDAMOptions {
  int64_t n_features = 1024;  ///< Y, the number of random directions
  double beta = 1.0;          ///< β, the inverse temperature of the kernel
  RandomFeatures features = RandomFeatures::trigonometric;
  uint64_t seed = 0;   ///< key of the directions ω
  double eps = 1e-10;  ///< the kernel sum is clipped at eps before its log
};

/// The exact energy that DrDAM approximates (the "memory representation", MrDAM): for states v
/// (..., D) and memories ξ_μ (K, D),
///
///   E(v) = −β⁻¹ log Σ_μ exp(−(β/2) ‖v − ξ_μ‖²),  of shape (...).
///
/// For memories of equal norm it is the modern Hopfield energy −lse(β, Ξv) + ½‖v‖² up to a
/// constant. Differentiable in v and the memories.
Tensor mrdam_energy(const Tensor& v, const Tensor& memories, double beta);

/// Random-feature Dense Associative Memory. Both feature maps satisfy
/// E_ω[φ(√β x)ᵀφ(√β y)] = exp(−(β/2)‖x − y‖²), so with the memory vector
///
///   T = Σ_μ φ(√β ξ_μ)   (fixed size: 2Y or Y entries, however many memories are added),
///   E(v) = −β⁻¹ log max(φ(√β v)ᵀ T, eps)
///
/// approximates mrdam_energy, with an error that shrinks as 1/√Y; descent on E (the Descent
/// runner) approximates the exact dynamics. The approximation is poorest far from the memories
/// and for large β (reference/mission-anchors.md §2.10). One feature's estimate of the kernel
/// has variance at most 1 for trigonometric features, but up to exp(4β xᵀy) for positive ones:
/// those need β‖x‖² of order 1 (centred, small states). energy(v) sums E over every leading
/// dimension of v (..., D). Buffers: "omega" (Y, D), "memory" T and "n_memories" (int64).
class DrDAM : public EnergyModule {
 public:
  /// An empty memory over states of dimension `dim`; ω is drawn from options.seed.
  explicit DrDAM(int64_t dim, DrDAMOptions options = {}, Dtype dtype = Dtype::f32);

  int64_t dim() const { return dim_; }
  /// The size of T: 2Y (trigonometric) or Y (positive).
  int64_t feature_dim() const { return memory.shape(0); }
  int64_t n_memories() const;
  const DrDAMOptions& options() const { return options_; }

  /// φ(√β x): (..., D) → (..., feature_dim()).
  Tensor features(const Tensor& x) const;
  /// Adds one memory (D,) or several (K, D): T += Σ_k φ(√β ξ_k). Not recorded by autograd.
  void add(const Tensor& patterns);
  /// E(v) of each state: (...) for v (..., D).
  Tensor energies(const Tensor& v) const;
  /// Σ of energies(v): one scalar.
  Tensor energy(const Tensor& v) override;

  Tensor omega;   // (Y, D)
  Tensor memory;  // (feature_dim,), T

 protected:
  std::string extra_repr() const override;

 private:
  void check_state(const Tensor& x, const char* what) const;
  int64_t dim_;
  DrDAMOptions options_;
  Tensor count_;  // () int64, the number of memories added
};

}  // namespace basin::energy
