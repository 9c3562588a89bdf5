#include "data/photos.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/ops.h"
#include "core/random.h"
#include "data/image.h"

namespace basin::data {
namespace fs = std::filesystem;

namespace {

// The mean of each factor × factor block of a (C, H, W) image; the remainder rows and columns at
// the bottom and right are dropped.
Tensor box_reduce(const Tensor& image, int64_t factor) {
  if (factor == 1) return image;
  const int64_t c = image.shape(0), hh = image.shape(1) / factor, ww = image.shape(2) / factor;
  const Tensor cut = narrow(narrow(image, 1, 0, hh * factor), 2, 0, ww * factor);
  return mean(reshape(cut, {c, hh, factor, ww, factor}), {2, 4}).contiguous();
}

// The pixels' standard deviation over every channel.
double pixel_std(const float* x, int64_t n) {
  double s = 0, s2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    s += x[i];
    s2 += static_cast<double>(x[i]) * x[i];
  }
  const double m = s / static_cast<double>(n);
  return std::sqrt(std::max(0.0, s2 / static_cast<double>(n) - m * m));
}

// A uniform draw in [0, 1) from 32 random bits.
double unit(uint32_t bits) { return static_cast<double>(bits) * 0x1.0p-32; }

}  // namespace

Tensor load_photo(const std::string& path, const PhotoCropsOptions& options) {
  check(options.channels == 1 || options.channels == 3, "[photos] channels must be 1 or 3, got {}",
        options.channels);
  const Tensor image = to_unit_float(read_image(path, options.channels));  // (C, H, W)
  const int64_t longer = std::max(image.shape(1), image.shape(2));
  int64_t factor = 1;
  if (options.max_side > 0) {
    while (longer / factor > options.max_side) ++factor;
  }
  return box_reduce(image, factor).contiguous();
}

PhotoCrops::PhotoCrops(std::vector<Tensor> photos, PhotoCropsOptions options)
    : options_(std::move(options)) {
  check(!photos.empty(), "[photos] no photographs to crop");
  check(options_.crop > 0, "[photos] crop must be positive, got {}", options_.crop);
  check(options_.crops_per_epoch > 0, "[photos] crops_per_epoch must be positive, got {}",
        options_.crops_per_epoch);
  check(options_.flip_probability >= 0 && options_.flip_probability <= 1,
        "[photos] flip must lie in [0, 1], got {}", options_.flip_probability);
  check(options_.jitter >= 0 && options_.jitter < 1, "[photos] jitter must lie in [0, 1), got {}",
        options_.jitter);
  check(options_.min_std >= 0 && options_.min_std < 0.5,
        "[photos] min_std must lie in [0, 0.5), got {}", options_.min_std);
  check(!options_.scales.empty(), "[photos] scales must not be empty");
  for (size_t i = 0; i < photos.size(); ++i) {
    const Tensor& p = photos[i];
    check(p.ndim() == 3 && p.dtype() == Dtype::f32 && p.device().is_cpu(),
          "[photos] photograph {} must be an f32 (C, H, W) tensor on the CPU, got {} {}", i,
          dtype_name(p.dtype()), shape_str(p.shape()));
    for (const int64_t scale : options_.scales) {
      check(scale >= 1, "[photos] scales must be at least 1, got {}", scale);
      const Tensor s = box_reduce(p, scale).contiguous();
      check(s.shape(1) >= options_.crop && s.shape(2) >= options_.crop,
            "[photos] photograph {} is {} at scale 1/{}, smaller than a {}x{} crop", i,
            shape_str(p.shape()), scale, options_.crop, options_.crop);
      photos_.push_back(s);
      source_.push_back(static_cast<int64_t>(i));
    }
  }
}

void PhotoCrops::set_epoch(int64_t epoch) {
  check(epoch >= 0, "[photos] epoch must be non-negative, got {}", epoch);
  epoch_.store(epoch);
}

Example PhotoCrops::get(int64_t index) const {
  check_index("photos", index, size());
  const auto i = static_cast<uint64_t>(index), epoch = static_cast<uint64_t>(epoch_.load());
  const int64_t k = options_.crop;
  constexpr int kAttempts = 16;
  std::array<uint32_t, 4> r{};
  size_t which = 0;
  Tensor crop;
  // Draw 0 keeps the stream of the plain crops; redraws for min_std take further keys.
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    r = philox4x32(options_.seed + 0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(attempt), i,
                   epoch);
    which = r[0] % photos_.size();
    const Tensor& photo = photos_[which];
    const auto top = static_cast<int64_t>(r[1] % static_cast<uint64_t>(photo.shape(1) - k + 1));
    const auto left = static_cast<int64_t>(r[2] % static_cast<uint64_t>(photo.shape(2) - k + 1));
    crop = narrow(narrow(photo, 1, top, k), 2, left, k).contiguous();
    if (options_.min_std == 0 || pixel_std(crop.data<float>(), crop.numel()) >= options_.min_std) {
      break;
    }
  }
  if (unit(r[3]) < options_.flip_probability) crop = flip(crop, {2});
  const auto a = philox4x32(options_.seed ^ 0xA5A5A5A5F00DULL, i, epoch);  // the augmentations
  if (options_.dihedral) {
    if (a[0] & 1u) crop = flip(crop, {1});
    if (a[0] & 2u) crop = permute(crop, {0, 2, 1});
  }
  const int64_t c = crop.shape(0);
  if (options_.channel_shuffle && c == 3) {
    static constexpr int64_t kOrders[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                              {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    const auto& order = kOrders[a[1] % 6];
    crop = concat(
        {narrow(crop, 0, order[0], 1), narrow(crop, 0, order[1], 1), narrow(crop, 0, order[2], 1)},
        0);
  }
  crop = crop.contiguous();
  if (options_.jitter > 0) {
    crop = crop.clone();
    float* x = crop.data<float>();
    const int64_t n = crop.numel();
    double m = 0;
    for (int64_t j = 0; j < n; ++j) m += x[j];
    m /= static_cast<double>(n);
    const double contrast = 1 + options_.jitter * (2 * unit(a[2]) - 1);
    const double brightness = options_.jitter * (unit(a[3]) - 0.5);
    for (int64_t j = 0; j < n; ++j) {
      x[j] = static_cast<float>(std::clamp(m + contrast * (x[j] - m) + brightness, 0.0, 1.0));
    }
  }
  return {{"image", crop}, {"label", from_vector<int64_t>({source_[which]}, {})}};
}

DatasetPtr<Example> photo_tiles(const std::vector<Tensor>& photos, int64_t crop) {
  check(crop > 0, "[photos] crop must be positive, got {}", crop);
  Tensors tiles;
  std::vector<int64_t> labels;
  for (size_t i = 0; i < photos.size(); ++i) {
    const Tensor& p = photos[i];
    for (int64_t y = 0; y + crop <= p.shape(1); y += crop) {
      for (int64_t x = 0; x + crop <= p.shape(2); x += crop) {
        tiles.push_back(narrow(narrow(p, 1, y, crop), 2, x, crop).contiguous());
        labels.push_back(static_cast<int64_t>(i));
      }
    }
  }
  check(!tiles.empty(), "[photos] the held-out photographs hold no {}x{} tile", crop, crop);
  const auto n = static_cast<int64_t>(labels.size());
  return tensor_dataset({{"image", stack(tiles, 0)}, {"label", from_vector(labels, Shape{n})}});
}

std::vector<std::string> list_images(const std::string& folder) {
  check(fs::is_directory(folder), "[photos] {} is not a folder", folder);
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(folder)) {
    std::string ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (entry.is_regular_file() &&
        (ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp")) {
      files.push_back(entry.path().filename().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace basin::data
