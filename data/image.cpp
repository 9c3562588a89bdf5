// Image decoding and PNG encoding with stb_image (compiled here, with static linkage so that it
// cannot clash with a user's own copy), and the image-folder dataset.
#include "data/image.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/movement.h"
#include "core/random.h"
#include "data/file_io.h"

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO
#include <stb/stb_image.h>
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb/stb_image_write.h>

namespace basin::data {

Tensor read_image(const std::string& path, int channels) {
  if (channels < 0 || channels > 4) {
    fail("[read_image] '{}': channels must be 0 (as stored) or 1-4, got {}", path, channels);
  }
  const std::string bytes = detail::read_file(path, "read_image");
  if (bytes.empty()) fail("[read_image] '{}': cannot decode the image: the file is empty", path);
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    fail("[read_image] '{}': {} bytes is too large for stb_image", path, bytes.size());
  }
  int width = 0, height = 0, stored = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()),
                            static_cast<int>(bytes.size()), &width, &height, &stored, channels),
      &stbi_image_free);
  if (!pixels) fail("[read_image] '{}': cannot decode the image: {}", path, stbi_failure_reason());
  const int c = channels == 0 ? stored : channels;
  Tensor hwc = zeros({height, width, c}, Dtype::u8);
  std::memcpy(hwc.raw_data(), pixels.get(), hwc.nbytes());
  return permute(hwc, {2, 0, 1}).contiguous();
}

void write_png(const std::string& path, const Tensor& image) {
  const auto bad = [&path](const std::string& problem) {
    fail("[write_png] cannot write '{}': {}", path, problem);
  };
  if (!image.defined()) bad("the image is undefined");
  if (image.ndim() != 2 && image.ndim() != 3) {
    bad(fmt::format("an image has shape (H, W) or (C, H, W), got {}", shape_str(image.shape())));
  }
  const Dtype dtype = image.dtype();
  if (dtype != Dtype::u8 && dtype != Dtype::boolean && !is_floating(dtype)) {
    bad(fmt::format("images are uint8, bool, float32 or float64, got {}", dtype_name(dtype)));
  }
  Tensor chw = image.detach().to(Device::cpu());
  if (chw.ndim() == 2) chw = unsqueeze(chw, 0);
  const int64_t c = chw.shape(0), h = chw.shape(1), w = chw.shape(2);
  if (c < 1 || c > 4) {
    bad(fmt::format("PNG has 1-4 channels (gray, gray + alpha, RGB, RGBA), got shape {}",
                    shape_str(image.shape())));
  }
  const int64_t limit = std::numeric_limits<int>::max() / 4;
  if (h < 1 || w < 1 || h > limit || w > limit || w * c > limit) {
    bad(fmt::format("image size {} is empty or too large for PNG", shape_str(image.shape())));
  }
  const Tensor hwc = permute(chw, {1, 2, 0}).contiguous();
  std::vector<uint8_t> pixels(static_cast<size_t>(hwc.numel()));
  if (dtype == Dtype::u8) {
    std::memcpy(pixels.data(), hwc.raw_data(), pixels.size());
  } else {
    const std::vector<double> values = hwc.to_vector<double>();
    for (size_t i = 0; i < values.size(); ++i) {
      const double v = std::isnan(values[i]) ? 0.0 : std::clamp(values[i], 0.0, 1.0);
      pixels[i] = static_cast<uint8_t>(std::lround(v * 255.0));
    }
  }
  std::string png;
  const auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                               static_cast<size_t>(size));
  };
  if (stbi_write_png_to_func(append, &png, static_cast<int>(w), static_cast<int>(h),
                             static_cast<int>(c), pixels.data(), static_cast<int>(w * c)) == 0) {
    bad("PNG encoding failed");
  }
  detail::write_file_atomic(path, png, "write_png");
}

Tensor to_unit_float(const Tensor& image) {
  if (!image.defined() || image.dtype() != Dtype::u8) {
    fail("[to_unit_float] needs uint8 images, got {}",
         image.defined() ? dtype_name(image.dtype()) : "an undefined tensor");
  }
  return image.astype(Dtype::f32) / 255.0;
}

// --- image folder ----------------------------------------------------------------------------

namespace {

namespace fs = std::filesystem;

constexpr const char* kImageExtensions[] = {".png", ".jpg", ".jpeg", ".bmp", ".gif",
                                            ".tga", ".pgm", ".ppm",  ".pnm"};

bool is_image_file(const fs::path& p) {
  const std::string name = p.filename().string();
  return std::any_of(std::begin(kImageExtensions), std::end(kImageExtensions),
                     [&](const char* ext) { return detail::ends_with_nocase(name, ext); });
}

bool is_hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

void check_options(const ImageFolderOptions& o) {
  if (o.channels < 0 || o.channels > 4) {
    fail("[image_folder] channels must be 0 (as stored) or 1-4, got {}", o.channels);
  }
  if (o.crop_height < 0 || o.crop_width < 0 || (o.crop_height == 0) != (o.crop_width == 0)) {
    fail("[image_folder] crop size {}x{} must be both positive or both 0 (no crop)", o.crop_height,
         o.crop_width);
  }
  if (o.padding < 0) fail("[image_folder] padding must be non-negative, got {}", o.padding);
  if (o.padding > 0 && o.crop_height == 0) {
    fail("[image_folder] padding {} needs a crop size (crop_height, crop_width)", o.padding);
  }
  if (!(o.flip_probability >= 0.0 && o.flip_probability <= 1.0)) {
    fail("[image_folder] flip_probability must lie in [0, 1], got {}", o.flip_probability);
  }
}

}  // namespace

ImageFolder::ImageFolder(const std::string& root, ImageFolderOptions options)
    : root_(root), options_(options) {
  check_options(options_);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    fail("[image_folder] '{}': {}", root,
         fs::exists(root, ec) ? "not a directory" : "no such directory");
  }
  try {
    for (const fs::directory_entry& entry : fs::directory_iterator(root)) {
      if (entry.is_directory() && !is_hidden(entry.path())) {
        classes_.push_back(entry.path().filename().string());
      }
    }
    std::sort(classes_.begin(), classes_.end());
    if (classes_.empty()) {
      fail("[image_folder] '{}': no class subdirectories (expected {}/<class>/<image files>)", root,
           root);
    }
    for (size_t k = 0; k < classes_.size(); ++k) {
      const fs::path dir = fs::path(root) / classes_[k];
      std::vector<std::string> found;
      fs::recursive_directory_iterator it(dir, fs::directory_options::follow_directory_symlink);
      for (; it != fs::recursive_directory_iterator(); ++it) {
        if (is_hidden(it->path())) {
          if (it->is_directory()) it.disable_recursion_pending();
          continue;
        }
        if (it->is_regular_file() && is_image_file(it->path()))
          found.push_back(it->path().string());
      }
      if (found.empty()) {
        fail("[image_folder] '{}': class '{}' has no images (.png, .jpg, .jpeg, .bmp, ...)",
             dir.string(), classes_[k]);
      }
      std::sort(found.begin(), found.end());
      for (std::string& f : found) {
        files_.push_back(std::move(f));
        labels_.push_back(static_cast<int64_t>(k));
      }
    }
  } catch (const fs::filesystem_error& e) {
    fail("[image_folder] '{}': cannot list the directory: {}", root, e.what());
  }
}

void ImageFolder::set_epoch(int64_t epoch) {
  if (epoch < 0) fail("[image_folder] epoch must be non-negative, got {}", epoch);
  epoch_.store(epoch);
}

Example ImageFolder::get(int64_t index) const {
  check_index("image_folder", index, size());
  const std::string& file = files_[static_cast<size_t>(index)];
  Tensor image = read_image(file, options_.channels);  // (C, H, W)
  const ImageFolderOptions& o = options_;
  // One Philox block per (item, epoch): words 0-1 place the crop, words 2-3 decide the flip.
  const auto r = philox4x32(o.seed, static_cast<uint64_t>(index), static_cast<uint64_t>(epoch()));
  if (o.crop_height > 0) {
    const int64_t p = o.padding;
    if (p > 0) image = pad(image, {{0, 0}, {p, p}, {p, p}});
    const int64_t h = image.shape(1), w = image.shape(2);
    if (h < o.crop_height || w < o.crop_width) {
      fail(
          "[image_folder] '{}': image of {}x{} (padding {} included) is smaller than the crop "
          "{}x{}",
          file, h, w, p, o.crop_height, o.crop_width);
    }
    const auto slack_h = static_cast<uint64_t>(h - o.crop_height + 1);
    const auto slack_w = static_cast<uint64_t>(w - o.crop_width + 1);
    const int64_t top =
        o.random_crop ? static_cast<int64_t>(r[0] % slack_h) : (h - o.crop_height) / 2;
    const int64_t left =
        o.random_crop ? static_cast<int64_t>(r[1] % slack_w) : (w - o.crop_width) / 2;
    image = narrow(narrow(image, 1, top, o.crop_height), 2, left, o.crop_width);
  }
  const double u = static_cast<double>((uint64_t{r[2]} << 32 | r[3]) >> 11) * 0x1.0p-53;
  if (u < o.flip_probability) image = flip(image, {2});
  const int64_t label = labels_[static_cast<size_t>(index)];
  return {{"image", to_unit_float(image)}, {"label", from_vector<int64_t>({label}, {})}};
}

std::shared_ptr<ImageFolder> image_folder(const std::string& root, ImageFolderOptions options) {
  return std::make_shared<ImageFolder>(root, options);
}

}  // namespace basin::data
