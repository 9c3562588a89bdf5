// Images: PNG/JPEG/BMP reading and PNG writing through stb_image, and the image-folder dataset.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/dataset.h"

namespace basin::data {

/// Decodes an image file (PNG, JPEG, BMP, GIF's first frame, TGA, PNM, ...; 16-bit PNGs are reduced
/// to 8 bits) into u8 of shape (C, H, W). `channels` 0 keeps the file's channel count; 1 (gray),
/// 2 (gray, alpha), 3 (RGB) or 4 (RGBA) converts to it. A missing, unreadable or undecodable file
/// is a basin::Error naming the file and stb_image's reason.
Tensor read_image(const std::string& path, int channels = 0);

/// Writes an image as PNG: u8 (0-255), bool (0 or 255), or f32/f64 in [0, 1] (clamped, NaN as 0,
/// rounded to the nearest of 256 levels); shape (H, W) or (C, H, W) with C in 1-4 (gray, gray +
/// alpha, RGB, RGBA). The write is atomic: a temporary file is written, synced and renamed.
void write_png(const std::string& path, const Tensor& image);

/// u8 images (any shape) as f32 in [0, 1]: x / 255.
Tensor to_unit_float(const Tensor& image);

/// How image_folder reads and augments its images.
struct ImageFolderOptions {
  /// Channels to decode to: 0 keeps each file's own count (then images in one batch may differ),
  /// 1-4 converts (see read_image).
  int channels = 0;
  /// Crop every image to crop_height × crop_width (both 0: no crop). Images are never resized;
  /// one smaller than the crop (after padding) is an error naming the file.
  int64_t crop_height = 0;
  int64_t crop_width = 0;
  /// Zeros added on each side before cropping (as torchvision's RandomCrop(padding=...)); needs a
  /// crop size.
  int64_t padding = 0;
  /// Random crop positions when true, the centred crop (rounded towards the top left) when false.
  bool random_crop = true;
  /// Probability of flipping an image left-right.
  double flip_probability = 0.0;
  /// Key of the random augmentation.
  uint64_t seed = 0;
};

/// Labelled images in class subdirectories: root/<class>/**/<image>. Classes are the
/// subdirectories' names in sorted order (label k is classes()[k]); the images of a class are the
/// files below its directory with an image extension (.png, .jpg, .jpeg, .bmp, .gif, .tga, .pgm,
/// .ppm, .pnm, any case), in sorted path order; names starting with '.' are skipped. Item i is
/// {"image": f32 (C, H, W) in [0, 1], "label": i64 ()}; images are decoded when read.
///
/// Augmentation (crop position and flip) is drawn from Philox with key `seed` and counter
/// (item index, epoch), so it depends only on (seed, epoch, index): the same for any order,
/// batching, thread or machine. Call set_epoch at the start of each epoch to draw new crops.
class ImageFolder : public Dataset<Example> {
 public:
  /// Lists the classes and their image files (see image_folder for the errors).
  explicit ImageFolder(const std::string& root, ImageFolderOptions options = {});
  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  Example get(int64_t index) const override;

  /// Selects the epoch whose augmentation get() draws (non-negative). Thread-safe.
  void set_epoch(int64_t epoch);
  /// The epoch whose augmentation get() draws.
  int64_t epoch() const { return epoch_.load(); }
  /// The class names, sorted.
  const std::vector<std::string>& classes() const { return classes_; }
  /// The image file of each item.
  const std::vector<std::string>& files() const { return files_; }
  /// The label of each item.
  const std::vector<int64_t>& labels() const { return labels_; }

 private:
  std::string root_;
  ImageFolderOptions options_;
  std::vector<std::string> classes_;
  std::vector<std::string> files_;
  std::vector<int64_t> labels_;
  std::atomic<int64_t> epoch_{0};
};

/// The images below `root` by class (see ImageFolder). A missing root, a root without class
/// subdirectories or a class without images is an error naming the directory.
std::shared_ptr<ImageFolder> image_folder(const std::string& root, ImageFolderOptions options = {});

}  // namespace basin::data
