// Readers: IDX (plain and gzip) and MNIST, CIFAR binary, PNG/JPEG images and image folders —
// round trips, the real files in the shared data folder, and every kind of bad input.
#include "data/readers.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "data/loader.h"
#include "tests/test_util.h"

namespace basin::data {
namespace {

namespace fs = std::filesystem;
using basin::testing::all_close;
using basin::testing::read_bytes;
using basin::testing::TempDir;
using basin::testing::throws_error;
using basin::testing::write_bytes;

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string le32(uint32_t v) {
  return {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
          static_cast<char>(v >> 24)};
}

// An IDX header: magic (type code, number of dimensions) and the dimensions.
std::string idx_header(uint8_t code, const std::vector<uint32_t>& dims) {
  std::string h = {0, 0, static_cast<char>(code), static_cast<char>(dims.size())};
  for (uint32_t d : dims) h += be32(d);
  return h;
}

uint32_t crc32(const std::string& bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char b : bytes) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

// A gzip member holding `bytes` in stored (uncompressed) deflate blocks: lets a test build any
// gzip content, including inconsistent ones, without linking zlib.
std::string gzip_stored(const std::string& bytes) {
  std::string out = {'\x1f', '\x8b', 8, 0, 0, 0, 0, 0, 0, '\xff'};
  size_t pos = 0;
  do {
    const size_t n = std::min<size_t>(bytes.size() - pos, 65535);
    const bool last = pos + n == bytes.size();
    out += static_cast<char>(last ? 1 : 0);
    const auto len = static_cast<uint16_t>(n);
    const auto nlen = static_cast<uint16_t>(~len);
    out += {static_cast<char>(len), static_cast<char>(len >> 8), static_cast<char>(nlen),
            static_cast<char>(nlen >> 8)};
    out.append(bytes, pos, n);
    pos += n;
  } while (pos < bytes.size());
  return out + le32(crc32(bytes)) + le32(static_cast<uint32_t>(bytes.size()));
}

// --- IDX -------------------------------------------------------------------------------------

TEST(Idx, RoundTripsEveryWritableDtype) {
  TempDir dir;
  const std::vector<Tensor> tensors = {
      basin::testing::make({3, 4, 5}, 1, 0, 255).astype(Dtype::u8),
      basin::testing::make({7}, 2, -1e6, 1e6).astype(Dtype::i32),
      basin::testing::make({2, 3}, 3, -10, 10).astype(Dtype::f32),
      basin::testing::make({4, 1, 2, 3}, 4, -10, 10),
      zeros({0, 5}, Dtype::u8),
      scalar(2.5, Dtype::f64),
  };
  for (const char* ext : {".idx", ".idx.gz", ".IDX.GZ"}) {
    for (size_t k = 0; k < tensors.size(); ++k) {
      const std::string path = dir / fmt::format("t{}{}", k, ext);
      write_idx(path, tensors[k]);
      const Tensor back = read_idx(path);
      EXPECT_EQ(back.dtype(), tensors[k].dtype()) << path;
      EXPECT_TRUE(all_close(back, tensors[k], 0, 0)) << path;
    }
  }
  // Compressed when the name says so, and the layout is the documented one.
  const std::string plain = read_bytes(dir / "t0.idx");
  EXPECT_EQ(plain.substr(0, 16), idx_header(0x08, {3, 4, 5}));
  EXPECT_EQ(plain.size(), 16u + 60u);
  EXPECT_EQ(read_bytes(dir / "t0.idx.gz").substr(0, 2), "\x1f\x8b");
  EXPECT_EQ(read_bytes(dir / "t2.idx").substr(0, 4), std::string({0, 0, 0x0D, 2}));
}

TEST(Idx, WritesStridedAndDetachedTensors) {
  TempDir dir;
  Tensor x = basin::testing::make({3, 4}, 5, -1, 1, Dtype::f32);
  x.set_requires_grad();
  write_idx(dir / "t.idx", transpose(x));
  EXPECT_TRUE(all_close(read_idx(dir / "t.idx"), transpose(x).detach(), 0, 0));
}

TEST(Idx, ReadsNarrowIntegerTypesAsInt32) {
  TempDir dir;
  write_bytes(dir / "i8.idx", idx_header(0x09, {3}) + std::string{'\x80', '\x7f', '\xff'});
  const Tensor i8 = read_idx(dir / "i8.idx");
  EXPECT_EQ(i8.dtype(), Dtype::i32);
  EXPECT_EQ(i8.to_vector<int32_t>(), (std::vector<int32_t>{-128, 127, -1}));
  write_bytes(dir / "i16.idx", idx_header(0x0B, {2}) + std::string{'\x80', 0, '\x01', '\x02'});
  EXPECT_EQ(read_idx(dir / "i16.idx").to_vector<int32_t>(), (std::vector<int32_t>{-32768, 258}));
  write_bytes(dir / "i32.idx.gz", gzip_stored(idx_header(0x0C, {1}) + be32(0xFFFFFFFEu)));
  EXPECT_EQ(read_idx(dir / "i32.idx.gz").to_vector<int32_t>(), (std::vector<int32_t>{-2}));
}

TEST(Idx, BadFiles) {
  TempDir dir;
  const auto expect_bad = [&](const std::string& name, const std::string& bytes,
                              const std::vector<std::string>& pieces) {
    const std::string path = dir / name;
    write_bytes(path, bytes);
    std::vector<std::string> all = {"[read_idx]", path};
    all.insert(all.end(), pieces.begin(), pieces.end());
    EXPECT_TRUE(throws_error([&] { read_idx(path); }, all)) << name;
  };
  const std::string good = idx_header(0x08, {2, 3}) + std::string(6, '\x05');
  expect_bad("empty.idx", "", {"0 bytes", "too short"});
  expect_bad("magic.idx", "\x12\x34\x08\x01" + be32(0), {"bad magic number 0x12340801"});
  expect_bad("text.idx", "hello world", {"bad magic number"});
  expect_bad("code.idx", idx_header(0x0A, {1}) + "x", {"unsupported type code 0x0a"});
  expect_bad("header.idx", idx_header(0x08, {2, 3}).substr(0, 9), {"truncated header"});
  expect_bad("data.idx", good.substr(0, good.size() - 1),
             {"truncated data", "(2, 3)", "need 6 bytes", "has 5"});
  expect_bad("trailing.idx", good + "ab", {"2 trailing bytes"});
  expect_bad("huge.idx", idx_header(0x0E, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}), {"overflow"});
  // gzip: cut short, corrupted, trailing data, a complete stream with too little data, and a
  // header that claims more than the file could hold.
  expect_bad("cut.idx.gz", gzip_stored(good).substr(0, 20), {"truncated"});
  std::string crc = gzip_stored(good);
  crc[crc.size() - 6] ^= 0x5A;
  expect_bad("crc.idx.gz", crc, {"corrupt gzip data"});
  expect_bad("trailing.idx.gz", gzip_stored(good + "xyz"), {"3 trailing bytes"});
  expect_bad("two_members.idx.gz", gzip_stored(good) + gzip_stored("!"), {"1 trailing bytes"});
  expect_bad("short.idx.gz", gzip_stored(good.substr(0, good.size() - 2)),
             {"truncated data", "the data ends after 4"});
  expect_bad("claims.idx.gz", gzip_stored(idx_header(0x08, {100000, 100000, 100})),
             {"more than a gzip file", "can hold"});
  EXPECT_TRUE(throws_error([&] { read_idx(dir / "missing.idx"); },
                           {"[read_idx]", "missing.idx", "cannot open", "No such file"}));
  EXPECT_TRUE(throws_error([&] { read_idx(dir.path().string()); }, {"not a regular file"}));
}

TEST(Idx, CorruptDeflateData) {
  TempDir dir;
  const std::string path = dir / "t.idx.gz";
  write_idx(path, basin::testing::make({50, 50}, 6, 0, 255).astype(Dtype::u8));
  std::string bytes = read_bytes(path);
  for (size_t i = 12; i < bytes.size() - 8; i += 7) bytes[i] = static_cast<char>(~bytes[i]);
  write_bytes(path, bytes);
  try {
    read_idx(path);
    ADD_FAILURE() << "did not throw";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_TRUE(msg.find("corrupt") != std::string::npos ||
                msg.find("truncated") != std::string::npos)
        << msg;
  }
}

TEST(Idx, WriteErrors) {
  TempDir dir;
  EXPECT_TRUE(throws_error([&] { write_idx(dir / "a.idx", zeros({2}, Dtype::i64)); },
                           {"[write_idx]", "a.idx", "int64", "int32"}));
  EXPECT_TRUE(throws_error([&] { write_idx(dir / "a.idx", zeros({2}, Dtype::boolean)); },
                           {"[write_idx]", "bool"}));
  EXPECT_TRUE(throws_error([&] { write_idx(dir / "a.idx", Tensor()); }, {"undefined"}));
  EXPECT_TRUE(throws_error([&] { write_idx(dir / "no/such/dir/a.idx", zeros({2})); },
                           {"[write_idx]", "no/such/dir/a.idx", "temporary file"}));
  EXPECT_FALSE(fs::exists(dir / "a.idx"));
}

TEST(Idx, WriteIsAtomic) {
  TempDir dir;
  write_idx(dir / "a.idx", zeros({2}, Dtype::u8));
  write_idx(dir / "a.idx", ones({3}, Dtype::u8));  // replaces the file
  EXPECT_EQ(read_idx(dir / "a.idx").to_vector<int>(), (std::vector<int>{1, 1, 1}));
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1);  // no temporary file left behind
}

// --- MNIST -----------------------------------------------------------------------------------

TEST(Mnist, SyntheticFiles) {
  TempDir dir;
  std::vector<uint8_t> pixels(4 * 3 * 2);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 11);
  write_idx(dir / "images.gz", from_vector(pixels, {4, 3, 2}));
  write_idx(dir / "labels", from_vector<uint8_t>({3, 1, 4, 1}, {4}));
  auto ds = mnist(dir / "images.gz", dir / "labels");
  ASSERT_EQ(ds->size(), 4);
  const Example e = ds->get(2);
  EXPECT_EQ(e.at("image").dtype(), Dtype::f32);
  EXPECT_EQ(e.at("image").shape(), (Shape{3, 2}));
  std::vector<float> want;
  for (size_t i = 12; i < 18; ++i) want.push_back(static_cast<float>(pixels[i]) / 255.0f);
  EXPECT_EQ(e.at("image").to_vector<float>(), want);
  EXPECT_EQ(e.at("label").dtype(), Dtype::i64);
  EXPECT_EQ(e.at("label").shape(), (Shape{}));
  EXPECT_EQ(e.at("label").item<int64_t>(), 4);
}

TEST(Mnist, MismatchedFiles) {
  TempDir dir;
  write_idx(dir / "images", zeros({4, 3, 2}, Dtype::u8));
  write_idx(dir / "labels", zeros({5}, Dtype::u8));
  write_idx(dir / "flat", zeros({4, 6}, Dtype::u8));
  write_idx(dir / "float_images", zeros({4, 3, 2}, Dtype::f32));
  write_idx(dir / "float_labels", zeros({4}, Dtype::f32));
  EXPECT_TRUE(throws_error([&] { mnist(dir / "images", dir / "labels"); },
                           {"[mnist]", dir / "images", "4 images", dir / "labels", "5 labels"}));
  EXPECT_TRUE(throws_error([&] { mnist(dir / "flat", dir / "labels"); },
                           {"[mnist]", dir / "flat", "(N, H, W)", "(4, 6)"}));
  EXPECT_TRUE(
      throws_error([&] { mnist(dir / "float_images", dir / "labels"); }, {"[mnist]", "float32"}));
  EXPECT_TRUE(throws_error([&] { mnist(dir / "images", dir / "float_labels"); },
                           {"[mnist]", dir / "float_labels", "integers"}));
  EXPECT_TRUE(throws_error([&] { mnist(dir / "images", dir / "nothing"); },
                           {"[read_idx]", dir / "nothing"}));
}

TEST(Mnist, RealTestSet) {
  const std::string root = std::string(BASIN_SHARED_DATA_DIR) + "/mnist";
  const std::string images = root + "/t10k-images-idx3-ubyte.gz";
  const std::string labels = root + "/t10k-labels-idx1-ubyte.gz";
  if (!fs::exists(images) || !fs::exists(labels)) {
    GTEST_SKIP() << "the MNIST test set is not in " << root;
  }
  const Tensor raw = read_idx(images);
  EXPECT_EQ(raw.dtype(), Dtype::u8);
  EXPECT_EQ(raw.shape(), (Shape{10000, 28, 28}));
  EXPECT_EQ(max(raw).item<int>(), 255);
  EXPECT_EQ(min(raw).item<int>(), 0);

  auto ds = mnist(images, labels);
  ASSERT_EQ(ds->size(), 10000);
  // The first test labels are 7, 2, 1, 0, 4; the class counts are the published ones.
  const std::vector<int64_t> first = {7, 2, 1, 0, 4};
  for (int64_t i = 0; i < 5; ++i) EXPECT_EQ(ds->get(i).at("label").item<int64_t>(), first[i]);
  const Example b = batch(ds, 10000)->get(0);
  EXPECT_EQ(b.at("image").shape(), (Shape{10000, 28, 28}));
  EXPECT_EQ(b.at("image").dtype(), Dtype::f32);
  EXPECT_EQ(min(b.at("image")).item<float>(), 0.0f);
  EXPECT_EQ(max(b.at("image")).item<float>(), 1.0f);
  std::vector<int64_t> counts(10, 0);
  for (int64_t label : b.at("label").to_vector<int64_t>()) {
    ASSERT_GE(label, 0);
    ASSERT_LE(label, 9);
    ++counts[static_cast<size_t>(label)];
  }
  EXPECT_EQ(counts, (std::vector<int64_t>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}));
  // A digit has ink in the middle and none in the corners.
  const Tensor seven = ds->get(0).at("image");
  EXPECT_GT(sum(seven).item<float>(), 50.0f);
  EXPECT_EQ(seven.to_vector<float>()[0], 0.0f);
}

// --- CIFAR -----------------------------------------------------------------------------------

// n records whose pixel j of record r is (r * 7 + j) % 256, with the given label bytes.
std::string cifar_records(const std::vector<std::vector<uint8_t>>& labels, int first_record = 0) {
  std::string out;
  for (size_t r = 0; r < labels.size(); ++r) {
    for (uint8_t l : labels[r]) out += static_cast<char>(l);
    for (int j = 0; j < 3072; ++j) {
      out += static_cast<char>((static_cast<int>(r) + first_record) * 7 + j);
    }
  }
  return out;
}

Tensor cifar_pixels(int record) {
  std::vector<float> v(3072);
  for (int j = 0; j < 3072; ++j)
    v[static_cast<size_t>(j)] = static_cast<float>((record * 7 + j) % 256) / 255.0f;
  return from_vector(v, {3, 32, 32});
}

TEST(Cifar, Cifar10) {
  TempDir dir;
  write_bytes(dir / "data_batch_1.bin", cifar_records({{3}, {9}}));
  write_bytes(dir / "data_batch_2.bin", cifar_records({{0}}, 2));
  auto ds = cifar({dir / "data_batch_1.bin", dir / "data_batch_2.bin"}, 10);
  ASSERT_EQ(ds->size(), 3);
  const std::vector<int64_t> labels = {3, 9, 0};
  for (int r = 0; r < 3; ++r) {
    const Example e = ds->get(r);
    EXPECT_EQ(e.size(), 2u);
    EXPECT_EQ(e.at("label").item<int64_t>(), labels[static_cast<size_t>(r)]);
    EXPECT_EQ(e.at("image").dtype(), Dtype::f32);
    EXPECT_TRUE(all_close(e.at("image"), cifar_pixels(r), 0, 0)) << r;
  }
  // Red, green and blue planes: pixel (c, y, x) is byte c * 1024 + y * 32 + x.
  EXPECT_FLOAT_EQ(ds->get(0).at("image").to_vector<float>()[1024 + 33], 33.0f / 255.0f);
}

TEST(Cifar, GzippedFiles) {
  TempDir dir;
  write_bytes(dir / "test_batch.bin.gz", gzip_stored(cifar_records({{4}, {5}})));
  auto ds = cifar({dir / "test_batch.bin.gz"});
  ASSERT_EQ(ds->size(), 2);
  EXPECT_EQ(ds->get(1).at("label").item<int64_t>(), 5);
  EXPECT_TRUE(all_close(ds->get(1).at("image"), cifar_pixels(1), 0, 0));
  write_bytes(dir / "cut.bin.gz", gzip_stored(cifar_records({{4}})).substr(0, 2000));
  EXPECT_TRUE(throws_error([&] { cifar({dir / "cut.bin.gz"}); },
                           {"[cifar]", dir / "cut.bin.gz", "truncated"}));
}

TEST(Cifar, Cifar100HasFineAndCoarseLabels) {
  TempDir dir;
  write_bytes(dir / "train.bin", cifar_records({{19, 99}, {0, 42}}));
  auto ds = cifar({dir / "train.bin"}, 100);
  ASSERT_EQ(ds->size(), 2);
  EXPECT_EQ(ds->get(0).at("label").item<int64_t>(), 99);
  EXPECT_EQ(ds->get(0).at("coarse_label").item<int64_t>(), 19);
  EXPECT_EQ(ds->get(1).at("label").item<int64_t>(), 42);
  EXPECT_TRUE(all_close(ds->get(1).at("image"), cifar_pixels(1), 0, 0));
}

TEST(Cifar, BadFiles) {
  TempDir dir;
  write_bytes(dir / "short.bin", cifar_records({{1}, {2}}).substr(0, 3073 + 100));
  write_bytes(dir / "empty.bin", "");
  write_bytes(dir / "label.bin", cifar_records({{1}, {10}}));
  write_bytes(dir / "fine.bin", cifar_records({{1, 100}}));
  write_bytes(dir / "coarse.bin", cifar_records({{20, 1}}));
  write_bytes(dir / "good.bin", cifar_records({{1}}));
  EXPECT_TRUE(throws_error(
      [&] {
        cifar({dir / "good.bin", dir / "short.bin"}, 10);
      },
      {"[cifar]", dir / "short.bin", "3173 bytes", "whole number", "3073"}));
  EXPECT_TRUE(throws_error([&] { cifar({dir / "empty.bin"}, 10); },
                           {"[cifar]", dir / "empty.bin", "0 bytes"}));
  EXPECT_TRUE(
      throws_error([&] { cifar({dir / "good.bin"}, 100); }, {"[cifar]", dir / "good.bin", "3074"}));
  EXPECT_TRUE(throws_error([&] { cifar({dir / "label.bin"}, 10); },
                           {"[cifar]", dir / "label.bin", "record 1", "label 10"}));
  EXPECT_TRUE(throws_error([&] { cifar({dir / "fine.bin"}, 100); },
                           {"[cifar]", dir / "fine.bin", "record 0", "label 100"}));
  EXPECT_TRUE(throws_error([&] { cifar({dir / "coarse.bin"}, 100); },
                           {"[cifar]", dir / "coarse.bin", "coarse label 20"}));
  EXPECT_TRUE(throws_error([&] { cifar({dir / "missing.bin"}, 10); },
                           {"[cifar]", dir / "missing.bin", "cannot open"}));
  EXPECT_TRUE(throws_error([&] { cifar({dir / "good.bin"}, 20); }, {"[cifar]", "10 or 100"}));
  EXPECT_TRUE(throws_error([&] { cifar({}, 10); }, {"[cifar]", "at least one file"}));
}

// --- images ----------------------------------------------------------------------------------

// u8 (c, h, w) with a pattern that tells every pixel apart.
Tensor pattern(int64_t c, int64_t h, int64_t w) {
  std::vector<uint8_t> v(static_cast<size_t>(c * h * w));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>((i * 37 + i / 7) % 256);
  return from_vector(v, {c, h, w});
}

TEST(Image, PngRoundTrip) {
  TempDir dir;
  for (int64_t c : {1, 2, 3, 4}) {
    const Tensor image = pattern(c, 5, 7);
    const std::string path = dir / fmt::format("img{}.png", c);
    write_png(path, image);
    const Tensor back = read_image(path);
    EXPECT_EQ(back.dtype(), Dtype::u8);
    EXPECT_TRUE(all_close(back, image, 0, 0)) << c;
  }
  write_png(dir / "gray.png", squeeze(pattern(1, 4, 3), {0}));
  EXPECT_EQ(read_image(dir / "gray.png").shape(), (Shape{1, 4, 3}));
  // Channel conversion on read: gray to RGB repeats the plane; RGB to RGBA adds opaque alpha.
  const Tensor rgb = read_image(dir / "gray.png", 3);
  EXPECT_EQ(rgb.shape(), (Shape{3, 4, 3}));
  EXPECT_TRUE(all_close(narrow(rgb, 0, 2, 1), narrow(rgb, 0, 0, 1), 0, 0));
  const Tensor rgba = read_image(dir / "img3.png", 4);
  EXPECT_TRUE(all_close(narrow(rgba, 0, 3, 1), full({1, 5, 7}, 255, Dtype::u8), 0, 0));
  EXPECT_TRUE(all_close(narrow(rgba, 0, 0, 3), pattern(3, 5, 7), 0, 0));
}

TEST(Image, FloatAndBoolImages) {
  TempDir dir;
  const Tensor f = from_vector<float>({0.0f, 0.5f, 1.0f, -3.0f, 7.0f, 0.2f}, {1, 2, 3});
  write_png(dir / "f.png", f);
  EXPECT_EQ(read_image(dir / "f.png").to_vector<int>(),
            (std::vector<int>{0, 128, 255, 0, 255, 51}));
  const Tensor d = basin::testing::make({3, 6, 4}, 8, 0, 1);
  write_png(dir / "d.png", d);
  const Tensor back = to_unit_float(read_image(dir / "d.png"));
  EXPECT_TRUE(all_close(back, d.astype(Dtype::f32), 0, 0.5 / 255 + 1e-6));
  write_png(dir / "b.png", from_vector<uint8_t>({1, 0}, {1, 2}).astype(Dtype::boolean));
  EXPECT_EQ(read_image(dir / "b.png").to_vector<int>(), (std::vector<int>{255, 0}));
}

TEST(Image, ToUnitFloat) {
  const Tensor x = from_vector<uint8_t>({0, 51, 255}, {3});
  EXPECT_EQ(to_unit_float(x).dtype(), Dtype::f32);
  EXPECT_EQ(to_unit_float(x).to_vector<float>(), (std::vector<float>{0.0f, 0.2f, 1.0f}));
  EXPECT_TRUE(throws_error([] { to_unit_float(zeros({2})); }, {"[to_unit_float]", "float32"}));
  EXPECT_TRUE(throws_error([] { to_unit_float(Tensor()); }, {"[to_unit_float]", "undefined"}));
}

TEST(Image, WritePngErrors) {
  TempDir dir;
  const std::string p = dir / "x.png";
  EXPECT_TRUE(throws_error(
      [&] {
        write_png(p, zeros({5, 4, 4}, Dtype::u8));
      },
      {"[write_png]", p, "1-4 channels"}));
  EXPECT_TRUE(
      throws_error([&] { write_png(p, zeros({4}, Dtype::u8)); }, {"[write_png]", "(H, W)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        write_png(p, zeros({4, 4}, Dtype::i64));
      },
      {"[write_png]", "int64"}));
  EXPECT_TRUE(throws_error(
      [&] {
        write_png(p, zeros({1, 0, 4}, Dtype::u8));
      },
      {"[write_png]", "empty"}));
  EXPECT_TRUE(throws_error(
      [&] {
        write_png(dir / "no/dir/x.png", zeros({2, 2}));
      },
      {"[write_png]", "no/dir/x.png"}));
  EXPECT_FALSE(fs::exists(p));
}

TEST(Image, BadImageFiles) {
  TempDir dir;
  write_png(dir / "good.png", pattern(3, 8, 8));
  std::string bytes = read_bytes(dir / "good.png");
  write_bytes(dir / "cut.png", bytes.substr(0, bytes.size() / 2));
  std::string garbled = bytes;
  for (size_t i = 40; i < garbled.size(); i += 3) garbled[i] = static_cast<char>(garbled[i] ^ 0x55);
  write_bytes(dir / "garbled.png", garbled);
  write_bytes(dir / "text.png", "this is not an image");
  write_bytes(dir / "empty.png", "");
  for (const char* name : {"cut.png", "garbled.png", "text.png", "empty.png"}) {
    const std::string path = dir / name;
    EXPECT_TRUE(throws_error([&] { read_image(path); }, {"[read_image]", path, "cannot decode"}))
        << name;
  }
  EXPECT_TRUE(throws_error([&] { read_image(dir / "none.png"); },
                           {"[read_image]", dir / "none.png", "cannot open"}));
  EXPECT_TRUE(throws_error([&] { read_image(dir / "good.png", 5); }, {"[read_image]", "channels"}));
}

TEST(Image, RealPhotos) {
  const std::string root = std::string(BASIN_SHARED_DATA_DIR) + "/skimage-photos";
  if (!fs::exists(root + "/camera.png") || !fs::exists(root + "/rocket.jpg")) {
    GTEST_SKIP() << "the skimage photos are not in " << root;
  }
  EXPECT_EQ(read_image(root + "/camera.png").shape(), (Shape{1, 512, 512}));
  EXPECT_EQ(read_image(root + "/astronaut.png").shape(), (Shape{3, 512, 512}));
  const Tensor rocket = read_image(root + "/rocket.jpg");
  EXPECT_EQ(rocket.shape(), (Shape{3, 427, 640}));
  EXPECT_GT(max(rocket).item<int>(), 200);
}

// --- image folder ----------------------------------------------------------------------------

// root/{cat: 2 images, dog: 3 images} of 3 × 6 × 8, plus files that must be ignored.
std::map<std::string, Tensor> make_folder(const TempDir& dir) {
  std::map<std::string, Tensor> images;
  fs::create_directories(dir.path() / "dog" / "puppies");
  fs::create_directories(dir.path() / "cat");
  fs::create_directories(dir.path() / ".hidden_class");
  int k = 0;
  for (const char* name :
       {"cat/b.png", "cat/a.PNG", "dog/x.png", "dog/puppies/y.png", "dog/w.png"}) {
    const Tensor image = pattern(3, 6, 8) + static_cast<double>(k++);
    write_png(dir / name, image);
    images[dir / name] = image;
  }
  write_bytes(dir / "cat/notes.txt", "not an image");
  write_bytes(dir / "cat/.hidden.png", "not an image either");
  write_bytes(dir / "readme.md", "top-level files are not classes");
  write_png(dir / ".hidden_class/z.png", pattern(3, 6, 8));
  return images;
}

TEST(ImageFolder, ClassesFilesAndItems) {
  TempDir dir;
  const auto images = make_folder(dir);
  auto ds = image_folder(dir.path().string());
  EXPECT_EQ(ds->classes(), (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(ds->files(), (std::vector<std::string>{dir / "cat/a.PNG", dir / "cat/b.png",
                                                   dir / "dog/puppies/y.png", dir / "dog/w.png",
                                                   dir / "dog/x.png"}));
  EXPECT_EQ(ds->labels(), (std::vector<int64_t>{0, 0, 1, 1, 1}));
  ASSERT_EQ(ds->size(), 5);
  for (int64_t i = 0; i < ds->size(); ++i) {
    const Example e = ds->get(i);
    EXPECT_EQ(e.at("label").item<int64_t>(), ds->labels()[static_cast<size_t>(i)]);
    EXPECT_EQ(e.at("image").dtype(), Dtype::f32);
    EXPECT_TRUE(all_close(e.at("image"),
                          to_unit_float(images.at(ds->files()[static_cast<size_t>(i)])), 0, 0));
  }
  // Items batch and load like any other dataset.
  Loader loader(batch(ds, 2));
  int64_t n = 0;
  while (auto b = loader.next()) n += b->at("image").shape(0);
  EXPECT_EQ(n, 5);
}

TEST(ImageFolder, ChannelsOption) {
  TempDir dir;
  make_folder(dir);
  ImageFolderOptions o;
  o.channels = 1;
  EXPECT_EQ(image_folder(dir.path().string(), o)->get(0).at("image").shape(), (Shape{1, 6, 8}));
}

TEST(ImageFolder, CenterCropAndFlip) {
  TempDir dir;
  const auto images = make_folder(dir);
  ImageFolderOptions o;
  o.crop_height = 4;
  o.crop_width = 5;
  o.random_crop = false;
  o.flip_probability = 1.0;
  auto ds = image_folder(dir.path().string(), o);
  const Tensor original = to_unit_float(images.at(ds->files()[0]));
  // (6 - 4) / 2 = 1 from the top, (8 - 5) / 2 = 1 from the left, then mirrored.
  const Tensor want = flip(narrow(narrow(original, 1, 1, 4), 2, 1, 5), {2});
  EXPECT_TRUE(all_close(ds->get(0).at("image"), want, 0, 0));
}

TEST(ImageFolder, RandomAugmentationDependsOnSeedEpochAndIndex) {
  TempDir dir;
  make_folder(dir);
  ImageFolderOptions o;
  o.crop_height = 4;
  o.crop_width = 4;
  o.padding = 2;
  o.flip_probability = 0.5;
  o.seed = 17;
  auto a = image_folder(dir.path().string(), o);
  auto b = image_folder(dir.path().string(), o);
  const auto images_of = [](const std::shared_ptr<ImageFolder>& ds) {
    std::vector<std::vector<float>> out;
    for (int64_t i = 0; i < ds->size(); ++i)
      out.push_back(ds->get(i).at("image").to_vector<float>());
    return out;
  };
  const auto e0 = images_of(a);
  EXPECT_EQ(a->get(3).at("image").shape(), (Shape{3, 4, 4}));
  EXPECT_EQ(images_of(b), e0);                                 // same seed and epoch: same crops
  EXPECT_EQ(a->get(2).at("image").to_vector<float>(), e0[2]);  // and the same on every read
  // Each crop is a window of the padded (and perhaps mirrored) image.
  for (int64_t i = 0; i < a->size(); ++i) {
    const Tensor padded =
        pad(read_image(a->files()[static_cast<size_t>(i)]), {{0, 0}, {2, 2}, {2, 2}});
    bool found = false;
    for (const Tensor& src : {padded, flip(padded, {2})}) {
      for (int64_t y = 0; y + 4 <= 10 && !found; ++y) {
        for (int64_t x = 0; x + 4 <= 12 && !found; ++x) {
          found = to_unit_float(narrow(narrow(src, 1, y, 4), 2, x, 4)).to_vector<float>() ==
                  e0[static_cast<size_t>(i)];
        }
      }
    }
    EXPECT_TRUE(found) << i;
  }
  a->set_epoch(1);
  EXPECT_EQ(a->epoch(), 1);
  EXPECT_NE(images_of(a), e0);
  b->set_epoch(1);
  EXPECT_EQ(images_of(b), images_of(a));
  a->set_epoch(0);
  EXPECT_EQ(images_of(a), e0);
  o.seed = 18;
  EXPECT_NE(images_of(image_folder(dir.path().string(), o)), e0);
  EXPECT_TRUE(throws_error([&] { a->set_epoch(-2); }, {"[image_folder]", "epoch"}));
}

TEST(ImageFolder, Errors) {
  TempDir dir;
  EXPECT_TRUE(throws_error([&] { image_folder(dir.path().string()); },
                           {"[image_folder]", dir.path().string(), "no class subdirectories"}));
  EXPECT_TRUE(throws_error([&] { image_folder(dir / "missing"); },
                           {"[image_folder]", dir / "missing", "no such directory"}));
  write_bytes(dir / "file", "x");
  EXPECT_TRUE(
      throws_error([&] { image_folder(dir / "file"); }, {"[image_folder]", "not a directory"}));
  fs::create_directories(dir.path() / "a");
  write_bytes(dir / "a/notes.txt", "x");
  EXPECT_TRUE(throws_error([&] { image_folder(dir.path().string()); },
                           {"[image_folder]", dir / "a", "class 'a' has no images"}));

  write_png(dir / "a/ok.png", pattern(3, 6, 8));
  write_bytes(dir / "a/broken.png", "not a png at all");
  auto ds = image_folder(dir.path().string());
  ASSERT_EQ(ds->size(), 2);
  EXPECT_TRUE(
      throws_error([&] { ds->get(0); }, {"[read_image]", dir / "a/broken.png", "cannot decode"}));
  EXPECT_TRUE(throws_error([&] { ds->get(2); }, {"[image_folder]", "index 2"}));

  ImageFolderOptions big;
  big.crop_height = big.crop_width = 7;
  big.padding = 0;
  auto cropped = image_folder(dir.path().string(), big);
  EXPECT_TRUE(throws_error([&] { cropped->get(1); }, {"[image_folder]", dir / "a/ok.png", "6x8",
                                                      "smaller than the crop 7x7"}));

  const auto bad_option = [&](ImageFolderOptions o, const std::string& piece) {
    EXPECT_TRUE(
        throws_error([&] { image_folder(dir.path().string(), o); }, {"[image_folder]", piece}))
        << piece;
  };
  ImageFolderOptions o;
  o.channels = 5;
  bad_option(o, "channels");
  o = {};
  o.crop_height = 3;
  bad_option(o, "both positive");
  o = {};
  o.padding = 2;
  bad_option(o, "needs a crop size");
  o = {};
  o.flip_probability = 1.5;
  bad_option(o, "flip_probability");
}

}  // namespace
}  // namespace basin::data
