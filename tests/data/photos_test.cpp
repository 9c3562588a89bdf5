// Photograph crops and tiles, and the catalog's procedural and photos datasets.
#include <gtest/gtest.h>

#include <filesystem>

#include "basin/basin.h"
#include "data/catalog.h"
#include "data/photos.h"
#include "tests/test_util.h"

namespace basin::data {
namespace {

using basin::testing::all_close;
using basin::testing::throws_error;

std::vector<Tensor> two_photos() { return {rand({3, 40, 50}), rand({3, 64, 32})}; }

TEST(Photos, CropsAreDeterministicPerEpochAndInsideTheirPhotograph) {
  manual_seed(1);
  const auto photos = two_photos();
  PhotoCropsOptions o;
  o.crop = 16;
  o.crops_per_epoch = 50;
  PhotoCrops crops(photos, o);
  EXPECT_EQ(crops.size(), 50);
  const Example a = crops.get(7), b = crops.get(7);
  EXPECT_EQ(a.at("image").shape(), (Shape{3, 16, 16}));
  EXPECT_TRUE(all_close(a.at("image"), b.at("image"), 0, 0));
  int labels[2] = {0, 0};
  for (int64_t i = 0; i < 50; ++i) ++labels[crops.get(i).at("label").item<int64_t>()];
  EXPECT_GT(labels[0], 5);
  EXPECT_GT(labels[1], 5);
  crops.set_epoch(1);
  EXPECT_FALSE(all_close(crops.get(7).at("image"), a.at("image"), 0, 0));
  EXPECT_TRUE(throws_error([&] { PhotoCrops(photos, {.crop = 41}); }, {"smaller than a 41x41"}));
}

TEST(Photos, TilesCoverTheHeldOutPhotographs) {
  const auto photos = two_photos();
  auto tiles = photo_tiles(photos, 16);
  EXPECT_EQ(tiles->size(), 2 * 3 + 4 * 2);  // 40x50 → 2x3 tiles, 64x32 → 4x2
  EXPECT_TRUE(all_close(tiles->get(0).at("image"), narrow(narrow(photos[0], 1, 0, 16), 2, 0, 16)));
}

TEST(Photos, CatalogBuildsProceduralAndPhotoData) {
  Config c = Config::parse("type = 'procedural'\nsize = 16\ntrain_size = 20\ntest_size = 4\n");
  LabelledData d = labelled_images(c, 3);
  c.check_all_used();
  EXPECT_EQ(d.train->size(), 20);
  EXPECT_EQ(d.test->size(), 4);
  EXPECT_EQ(d.image_shape, (Shape{3, 16, 16}));
  const std::string root = BASIN_SHARED_DATA_DIR "/skimage-photos";
  if (!std::filesystem::exists(root)) GTEST_SKIP() << "../shared/data/skimage-photos is absent";
  Config p = Config::parse("type = 'photos'\nroot = '" + root + "'\ncrops_per_epoch = 8\n");
  LabelledData photos = labelled_images(p, 0);
  EXPECT_EQ(photos.train->size(), 8);
  EXPECT_EQ(photos.image_shape, (Shape{3, 32, 32}));
  EXPECT_EQ(photos.test->size(), 64);  // astronaut.png, 512 → 256, in 32x32 tiles
  Config bad = Config::parse("type = 'photos'\nroot = '" + root + "'\ntest_images = ['x.png']\n");
  EXPECT_TRUE(throws_error([&] { labelled_images(bad, 0); }, {"x.png"}));
}

}  // namespace
}  // namespace basin::data
