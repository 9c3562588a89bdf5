// CIFAR binary records → one u8 image tensor and label tensors, served by tensor_dataset and map.
#include "data/cifar.h"

#include <cstring>

#include "core/ops/creation.h"
#include "data/file_io.h"
#include "data/image.h"

namespace basin::data {

DatasetPtr<Example> cifar(const std::vector<std::string>& files, int variant) {
  if (variant != 10 && variant != 100) {
    fail("[cifar] variant must be 10 or 100, got {}", variant);
  }
  if (files.empty()) fail("[cifar] needs at least one file");
  constexpr size_t kPixels = 3 * 32 * 32;
  const size_t label_bytes = variant == 10 ? 1 : 2;
  const size_t record = label_bytes + kPixels;

  std::vector<std::string> contents;
  size_t total = 0;
  for (const std::string& path : files) {
    std::string bytes = detail::read_file(path, "cifar");
    if (bytes.empty() || bytes.size() % record != 0) {
      fail(
          "[cifar] '{}': {} bytes is not a whole number of CIFAR-{} records of {} bytes ({} label "
          "byte{} and 3072 pixels)",
          path, bytes.size(), variant, record, label_bytes, label_bytes == 1 ? "" : "s");
    }
    total += bytes.size() / record;
    contents.push_back(std::move(bytes));
  }

  const auto n = static_cast<int64_t>(total);
  Tensor images = zeros({n, 3, 32, 32}, Dtype::u8);
  Tensor labels = zeros({n}, Dtype::i64);
  Tensor coarse = variant == 100 ? zeros({n}, Dtype::i64) : Tensor();
  uint8_t* image_data = images.data<uint8_t>();
  int64_t* label_data = labels.data<int64_t>();
  size_t item = 0;
  for (size_t f = 0; f < files.size(); ++f) {
    const std::string& bytes = contents[f];
    for (size_t r = 0; r < bytes.size() / record; ++r, ++item) {
      const auto* rec = reinterpret_cast<const uint8_t*>(bytes.data() + r * record);
      const int fine = rec[label_bytes - 1];
      if (fine >= variant) {
        fail("[cifar] '{}': record {} has label {}, outside [0, {}) for CIFAR-{}", files[f], r,
             fine, variant, variant);
      }
      if (variant == 100) {
        if (rec[0] >= 20) {
          fail("[cifar] '{}': record {} has coarse label {}, outside [0, 20) for CIFAR-100",
               files[f], r, rec[0]);
        }
        coarse.data<int64_t>()[item] = rec[0];
      }
      label_data[item] = fine;
      std::memcpy(image_data + item * kPixels, rec + label_bytes, kPixels);
    }
  }

  Example fields{{"image", images}, {"label", labels}};
  if (variant == 100) fields.emplace("coarse_label", coarse);
  return map(tensor_dataset(std::move(fields)), [](Example e) {
    e.at("image") = to_unit_float(e.at("image"));
    return e;
  });
}

}  // namespace basin::data
