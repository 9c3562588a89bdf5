// Dense Associative Memory (Krotov & Hopfield 2016; Demircigil et al. 2017): bipolar states and
// an energy that is a sum of a fast-growing function F of the overlaps with the stored patterns,
// which stores far more patterns than the classical network.
#pragma once

#include <cstdint>
#include <string>

#include "models/energy/classical.h"

namespace basin::energy {

/// The interaction function F of a Dense Associative Memory.
enum class Interaction {
  polynomial,            ///< F(x) = xⁿ (n = 2 is the classical network)
  rectified_polynomial,  ///< F(x) = xⁿ/n for x ≥ 0, 0 otherwise (no inverted retrievals)
  exponential,           ///< F(x) = exp(βx)
  log_sum_exp,  ///< E = −β⁻¹ log Σ_μ exp(β ξ_μᵀσ): exponential's dynamics, stable energy
};

/// "polynomial", "rectified_polynomial", "exponential" or "log_sum_exp".
std::string to_string(Interaction interaction);
/// The inverse of to_string; an error listing the names otherwise.
Interaction interaction_from_string(const std::string& name);

struct DenseAMOptions {
  Interaction interaction = Interaction::polynomial;
  int degree = 3;     ///< n of the polynomial interactions (>= 2)
  double beta = 1.0;  ///< β of the exponential interactions (> 0)
};

/// Dense Associative Memory on bipolar (±1) states of N neurons with P stored patterns ξ_μ:
///
///   E(σ) = −Σ_μ F(ξ_μᵀσ)      (log_sum_exp: E = −β⁻¹ log Σ_μ exp(β ξ_μᵀσ))
///
/// Asynchronous update of neuron i (Krotov & Hopfield 2016, appendix A, Eq. 545):
///
///   σ_i ← sgn Σ_μ [F(ξ_μi + Σ_{j≠i} ξ_μj σ_j) − F(−ξ_μi + Σ_{j≠i} ξ_μj σ_j)]
///
/// i.e. σ_i takes the value of lower energy (keeping its value on a tie), so asynchronous sweeps
/// never raise E and end at a fixed point; the synchronous variant updates every neuron from the
/// same state and may end in a 2-cycle. Capacity grows as N^{n−1} for the polynomials and
/// exponentially in N for the exponential ones (reference/mission-anchors.md §2.2, §3.7).
///
/// Updates never form an N × N matrix. Writing m_μ = ξ_μᵀσ, the energy change of flipping σ_i
/// is ΔE_i = C + σ_i Σ_μ ξ_μi d_μ with d_μ = ½[F(m_μ+2) − F(m_μ−2)] and C = Σ_μ [F(m_μ) −
/// ½F(m_μ−2) − ½F(m_μ+2)], so a synchronous step is two matrix products, and an asynchronous sweep
/// keeps m, d and C up to date after each flip: O(N·P) work per sweep plus O(P) per flip.
/// Differences are computed up to a positive factor that keeps their sign: exact integers for the
/// polynomials (so ties are exact and keep the neuron), and exp(−β max_μ m_μ) times the true
/// ones for the exponentials (so they never overflow).
///
/// States are (N,) or (B, N), any numeric dtype; results keep the cue's shape and dtype. The
/// patterns are the buffer "memories" (P, N), f32 (f64 when given f64); arithmetic is in f64.
class DenseAssociativeMemory : public nn::Module {
 public:
  /// Stores `patterns` (P, N) of ±1.
  explicit DenseAssociativeMemory(const Tensor& patterns, DenseAMOptions options = {});

  int64_t n_neurons() const { return n_; }
  int64_t n_patterns() const { return p_; }
  const DenseAMOptions& options() const { return options_; }

  /// E(σ) of each state (f64): () for (N,), (B,) for (B, N). Any floating state is accepted, and
  /// the result is differentiable in it. The exponential energy overflows to −inf for large
  /// overlaps; log_sum_exp does not.
  Tensor energy(const Tensor& state) const;
  /// One synchronous update of every neuron.
  Tensor update(const Tensor& state) const;
  /// One asynchronous sweep (sequential, or random with its order drawn from `gen`).
  Tensor sweep(const Tensor& state, UpdateRule rule = UpdateRule::sequential,
               Generator* gen = nullptr) const;
  /// Updates until a fixed point, a 2-cycle (synchronous only) or `max_sweeps` sweeps.
  RetrievalResult retrieve(const Tensor& state, int max_sweeps = 100,
                           UpdateRule rule = UpdateRule::sequential,
                           Generator* gen = nullptr) const;
  /// retrieve(state).state.
  Tensor forward(const Tensor& state) override { return retrieve(state).state; }

  Tensor memories;  // (P, N)

 protected:
  std::string extra_repr() const override;

 private:
  int64_t n_, p_;
  DenseAMOptions options_;
};

}  // namespace basin::energy
