// Photograph crops and tiles, and the catalog's procedural and photos datasets.
#include <gtest/gtest.h>

#include <algorithm>
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

TEST(Photos, AugmentationsKeepTheCropsPixelsAndDropFlatCrops) {
  // One 3 × 8 × 8 photograph whose left half is flat: min_std must redraw crops there.
  Tensor photo = rand({3, 8, 16});
  float* x = photo.data<float>();
  for (int64_t ch = 0; ch < 3; ++ch) {
    for (int64_t y = 0; y < 8; ++y) {
      for (int64_t col = 0; col < 8; ++col) x[(ch * 8 + y) * 16 + col] = 0.25f;
    }
  }
  PhotoCropsOptions plain{.crop = 8, .crops_per_epoch = 64, .flip_probability = 0};
  PhotoCropsOptions aug = plain;
  aug.dihedral = true;
  aug.channel_shuffle = true;
  PhotoCrops a({photo}, plain), b({photo}, aug);
  int flat = 0, changed = 0;
  for (int64_t i = 0; i < 64; ++i) {
    const Tensor p = a.get(i).at("image"), q = b.get(i).at("image");
    // A symmetry of the square and a channel order move pixels but keep their multiset.
    std::vector<float> u(p.data<float>(), p.data<float>() + p.numel());
    std::vector<float> v(q.data<float>(), q.data<float>() + q.numel());
    std::sort(u.begin(), u.end());
    std::sort(v.begin(), v.end());
    EXPECT_EQ(u, v);
    changed += !all_close(p, q, 0, 0);
    flat += u.front() == u.back();
  }
  EXPECT_GT(changed, 40);  // 47 of 48 (symmetry, channel order) pairs move a random crop
  EXPECT_GT(flat, 0);      // left-aligned crops of the flat half
  PhotoCropsOptions sharp = plain;
  sharp.min_std = 0.05;
  PhotoCrops c({photo}, sharp);
  for (int64_t i = 0; i < 64; ++i) {
    const Tensor q = c.get(i).at("image");
    EXPECT_GE(max(q).item<double>() - min(q).item<double>(), 0.05) << "crop " << i;
  }
  PhotoCropsOptions jittered = plain;
  jittered.jitter = 0.5;
  PhotoCrops d({photo}, jittered);
  for (int64_t i = 0; i < 8; ++i) {
    const Tensor q = d.get(i).at("image");
    EXPECT_GE(min(q).item<double>(), 0.0);
    EXPECT_LE(max(q).item<double>(), 1.0);
    EXPECT_FALSE(all_close(q, a.get(i).at("image"), 1e-6, 1e-6));
  }
  PhotoCropsOptions scaled = plain;
  scaled.scales = {1, 2};
  EXPECT_TRUE(throws_error([&] { PhotoCrops({photo}, scaled); }, {"at scale 1/2", "8x8 crop"}));
  scaled.crop = 4;
  PhotoCrops e({photo}, scaled);
  for (int64_t i = 0; i < 16; ++i) EXPECT_EQ(e.get(i).at("label").item<int64_t>(), 0);
  EXPECT_TRUE(throws_error([&] { PhotoCrops({photo}, {.crop = 4, .jitter = 1.5}); }, {"jitter"}));
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
