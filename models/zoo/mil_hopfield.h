// Multiple-instance learning with Hopfield pooling (Ramsauer et al., "Hopfield Networks is All You
// Need", ICLR 2021, A.5.2.2): an instance embedding MLP, HopfieldPooling over each bag's instances
// with learned state patterns (queries), and a ReLU–Linear head that gives one logit per bag.
// The task "mil_hopfield" (mil_hopfield.cpp) trains it on MIL bags; see docs/mil.md.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/config.h"
#include "core/random.h"
#include "core/tensor.h"
#include "models/energy/hflayers.h"
#include "models/nn/layers.h"
#include "models/nn/module.h"

namespace basin::zoo {

/// The shape of a MilHopfield model.
struct MilHopfieldOptions {
  /// Features per instance (F).
  int64_t num_features = 0;
  /// Widths of the embedding layers (each Linear followed by ReLU); the last is the pooling's
  /// input_size E. At least one.
  std::vector<int64_t> embedding = {256, 128};
  /// The pooling's Hopfield arguments; input_size is set to embedding.back().
  energy::HopfieldOptions hopfield;
  /// Learned state patterns (queries) of the pooling.
  int64_t quantity = 1;
};

/// Reads MilHopfieldOptions from a config's [model] section (see mil_hopfield.cpp's header
/// comment for the keys); every value is checked, with errors naming the key.
MilHopfieldOptions mil_hopfield_options(Config model, int64_t num_features);

/// Bag classifier: h = ReLU(Linear(... ReLU(Linear(x)))) per instance, z = HopfieldPooling(h) over
/// the bag (B, quantity·output_size), logit = Linear(ReLU(z)). Children "embedding" (Sequential:
/// "embedding.0.weight", "embedding.2.weight", ...), "pooling" (energy::HopfieldPooling,
/// "pooling.hopfield.association_core.in_proj_weight", ...) and "classifier" (Linear to one
/// output), so a PyTorch module with the same attribute names loads by name. Parameters are drawn
/// from `gen` (the default generator when null), which also drives association dropout and must
/// then outlive the model.
class MilHopfield : public nn::Module {
 public:
  explicit MilHopfield(MilHopfieldOptions options, Generator* gen = nullptr);

  /// instances (B, N, F), padding_mask (B, N) bool with true at padding (undefined: no padding)
  /// -> logits (B,).
  Tensor forward(const Tensor& instances, const Tensor& padding_mask);
  /// Unpadded bags (B, N, F) -> logits (B,).
  Tensor forward(const Tensor& instances) override;
  /// The pooling's attention over each bag's instances (its association matrix, before dropout):
  /// (B, heads, quantity, N), each row summing to one over the bag's real instances, zero at
  /// padding.
  Tensor attention(const Tensor& instances, const Tensor& padding_mask);
  /// The instance embeddings (B, N, E).
  Tensor embed(const Tensor& instances);

  const MilHopfieldOptions& options() const { return options_; }

  std::shared_ptr<nn::Sequential> embedding;
  std::shared_ptr<energy::HopfieldPooling> pooling;
  std::shared_ptr<nn::Linear> classifier;

 private:
  MilHopfieldOptions options_;
};

}  // namespace basin::zoo
