// Random crops of a few photographs: a training set for masked-image models from a flat folder of
// images (../shared/data/skimage-photos), with the held-out photographs cut into fixed tiles.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace basin::data {

struct PhotoCropsOptions {
  int64_t crop = 32;  ///< side of the square crops
  int channels = 3;   ///< 1 (gray) or 3 (RGB; gray photographs are repeated)
  /// Each photograph is first reduced by the smallest integer box factor that brings its longer
  /// side to at most max_side pixels (0: full resolution), so a crop sees objects, not texture.
  int64_t max_side = 256;
  int64_t crops_per_epoch = 4096;  ///< items of the random-crop dataset
  double flip_probability = 0.5;   ///< left-right flips of the random crops
  /// Also up-down flips and transposes, each with probability 1/2: with the left-right flips,
  /// the eight symmetries of the square.
  bool dihedral = false;
  /// Random order of the colour channels (RGB only), so that no colour is learned as a prior.
  bool channel_shuffle = false;
  /// Contrast and brightness jitter: the crop becomes clamp(m + c (x − m) + b, 0, 1) with m its
  /// mean, c uniform in [1 − jitter, 1 + jitter] and b in [−jitter / 2, jitter / 2]. 0: none.
  double jitter = 0.0;
  /// Crops whose pixel standard deviation is below this are drawn again (up to 16 times), so
  /// that flat regions — the black sky of an astronomical image — do not fill the batches.
  double min_std = 0.0;
  /// Each training photograph is kept at these further box reductions as well (1: as loaded),
  /// so the crops see several scales.
  std::vector<int64_t> scales = {1};
  uint64_t seed = 0;  ///< key of the crops' Philox stream
};

/// Decodes a photograph as f32 (channels, H, W) in [0, 1], box-reduced as the options say.
Tensor load_photo(const std::string& path, const PhotoCropsOptions& options);

/// Item i of epoch e: a crop × crop patch of a photograph, photograph, position and the
/// augmentations drawn from Philox(seed, i, e) — the same for any access order, thread or
/// machine. Items are {"image": f32 (C, crop, crop), "label": i64 () = the photograph's index}.
class PhotoCrops : public Dataset<Example> {
 public:
  /// `photos` (each (C, H, W) at least crop × crop) as load_photo gives them; the options'
  /// further scales are made here.
  PhotoCrops(std::vector<Tensor> photos, PhotoCropsOptions options);
  int64_t size() const override { return options_.crops_per_epoch; }
  Example get(int64_t index) const override;
  /// Selects the epoch's crops.
  void set_epoch(int64_t epoch);

 private:
  std::vector<Tensor> photos_;   // every scale of every photograph
  std::vector<int64_t> source_;  // which input photograph each entry of photos_ came from
  PhotoCropsOptions options_;
  std::atomic<int64_t> epoch_{0};
};

/// Every photograph cut into non-overlapping crop × crop tiles (row-major, the remainder at the
/// right and bottom edges dropped), as a fixed evaluation set with the same item layout.
DatasetPtr<Example> photo_tiles(const std::vector<Tensor>& photos, int64_t crop);

/// The image files of a folder (.png, .jpg, .jpeg, .bmp, any case; sorted by name).
std::vector<std::string> list_images(const std::string& folder);

}  // namespace basin::data
