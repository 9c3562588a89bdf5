#include "data/photos.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "core/error.h"
#include "core/ops.h"
#include "core/random.h"
#include "data/image.h"

namespace basin::data {
namespace fs = std::filesystem;

Tensor load_photo(const std::string& path, const PhotoCropsOptions& options) {
  check(options.channels == 1 || options.channels == 3, "[photos] channels must be 1 or 3, got {}",
        options.channels);
  Tensor image = to_unit_float(read_image(path, options.channels));  // (C, H, W)
  const int64_t c = image.shape(0), h = image.shape(1), w = image.shape(2);
  int64_t factor = 1;
  if (options.max_side > 0) {
    while (std::max(h, w) / factor > options.max_side) ++factor;
  }
  if (factor > 1) {
    const int64_t hh = h / factor, ww = w / factor;
    const Tensor cut = narrow(narrow(image, 1, 0, hh * factor), 2, 0, ww * factor);
    image = mean(reshape(cut, {c, hh, factor, ww, factor}), {2, 4});
  }
  return image.contiguous();
}

PhotoCrops::PhotoCrops(std::vector<Tensor> photos, PhotoCropsOptions options)
    : photos_(std::move(photos)), options_(options) {
  check(!photos_.empty(), "[photos] no photographs to crop");
  check(options_.crop > 0, "[photos] crop must be positive, got {}", options_.crop);
  check(options_.crops_per_epoch > 0, "[photos] crops_per_epoch must be positive, got {}",
        options_.crops_per_epoch);
  check(options_.flip_probability >= 0 && options_.flip_probability <= 1,
        "[photos] flip must lie in [0, 1], got {}", options_.flip_probability);
  for (size_t i = 0; i < photos_.size(); ++i) {
    const Tensor& p = photos_[i];
    check(p.ndim() == 3 && p.shape(1) >= options_.crop && p.shape(2) >= options_.crop,
          "[photos] photograph {} is {}, smaller than a {}x{} crop", i, shape_str(p.shape()),
          options_.crop, options_.crop);
  }
}

void PhotoCrops::set_epoch(int64_t epoch) {
  check(epoch >= 0, "[photos] epoch must be non-negative, got {}", epoch);
  epoch_.store(epoch);
}

Example PhotoCrops::get(int64_t index) const {
  check_index("photos", index, size());
  const auto r =
      philox4x32(options_.seed, static_cast<uint64_t>(index), static_cast<uint64_t>(epoch_.load()));
  const size_t which = r[0] % photos_.size();
  const Tensor& photo = photos_[which];
  const int64_t k = options_.crop;
  const auto top = static_cast<int64_t>(r[1] % static_cast<uint64_t>(photo.shape(1) - k + 1));
  const auto left = static_cast<int64_t>(r[2] % static_cast<uint64_t>(photo.shape(2) - k + 1));
  Tensor crop = narrow(narrow(photo, 1, top, k), 2, left, k);
  const double u = static_cast<double>(r[3]) * 0x1.0p-32;
  if (u < options_.flip_probability) crop = flip(crop, {2});
  return {{"image", crop.contiguous()},
          {"label", from_vector<int64_t>({static_cast<int64_t>(which)}, {})}};
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
