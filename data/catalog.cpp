#include "data/catalog.h"

#include <filesystem>

#include "core/error.h"
#include "data/photos.h"
#include "data/procedural.h"
#include "data/readers.h"

namespace basin::data {
namespace fs = std::filesystem;

namespace {

// Cuts `all` into its first `train_size` and last `test_size` items.
LabelledData cut(const DatasetPtr<Example>& all, Config& section, int64_t default_train,
                 int64_t default_test) {
  const int64_t n = all->size();
  int64_t train_size = section.get<int64_t>("train_size", default_train);
  int64_t test_size = section.get<int64_t>("test_size", default_test);
  check(train_size >= 0 && test_size >= 0, "[config] {}: train_size and test_size must be >= 0",
        section.prefix());
  if (train_size == 0) train_size = n - test_size;
  if (test_size == 0) test_size = n - train_size;
  check(train_size > 0 && test_size > 0 && train_size + test_size <= n,
        "[config] {}: train_size {} + test_size {} do not fit the {} items of the dataset",
        section.prefix(), train_size, test_size, n);
  std::vector<int64_t> train_idx(static_cast<size_t>(train_size)),
      test_idx(static_cast<size_t>(test_size));
  for (int64_t i = 0; i < train_size; ++i) train_idx[static_cast<size_t>(i)] = i;
  for (int64_t i = 0; i < test_size; ++i) test_idx[static_cast<size_t>(i)] = n - test_size + i;
  LabelledData out;
  out.train = subset(all, std::move(train_idx));
  out.test = subset(all, std::move(test_idx));
  return out;
}

void fill_shape(LabelledData& d, int64_t classes) {
  d.num_classes = classes;
  d.image_shape = d.train->get(0).at("image").shape();
}

LabelledData procedural(Config& section, uint64_t seed) {
  ProceduralOptions o;
  o.size = section.get<int64_t>("size", 32);
  o.channels = section.get<int64_t>("channels", 3);
  const auto train_size = section.get<int64_t>("train_size", 8192);
  const auto test_size = section.get<int64_t>("test_size", 512);
  check(train_size > 0 && test_size > 0, "[config] {}: train_size and test_size must be positive",
        section.prefix());
  o.count = train_size + test_size;
  o.seed = static_cast<uint64_t>(section.get<int64_t>("seed", static_cast<int64_t>(seed)));
  LabelledData d = cut(procedural_images(o), section, train_size, test_size);
  fill_shape(d, kProceduralKinds);
  return d;
}

LabelledData photos(Config& section, uint64_t seed) {
  const std::string root = section.get<std::string>("root", "../shared/data/skimage-photos");
  PhotoCropsOptions o;
  o.crop = section.get<int64_t>("crop", 32);
  o.channels = section.get<int>("channels", 3);
  o.max_side = section.get<int64_t>("max_side", 256);
  o.crops_per_epoch = section.get<int64_t>("crops_per_epoch", 4096);
  o.flip_probability = section.get<double>("flip", 0.5);
  o.dihedral = section.get<bool>("dihedral", false);
  o.channel_shuffle = section.get<bool>("channel_shuffle", false);
  o.jitter = section.get<double>("jitter", 0.0);
  o.min_std = section.get<double>("min_std", 0.0);
  o.scales = section.get<std::vector<int64_t>>("scales", {1});
  o.seed = seed;
  const auto held_out = section.get<std::vector<std::string>>("test_images", {"astronaut.png"});
  check(fs::is_directory(root), "[config] {}.root: {} is not a folder", section.prefix(), root);
  std::vector<Tensor> train, test;
  for (const std::string& name : list_images(root)) {
    const bool is_test = std::find(held_out.begin(), held_out.end(), name) != held_out.end();
    (is_test ? test : train).push_back(load_photo((fs::path(root) / name).string(), o));
  }
  for (const std::string& name : held_out) {
    check(fs::exists(fs::path(root) / name), "[config] {}.test_images: {} is not in {}",
          section.prefix(), name, root);
  }
  check(!train.empty(), "[config] {}: every photograph in {} is held out for testing",
        section.prefix(), root);
  LabelledData d;
  auto crops = std::make_shared<PhotoCrops>(std::move(train), o);
  d.train = crops;
  d.set_epoch = [crops](int64_t epoch) { crops->set_epoch(epoch); };
  d.test = photo_tiles(test, o.crop);
  fill_shape(d, 0);
  return d;
}

}  // namespace

LabelledData labelled_images(Config section, uint64_t seed) {
  const std::string type = section.get_choice(
      "type", "mnist",
      {"mnist", "fashion_mnist", "cifar10", "cifar100", "image_folder", "procedural", "photos"});
  if (type == "procedural") return procedural(section, seed);
  if (type == "photos") return photos(section, seed);
  const fs::path root =
      section.get<std::string>("root", type == "mnist" ? "../shared/data/mnist" : "");
  check(!root.empty(), "[config] {}.root: the folder of the {} files is required", section.prefix(),
        type);
  check(fs::is_directory(root), "[config] {}.root: {} is not a folder", section.prefix(),
        root.string());
  if (type == "mnist" || type == "fashion_mnist") {
    const std::string images = section.get<std::string>("images", "t10k-images-idx3-ubyte.gz");
    const std::string labels = section.get<std::string>("labels", "t10k-labels-idx1-ubyte.gz");
    LabelledData d =
        cut(mnist((root / images).string(), (root / labels).string()), section, 8000, 2000);
    fill_shape(d, 10);
    return d;
  }
  if (type == "cifar10" || type == "cifar100") {
    const int variant = type == "cifar10" ? 10 : 100;
    std::vector<std::string> train_files, test_files;
    for (const auto& entry : fs::directory_iterator(root)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("data_batch_", 0) == 0 || name == "train.bin")
        train_files.push_back(entry.path());
      if (name == "test_batch.bin" || name == "test.bin") test_files.push_back(entry.path());
    }
    std::sort(train_files.begin(), train_files.end());
    check(!train_files.empty() && !test_files.empty(),
          "[config] {}.root: {} holds no CIFAR binary batches (data_batch_*.bin and "
          "test_batch.bin, or train.bin and test.bin)",
          section.prefix(), root.string());
    LabelledData d;
    d.train = cifar(train_files, variant);
    d.test = cifar(test_files, variant);
    fill_shape(d, variant);
    return d;
  }
  ImageFolderOptions options;
  options.channels = section.get<int>("channels", 3);
  const auto crop = section.get<std::vector<int64_t>>("crop", {});
  check(crop.empty() || crop.size() == 2,
        "[config] {}.crop: expected [height, width], got {} values", section.prefix(), crop.size());
  if (crop.size() == 2) {
    options.crop_height = crop[0];
    options.crop_width = crop[1];
  }
  options.padding = section.get<int64_t>("padding", 0);
  ImageFolderOptions test_options = options;
  test_options.padding = 0;
  test_options.random_crop = false;
  options.flip_probability = section.get<double>("flip", 0.0);
  options.seed = seed;
  LabelledData d;
  auto train = image_folder((root / "train").string(), options);
  d.train = train;
  d.set_epoch = [train](int64_t epoch) { train->set_epoch(epoch); };
  d.test = image_folder((root / "test").string(), test_options);
  int64_t classes = 0;
  for (const auto& entry : fs::directory_iterator(root / "train")) classes += entry.is_directory();
  fill_shape(d, classes);
  return d;
}

}  // namespace basin::data
