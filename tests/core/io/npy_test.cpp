// .npy and .npz: round trips, hand-built header variants, bad and corrupt files, NumPy interop.
#include "core/io/npy.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "tests/test_util.h"

namespace basin {
namespace {

namespace fs = std::filesystem;
using io::read_npy;
using io::read_npz;
using io::write_npy;
using io::write_npz;
using testing::throws_error;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

template <class T>
std::string raw(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

/// The bytes of a tensor's row-major values, to compare bit for bit.
std::string tensor_bytes(const Tensor& t) {
  const Tensor c = t.to(Device::cpu()).contiguous();
  return std::string(static_cast<const char*>(c.raw_data()), c.nbytes());
}

/// A .npy file with the given header text (padded with a newline only) and data.
std::string npy(const std::string& header, const std::string& data, int major = 1) {
  std::string out = std::string("\x93NUMPY", 6) + static_cast<char>(major) + '\0';
  const std::string text = header + "\n";
  const size_t n = text.size();
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
  return out + text + data;
}

::testing::AssertionResult same(const Tensor& got, const Tensor& want) {
  if (got.dtype() != want.dtype()) {
    return ::testing::AssertionFailure()
           << "dtype " << dtype_name(got.dtype()) << " vs " << dtype_name(want.dtype());
  }
  if (got.shape() != want.shape()) {
    return ::testing::AssertionFailure()
           << "shape " << shape_str(got.shape()) << " vs " << shape_str(want.shape());
  }
  if (tensor_bytes(got) != tensor_bytes(want)) return ::testing::AssertionFailure() << "values";
  return ::testing::AssertionSuccess();
}

/// One scratch directory per test.
class NpyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           fmt::format("basin-npy-{}-{}-{}", ::getpid(), info->test_suite_name(), info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string file(const std::string& name, const std::string& bytes) const {
    write_bytes(path(name), bytes);
    return path(name);
  }

  fs::path dir_;
};

class NpzTest : public NpyTest {};

/// One tensor of every dtype, with the shapes that need care.
std::map<std::string, Tensor> sample_tensors() {
  return {
      {"f32", from_vector(std::vector<float>{-1, -0.5f, 0, 0.5f, 1, 1.5f}, {2, 3})},
      {"f64", from_vector(std::vector<double>{0.25, -0.0, 1e300, 5}, {2, 1, 2})},
      {"i32", from_vector(std::vector<int32_t>{-2, -1, 0, 1, 2}, {5})},
      {"i64", from_vector(std::vector<int64_t>{int64_t{1} << 40, -(int64_t{1} << 41), 3}, {3, 1})},
      {"u8", from_vector(std::vector<uint8_t>{0, 60, 120, 255}, {2, 2})},
      {"bool", from_vector(std::vector<uint8_t>{1, 0, 1}, {3}).astype(Dtype::boolean)},
      {"scalar", scalar(3.5, Dtype::f64)},
      {"empty", zeros({0, 3}, Dtype::f32)},
      {"layers/0.weight", testing::make({4, 3, 2}, 7, -1, 1, Dtype::f32)},
  };
}

// --- .npy ------------------------------------------------------------------------------------

TEST_F(NpyTest, RoundTripsEveryDtype) {
  for (const auto& [name, t] : sample_tensors()) {
    const std::string p = path("t.npy");
    write_npy(p, t);
    EXPECT_TRUE(same(read_npy(p), t)) << name;
  }
  // Strided, autograd-tracked tensors are written as their values.
  Tensor x = testing::make({3, 4}, 5, -1, 1, Dtype::f32);
  x.set_requires_grad();
  write_npy(path("t.npy"), transpose(x));
  EXPECT_TRUE(same(read_npy(path("t.npy")), transpose(x).detach().contiguous()));
}

TEST_F(NpyTest, WritesNumPysLayout) {
  write_npy(path("a.npy"), zeros({2, 3}, Dtype::f32));
  const std::string bytes = read_bytes(path("a.npy"));
  ASSERT_GE(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t header_len = static_cast<unsigned char>(bytes[8]) |
                            (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
  EXPECT_EQ((10 + header_len) % 64, 0u);  // the data starts aligned
  EXPECT_EQ(bytes.size(), 10 + header_len + 24);
  const std::string header = bytes.substr(10, header_len);
  EXPECT_EQ(header.rfind("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 0), 0u)
      << header;
  EXPECT_EQ(header.back(), '\n');

  write_npy(path("b.npy"), from_vector(std::vector<uint8_t>{1}, {1}).astype(Dtype::boolean));
  EXPECT_NE(
      read_bytes(path("b.npy")).find("{'descr': '|b1', 'fortran_order': False, 'shape': (1,), }"),
      std::string::npos);
  write_npy(path("c.npy"), scalar(1, Dtype::i64));
  EXPECT_NE(
      read_bytes(path("c.npy")).find("'descr': '<i8', 'fortran_order': False, 'shape': (), }"),
      std::string::npos);
}

TEST_F(NpyTest, ReadsHeaderVariants) {
  // Fortran order: the values of [[0, 1, 2], [3, 4, 5]] column by column.
  const Tensor want = from_vector(std::vector<int32_t>{0, 1, 2, 3, 4, 5}, {2, 3});
  const std::string fortran =
      file("f.npy", npy("{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }",
                        raw(std::vector<int32_t>{0, 3, 1, 4, 2, 5})));
  EXPECT_TRUE(same(read_npy(fortran), want));
  // Three dimensions in Fortran order: element (i, j, k) lies at i + 2 j + 4 k.
  std::vector<double> f3(2 * 2 * 3), c3(2 * 2 * 3);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 3; ++k) {
        const double v = 100 * i + 10 * j + k;
        f3[static_cast<size_t>(i + 2 * j + 4 * k)] = v;
        c3[static_cast<size_t>(i * 6 + j * 3 + k)] = v;
      }
  EXPECT_TRUE(same(read_npy(file("f3.npy", npy("{'descr': '<f8', 'fortran_order': True, "
                                               "'shape': (2, 2, 3), }",
                                               raw(f3)))),
                   from_vector(c3, {2, 2, 3})));
  // Big-endian data is byte-swapped.
  EXPECT_TRUE(
      same(read_npy(file("be.npy", npy("{'descr': '>i4', 'fortran_order': False, "
                                       "'shape': (2,), }",
                                       std::string("\x00\x00\x01\x02\xff\xff\xff\xfe", 8)))),
           from_vector(std::vector<int32_t>{258, -2}, {2})));
  const std::string be_f8 = std::string("\x3f\xf0\0\0\0\0\0\0", 8);  // 1.0
  EXPECT_TRUE(same(read_npy(file("bef.npy", npy("{'descr': '>f8', 'fortran_order': False, "
                                                "'shape': (), }",
                                                be_f8))),
                   scalar(1.0, Dtype::f64)));
  // '=' and '<' for one-byte types, versions 2.0 and 3.0, double quotes, Python 2 longs, no
  // trailing comma, keys in another order.
  EXPECT_TRUE(same(read_npy(file("v2.npy", npy("{\"shape\": (3L,), \"descr\": \"<u1\", "
                                               "\"fortran_order\": False}",
                                               "\x01\x02\x03", 2))),
                   from_vector(std::vector<uint8_t>{1, 2, 3}, {3})));
  EXPECT_TRUE(same(read_npy(file("v3.npy", npy("{'descr': '=b1', 'fortran_order': False, "
                                               "'shape': (2, 1), }",
                                               std::string("\x00\x07", 2), 3))),
                   from_vector(std::vector<uint8_t>{0, 1}, {2, 1}).astype(Dtype::boolean)));
  EXPECT_TRUE(same(read_npy(file("e.npy", npy("{'descr': '<f4', 'fortran_order': True, "
                                              "'shape': (0, 4), }",
                                              ""))),
                   zeros({0, 4}, Dtype::f32)));
}

TEST_F(NpyTest, BadFiles) {
  const auto rejects = [&](const std::string& name, const std::string& bytes,
                           const std::string& phrase) {
    const std::string p = file(name, bytes);
    return throws_error([&] { read_npy(p); }, {"[read_npy]", p, phrase});
  };
  const std::string f4 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  const std::string data = raw(std::vector<float>{1, 2});
  EXPECT_TRUE(throws_error([&] { read_npy(path("missing.npy")); },
                           {"[read_npy]", "missing.npy", "cannot open"}));
  EXPECT_TRUE(rejects("magic.npy", "PK\x03\x04 not numpy", "not a .npy file"));
  EXPECT_TRUE(rejects("empty.npy", "", "not a .npy file"));
  EXPECT_TRUE(rejects("short.npy", std::string("\x93NUMPY\x01", 7), "truncated"));
  EXPECT_TRUE(rejects("version.npy", npy(f4, data, 4), "version 4.0"));
  EXPECT_TRUE(rejects("header.npy", npy(f4, data).substr(0, 30), "inside the"));
  EXPECT_TRUE(rejects("data.npy", npy(f4, data).substr(0, npy(f4, data).size() - 1),
                      "need 8 data bytes, the file holds 7"));
  // A header claiming far more data than the file holds fails before allocating it.
  EXPECT_TRUE(rejects(
      "claims.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000,), }", data),
      "need 8000000000 data bytes, the file holds 8"));
  EXPECT_TRUE(rejects("extra.npy", npy(f4, data + "xyz"), "3 bytes follow"));
  EXPECT_TRUE(rejects("f2.npy",
                      npy("{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", "abcd"),
                      "dtype '<f2' is not supported"));
  EXPECT_TRUE(
      rejects("c8.npy",
              npy("{'descr': '<c8', 'fortran_order': False, 'shape': (), }", std::string(8, '\0')),
              "dtype '<c8' is not supported"));
  EXPECT_TRUE(rejects("obj.npy", npy("{'descr': '|O', 'fortran_order': False, 'shape': (), }", ""),
                      "dtype '|O' is not supported"));
  EXPECT_TRUE(rejects("struct.npy",
                      npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (), }", ""),
                      "structured dtypes"));
  EXPECT_TRUE(rejects("nokey.npy", npy("{'descr': '<f4', 'shape': (2,), }", data),
                      "lacks 'fortran_order'"));
  EXPECT_TRUE(rejects("key.npy",
                      npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), "
                          "'extra': 1}",
                          data),
                      "unexpected key 'extra'"));
  EXPECT_TRUE(rejects("syntax.npy",
                      npy("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,)}", data),
                      "expected True or False"));
  EXPECT_TRUE(rejects("neg.npy",
                      npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", data),
                      "bad header"));
  EXPECT_TRUE(rejects("huge.npy",
                      npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, "
                          "4294967296), }",
                          data),
                      "overflows"));
}

TEST_F(NpyTest, FailedWriteLeavesTheOldFile) {
  const std::string p = file("a.npy", "old contents");
  EXPECT_TRUE(throws_error([&] { write_npy(path("no/such/dir/a.npy"), ones({2})); },
                           {"[write_npy]", "no/such/dir/a.npy", "temporary file"}));
  EXPECT_TRUE(throws_error([&] { write_npy(p, Tensor()); }, {"[write_npy]", "undefined"}));
  EXPECT_EQ(read_bytes(p), "old contents");
}

// --- .npz ------------------------------------------------------------------------------------

TEST_F(NpzTest, RoundTripsStoredAndCompressed) {
  const auto tensors = sample_tensors();
  for (const bool compress : {false, true}) {
    const std::string p = path(compress ? "c.npz" : "s.npz");
    write_npz(p, tensors, compress);
    EXPECT_EQ(read_bytes(p).substr(0, 2), "PK");
    const auto back = read_npz(p);
    ASSERT_EQ(back.size(), tensors.size());
    for (const auto& [name, t] : tensors) {
      ASSERT_EQ(back.count(name), 1u) << name;
      EXPECT_TRUE(same(back.at(name), t)) << name;
    }
  }
  // Stored members hold the .npy bytes as they are; a large zero array compresses.
  const std::map<std::string, Tensor> big = {{"z", zeros({4096}, Dtype::f32)}};
  write_npz(path("z0.npz"), big, false);
  write_npz(path("z1.npz"), big, true);
  EXPECT_GT(read_bytes(path("z0.npz")).size(), 4096u * 4);
  EXPECT_LT(read_bytes(path("z1.npz")).size(), 4096u);
  // The same arrays give the same bytes (fixed time stamps).
  write_npz(path("again.npz"), tensors);
  EXPECT_EQ(read_bytes(path("again.npz")), read_bytes(path("s.npz")));
  // No arrays: an empty archive.
  write_npz(path("none.npz"), {});
  EXPECT_TRUE(read_npz(path("none.npz")).empty());
  EXPECT_TRUE(throws_error(
      [&] {
        write_npz(path("x.npz"), {{"", ones({1})}});
      },
      {"[write_npz]", "empty name"}));
}

TEST_F(NpzTest, CorruptArchives) {
  const std::map<std::string, Tensor> tensors = {
      {"a", from_vector(std::vector<float>{1, 2, 3, 4}, {4})},
      {"b", from_vector(std::vector<int64_t>{5, 6}, {2})}};
  const std::string good = path("good.npz");
  write_npz(good, tensors);
  const std::string bytes = read_bytes(good);
  const auto rejects = [&](const std::string& name, const std::string& content,
                           const std::vector<std::string>& phrases) {
    const std::string p = file(name, content);
    std::vector<std::string> all = {"[read_npz]", p};
    all.insert(all.end(), phrases.begin(), phrases.end());
    return throws_error([&] { read_npz(p); }, all);
  };
  EXPECT_TRUE(throws_error([&] { read_npz(path("missing.npz")); },
                           {"[read_npz]", "missing.npz", "cannot open"}));
  EXPECT_TRUE(rejects("text.npz", "this is not a zip archive at all, just some text",
                      {"cannot open the zip archive"}));
  EXPECT_TRUE(rejects("half.npz", bytes.substr(0, bytes.size() / 2), {"is it truncated?"}));
  EXPECT_TRUE(throws_error([&] { read_npy(good); }, {"[read_npy]", good, "read with read_npz"}));
  // A flipped data byte in member a.npy: the CRC check fails (or the .npy inside is bad).
  std::string flipped = bytes;
  const size_t at = flipped.find("\x93NUMPY") + 140;
  ASSERT_LT(at, flipped.size());
  flipped[at] = static_cast<char>(flipped[at] ^ 0x5a);
  EXPECT_TRUE(rejects("crc.npz", flipped, {"member 'a.npy'"}));
  // A member whose content is not a .npy file.
  std::string renamed = bytes;
  const size_t magic = renamed.find("\x93NUMPY", renamed.find("b.npy"));
  ASSERT_NE(magic, std::string::npos);
  renamed[magic + 1] = 'X';
  EXPECT_TRUE(rejects("magic.npz", renamed, {"member 'b.npy'"}));
}

// --- interop with NumPy ------------------------------------------------------------------------

TEST_F(NpzTest, NumPyInterop) {
  // BASIN_PYTHON picks another interpreter (a virtual environment that has numpy).
  const char* env = std::getenv("BASIN_PYTHON");
  const std::string python = env != nullptr && *env != '\0' ? env : "/usr/bin/python3";
  if (std::system(fmt::format("'{}' -c 'import numpy' >/dev/null 2>&1", python).c_str()) != 0) {
    GTEST_SKIP() << "numpy is not installed for " << python
                 << " (pip install numpy, or set BASIN_PYTHON to an interpreter that has it)";
  }
  write_npz(path("ours_stored.npz"), sample_tensors());
  write_npz(path("ours_deflated.npz"), sample_tensors(), true);
  write_npy(path("ours.npy"), sample_tensors().at("f64"));
  const std::string script = file("check.py", R"(import sys, os
import numpy as np
d = sys.argv[1]
want = {
    "f32": np.array([[-1, -0.5, 0], [0.5, 1, 1.5]], dtype=np.float32),
    "f64": np.array([0.25, -0.0, 1e300, 5], dtype=np.float64).reshape(2, 1, 2),
    "i32": np.array([-2, -1, 0, 1, 2], dtype=np.int32),
    "i64": np.array([[1 << 40], [-(1 << 41)], [3]], dtype=np.int64),
    "u8": np.array([[0, 60], [120, 255]], dtype=np.uint8),
    "bool": np.array([True, False, True]),
    "scalar": np.array(3.5, dtype=np.float64),
    "empty": np.zeros((0, 3), dtype=np.float32),
}
for name in ("ours_stored.npz", "ours_deflated.npz"):
    with np.load(os.path.join(d, name)) as z:
        assert "layers/0.weight" in z.files, z.files
        for k, v in want.items():
            assert z[k].dtype == v.dtype and z[k].shape == v.shape, (name, k, z[k].dtype, z[k].shape)
            assert np.array_equal(z[k], v), (name, k, z[k])
x = np.load(os.path.join(d, "ours.npy"))
assert x.dtype == np.float64 and np.array_equal(x, want["f64"]), x
# Byte for byte what numpy.save writes (its header layout, checked against numpy 1.24).
if tuple(int(v) for v in np.__version__.split(".")[:2]) >= (1, 24):
    import io
    b = io.BytesIO()
    np.save(b, want["f64"])
    assert open(os.path.join(d, "ours.npy"), "rb").read() == b.getvalue()
# Files written by NumPy for basin to read.
a = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 8
np.save(os.path.join(d, "c_order.npy"), a)
np.save(os.path.join(d, "f_order.npy"), np.asfortranarray(a.astype(np.float64)))
assert np.load(os.path.join(d, "f_order.npy"), mmap_mode="r").flags.f_contiguous
np.save(os.path.join(d, "big_endian.npy"), np.arange(6, dtype=">i4").reshape(3, 2) - 3)
np.save(os.path.join(d, "scalar.npy"), np.int64(-7))
np.save(os.path.join(d, "bool.npy"), np.array([[True, False], [False, True]]))
arrays = dict(weight=a, index=np.arange(5, dtype=np.int64), mask=np.arange(6, dtype=np.uint8) % 3,
              fortran=np.asfortranarray(a.astype(np.float64)), empty=np.zeros((2, 0), np.int32))
np.savez(os.path.join(d, "savez.npz"), **arrays)
np.savez_compressed(os.path.join(d, "compressed.npz"), **arrays)
np.savez(os.path.join(d, "positional.npz"), np.ones(3, np.float32), np.zeros(2, np.float64))
print("python-ok")
)");
  const std::string command = fmt::format("'{}' '{}' '{}' 2>&1", python, script, dir_.string());
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[512];
  while (const size_t n = std::fread(buf, 1, sizeof buf, pipe)) output.append(buf, n);
  ASSERT_EQ(::pclose(pipe), 0) << output;
  ASSERT_NE(output.find("python-ok"), std::string::npos) << output;

  std::vector<float> a(24);
  std::vector<double> a64(24);
  for (size_t i = 0; i < a.size(); ++i) a64[i] = a[i] = static_cast<float>(i) / 8;
  const Tensor weight = from_vector(a, {2, 3, 4});
  EXPECT_TRUE(same(read_npy(path("c_order.npy")), weight));
  EXPECT_TRUE(same(read_npy(path("f_order.npy")), from_vector(a64, {2, 3, 4})));
  EXPECT_TRUE(same(read_npy(path("big_endian.npy")),
                   from_vector(std::vector<int32_t>{-3, -2, -1, 0, 1, 2}, {3, 2})));
  EXPECT_TRUE(same(read_npy(path("scalar.npy")), scalar(-7, Dtype::i64)));
  EXPECT_TRUE(same(read_npy(path("bool.npy")),
                   from_vector(std::vector<uint8_t>{1, 0, 0, 1}, {2, 2}).astype(Dtype::boolean)));
  for (const char* name : {"savez.npz", "compressed.npz"}) {
    const auto z = read_npz(path(name));
    ASSERT_EQ(z.size(), 5u) << name;
    EXPECT_TRUE(same(z.at("weight"), weight)) << name;
    EXPECT_TRUE(same(z.at("fortran"), from_vector(a64, {2, 3, 4}))) << name;
    EXPECT_TRUE(same(z.at("index"), from_vector(std::vector<int64_t>{0, 1, 2, 3, 4}, {5}))) << name;
    EXPECT_TRUE(same(z.at("mask"), from_vector(std::vector<uint8_t>{0, 1, 2, 0, 1, 2}, {6})))
        << name;
    EXPECT_TRUE(same(z.at("empty"), zeros({2, 0}, Dtype::i32))) << name;
  }
  const auto positional = read_npz(path("positional.npz"));
  EXPECT_TRUE(same(positional.at("arr_0"), ones({3}, Dtype::f32)));
  EXPECT_TRUE(same(positional.at("arr_1"), zeros({2}, Dtype::f64)));
}

}  // namespace
}  // namespace basin
