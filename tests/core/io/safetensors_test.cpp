// safetensors: golden bytes, round trips, malformed files, atomic writes, Python interop.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

#include "tests/test_util.h"

namespace basin {
namespace {

namespace fs = std::filesystem;
using io::load_safetensors;
using io::load_tensor;
using io::save_safetensors;
using testing::throws_error;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (char& c : s) {
    c = static_cast<char>(n & 0xff);
    n >>= 8;
  }
  return s;
}

template <class T>
std::string raw(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

/// The bytes of a contiguous CPU tensor, to compare values bit for bit (NaN, -0.0 included).
std::string tensor_bytes(const Tensor& t) {
  const Tensor c = t.to(Device::cpu()).contiguous();
  return std::string(static_cast<const char*>(c.raw_data()), c.nbytes());
}

/// Each test gets its own scratch directory: ctest runs tests in parallel processes.
class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           fmt::format("basin-st-{}-{}-{}", ::getpid(), info->test_suite_name(), info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  /// Names in the scratch directory (to check that no temporary file is left behind).
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_))
      names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  fs::path dir_;
};

class SafetensorsFormat : public SafetensorsTest {};
class SafetensorsRoundTrip : public SafetensorsTest {};
class SafetensorsMalformed : public SafetensorsTest {
 protected:
  /// Writes a file with the given header (its length prefix computed) and data bytes.
  std::string file_with(const std::string& header, const std::string& data = "",
                        const std::string& name = "bad.safetensors") {
    const std::string p = path(name);
    write_bytes(p, le64(header.size()) + header + data);
    return p;
  }
  /// Checks that loading `p` fails with a message naming the file and containing `phrase`.
  ::testing::AssertionResult rejects(const std::string& p, const std::string& phrase) {
    return throws_error([&] { load_safetensors(p); }, {p, phrase});
  }
};
class SafetensorsAtomic : public SafetensorsTest {};
class SafetensorsInterop : public SafetensorsTest {};

// --- the reference writer's exact bytes ---------------------------------------------------------

TEST_F(SafetensorsFormat, GoldenVector) {
  // The reference's test_serialization, byte for byte.
  const unsigned char want[] = {
      64, 0,  0,   0,   0,   0,   0,   0,   123, 34,  97,  116, 116, 110, 46,  48,
      34, 58, 123, 34,  100, 116, 121, 112, 101, 34,  58,  34,  70,  51,  50,  34,
      44, 34, 115, 104, 97,  112, 101, 34,  58,  91,  49,  44,  50,  44,  51,  93,
      44, 34, 100, 97,  116, 97,  95,  111, 102, 102, 115, 101, 116, 115, 34,  58,
      91, 48, 44,  50,  52,  93,  125, 125, 0,   0,   0,   0,   0,   0,   128, 63,
      0,  0,  0,   64,  0,   0,   64,  64,  0,   0,   128, 64,  0,   0,   160, 64};
  const std::string p = path("golden.safetensors");
  save_safetensors(p, {{"attn.0", from_vector(std::vector<float>{0, 1, 2, 3, 4, 5}, {1, 2, 3})}});
  const std::string got = read_bytes(p);
  ASSERT_EQ(got.size(), 96u);
  EXPECT_EQ(got, std::string(reinterpret_cast<const char*>(want), sizeof want));
  EXPECT_EQ(got, le64(64) + R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})" +
                     raw(std::vector<float>{0, 1, 2, 3, 4, 5}));
  const auto f = load_safetensors(p);
  EXPECT_EQ(f.order, (std::vector<std::string>{"attn.0"}));
  EXPECT_EQ(f.tensors.at("attn.0").to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4, 5}));
}

TEST_F(SafetensorsFormat, EmptyFileAndMetadataOnly) {
  // The reference's test_empty.
  const std::string p = path("empty.safetensors");
  save_safetensors(p, io::NamedTensors{});
  EXPECT_EQ(read_bytes(p), le64(8) + "{}      ");
  EXPECT_TRUE(load_safetensors(p).tensors.empty());

  save_safetensors(p, io::NamedTensors{}, {{"framework", "pt"}});
  EXPECT_EQ(read_bytes(p), le64(40) + R"({"__metadata__":{"framework":"pt"}})" + "     ");
  const auto f = load_safetensors(p);
  EXPECT_TRUE(f.tensors.empty());
  EXPECT_EQ(f.metadata, (std::map<std::string, std::string>{{"framework", "pt"}}));
}

TEST_F(SafetensorsFormat, HeaderPaddedToEightBytes) {
  // The reference's test_serialization_forced_alignement: seven spaces of padding.
  const std::string p = path("pad.safetensors");
  const auto values = std::vector<float>{0, 1, 2, 3, 4, 5};
  save_safetensors(p, {{"attn0", from_vector(values, {1, 1, 2, 3})}});
  EXPECT_EQ(read_bytes(p),
            le64(72) + R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})" +
                "       " + raw(values));
  // Every header length lands on a multiple of 8, padded with spaces only.
  for (int len = 1; len <= 17; ++len) {
    const std::string name(static_cast<size_t>(len), 'x');
    save_safetensors(p, {{name, scalar(1.0, Dtype::f64)}});
    const std::string bytes = read_bytes(p);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
    EXPECT_EQ(n % 8, 0u) << name;
    EXPECT_EQ(bytes.size(), 8 + n + 8) << name;
    const std::string header = bytes.substr(8, n);
    const size_t close = header.rfind('}');
    EXPECT_EQ(header.find_first_not_of(' ', close + 1), std::string::npos) << name;
    EXPECT_LT(header.size() - close - 1, 8u) << name;
    EXPECT_EQ(load_safetensors(p).tensors.at(name).item<double>(), 1.0);
  }
}

TEST_F(SafetensorsFormat, TensorsOrderedByDtypeThenName) {
  const std::string p = path("order.safetensors");
  save_safetensors(p, {{"z_bool", ones({1}, Dtype::boolean)},
                       {"a_u8", ones({1}, Dtype::u8)},
                       {"b_i32", ones({1}, Dtype::i32)},
                       {"b_f32", ones({1}, Dtype::f32)},
                       {"a_f32", ones({1}, Dtype::f32)},
                       {"c_f64", ones({1}, Dtype::f64)},
                       {"d_i64", ones({1}, Dtype::i64)}});
  // The reference sorts by its Dtype enum, descending: I64, F64, F32, I32, U8, BOOL.
  const std::vector<std::string> want = {"d_i64", "c_f64", "a_f32", "b_f32",
                                         "b_i32", "a_u8",  "z_bool"};
  const std::string bytes = read_bytes(p);
  size_t last = 0;
  for (const auto& name : want) {
    const size_t at = bytes.find('"' + name + '"');
    ASSERT_NE(at, std::string::npos) << name;
    EXPECT_GT(at, last) << name;
    last = at;
  }
  EXPECT_EQ(load_safetensors(p).order, want);
}

TEST_F(SafetensorsFormat, OverloadsWriteTheSameBytes) {
  const Tensor a = from_vector(std::vector<double>{1, 2}, {2});
  const Tensor b = from_vector(std::vector<int32_t>{3}, {1});
  const std::map<std::string, std::string> meta = {{"k", "v"}};
  save_safetensors(path("list"), {{"b", b}, {"a", a}}, meta);
  save_safetensors(path("vector"), io::NamedTensors{{"a", a}, {"b", b}}, meta);
  save_safetensors(path("map"), std::map<std::string, Tensor>{{"b", b}, {"a", a}}, meta);
  EXPECT_EQ(read_bytes(path("list")), read_bytes(path("vector")));
  EXPECT_EQ(read_bytes(path("list")), read_bytes(path("map")));
}

TEST_F(SafetensorsFormat, NamesAndMetadataAreEscaped) {
  const std::string p = path("escape.safetensors");
  const std::string name = "w\"\\\n\u00e9";
  save_safetensors(p, {{name, scalar(2.0)}}, {{"quote\"", "line\nbreak \u00e9"}});
  const std::string bytes = read_bytes(p);
  // As serde_json: quotes, backslashes and control characters escaped, other UTF-8 kept as is.
  EXPECT_NE(bytes.find(R"("w\"\\\n)"
                       "\u00e9"
                       R"(")"),
            std::string::npos)
      << bytes;
  const auto f = load_safetensors(p);
  EXPECT_EQ(f.tensors.at(name).item<float>(), 2.f);
  EXPECT_EQ(f.metadata.at("quote\""), "line\nbreak \u00e9");
}

// --- round trips -------------------------------------------------------------------------------

TEST_F(SafetensorsRoundTrip, EveryDtype) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::map<std::string, Tensor> in = {
      {"f32", from_vector(std::vector<float>{1.5f, -0.0f, nan, inf, -inf, 1e-40f}, {2, 3})},
      {"f64", testing::make({3, 2, 2}, 1)},
      {"i32",
       from_vector(std::vector<int32_t>{std::numeric_limits<int32_t>::min(), -1, 0, 7}, {4})},
      {"i64", from_vector(std::vector<int64_t>{std::numeric_limits<int64_t>::max(), -5}, {1, 2})},
      {"u8", from_vector(std::vector<uint8_t>{0, 1, 128, 255}, {2, 2})},
      {"bool", from_vector(std::vector<uint8_t>{1, 0, 0, 1, 1}, {5}).astype(Dtype::boolean)},
  };
  const std::string p = path("all.safetensors");
  save_safetensors(p, in);
  const auto f = load_safetensors(p);
  ASSERT_EQ(f.tensors.size(), in.size());
  for (const auto& [name, want] : in) {
    const Tensor& got = f.tensors.at(name);
    EXPECT_EQ(got.dtype(), want.dtype()) << name;
    EXPECT_EQ(got.shape(), want.shape()) << name;
    EXPECT_TRUE(got.device().is_cpu()) << name;
    EXPECT_TRUE(got.is_contiguous()) << name;
    EXPECT_EQ(tensor_bytes(got), tensor_bytes(want)) << name;
  }
  EXPECT_EQ(f.tensors.at("bool").to_vector<int>(), (std::vector<int>{1, 0, 0, 1, 1}));
  EXPECT_EQ(f.order, (std::vector<std::string>{"i64", "f64", "f32", "i32", "u8", "bool"}));
  EXPECT_TRUE(f.metadata.empty());
  EXPECT_NE(f.tensors.at("f32").storage(), f.tensors.at("f64").storage());
}

TEST_F(SafetensorsRoundTrip, RankZeroAndZeroSize) {
  const std::string p = path("edge.safetensors");
  save_safetensors(p, {{"scalar", scalar(4.25, Dtype::f64)},
                       {"empty", zeros({0}, Dtype::f32)},
                       {"empty2d", zeros({2, 0, 3}, Dtype::i64)},
                       {"one", scalar(7, Dtype::i32)}});
  const std::string bytes = read_bytes(p);
  EXPECT_NE(bytes.find(R"("scalar":{"dtype":"F64","shape":[],"data_offsets":[0,8]})"),
            std::string::npos);
  EXPECT_NE(bytes.find(R"("empty2d":{"dtype":"I64","shape":[2,0,3],"data_offsets":[0,0]})"),
            std::string::npos);
  const auto f = load_safetensors(p);
  EXPECT_EQ(f.tensors.at("scalar").shape(), Shape{});
  EXPECT_EQ(f.tensors.at("scalar").item<double>(), 4.25);
  EXPECT_EQ(f.tensors.at("one").item<int32_t>(), 7);
  EXPECT_EQ(f.tensors.at("empty").shape(), Shape{0});
  EXPECT_EQ(f.tensors.at("empty2d").shape(), (Shape{2, 0, 3}));
  EXPECT_EQ(f.tensors.at("empty2d").dtype(), Dtype::i64);
  EXPECT_EQ(load_tensor(p, "empty").numel(), 0);
}

TEST_F(SafetensorsRoundTrip, NonContiguousInputsAreWrittenRowMajor) {
  const Tensor base = testing::make({4, 6}, 2);
  const Tensors views = {transpose(base), slice(base, 1, 1, 6, 2), narrow(base, 0, 1, 2),
                         expand(from_vector(std::vector<float>{1, 2, 3}, {3, 1}), {3, 4}),
                         testing::noncontiguous(testing::make({3, 4, 5}, 3))};
  io::NamedTensors named, copies;
  for (size_t i = 0; i < views.size(); ++i) {
    named.emplace_back(fmt::format("v{}", i), views[i]);
    copies.emplace_back(fmt::format("v{}", i), views[i].contiguous().clone());
  }
  EXPECT_FALSE(views[0].is_contiguous());
  save_safetensors(path("views"), named);
  save_safetensors(path("copies"), copies);
  EXPECT_EQ(read_bytes(path("views")), read_bytes(path("copies")));
  const auto f = load_safetensors(path("views"));
  for (const auto& [name, view] : named) {
    EXPECT_EQ(tensor_bytes(f.tensors.at(name)), tensor_bytes(view)) << name;
  }
}

TEST_F(SafetensorsRoundTrip, Metadata) {
  const std::string p = path("meta.safetensors");
  const std::map<std::string, std::string> meta = {
      {"format", "pt"}, {"config", R"({"layers": 2, "name": "ebm"})"}, {"empty", ""}};
  save_safetensors(p, {{"w", ones({2})}}, meta);
  EXPECT_EQ(read_bytes(p).find(R"({"__metadata__":{)"), 8u);  // written first, as the reference
  EXPECT_EQ(load_safetensors(p).metadata, meta);
}

TEST_F(SafetensorsRoundTrip, LoadTensorByName) {
  const std::string p = path("one.safetensors");
  save_safetensors(p, {{"a", arange(3)}, {"b", ones({2, 2}, Dtype::f64)}});
  EXPECT_EQ(load_tensor(p, "a").to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(load_tensor(p, "b").shape(), (Shape{2, 2}));
  EXPECT_TRUE(throws_error([&] { load_tensor(p, "c"); }, {p, "no tensor named 'c'"}));
}

TEST_F(SafetensorsRoundTrip, ParametersSaveWithoutRecordingAutograd) {
  Tensor w = testing::make({2, 3}, 4);
  w.set_requires_grad();
  save_safetensors(path("p"), {{"w", w}});
  const Tensor back = load_tensor(path("p"), "w");
  EXPECT_FALSE(back.requires_grad());
  EXPECT_TRUE(testing::all_close(back, w, 0, 0));
}

TEST_F(SafetensorsRoundTrip, BoolBytesOtherThanOneReadAsTrue) {
  const std::string p = path("bool.safetensors");
  const std::string header = R"({"b":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})";
  write_bytes(p, le64(header.size()) + header + std::string("\x00\x02\xff", 3));
  EXPECT_EQ(load_tensor(p, "b").to_vector<int>(), (std::vector<int>{0, 1, 1}));
}

TEST_F(SafetensorsRoundTrip, ReaderAcceptsWhatTheReferenceAccepts) {
  // Header order differing from data order, unknown extra fields, null metadata, unpadded or
  // newline-padded headers: the reference reader takes all of these.
  const std::string header =
      R"({"__metadata__":null,"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3],"extra":1},)"
      R"("a":{"shape":[2],"data_offsets":[0,2],"dtype":"U8"}})"
      "\n\t ";
  const std::string p = path("lenient.safetensors");
  write_bytes(p, le64(header.size()) + header + "\x01\x02\x03");
  const auto f = load_safetensors(p);
  EXPECT_EQ(f.order, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(f.tensors.at("a").to_vector<int>(), (std::vector<int>{1, 2}));
  EXPECT_EQ(f.tensors.at("b").to_vector<int>(), (std::vector<int>{3}));
  EXPECT_TRUE(f.metadata.empty());
}

TEST_F(SafetensorsRoundTrip, CudaTensorsAreCopiedToTheCpu) {
  if (!cuda_is_available()) GTEST_SKIP() << "no CUDA device or driver on this machine";
  // The same views of a CPU tensor and of its CUDA copy; the latter must save as the former.
  const auto views = [](const Tensor& b) {
    return io::NamedTensors{{"whole", b},
                            {"transposed", transpose(b)},
                            {"strided", slice(slice(b, 0, 1, 3), 1, 1, 5, 2)},
                            {"broadcast", expand(slice(b, 0, 2, 3), {4, 5})},
                            {"empty", slice(b, 0, 3, 3)},
                            {"scalar", squeeze(slice(slice(b, 0, 2, 3), 1, 4, 5))}};
  };
  const Tensor x = testing::make({3, 5}, 5).astype(Dtype::f32);
  const io::NamedTensors on_gpu = views(x.to(Device::cuda()));
  const io::NamedTensors on_cpu = views(x);
  EXPECT_TRUE(on_gpu[1].second.device().is_cuda());
  save_safetensors(path("gpu"), on_gpu);
  save_safetensors(path("cpu"), on_cpu);
  EXPECT_EQ(read_bytes(path("gpu")), read_bytes(path("cpu")));
  const auto f = load_safetensors(path("gpu"));
  for (const auto& [name, want] : on_cpu) {
    const Tensor& got = f.tensors.at(name);
    EXPECT_TRUE(got.device().is_cpu()) << name;
    EXPECT_EQ(got.shape(), want.shape()) << name;
    EXPECT_EQ(tensor_bytes(got), tensor_bytes(want)) << name;
  }
}

// --- malformed files ---------------------------------------------------------------------------

TEST_F(SafetensorsMalformed, FileTooShort) {
  const std::string p = path("short");
  write_bytes(p, std::string("\x05\x00\x00", 3));
  EXPECT_TRUE(rejects(p, "too short"));
  write_bytes(p, "");
  EXPECT_TRUE(rejects(p, "too short"));
}

TEST_F(SafetensorsMalformed, HeaderLength) {
  const std::string p = path("len");
  write_bytes(p, le64(100'000'001) + "{}");
  EXPECT_TRUE(rejects(p, "exceeds the limit of 100000000 bytes"));
  write_bytes(p, le64(~uint64_t{0}) + "{}");
  EXPECT_TRUE(rejects(p, "exceeds the limit"));
  write_bytes(p, le64(100) + "{}");
  EXPECT_TRUE(rejects(p, "runs past the end of the file"));
}

TEST_F(SafetensorsMalformed, HeaderMustStartWithBrace) {
  EXPECT_TRUE(rejects(file_with(" {}"), "does not start with '{'"));
  EXPECT_TRUE(rejects(file_with("[]"), "does not start with '{'"));
  EXPECT_TRUE(rejects(file_with(""), "does not start with '{'"));
}

TEST_F(SafetensorsMalformed, InvalidJson) {
  EXPECT_TRUE(rejects(file_with(R"({"a":)"), "not valid JSON"));
  EXPECT_TRUE(rejects(file_with("{} x"), "not valid JSON"));
  EXPECT_TRUE(rejects(file_with("{\"\xff\":1}"), "not valid JSON"));  // not UTF-8
  EXPECT_TRUE(rejects(file_with(std::string("{}\0{}", 5)), "not valid JSON"));
}

TEST_F(SafetensorsMalformed, DuplicateKeys) {
  const std::string t = R"({"dtype":"U8","shape":[1],"data_offsets":[0,1]})";
  EXPECT_TRUE(
      rejects(file_with(R"({"a":)" + t + R"(,"a":)" + t + "}", "\x01"), "duplicate key 'a'"));
  EXPECT_TRUE(rejects(
      file_with(R"({"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}})", "\x01"),
      "duplicate key 'dtype'"));
  EXPECT_TRUE(rejects(file_with(R"({"__metadata__":{"k":"1","k":"2"}})"), "duplicate key 'k'"));
}

TEST_F(SafetensorsMalformed, MetadataMustBeStringToString) {
  const std::string phrase = "\"__metadata__\" must be a map of strings to strings";
  EXPECT_TRUE(rejects(file_with(R"({"__metadata__":{"a":1}})"), phrase));
  EXPECT_TRUE(rejects(file_with(R"({"__metadata__":{"a":{"b":"c"}}})"), phrase));
  EXPECT_TRUE(rejects(file_with(R"({"__metadata__":{"a":null}})"), phrase));
  EXPECT_TRUE(rejects(file_with(R"({"__metadata__":"x"})"), phrase));
  EXPECT_TRUE(rejects(file_with(R"({"__metadata__":["a","b"]})"), phrase));
}

TEST_F(SafetensorsMalformed, MissingOrMistypedFields) {
  EXPECT_TRUE(rejects(file_with(R"({"t":3})"), "tensor 't': entry is not an object"));
  EXPECT_TRUE(rejects(file_with(R"({"t":{"shape":[1],"data_offsets":[0,1]}})", "\x01"),
                      "tensor 't': missing \"dtype\""));
  EXPECT_TRUE(rejects(file_with(R"({"t":{"dtype":"U8","data_offsets":[0,1]}})", "\x01"),
                      "tensor 't': missing \"shape\""));
  EXPECT_TRUE(rejects(file_with(R"({"t":{"dtype":"U8","shape":[1]}})", "\x01"),
                      "tensor 't': missing \"data_offsets\""));
  EXPECT_TRUE(rejects(file_with(R"({"t":{"dtype":8,"shape":[1],"data_offsets":[0,1]}})", "\x01"),
                      "\"dtype\" is not a string"));
  EXPECT_TRUE(rejects(file_with(R"({"t":{"dtype":"U8","shape":1,"data_offsets":[0,1]}})", "\x01"),
                      "\"shape\" is not a list"));
  EXPECT_TRUE(
      rejects(file_with(R"({"t":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}})", "\x01"),
              "\"shape\" must hold non-negative integers"));
  EXPECT_TRUE(
      rejects(file_with(R"({"t":{"dtype":"U8","shape":["1"],"data_offsets":[0,1]}})", "\x01"),
              "\"shape\" must hold non-negative integers"));
  for (const char* offsets : {"[0]", "[0,1,2]", "\"0,1\"", "[0,1.5]", "[-1,0]", "{}"}) {
    EXPECT_TRUE(rejects(
        file_with(fmt::format(R"({{"t":{{"dtype":"U8","shape":[1],"data_offsets":{}}}}})", offsets),
                  "\x01"),
        "\"data_offsets\" must be two non-negative integers"))
        << offsets;
  }
}

TEST_F(SafetensorsMalformed, UnknownDtype) {
  EXPECT_TRUE(rejects(file_with(R"({"t":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}})", "\x01"),
                      "tensor 't': unknown dtype 'Q7'"));
  EXPECT_TRUE(
      rejects(file_with(R"({"t":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", "abcd"),
              "unknown dtype 'f32'"));
}

TEST_F(SafetensorsMalformed, KnownButUnsupportedDtypes) {
  for (const char* d : {"F16", "BF16", "I8", "I16", "U16", "U32", "U64", "F8_E5M2", "F8_E4M3"}) {
    EXPECT_TRUE(rejects(
        file_with(fmt::format(R"({{"t":{{"dtype":"{}","shape":[1],"data_offsets":[0,1]}}}})", d),
                  "\x01"),
        fmt::format("dtype {} is not supported by basin", d)))
        << d;
  }
}

TEST_F(SafetensorsMalformed, NegativeOrOverflowingShape) {
  EXPECT_TRUE(rejects(file_with(R"({"t":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}})"),
                      "\"shape\" must hold non-negative integers"));
  // 2^62 * 8 elements overflows 64 bits; 2^62 F64 elements overflow the byte count.
  EXPECT_TRUE(rejects(
      file_with(R"({"t":{"dtype":"U8","shape":[4611686018427387904,8],"data_offsets":[0,0]}})"),
      "overflows"));
  EXPECT_TRUE(rejects(
      file_with(R"({"t":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}})"),
      "overflows"));
  // Beyond int64 (basin's dimension type) even though the element count is 0.
  EXPECT_TRUE(rejects(
      file_with(R"({"t":{"dtype":"U8","shape":[0,18446744073709551615],"data_offsets":[0,0]}})"),
      "overflows"));
  // Beyond uint64: nlohmann reads it as a float.
  EXPECT_TRUE(rejects(
      file_with(R"({"t":{"dtype":"U8","shape":[99999999999999999999],"data_offsets":[0,0]}})"),
      "non-negative integers"));
}

TEST_F(SafetensorsMalformed, OffsetsMustMatchTheSize) {
  EXPECT_TRUE(
      rejects(file_with(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcd"),
              "data_offsets [0, 4] span 4 bytes, but dtype F32 and shape [2] need 8"));
  EXPECT_TRUE(
      rejects(file_with(R"({"t":{"dtype":"U8","shape":[],"data_offsets":[0,0]}})"), "need 1"));
  EXPECT_TRUE(rejects(file_with(R"({"t":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})", "abcd"),
                      "end before they begin"));
}

TEST_F(SafetensorsMalformed, TensorsMustTileTheBuffer) {
  const auto two = [&](const char* a, const char* b) {
    return file_with(fmt::format(R"({{"x":{{"dtype":"I32","shape":[1],"data_offsets":{}}},)"
                                 R"("y":{{"dtype":"I32","shape":[1],"data_offsets":{}}}}})",
                                 a, b),
                     std::string(12, 'd'));
  };
  EXPECT_TRUE(
      rejects(two("[0,4]", "[8,12]"), "tensor 'y': data_offsets [8, 12] leave a gap or overlap"));
  EXPECT_TRUE(
      rejects(two("[4,8]", "[8,12]"), "tensor 'x': data_offsets [4, 8] leave a gap or overlap"));
  EXPECT_TRUE(rejects(two("[0,4]", "[2,6]"), "gap or overlap"));
  EXPECT_TRUE(rejects(two("[0,4]", "[0,4]"), "gap or overlap"));
}

TEST_F(SafetensorsMalformed, LastEndMustBeTheEndOfTheFile) {
  const std::string h = R"({"t":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})";
  EXPECT_TRUE(
      rejects(file_with(h, std::string(9, 'd')),
              "the tensors cover 8 bytes but the data buffer after the header has 9 bytes"));
  EXPECT_TRUE(
      rejects(file_with(h, std::string(7, 'd')), "data buffer after the header has 7 bytes"));
  EXPECT_TRUE(rejects(file_with("{}", "x"), "data buffer after the header has 1 bytes"));
}

TEST_F(SafetensorsMalformed, NotAFile) {
  EXPECT_TRUE(rejects(path("missing.safetensors"), "cannot open"));
  EXPECT_TRUE(rejects(dir_.string(), "not a regular file"));
  EXPECT_TRUE(
      throws_error([&] { load_tensor(path("missing"), "x"); }, {"[load_tensor]", path("missing")}));
}

// --- atomic writes and writer errors -----------------------------------------------------------

TEST_F(SafetensorsAtomic, ReplacesAnExistingFileAndLeavesNoTemporary) {
  const std::string p = path("model.safetensors");
  write_bytes(p, "old contents");
  save_safetensors(p, {{"w", ones({3})}});
  EXPECT_EQ(load_tensor(p, "w").to_vector<float>(), (std::vector<float>{1, 1, 1}));
  EXPECT_EQ(listing(), (std::vector<std::string>{"model.safetensors"}));
}

TEST_F(SafetensorsAtomic, FailedWriteLeavesTheExistingFileUntouched) {
  const std::string p = path("model.safetensors");
  write_bytes(p, "old contents");
  // A file-size limit makes the write fail half way through (EFBIG instead of SIGXFSZ).
  std::string message;
  {
    rlimit old{};
    ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit small = old;
    small.rlim_cur = 4096;
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
    try {
      save_safetensors(p, {{"big", zeros({1 << 16}, Dtype::f64)}});
    } catch (const Error& e) {
      message = e.what();
    }
    setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
  }
  EXPECT_NE(message.find(p), std::string::npos) << message;
  EXPECT_NE(message.find("write failed"), std::string::npos) << message;
  EXPECT_EQ(read_bytes(p), "old contents");
  EXPECT_EQ(listing(), (std::vector<std::string>{"model.safetensors"}));
}

TEST_F(SafetensorsAtomic, PathIsADirectory) {
  const std::string p = path("dir.safetensors");
  fs::create_directories(p);
  write_bytes(p + "/keep", "x");
  EXPECT_TRUE(throws_error(
      [&] {
        save_safetensors(p, {{"w", ones({2})}});
      },
      {p, "cannot rename the temporary file over it"}));
  EXPECT_TRUE(fs::is_directory(p));
  EXPECT_EQ(read_bytes(p + "/keep"), "x");
  EXPECT_EQ(listing(), (std::vector<std::string>{"dir.safetensors"}));
}

TEST_F(SafetensorsAtomic, DirectoryMissing) {
  const std::string p = path("no/such/dir/model.safetensors");
  EXPECT_TRUE(throws_error(
      [&] {
        save_safetensors(p, {{"w", ones({2})}});
      },
      {p, "cannot create temporary file"}));
  EXPECT_FALSE(fs::exists(path("no")));
}

TEST_F(SafetensorsAtomic, DirectoryNotWritable) {
  if (::geteuid() == 0) GTEST_SKIP() << "running as root: directory permissions do not stop writes";
  const std::string sub = path("ro");
  fs::create_directories(sub);
  const std::string p = sub + "/model.safetensors";
  write_bytes(p, "old contents");
  fs::permissions(sub, fs::perms::owner_read | fs::perms::owner_exec);
  EXPECT_TRUE(throws_error(
      [&] {
        save_safetensors(p, {{"w", ones({2})}});
      },
      {p, "cannot create temporary file"}));
  fs::permissions(sub, fs::perms::owner_all);
  EXPECT_EQ(read_bytes(p), "old contents");
}

TEST_F(SafetensorsAtomic, InvalidInputsAreRejectedBeforeWriting) {
  const std::string p = path("model.safetensors");
  write_bytes(p, "old contents");
  EXPECT_TRUE(throws_error(
      [&] {
        save_safetensors(p, io::NamedTensors{{"a", ones({1})}, {"a", ones({1})}});
      },
      {p, "duplicate tensor name 'a'"}));
  EXPECT_TRUE(throws_error(
      [&] {
        save_safetensors(p, {{"w", Tensor()}});
      },
      {p, "tensor 'w' is undefined"}));
  EXPECT_TRUE(throws_error(
      [&] {
        save_safetensors(p, {{"__metadata__", ones({1})}});
      },
      {p, "'__metadata__' is reserved"}));
  EXPECT_TRUE(throws_error(
      [&] {
        save_safetensors(p, {{"bad\xff", ones({1})}});
      },
      {p, "valid UTF-8"}));
  EXPECT_TRUE(throws_error(
      [&] {
        save_safetensors(p, {{"w", ones({1})}}, {{"k", "\xc3"}});
      },
      {p, "valid UTF-8"}));
  EXPECT_EQ(read_bytes(p), "old contents");
  EXPECT_EQ(listing(), (std::vector<std::string>{"model.safetensors"}));
}

// --- interop with the Python reference ---------------------------------------------------------

TEST_F(SafetensorsInterop, PythonReference) {
  // BASIN_PYTHON picks another interpreter (a virtual environment that has safetensors).
  const char* env = std::getenv("BASIN_PYTHON");
  const std::string python = env != nullptr && *env != '\0' ? env : "/usr/bin/python3";
  if (std::system(
          fmt::format("'{}' -c 'import safetensors.numpy' >/dev/null 2>&1", python).c_str()) != 0) {
    GTEST_SKIP() << "the Python safetensors package is not installed for " << python
                 << " (pip install safetensors, or set BASIN_PYTHON to an interpreter that has it)";
  }
  const io::NamedTensors tensors = {
      {"f32", from_vector(std::vector<float>{-1, -0.5f, 0, 0.5f, 1, 1.5f}, {2, 3})},
      {"f64", from_vector(std::vector<double>{0.25, 0.5, 0.75, 1e300}, {4})},
      {"i32", from_vector(std::vector<int32_t>{-2, -1, 0, 1, 2}, {5})},
      {"i64", from_vector(std::vector<int64_t>{int64_t{1} << 40, -(int64_t{1} << 41), 3}, {3, 1})},
      {"u8", from_vector(std::vector<uint8_t>{0, 60, 120, 255}, {2, 2})},
      {"bool", from_vector(std::vector<uint8_t>{1, 0, 1}, {3}).astype(Dtype::boolean)},
      {"layers.0.scalar", scalar(3.5, Dtype::f64)},
      {"layers.0.empty", zeros({0, 3}, Dtype::f32)},
  };
  const std::string ours = path("basin.safetensors");
  const std::string theirs = path("python.safetensors");
  save_safetensors(ours, tensors, {{"framework", "basin"}});

  const std::string script = path("check.py");
  write_bytes(script, R"(import sys
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
want = {
    "f32": np.array([[-1, -0.5, 0], [0.5, 1, 1.5]], dtype=np.float32),
    "f64": np.array([0.25, 0.5, 0.75, 1e300], dtype=np.float64),
    "i32": np.array([-2, -1, 0, 1, 2], dtype=np.int32),
    "i64": np.array([[1 << 40], [-(1 << 41)], [3]], dtype=np.int64),
    "u8": np.array([[0, 60], [120, 255]], dtype=np.uint8),
    "bool": np.array([True, False, True]),
    "layers.0.scalar": np.array(3.5, dtype=np.float64),
    "layers.0.empty": np.zeros((0, 3), dtype=np.float32),
}
got = load_file(sys.argv[1])
assert sorted(got) == sorted(want), sorted(got)
for k, v in want.items():
    assert got[k].dtype == v.dtype and got[k].shape == v.shape, (k, got[k].dtype, got[k].shape)
    assert np.array_equal(got[k], v), (k, got[k])
with safe_open(sys.argv[1], "np") as f:
    assert f.metadata() == {"framework": "basin"}, f.metadata()
save_file(want, sys.argv[2], metadata={"framework": "basin"})
print("python-ok")
)");
  const std::string command = fmt::format("'{}' '{}' '{}' '{}' 2>&1", python, script, ours, theirs);
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[512];
  while (const size_t n = std::fread(buf, 1, sizeof buf, pipe)) output.append(buf, n);
  const int status = ::pclose(pipe);
  ASSERT_EQ(status, 0) << output;
  EXPECT_NE(output.find("python-ok"), std::string::npos) << output;

  // The reference writer produces exactly our bytes, and we read its file.
  EXPECT_EQ(read_bytes(theirs), read_bytes(ours));
  const auto f = load_safetensors(theirs);
  EXPECT_EQ(f.metadata, (std::map<std::string, std::string>{{"framework", "basin"}}));
  for (const auto& [name, want] : tensors) {
    EXPECT_EQ(f.tensors.at(name).dtype(), want.dtype()) << name;
    EXPECT_EQ(f.tensors.at(name).shape(), want.shape()) << name;
    EXPECT_EQ(tensor_bytes(f.tensors.at(name)), tensor_bytes(want)) << name;
  }
}

}  // namespace
}  // namespace basin
