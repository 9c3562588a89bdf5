// The classical Hopfield network (Hopfield 1982): bipolar states, Hebbian weights, synchronous or
// asynchronous sign updates. Also the retrieval result and update rules that the other discrete
// memories (Dense Associative Memory) share.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/random.h"
#include "models/nn/module.h"

namespace basin::energy {

/// How a discrete network updates its neurons within one sweep.
enum class UpdateRule {
  synchronous,  ///< every neuron at once, from the same state
  sequential,   ///< one neuron at a time, in index order (asynchronous)
  random,       ///< one neuron at a time, in a fresh random order per sweep (asynchronous)
};

/// Why a retrieval stopped.
enum class RetrievalStatus {
  fixed_point,  ///< a sweep changed nothing (for continuous states: moved at most the tolerance)
  two_cycle,    ///< a synchronous update returned to the state of two steps before
  max_steps,    ///< the sweep budget ran out first
};

/// "fixed_point", "two_cycle" or "max_steps".
std::string to_string(RetrievalStatus status);

/// What a retrieval did. With a batch of cues each sample stops on its own: it is frozen at the
/// sweep where it reached a fixed point or a 2-cycle.
struct RetrievalResult {
  Tensor state;    ///< the final states, shaped (and typed) like the cue
  int sweeps = 0;  ///< update sweeps done (the most any sample needed)
  /// fixed_point if every sample reached one, else two_cycle if every sample stopped, else
  /// max_steps.
  RetrievalStatus status = RetrievalStatus::max_steps;
  std::vector<RetrievalStatus> statuses;  ///< each sample's
  std::vector<int> sample_sweeps;         ///< each sample's sweeps
};

/// Options of the classical network.
struct ClassicalHopfieldOptions {
  bool zero_diagonal = true;  ///< w_ii = 0 (the textbook choice; w_ii = P/N otherwise)
  bool scale_by_n = true;     ///< W = (1/N) Σ_μ ξ_μ ξ_μᵀ rather than Σ_μ ξ_μ ξ_μᵀ
};

/// Classical Hopfield network on bipolar (±1) states of N neurons.
///
///   W = (1/N) Σ_μ ξ_μ ξ_μᵀ   (Hebbian; the 1/N only rescales the energy, never the dynamics)
///   E(σ) = −½ σᵀ W σ + σᵀ b
///   σ_i ← sgn(Σ_j W_ij σ_j − b_i)   (a neuron whose field is 0 keeps its value; "0" allows
///                                      for the rounding of the weights: ±64ε Σ_j |W_ij| + |b_i|)
///
/// Asynchronous updates (one neuron at a time) never raise E and end at a fixed point, since W is
/// symmetric with w_ii ≥ 0; synchronous updates end at a fixed point or a 2-cycle. Capacity for
/// random patterns is about 0.14 N with small errors. Source: Hopfield, PNAS 1982; the Hopfield
/// layers blog post (Eqs. 1–8) and reference/mission-anchors.md §2.1.
///
/// States are (N,) or a batch (B, N) of ±1 values in any numeric dtype; results keep the cue's
/// shape and dtype. Weights and bias are buffers ("weight" (N, N), "bias" (N,)) in f32, or f64
/// when the patterns are f64.
class ClassicalHopfield : public nn::Module {
 public:
  /// Stores `patterns` (P, N) of ±1 by the Hebbian rule; `bias` (N,) defaults to zeros.
  explicit ClassicalHopfield(const Tensor& patterns, ClassicalHopfieldOptions options = {},
                             const Tensor& bias = Tensor());

  int64_t n_neurons() const { return n_; }
  int64_t n_patterns() const { return p_; }
  const ClassicalHopfieldOptions& options() const { return options_; }

  /// E(σ) of each state: () for a cue (N,), (B,) for (B, N). Any floating state is accepted.
  Tensor energy(const Tensor& state) const;
  /// One synchronous update σ ← sgn(Wσ − b) of every neuron.
  Tensor update(const Tensor& state) const;
  /// One asynchronous sweep (rule sequential or random; random draws its order from `gen`, the
  /// default generator when null).
  Tensor sweep(const Tensor& state, UpdateRule rule = UpdateRule::sequential,
               Generator* gen = nullptr) const;
  /// Updates until a fixed point, a 2-cycle (synchronous only) or `max_sweeps` sweeps.
  RetrievalResult retrieve(const Tensor& state, int max_sweeps = 100,
                           UpdateRule rule = UpdateRule::sequential,
                           Generator* gen = nullptr) const;
  /// retrieve(state).state.
  Tensor forward(const Tensor& state) override { return retrieve(state).state; }

  Tensor weight;  // (N, N)
  Tensor bias;    // (N,)

 protected:
  std::string extra_repr() const override;

 private:
  int64_t n_, p_;
  ClassicalHopfieldOptions options_;
};

namespace detail {

/// A batch of bipolar states on the host: `rows` × `cols`, row-major, as doubles.
struct BipolarBatch {
  std::vector<double> values;
  int64_t rows = 0, cols = 0;
  double* row(int64_t r) { return values.data() + r * cols; }
  const double* row(int64_t r) const { return values.data() + r * cols; }
};

/// The cue as a (B, N) host batch; an error (naming `who`) unless it is (n,) or (B, n) of ±1.
BipolarBatch bipolar_batch(const Tensor& cue, int64_t n, const char* who);
/// Checks that `patterns` is (P, N) with P, N ≥ 1 and every value ±1.
void check_bipolar_patterns(const Tensor& patterns, const char* who);
/// `batch` as a tensor of `like`'s shape and dtype.
Tensor to_tensor(const BipolarBatch& batch, const Tensor& like);
/// The order of each row's neurons for one asynchronous sweep: index order for sequential, a
/// fresh permutation per row (drawn from `gen`, the default when null) for random.
std::vector<std::vector<int64_t>> sweep_orders(int64_t rows, int64_t cols, UpdateRule rule,
                                               Generator* gen);

/// One sweep over the rows flagged in `active` (the others must be left untouched).
using BipolarPass = std::function<void(BipolarBatch& states, const std::vector<char>& active)>;
/// The retrieval loop shared by the discrete memories: repeats `pass` until each sample reaches
/// a fixed point, or (synchronous) a 2-cycle, or `max_sweeps` is reached.
RetrievalResult retrieve_bipolar(const Tensor& cue, int64_t n, int max_sweeps, UpdateRule rule,
                                 const BipolarPass& pass, const char* who);

}  // namespace detail

}  // namespace basin::energy
