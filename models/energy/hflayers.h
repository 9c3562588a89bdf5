// Hopfield layers with the arguments, parameter names and semantics of the PyTorch package
// hflayers (ml-jku/hopfield-layers v1.0.2; Ramsauer et al., "Hopfield Networks is All You Need",
// ICLR 2021): Hopfield, HopfieldPooling and HopfieldLayer, plus what hflayers lacks: a learnable
// β per head, association_matrix() with gradients, retrieve() (per-head retrieved patterns) and
// energy() (the modern Hopfield energy). The formulas are in reference/mission-anchors.md §2.3–2.4.
//
//   HopfieldPooling pool({.input_size = 500, .hidden_size = 32, .output_size = 500}, 1, true,
//   &gen); Tensor z = pool.forward(bags, padding);   // bags (B, S, 500), padding (B, S) bool ->
//   (B, 500)
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"
#include "models/nn/layers.h"
#include "models/nn/module.h"

namespace basin::energy {

/// Every constructor argument of hflayers' Hopfield, in its order and with its defaults, plus
/// `learnable_scaling`. An unset optional is hflayers' None. Built with designated initialisers:
/// HopfieldOptions{.input_size = 8, .num_heads = 2, .update_steps_max = 3}.
struct HopfieldOptions {
  /// Depth of the state patterns R (and default of every other depth). Required unless the layer
  /// runs in "static execution" (all three patterns static, no Hopfield-space normalisation, no
  /// connected projection, no output projection), where the depths come from the inputs.
  std::optional<int64_t> input_size = std::nullopt;
  /// Depth of the association space per head (head_dim); None -> input_size / num_heads.
  std::optional<int64_t> hidden_size = std::nullopt;
  /// Depth of the output projection; None -> input_size.
  std::optional<int64_t> output_size = std::nullopt;
  /// Depth of the projected pattern per head; None -> hidden_size.
  std::optional<int64_t> pattern_size = std::nullopt;
  int64_t num_heads = 1;
  /// β: empty -> 1/sqrt(head_dim) (1 in static execution); one value -> every head; num_heads
  /// values -> one per head (head h uses scaling[h]). Every value must be positive.
  std::vector<double> scaling = {};
  /// Makes β a trained parameter "scaling" of shape (num_heads,), initialised as above (not in
  /// hflayers, where β is a constant; a state_dict from hflayers then lacks that one key).
  bool learnable_scaling = false;
  /// Extra update steps after the first: 0 = one update (attention), -1 = unlimited (hflayers'
  /// None; stops only by update_steps_eps).
  int64_t update_steps_max = 0;
  /// A head stops updating once max over the batch of ‖P^t − P^{t−1}‖_F ≤ eps (P its (L, S)
  /// association matrix); must be positive.
  double update_steps_eps = 1e-4;

  /// LayerNorm over the features of the stored patterns Y before their projection.
  bool normalize_stored_pattern = true;
  bool normalize_stored_pattern_affine = true;
  double normalize_stored_pattern_eps = 1e-5;
  /// LayerNorm of the state patterns R.
  bool normalize_state_pattern = true;
  bool normalize_state_pattern_affine = true;
  double normalize_state_pattern_eps = 1e-5;
  /// LayerNorm of the pattern projection input V.
  bool normalize_pattern_projection = true;
  bool normalize_pattern_projection_affine = true;
  double normalize_pattern_projection_eps = 1e-5;
  /// LayerNorm over head_dim of the projected state and stored patterns (one weight and bias,
  /// "association_core.p_norm_weight/bias", shared by the heads), before the first update only.
  bool normalize_hopfield_space = false;
  bool normalize_hopfield_space_affine = false;
  double normalize_hopfield_space_eps = 1e-5;

  /// A static pattern is used as it is (no projection), the same for every head; its depth must
  /// then be head_dim (stored, state) or pattern_size (projection, unless the output projection
  /// is disabled). hflayers mixes up batch and head entries of static patterns when num_heads > 1
  /// and the batch has more than one sample; here every head sees its own sample's pattern.
  bool stored_pattern_as_static = false;
  bool state_pattern_as_static = false;
  bool pattern_projection_as_static = false;
  /// The pattern projection goes through the stored-pattern projection first (W_K then W_V,
  /// paper Eq. 32); needs stored_pattern_size == pattern_projection_size and pattern_size ==
  /// hidden_size.
  bool pattern_projection_as_connected = false;
  /// Depth of the stored patterns; None -> input_size.
  std::optional<int64_t> stored_pattern_size = std::nullopt;
  /// Depth of the pattern projection input; None -> input_size.
  std::optional<int64_t> pattern_projection_size = std::nullopt;

  /// basin is always batch-first: every input is (batch, length, features), as hflayers' default.
  /// false is an error (transpose the inputs instead).
  bool batch_first = true;
  /// An activation applied to the output, by nn::activation's names ("relu", "tanh", "sigmoid",
  /// "gelu", "silu", ...); hflayers looks the name up in torch.*.
  std::optional<std::string> association_activation = std::nullopt;
  /// Dropout probability on the association matrix (training mode only).
  double dropout = 0.0;
  /// Biases of the state/stored/projection projections ("association_core.in_proj_bias") and of
  /// the output projection.
  bool input_bias = true;
  /// Appends a learned row ("association_core.bias_k" / "bias_v") to the projected stored patterns
  /// and pattern projections (PyTorch's add_bias_kv); needs both projected (not static). hflayers
  /// documents this but never appends the rows (its test `key_as_static is None` is always false
  /// for a bool), so its outputs ignore bias_k/bias_v; here they are used.
  bool concat_bias_pattern = false;
  /// Appends a zero row to the stored patterns and pattern projections (PyTorch's add_zero_attn).
  bool add_zero_association = false;
  /// No output projection: the output is the heads' retrieved patterns, concatenated.
  bool disable_out_projection = false;
};

/// The association parameters, under hflayers' HopfieldCore names so that a PyTorch state_dict
/// loads by name: "in_proj_weight" (the q, k and v rows stacked, when the three depths agree and
/// the projection is not connected) or "q_proj_weight" / "k_proj_weight" / "v_proj_weight",
/// "in_proj_bias", "out_proj.weight" / "out_proj.bias", "bias_k" / "bias_v", "p_norm_weight" /
/// "p_norm_bias". Tensors a configuration does not use are undefined. Hopfield builds it from its
/// resolved depths (head_dim, pattern size, stored and projection depths).
class HopfieldCore : public nn::Module {
 public:
  HopfieldCore(const HopfieldOptions& options, int64_t head_dim, int64_t pattern_dim, int64_t kdim,
               int64_t vdim, Generator* gen);

  /// True when q, k and v share one "in_proj_weight" (hflayers' _qkv_same_embed_dim).
  bool packed() const { return packed_; }

  Tensor in_proj_weight;  // ((!qs + !ks) H·head_dim + !vs H·pattern, input_size)
  Tensor q_proj_weight;   // (H·head_dim, input_size)
  Tensor k_proj_weight;   // (H·head_dim, stored_pattern_size)
  Tensor v_proj_weight;   // (H·pattern, connected ? H·head_dim : pattern_projection_size)
  Tensor in_proj_bias;    // ((!qs + !ks) H·head_dim + H·pattern)
  Tensor bias_k;          // (1, 1, H·head_dim)
  Tensor bias_v;          // (1, 1, H·pattern) (hflayers: H·head_dim, the same by default)
  Tensor p_norm_weight;   // (head_dim)
  Tensor p_norm_bias;     // (head_dim)
  std::shared_ptr<nn::Linear> out_proj;  // H·pattern -> output_size; null when disabled

 private:
  bool packed_ = false;
};

/// Hopfield association of state patterns R (B, L, input_size) with stored patterns Y
/// (B, S, stored_pattern_size), retrieving from the pattern projection V (B, S,
/// pattern_projection_size). Per head h, after the optional LayerNorms:
///   Q_h = R W_Q,h + b,  K_h = Y W_K,h + b,  V_h = V W_V,h + b   (each optionally static),
///   ξ⁰ = Q_h,  P^t = softmax(β_h ξ^t K_hᵀ + masks),  ξ^{t+1} = P^t K_h,
/// iterated while t < update_steps_max (or forever for -1) and the head's association matrix
/// still moves by more than update_steps_eps; then Z = concat_h(dropout(P^T) V_h) W_O + b_O.
/// Masks: a stored-pattern padding mask (B, S), true = ignored; an association mask (L, S),
/// (B·H, L, S) (hflayers' layout, sample-major) or (B or 1, H or 1, L, S), bool (true -> −∞) or
/// floating (added to the logits). A row with every stored pattern masked gives zero weights
/// (PyTorch gives NaN). Parameters are initialised as in hflayers: projections, bias_k/bias_v
/// N(0, 0.02²), biases 0, LayerNorms 1/0; the generator also drives dropout and must outlive the
/// layer.
class Hopfield : public nn::Module {
 public:
  explicit Hopfield(HopfieldOptions options = {}, Generator* gen = nullptr);

  /// One tensor (B, S, input_size) used as stored patterns, state patterns and projection.
  Tensor forward(const Tensor& input) override;
  /// (B, L, output_size) (or (B, L, H·pattern_size) without output projection).
  Tensor forward(const Tensor& stored, const Tensor& state, const Tensor& projection,
                 const Tensor& stored_padding_mask = Tensor(),
                 const Tensor& association_mask = Tensor());

  /// The per-head association matrix after the last update, before dropout: (B, H, L, S), rows
  /// summing to 1 (S counts the bias and zero rows when enabled). hflayers'
  /// get_association_matrix, but differentiable.
  Tensor association_matrix(const Tensor& stored, const Tensor& state,
                            const Tensor& stored_padding_mask = Tensor(),
                            const Tensor& association_mask = Tensor());
  /// The per-head retrieved patterns P^T V_h before the heads are joined and projected:
  /// (B, H, L, pattern_size). Dropout applies in training mode, as in forward().
  Tensor retrieve(const Tensor& stored, const Tensor& state, const Tensor& projection,
                  const Tensor& stored_padding_mask = Tensor(),
                  const Tensor& association_mask = Tensor());
  /// The modern Hopfield energy (Ramsauer et al., Eq. 2) of each sample's projected state
  /// patterns ξ = Q_h[l] with respect to its projected stored patterns K_h, summed over heads and
  /// state patterns: (B,). Per head and state pattern, over the unmasked stored patterns k_s
  /// (n of them; float association masks a_s are added to the logits):
  ///   E = −β⁻¹ log Σ_s exp(β ξᵀk_s + a_s) + ½ ξᵀξ + β⁻¹ log n + ½ max_s ‖k_s‖²,
  /// which the update ξ ← softmax(β K ξ + a)ᵀ K never increases (CCCP). Differentiable in the
  /// inputs, the parameters and β.
  Tensor energy(const Tensor& stored, const Tensor& state,
                const Tensor& stored_padding_mask = Tensor(),
                const Tensor& association_mask = Tensor());

  const HopfieldOptions& options() const { return options_; }
  int64_t num_heads() const { return options_.num_heads; }
  /// head_dim; 0 in static execution, where it is the inputs' depth.
  int64_t hidden_size() const { return head_dim_; }
  /// Pattern size per head; 0 in static execution.
  int64_t pattern_size() const { return pattern_dim_; }
  /// Depth of forward()'s output; 0 where it depends on the inputs (static execution).
  int64_t output_size() const;
  /// β per head, (num_heads,) float64 (the parameter's current values when learnable).
  Tensor scaling() const;
  HopfieldCore& association_core() { return *core_; }

 protected:
  std::string extra_repr() const override;

 private:
  friend class HopfieldPooling;
  friend class HopfieldLayer;
  struct Association;

  Hopfield(HopfieldOptions options, Generator* gen, std::string who);

  Association associate(const Tensor& stored, const Tensor& state, const Tensor& projection,
                        const Tensor& stored_padding_mask, const Tensor& association_mask) const;
  Tensor iterate(const Association& a) const;
  Tensor heads_output(const Tensor& p, const Association& a);
  Tensor finish(const Tensor& retrieved) const;

  HopfieldOptions options_;
  std::string who_;  // the layer named in error messages (the pooling or lookup layer around it)
  bool static_execution_ = false;
  int64_t head_dim_ = 0, pattern_dim_ = 0;
  // The depths the state, stored and projection inputs must have; 0 where the input decides.
  int64_t state_dim_ = 0, stored_dim_ = 0, projection_dim_ = 0;
  std::vector<double> beta_;  // when not learnable
  Tensor beta_param_;         // (H) when learnable
  std::shared_ptr<HopfieldCore> core_;
  std::shared_ptr<nn::LayerNorm> norm_stored_, norm_state_, norm_projection_;
  std::shared_ptr<nn::Activation> activation_;
  Generator* gen_;
};

/// Hopfield pooling (hflayers' HopfieldPooling): `quantity` learned state patterns
/// "pooling_weights" (1, quantity, input_size) — (1, quantity, hidden_size) when the state is
/// static — initialised N(0, 0.02²) and shared by every sample, associated with the input used as
/// stored patterns and projection; the output (B, quantity, output_size) is flattened to
/// (B, quantity·output_size). A padding mask (B, S) (true = padding) pools ragged bags padded to
/// one length: padded instances get zero weight and do not change the output (with
/// update_steps_max != 0 the eps stop rule still looks at the whole batch, as in hflayers, so
/// the number of updates can depend on the other bags). With trainable = false the pooling
/// weights are a buffer (saved, not trained); they take the input's dtype in the computation.
/// The inner layer is the child "hopfield", so names are hflayers'
/// ("hopfield.association_core.in_proj_weight").
class HopfieldPooling : public nn::Module {
 public:
  explicit HopfieldPooling(HopfieldOptions options, int64_t quantity = 1, bool trainable = true,
                           Generator* gen = nullptr);

  /// input (B, S, input_size) -> (B, quantity·output_size).
  Tensor forward(const Tensor& input) override;
  /// The same with a padding mask (B, S) and/or an association mask ((quantity, S), ...).
  Tensor forward(const Tensor& input, const Tensor& stored_padding_mask,
                 const Tensor& association_mask = Tensor());
  /// Separate stored patterns and pattern projection (hflayers' tuple input).
  Tensor forward(const Tensor& stored, const Tensor& projection, const Tensor& stored_padding_mask,
                 const Tensor& association_mask);
  /// The pooling weights over the instances: (B, H, quantity, S) (hflayers issue #23).
  Tensor association_matrix(const Tensor& input, const Tensor& stored_padding_mask = Tensor(),
                            const Tensor& association_mask = Tensor());
  /// Per-head pooled patterns (B, H, quantity, pattern_size), before the output projection.
  Tensor retrieve(const Tensor& input, const Tensor& stored_padding_mask = Tensor(),
                  const Tensor& association_mask = Tensor());
  /// Hopfield::energy of the pooling weights w.r.t. the input: (B,).
  Tensor energy(const Tensor& input, const Tensor& stored_padding_mask = Tensor(),
                const Tensor& association_mask = Tensor());

  int64_t quantity() const { return quantity_; }
  Hopfield& hopfield() { return *hopfield_; }

  Tensor pooling_weights;  // (1, quantity, d)

 private:
  /// The pooling weights for every sample of `stored`, in its dtype.
  Tensor state(const Tensor& stored) const;

  int64_t quantity_;
  std::shared_ptr<Hopfield> hopfield_;
};

/// Hopfield lookup (hflayers' HopfieldLayer): `quantity` learned stored patterns
/// "lookup_weights" (1, quantity, stored_pattern_size) — hidden_size when the stored patterns are
/// static — are the memory the input (B, L, input_size) state patterns retrieve from; the pattern
/// projection is the lookup weights themselves or, with lookup_weights_as_separated, learned
/// "target_weights" (1, quantity, pattern_projection_size), a buffer unless
/// lookup_targets_as_trainable. All start N(0, 0.02²). Output (B, L, output_size).
class HopfieldLayer : public nn::Module {
 public:
  explicit HopfieldLayer(HopfieldOptions options, int64_t quantity = 1,
                         bool lookup_weights_as_separated = false,
                         bool lookup_targets_as_trainable = true, bool trainable = true,
                         Generator* gen = nullptr);

  Tensor forward(const Tensor& input) override;
  /// With a padding mask over the lookup entries (B, quantity) and/or an association mask.
  Tensor forward(const Tensor& input, const Tensor& stored_padding_mask,
                 const Tensor& association_mask = Tensor());
  /// (B, H, L, quantity).
  Tensor association_matrix(const Tensor& input, const Tensor& stored_padding_mask = Tensor(),
                            const Tensor& association_mask = Tensor());
  /// (B, H, L, pattern_size).
  Tensor retrieve(const Tensor& input, const Tensor& stored_padding_mask = Tensor(),
                  const Tensor& association_mask = Tensor());
  /// (B,).
  Tensor energy(const Tensor& input, const Tensor& stored_padding_mask = Tensor(),
                const Tensor& association_mask = Tensor());

  int64_t quantity() const { return quantity_; }
  Hopfield& hopfield() { return *hopfield_; }

  Tensor lookup_weights;  // (1, quantity, d)
  Tensor target_weights;  // (1, quantity, pattern_projection_size); undefined unless separated

 private:
  /// The lookup (target) weights for every sample of `input`, in its dtype.
  Tensor stored(const Tensor& input) const;
  Tensor targets(const Tensor& input) const;

  int64_t quantity_;
  std::shared_ptr<Hopfield> hopfield_;
};

}  // namespace basin::energy
