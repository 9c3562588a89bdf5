// A built-in dataset of procedurally generated images (shapes, gradients, stripes, checkerboards,
// smooth noise), for demos and tests that need images with learnable structure but no files.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/tensor.h"
#include "data/dataset.h"

namespace basin::data {

/// The kinds of procedural image; an item's "label" is its kind.
enum class ProceduralKind : int64_t {
  /// One to four filled discs, rectangles and triangles (antialiased, random colours, sizes and
  /// rotations) over a two-colour linear gradient.
  shapes = 0,
  /// A linear (any angle) or radial gradient through two or three colours.
  gradient = 1,
  /// Soft-edged stripes of two colours at a random angle, period and phase.
  stripes = 2,
  /// A soft-edged checkerboard of two colours at a random angle and cell size.
  checkerboard = 3,
  /// Smooth value noise (two octaves, bicubic-smooth) coloured through a two- or three-colour ramp.
  noise = 4,
};

/// The number of ProceduralKind values.
inline constexpr int64_t kProceduralKinds = 5;

/// The name of a kind: "shapes", "gradient", "stripes", "checkerboard", "noise".
const char* procedural_kind_name(ProceduralKind kind);

/// Size and contents of a ProceduralImages dataset.
struct ProceduralOptions {
  /// Images are size × size pixels (at least 4).
  int64_t size = 32;
  /// 1 (gray: the luma of the colours) or 3 (RGB).
  int64_t channels = 3;
  /// The number of items.
  int64_t count = 10000;
  /// Key of the random stream: item i is drawn from Philox with key `seed` and counter block i.
  uint64_t seed = 0;
};

/// Item i is {"image": f32 (channels, size, size) in [0, 1], "label": i64 () = its ProceduralKind},
/// generated on each get from (seed, i) alone: the same for any access order, thread or machine.
/// Kinds are drawn uniformly per item. Scale parameters (shape sizes, stripe periods, noise cells)
/// are relative to `size`, so every size shows the same kinds of structure: smooth regions and
/// sharp but antialiased edges that a masked-patch model can learn to complete, never white noise.
class ProceduralImages : public Dataset<Example> {
 public:
  /// Checks the options (size >= 4, channels 1 or 3, count >= 0).
  explicit ProceduralImages(ProceduralOptions options = {});
  int64_t size() const override { return options_.count; }
  Example get(int64_t index) const override;

  /// The kind of item `index`, without drawing its image.
  ProceduralKind kind(int64_t index) const;
  /// The image of item `index`: f32 (channels, size, size) in [0, 1].
  Tensor image(int64_t index) const;
  const ProceduralOptions& options() const { return options_; }

 private:
  ProceduralOptions options_;
};

/// A shared ProceduralImages dataset.
std::shared_ptr<ProceduralImages> procedural_images(ProceduralOptions options = {});

}  // namespace basin::data
