// Labelled image datasets by name, for configs:
//
//   [data]
//   type = "mnist"                      # fashion_mnist, cifar10, cifar100, image_folder,
//                                       # procedural, photos
//   root = "../shared/data/mnist"       # the folder holding the files
//   train_size = 8000                   # the first items train ...
//   test_size = 2000                    # ... the last ones test (0: all that remain)
//
// mnist / fashion_mnist read <root>/<images> and <root>/<labels> (idx, plain or .gz; defaults are
// the t10k files) and cut train and test from that one file pair, as the MNIST test split is what
// ships with the repository's data. cifar10 / cifar100 read the binary batches in root
// (data_batch_*.bin + test_batch.bin, or train.bin + test.bin). image_folder reads
// <root>/train/<class>/* and <root>/test/<class>/* (keys: channels = 3, crop = [h, w],
// padding = 0, flip = 0.0 the left-right flip probability; training images get a random crop and
// flips drawn per (seed, epoch, item), test images the centre crop).
//
// procedural generates images (data/procedural.h; no files): size = 32, channels = 3,
// train_size = 8192, test_size = 512, seed (the run's seed). photos takes random crops of the
// photographs in a flat folder (data/photos.h): root = "../shared/data/skimage-photos",
// crop = 32, channels = 3, max_side = 256 (each photograph box-reduced to at most this side),
// crops_per_epoch = 4096, flip = 0.5, test_images = ["astronaut.png"] (held out and cut into
// fixed tiles for testing).
#pragma once

#include <functional>

#include "core/config.h"
#include "data/dataset.h"

namespace basin::data {

struct LabelledData {
  DatasetPtr<Example> train, test;  ///< items {"image": f32 [...], "label": i64 scalar}
  int64_t num_classes = 0;
  Shape image_shape;  ///< the shape of one item's image
  /// Selects the epoch of the training set's random augmentation (a no-op without one).
  std::function<void(int64_t)> set_epoch = [](int64_t) {};
};

/// The dataset named by `section`'s type (see the header comment for the keys).
/// `seed` drives the training set's augmentation.
LabelledData labelled_images(Config section, uint64_t seed = 0);

}  // namespace basin::data
