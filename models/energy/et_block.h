// EnergyTransformerBlock: one Energy Transformer block, the attention and Hopfield energies of
// the normalised tokens, with the EnergyLayerNorm that maps token states to them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "core/random.h"
#include "models/energy/attention.h"
#include "models/energy/descent.h"
#include "models/energy/hopfield_energy.h"
#include "models/energy/layer_norm.h"

namespace basin::energy {

struct EnergyTransformerOptions {
  AttentionOptions attention;
  HopfieldEnergyOptions hopfield;
  double eps = 1e-5;         ///< of the EnergyLayerNorm
  bool regularized = false;  ///< RegularizedEnergyLayerNorm (g += 1e-3 x)
  /// Dtype of every parameter (replaces the dtypes in `attention` and `hopfield`).
  Dtype dtype = Dtype::f32;
};

/// E(g) = E^ATT(g) + E^HN(g) (mission-anchors §2.5; energy-transformer-jax `architecture.py`
/// EnergyTransformer, flax_core.py HopfieldTransformer), with g = LN(x) from the block's
/// EnergyLayerNorm. The dynamics (§2.5, paper code α = 0.1, T = 12) are
///   g = LN(x);  x ← x − α ∂E/∂g
/// which energy_transformer_descent builds. Children "norm" (EnergyLayerNorm), "attn"
/// (EnergyAttention) and "hn" (HopfieldEnergy); dE/dg sums the two closed forms. The Hopfield
/// dimension is `memories` (the paper uses M = 4D).
///
/// The memory term may be any energy layer of the token dimension (a registered one built from
/// a config, or a user's own): it then takes the place of the HopfieldEnergy as child "hn".
class EnergyTransformerBlock : public EnergyModule {
 public:
  EnergyTransformerBlock(int64_t dim, int64_t heads, int64_t head_dim, int64_t memories,
                         EnergyTransformerOptions options = {}, Generator* gen = nullptr);
  /// A block whose memory term is `memory` (options.hopfield is then unused).
  EnergyTransformerBlock(int64_t dim, int64_t heads, int64_t head_dim,
                         std::shared_ptr<EnergyModule> memory,
                         EnergyTransformerOptions options = {}, Generator* gen = nullptr);

  /// E^ATT(g) + E^HN(g), g (B, N, D) or (N, D). A mask or graph set on attention() applies.
  Tensor energy(const Tensor& g) override;
  Tensor energy_grad(const Tensor& g) override;
  std::pair<Tensor, Tensor> energy_and_grad(const Tensor& g) override;
  /// The full Lyapunov function of a token state x: E^LN(x) + E(LN(x)) (tutorial.py monitors it).
  Tensor total_energy(const Tensor& x);

  const std::shared_ptr<EnergyLayerNorm>& norm() const { return norm_; }
  const std::shared_ptr<EnergyAttention>& attention() const { return attn_; }
  /// The memory term as a HopfieldEnergy; null when the block was given another layer.
  std::shared_ptr<HopfieldEnergy> hopfield() const {
    return std::dynamic_pointer_cast<HopfieldEnergy>(hn_);
  }
  /// The memory term, whatever its type.
  const std::shared_ptr<EnergyModule>& memory() const { return hn_; }

 private:
  std::shared_ptr<EnergyLayerNorm> norm_;
  std::shared_ptr<EnergyAttention> attn_;
  std::shared_ptr<EnergyModule> hn_;
};

/// Builds a block from a config table (the "energy_transformer" registration): heads, head_dim,
/// memories, kind, beta, learnable_beta, exclude_self, bias, hopfield_beta, attn_init_std,
/// hopfield_init_std, eps, regularized,
/// and an optional [memory] subtable naming any registered energy layer (`type = ...`) to use
/// as the memory term instead of the Hopfield energy.
std::shared_ptr<EnergyTransformerBlock> make_energy_transformer_block(Config config, int64_t dim,
                                                                      Dtype dtype = Dtype::f32,
                                                                      Generator* gen = nullptr);

/// The block's dynamics as a Descent: g = block.norm()(x); x ← x − α ∂E/∂g, T = options.steps
/// times (the Descent registers the block as "energy" and its norm as "norm").
std::shared_ptr<Descent> energy_transformer_descent(std::shared_ptr<EnergyTransformerBlock> block,
                                                    DescentOptions options = {},
                                                    Generator* gen = nullptr);

}  // namespace basin::energy
