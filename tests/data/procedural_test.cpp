// Procedural images: shapes and ranges, determinism, variety, local structure, errors, speed.
#include "data/procedural.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <set>

#include "tests/test_util.h"

namespace basin::data {
namespace {

using basin::testing::throws_error;

std::vector<float> pixels(const Tensor& image) { return image.to_vector<float>(); }

TEST(ProceduralImages, ShapesRangesAndLabels) {
  for (const int64_t size : {4, 8, 32, 33}) {
    for (const int64_t channels : {1, 3}) {
      const auto ds =
          procedural_images({.size = size, .channels = channels, .count = 40, .seed = 2});
      EXPECT_EQ(ds->size(), 40);
      for (int64_t i = 0; i < ds->size(); ++i) {
        const Example item = ds->get(i);
        const Tensor& image = item.at("image");
        const Tensor& label = item.at("label");
        ASSERT_EQ(image.dtype(), Dtype::f32);
        ASSERT_EQ(image.shape(), (Shape{channels, size, size}));
        for (float v : pixels(image)) ASSERT_TRUE(v >= 0.0f && v <= 1.0f) << v;
        ASSERT_EQ(label.dtype(), Dtype::i64);
        ASSERT_EQ(label.ndim(), 0);
        EXPECT_EQ(label.item<int64_t>(), static_cast<int64_t>(ds->kind(i)));
        EXPECT_GE(label.item<int64_t>(), 0);
        EXPECT_LT(label.item<int64_t>(), kProceduralKinds);
      }
    }
  }
}

TEST(ProceduralImages, DeterministicPerIndexAndSeed) {
  const ProceduralOptions options{.size = 16, .channels = 3, .count = 50, .seed = 9};
  const auto a = procedural_images(options), b = procedural_images(options);
  // Another order of access, another instance: the same images.
  std::vector<std::vector<float>> forward, backward(50);
  for (int64_t i = 0; i < 50; ++i) forward.push_back(pixels(a->image(i)));
  for (int64_t i = 49; i >= 0; --i) backward[static_cast<size_t>(i)] = pixels(b->image(i));
  EXPECT_EQ(forward, backward);
  EXPECT_EQ(pixels(a->image(7)), forward[7]);
  // Another seed: other images.
  const auto c = procedural_images({.size = 16, .channels = 3, .count = 50, .seed = 10});
  int same = 0;
  for (int64_t i = 0; i < 50; ++i) same += pixels(c->image(i)) == forward[static_cast<size_t>(i)];
  EXPECT_EQ(same, 0);
  // Gray images are the luma of the colour images of the same options.
  const auto gray = procedural_images({.size = 16, .channels = 1, .count = 50, .seed = 9});
  for (int64_t i = 0; i < 50; ++i) {
    const auto g = pixels(gray->image(i));
    const auto& rgb = forward[static_cast<size_t>(i)];
    for (size_t k = 0; k < g.size(); ++k) {
      const float want = 0.299f * rgb[k] + 0.587f * rgb[256 + k] + 0.114f * rgb[512 + k];
      ASSERT_NEAR(g[k], want, 1e-5f) << i;
    }
  }
}

TEST(ProceduralImages, VarietyOfImagesAndKinds) {
  const auto ds = procedural_images({.size = 32, .channels = 3, .count = 500, .seed = 4});
  std::set<std::vector<float>> distinct;
  std::vector<int64_t> per_kind(kProceduralKinds, 0);
  for (int64_t i = 0; i < ds->size(); ++i) {
    const auto v = pixels(ds->image(i));
    distinct.insert(v);
    ++per_kind[static_cast<size_t>(ds->kind(i))];
    // Never a flat image: some channel spans a visible range.
    float span = 0.0f;
    for (int c = 0; c < 3; ++c) {
      const auto begin = v.begin() + c * 1024, end = begin + 1024;
      span = std::max(span, *std::max_element(begin, end) - *std::min_element(begin, end));
    }
    EXPECT_GT(span, 0.1f) << "item " << i << " (" << procedural_kind_name(ds->kind(i)) << ")";
  }
  EXPECT_EQ(distinct.size(), 500u);
  // Kinds are drawn uniformly: 100 each, ± 4 standard deviations.
  for (int64_t k = 0; k < kProceduralKinds; ++k) {
    EXPECT_NEAR(static_cast<double>(per_kind[static_cast<size_t>(k)]), 100.0, 36.0)
        << procedural_kind_name(static_cast<ProceduralKind>(k));
  }
  std::set<std::string> names;
  for (int64_t k = 0; k < kProceduralKinds; ++k) {
    names.insert(procedural_kind_name(static_cast<ProceduralKind>(k)));
  }
  EXPECT_EQ(names,
            (std::set<std::string>{"shapes", "gradient", "stripes", "checkerboard", "noise"}));
}

TEST(ProceduralImages, PatchesArePredictableFromTheirSurroundings) {
  // Not white noise: a 4 × 4 patch filled by interpolating the pixels around it is much closer
  // to the truth than one filled with the image's mean colour.
  const int64_t size = 32, p = 4;
  const auto ds = procedural_images({.size = size, .channels = 3, .count = 200, .seed = 6});
  double interpolation = 0.0, mean_fill = 0.0;
  for (int64_t i = 0; i < ds->size(); ++i) {
    const auto v = pixels(ds->image(i));
    const auto at = [&](int64_t c, int64_t y, int64_t x) {
      return static_cast<double>(v[static_cast<size_t>((c * size + y) * size + x)]);
    };
    for (int64_t c = 0; c < 3; ++c) {
      double mean = 0.0;
      for (int64_t k = 0; k < size * size; ++k) mean += v[static_cast<size_t>(c * size * size + k)];
      mean /= static_cast<double>(size * size);
      for (int64_t top = p; top + 2 * p <= size; top += 2 * p)
        for (int64_t left = p; left + 2 * p <= size; left += 2 * p)
          for (int64_t y = top; y < top + p; ++y)
            for (int64_t x = left; x < left + p; ++x) {
              // Bilinear between the rows above/below and the columns left/right of the patch.
              const double ty = static_cast<double>(y - top + 1) / (p + 1);
              const double tx = static_cast<double>(x - left + 1) / (p + 1);
              const double vertical = (1 - ty) * at(c, top - 1, x) + ty * at(c, top + p, x);
              const double horizontal = (1 - tx) * at(c, y, left - 1) + tx * at(c, y, left + p);
              const double guess = 0.5 * (vertical + horizontal);
              interpolation += (guess - at(c, y, x)) * (guess - at(c, y, x));
              mean_fill += (mean - at(c, y, x)) * (mean - at(c, y, x));
            }
    }
  }
  std::cout << "[ procedural ] masked 4x4 patches: interpolation MSE / mean-fill MSE = "
            << interpolation / mean_fill << "\n";
  EXPECT_LT(interpolation, 0.5 * mean_fill);
}

TEST(ProceduralImages, WorksWithTheDatasetWrappers) {
  const auto ds = procedural_images({.size = 8, .channels = 3, .count = 10, .seed = 1});
  const auto batches = batch(ds, 4);
  ASSERT_EQ(batches->size(), 3);
  const Example first = batches->get(0);
  EXPECT_EQ(first.at("image").shape(), (Shape{4, 3, 8, 8}));
  EXPECT_EQ(first.at("label").shape(), (Shape{4}));
  EXPECT_EQ(batches->get(2).at("image").shape(0), 2);
}

TEST(ProceduralImages, Errors) {
  EXPECT_TRUE(throws_error([] { procedural_images({.size = 2}); },
                           {"[procedural_images]", "size must lie in [4, 4096], got 2"}));
  EXPECT_TRUE(throws_error([] { procedural_images({.channels = 2}); },
                           {"[procedural_images]", "channels must be 1 or 3, got 2"}));
  EXPECT_TRUE(throws_error([] { procedural_images({.count = -1}); },
                           {"[procedural_images]", "count must be non-negative"}));
  const auto ds = procedural_images({.count = 3});
  EXPECT_TRUE(
      throws_error([&] { ds->get(3); }, {"[procedural_images]", "index 3 is out of range"}));
  EXPECT_TRUE(throws_error([&] { ds->kind(-1); }, {"index -1 is out of range"}));
}

TEST(ProceduralImages, Speed) {
  // Reported, not asserted (tests never assert a time): about 20 ms on one core of the
  // development machine, far below the one second the demo needs.
  const auto ds = procedural_images({.size = 32, .channels = 3, .count = 1000, .seed = 0});
  const auto start = std::chrono::steady_clock::now();
  double checksum = 0.0;
  for (int64_t i = 0; i < ds->size(); ++i) checksum += ds->get(i).at("image").data<float>()[0];
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  RecordProperty("milliseconds_for_1000_images_32x32x3", std::to_string(ms));
  std::cout << "[ procedural ] 1000 images of 3 x 32 x 32: " << ms << " ms\n";
  EXPECT_GT(checksum, 0.0);
}

}  // namespace
}  // namespace basin::data
