// Patch masks for masked image modelling: which patches of a gh × gw grid are replaced by the MASK
// token, kept but scored, or left alone — the strategies of the Energy Transformer paper code.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"

namespace basin::data {

/// Mask value of a patch that is visible and not scored.
inline constexpr int64_t kMaskVisible = 0;
/// Mask value of a patch replaced by the MASK token and scored by the loss.
inline constexpr int64_t kMaskReplaced = 1;
/// Mask value of a patch left visible but still scored by the loss (the paper code's value 2).
inline constexpr int64_t kMaskKeptScored = 2;

/// A number of patches: `count` patches, or the fraction `ratio` of the grid (rounded to the
/// nearest count) when is_ratio.
struct MaskAmount {
  int64_t count = 0;
  double ratio = 0.0;
  bool is_ratio = false;

  /// The count for a grid of n patches.
  int64_t resolve(int64_t n) const;
  bool operator==(const MaskAmount&) const = default;
};

/// How to draw a mask, written as text in configs (`parse_mask_spec`):
///
///   scatter:A            A patches replaced, at uniformly random distinct positions
///   scatter:A,B          ... and B more kept but scored (the paper's MultiScatterMask([A, B]))
///   multi_scatter:A,B    the paper's name for scatter:A,B
///   block:A              one rectangular block of A patches with a random aspect ratio (1:3 to
///                        3:1) at a random position inside the grid; when A is not a product h × w
///                        of its sides, the block's last row is partly filled, so the count is
///                        exact
///   block:A,B            a block of A + B patches of which B random ones are kept but scored
///                        (the paper's MultiValueBlockMask)
///   block:AxK, block:A,BxK   K blocks (A + B patches in all, split evenly), placed without
///                        overlapping when the grid allows it; otherwise the region grows into
///                        neighbouring patches until the count is exact
///   mixture:S1@p1,S2@p2,...  per image, strategy Si with probability pi (they must add up to 1);
///                        each Si is one of the forms above (not a mixture)
///
/// An amount A or B is a count ("32") or, written with a decimal point or a percent sign, a
/// fraction of the grid ("0.5", "50%"), rounded to the nearest count. Spaces are ignored. Examples:
/// "scatter:0.5", "scatter:100", "multi_scatter:90,10", "block:49", "block:0.25x2",
/// "mixture:scatter:0.5@0.5,block:0.5@0.5".
struct MaskSpec {
  enum class Strategy { scatter, block, mixture };
  Strategy strategy = Strategy::scatter;
  /// Patches replaced by the MASK token (value 1).
  MaskAmount replaced;
  /// Patches kept visible but scored (value 2).
  MaskAmount kept;
  /// block: the number of blocks (at least 1).
  int64_t blocks = 1;
  /// mixture: the strategies and their probabilities (adding up to 1).
  std::vector<MaskSpec> components;
  std::vector<double> probabilities;

  bool operator==(const MaskSpec&) const = default;
};

/// Parses the text form documented at MaskSpec. A malformed spec is a basin::Error quoting it and
/// saying what is wrong.
MaskSpec parse_mask_spec(const std::string& text);

/// The canonical text of `spec`; parse_mask_spec(to_string(spec)) == spec.
std::string to_string(const MaskSpec& spec);

/// One mask per image: (batch, gh * gw) int64 holding kMaskVisible, kMaskReplaced and
/// kMaskKeptScored, patches in row-major grid order (patch (r, c) at r * gw + c). Image b's mask is
/// make_mask(spec, gh, gw, gen->seed(), first + b) where first is the generator's position, which
/// advances by `batch`: the masks depend on the seed and position only, not on how the batch is
/// cut. Counts larger than the grid are an error naming the spec and the grid. `gen` null uses the
/// default generator.
Tensor make_masks(const MaskSpec& spec, int64_t batch, int64_t gh, int64_t gw,
                  Generator* gen = nullptr);

/// The mask (gh * gw,) int64 of one image, drawn from Philox with key `seed` and counter block
/// `index` (so a dataset can give item i, epoch e its own mask from index = e * size + i).
Tensor make_mask(const MaskSpec& spec, int64_t gh, int64_t gw, uint64_t seed, uint64_t index);

}  // namespace basin::data
