// The image Energy Transformer: masked image completion (Hoover et al. 2023, mission-anchors
// §2.6). Patches are encoded to tokens, masked ones replaced by a learned MASK token, a CLS token
// and positional embeddings added, and the tokens descend the energy of one weight-tied Energy
// Transformer block for T steps; the final tokens are normalised and decoded back to patches.
//
// Parameter names follow the paper code's roles: encoder.{weight,bias}, decoder.{weight,bias},
// cls_token (D,), mask_token (D,), pos_embed (1 + Np, D), et.norm.{gamma,delta},
// et.attn.{wq,wk} (H, Y, D), et.hn.xi (M, D), and step_size when α is trained.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"
#include "models/energy/et_block.h"
#include "models/nn/layers.h"

namespace basin::zoo {

/// (B, C, H, W) → (B, Np, C·p·p): patches in row-major order over the patch grid, each patch's
/// values ordered (channel, row, column) — einops "b c (gh p) (gw q) -> b (gh gw) (c p q)".
Tensor patchify(const Tensor& images, int64_t patch);
/// The 2-D sine-cosine positional table of MAE, (1 + gh·gw, dim): row 0 (CLS) is 0; for patch
/// (r, c), dimensions [0, dim/2) hold sin(r ω_k) then cos(r ω_k) and [dim/2, dim) the same of c,
/// with ω_k = 10000^(−k / (dim/4)), k = 0..dim/4 − 1 (MAE puts the column's half first; on a
/// square grid the two tables differ only by that swap). dim must be a multiple of 4.
Tensor sincos_pos_embed(int64_t grid_h, int64_t grid_w, int64_t dim, Dtype dtype = Dtype::f32);
/// The inverse of patchify for images of `channels` × `height` × `width`.
Tensor unpatchify(const Tensor& patches, int64_t patch, int64_t channels, int64_t height,
                  int64_t width);

struct ImageETOptions {
  int64_t channels = 3;
  int64_t height = 32;
  int64_t width = 32;
  int64_t patch = 4;
  int64_t dim = 128;              ///< D, the token dimension
  int steps = 12;                 ///< T, descent steps
  double step_size = 0.1;         ///< α
  bool learnable_step = false;    ///< α as the parameter "step_size"
  double token_init_std = 0.002;  ///< of cls_token, mask_token and pos_embed (paper code)
  /// The initial pos_embed: "normal" (N(0, token_init_std²), the paper code) or "sincos" (the
  /// fixed 2-D sine-cosine table of MAE, then learned: the first D/2 dimensions encode the patch
  /// row, the others its column, the CLS row is 0; D must be a multiple of 4).
  std::string pos_init = "normal";
  /// Pixel normalisation: the encoder sees (patch − mean) / std per channel and the decoder's
  /// output is mapped back, (out · std + mean), so predictions and losses stay in pixel units.
  /// Empty: mean 0 (std 1); else one value for every channel or one per channel. The paper code
  /// normalises ImageNet images this way ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]).
  std::vector<double> pixel_mean, pixel_std;
  Dtype dtype = Dtype::f32;

  int64_t grid_h() const { return height / patch; }
  int64_t grid_w() const { return width / patch; }
  int64_t num_patches() const { return grid_h() * grid_w(); }
  int64_t patch_values() const { return channels * patch * patch; }
};

/// Per-sample energies E(LN(x_t)) of a descent, t = 0..T: energies[t][b].
using EnergyTrace = std::vector<std::vector<double>>;

class ImageEnergyTransformer : public nn::Module {
 public:
  /// `block` supplies the energy (its dimension must be options.dim); its parameters are the
  /// child "et".
  ImageEnergyTransformer(ImageETOptions options,
                         std::shared_ptr<energy::EnergyTransformerBlock> block,
                         Generator* gen = nullptr);

  struct Output {
    Tensor pred;     ///< decoded patches (B, Np, P)
    Tensor patches;  ///< the input's patches (B, Np, P)
  };

  /// images (B, C, H, W); mask (B, Np) integer: 0 visible, 1 replaced by the MASK token (and
  /// scored), 2 visible but scored. With `trace`, also records every sample's energy at each
  /// step (unrecorded; costs one extra energy evaluation per step).
  Output run(const Tensor& images, const Tensor& mask, EnergyTrace* trace = nullptr);
  /// The tokens x_0 (B, 1 + Np, D) before the descent, from patches in pixel units.
  Tensor embed(const Tensor& patches, const Tensor& mask);
  /// T steps of x ← x − α ∂E/∂g, g = LN(x).
  Tensor descend(const Tensor& x, EnergyTrace* trace = nullptr);
  /// Patches in pixel units decoded from the final tokens (CLS dropped): decoder(LN(x_T)),
  /// mapped back through the pixel normalisation.
  Tensor decode(const Tensor& x);
  /// The images with every replaced patch (mask == 1, the ones the model did not see) taken
  /// from the model's prediction and the rest as given.
  Tensor complete(const Tensor& images, const Tensor& mask);
  /// complete() averaged over `views` transformed views of each image (test-time augmentation):
  /// 1 (the image alone), 4 (also its columns flipped, its rows flipped, and both) or 8 (also
  /// those four transposed; square images only). Each view transforms the images and their patch
  /// masks alike, is completed, and is transformed back; the average commutes with every
  /// transform of its group.
  Tensor complete_views(const Tensor& images, const Tensor& mask, int views);
  /// The same from a run's output: `fill` (default: the prediction) in the replaced patches,
  /// unpatchified to (B, C, H, W).
  Tensor merge(const Output& out, const Tensor& mask, const Tensor& fill = Tensor()) const;

  Tensor forward(const Tensor& x) override;  ///< not used: the model needs a mask (an error)

  const ImageETOptions& options() const { return options_; }
  energy::EnergyTransformerBlock& block() { return *block_; }
  /// α as a tensor (the parameter when learnable).
  Tensor step_size() const;

  std::shared_ptr<nn::Linear> encoder, decoder;
  Tensor cls_token, mask_token, pos_embed;
  /// The buffers "pixel_mean" and "pixel_std" (C,), when options.pixel_mean or pixel_std is set.
  Tensor pixel_mean, pixel_std;

 protected:
  std::string extra_repr() const override;

 private:
  /// A per-channel (C,) tensor repeated over each patch's values: (C·p·p,), on `device`.
  Tensor per_value(const Tensor& per_channel, Device device) const;

  ImageETOptions options_;
  std::shared_ptr<energy::EnergyTransformerBlock> block_;
  Tensor alpha_;
};

enum class ImageLoss {
  mse,   ///< mean over scored patches and their values of (pred − truth)²
  rmse,  ///< the paper code's: sqrt(mean over every value of ((pred − truth)·[scored])²)
};

/// Loads a checkpoint of the reference JAX code (energy-transformer-jax image_core.py's
/// `plaindict` .npz, also amtutorial's et_ckpt.npz) into `model`: Wq, Wk (H, Y, D), Xi (D, M),
/// Wenc (Z, D), Benc (D,), Wdec (D, Z), Bdec (Z,), CLS_token, MASK_token (D,), POS_embed
/// (1 + Np, D), LNORM_gamma (), LNORM_bias (D,). Every key must be present with the model's
/// sizes (an error names the key, its shape and the expected one); β is the model's own (the
/// reference fixes 1/√Y). Nothing is changed when any key is wrong.
void load_jax_checkpoint(ImageEnergyTransformer& model, const std::string& npz_path);

/// The training loss over the scored patches (mask > 0).
Tensor masked_patch_loss(const Tensor& pred, const Tensor& patches, const Tensor& mask,
                         ImageLoss kind = ImageLoss::mse);

}  // namespace basin::zoo
