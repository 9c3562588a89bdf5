// MatFile: every numeric storage type, the class-versus-storage and sparse quirks of the shared
// MIL files, v7.3, in-memory files, and truncated, corrupt or unsuitable input.
#include "data/mat.h"

#include <gtest/gtest.h>
#include <matio.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>

#include "tests/test_util.h"

namespace basin::data {
namespace {

namespace fs = std::filesystem;
using basin::testing::throws_error;

// A fresh directory for one test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            fmt::format("basin_mat_{}_{}_{}", ::getpid(), info->test_suite_name(), info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Writes MAT files with libmatio. Data is column-major, as MATLAB stores it.
class MatWriter {
 public:
  explicit MatWriter(const std::string& path, mat_ft version = MAT_FT_MAT5,
                     matio_compression compression = MAT_COMPRESSION_NONE)
      : mat_(Mat_CreateVer(path.c_str(), nullptr, version)), compression_(compression) {
    EXPECT_NE(mat_, nullptr) << path;
  }
  ~MatWriter() { Mat_Close(mat_); }

  // A numeric or logical array of class `cls` whose data is stored as `type`.
  template <class T>
  void dense(const char* name, matio_classes cls, matio_types type, std::vector<size_t> dims,
             std::vector<T> data, int flags = 0) {
    write(Mat_VarCreate(name, cls, type, static_cast<int>(dims.size()), dims.data(), data.data(),
                        MAT_F_DONT_COPY_DATA | flags));
  }
  // A rows × cols sparse array (CSC: ir row indices, jc column pointers, values stored as type).
  template <class T>
  void sparse(const char* name, size_t rows, size_t cols, std::vector<uint32_t> ir,
              std::vector<uint32_t> jc, std::vector<T> data, matio_types type, int flags = 0) {
    mat_sparse_t sp{};
    sp.nzmax = static_cast<uint32_t>(ir.size());
    sp.ir = ir.data();
    sp.nir = static_cast<uint32_t>(ir.size());
    sp.jc = jc.data();
    sp.njc = static_cast<uint32_t>(jc.size());
    sp.ndata = static_cast<uint32_t>(data.size());
    sp.data = data.data();
    size_t dims[2] = {rows, cols};
    write(Mat_VarCreate(name, MAT_C_SPARSE, type, 2, dims, &sp, MAT_F_DONT_COPY_DATA | flags));
  }
  void text(const char* name, const std::string& s) {
    std::vector<uint16_t> chars(s.begin(), s.end());
    dense(name, MAT_C_CHAR, MAT_T_UINT16, {1, s.size()}, chars);
  }

 private:
  void write(matvar_t* v) {
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(Mat_VarWrite(mat_, v, compression_), 0) << v->name;
    Mat_VarFree(v);
  }
  mat_t* mat_;
  matio_compression compression_;
};

// The 2×3 matrix [[1, 3, 5], [2, 4, 6]] in every storage type, plus a few others.
void write_all_types(const std::string& path, mat_ft version = MAT_FT_MAT5,
                     matio_compression compression = MAT_COMPRESSION_NONE) {
  MatWriter w(path, version, compression);
  w.dense("f64", MAT_C_DOUBLE, MAT_T_DOUBLE, {2, 3}, std::vector<double>{1, 2, 3, 4, 5, 6});
  w.dense("f32", MAT_C_SINGLE, MAT_T_SINGLE, {2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6});
  w.dense("i8", MAT_C_INT8, MAT_T_INT8, {2, 3}, std::vector<int8_t>{1, 2, 3, 4, 5, 6});
  w.dense("i16", MAT_C_INT16, MAT_T_INT16, {2, 3}, std::vector<int16_t>{1, 2, 3, 4, 5, 6});
  w.dense("i32", MAT_C_INT32, MAT_T_INT32, {2, 3}, std::vector<int32_t>{1, 2, 3, 4, 5, 6});
  w.dense("i64", MAT_C_INT64, MAT_T_INT64, {2, 3}, std::vector<int64_t>{1, 2, 3, 4, 5, 6});
  w.dense("u8", MAT_C_UINT8, MAT_T_UINT8, {2, 3}, std::vector<uint8_t>{1, 2, 3, 4, 5, 6});
  w.dense("u16", MAT_C_UINT16, MAT_T_UINT16, {2, 3}, std::vector<uint16_t>{1, 2, 3, 4, 5, 6});
  w.dense("u32", MAT_C_UINT32, MAT_T_UINT32, {2, 3}, std::vector<uint32_t>{1, 2, 3, 4, 5, 6});
  w.dense("u64", MAT_C_UINT64, MAT_T_UINT64, {2, 3}, std::vector<uint64_t>{1, 2, 3, 4, 5, 6});
  // The bag_ids quirk: class double, data stored as uint8. (A v7.3 file stores a dataset of the
  // class's type, and libmatio's v7.3 writer would read the uint8 buffer as doubles.)
  if (version == MAT_FT_MAT73) {
    w.dense("double_as_u8", MAT_C_DOUBLE, MAT_T_DOUBLE, {2, 3},
            std::vector<double>{1, 2, 3, 4, 5, 6});
  } else {
    w.dense("double_as_u8", MAT_C_DOUBLE, MAT_T_UINT8, {2, 3},
            std::vector<uint8_t>{1, 2, 3, 4, 5, 6});
  }
  w.dense("flags", MAT_C_UINT8, MAT_T_UINT8, {1, 4}, std::vector<uint8_t>{1, 0, 0, 1},
          MAT_F_LOGICAL);
  w.dense("big", MAT_C_INT64, MAT_T_INT64, {1, 2},
          std::vector<int64_t>{(int64_t{1} << 53) + 1, std::numeric_limits<int64_t>::min()});
  // 3×2 sparse [[7, 0], [0, 9], [8, 0]] with uint8 values and ir padded past nnz = 3.
  w.sparse("sp", 3, 2, {0, 2, 1, 0, 0}, {0, 2, 3}, std::vector<uint8_t>{7, 8, 9}, MAT_T_UINT8);
  w.sparse("sp_logical", 3, 2, {0, 2, 1}, {0, 2, 3}, std::vector<uint8_t>{1, 1, 1}, MAT_T_UINT8,
           MAT_F_LOGICAL);
  w.text("comment", "Generated by a test");
  w.dense("cube", MAT_C_INT16, MAT_T_INT16, {2, 3, 2},
          std::vector<int16_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
}

const std::vector<std::string> kTypes = {"f64", "f32", "i8",  "i16", "i32",         "i64",
                                         "u8",  "u16", "u32", "u64", "double_as_u8"};

void expect_all_types(const MatFile& f) {
  for (const std::string& var : kTypes) {
    SCOPED_TRACE(var);
    const Tensor d = f.read(var);
    EXPECT_EQ(d.dtype(), Dtype::f64);
    EXPECT_EQ(d.shape(), (Shape{2, 3}));
    EXPECT_EQ(d.to_vector<double>(), (std::vector<double>{1, 3, 5, 2, 4, 6}));
    EXPECT_EQ(f.read(var, Dtype::f32).to_vector<float>(), (std::vector<float>{1, 3, 5, 2, 4, 6}));
    const Tensor i = f.read(var, Dtype::i64);
    EXPECT_EQ(i.dtype(), Dtype::i64);
    EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{1, 3, 5, 2, 4, 6}));
  }
  EXPECT_EQ(f.read_vector("flags", Dtype::i64).to_vector<int64_t>(),
            (std::vector<int64_t>{1, 0, 0, 1}));
  EXPECT_EQ(f.read_vector("big", Dtype::i64).to_vector<int64_t>(),
            (std::vector<int64_t>{(int64_t{1} << 53) + 1, std::numeric_limits<int64_t>::min()}));

  const CsrMatrix sp = f.read_sparse("sp");
  EXPECT_EQ(sp.rows, 3);
  EXPECT_EQ(sp.cols, 2);
  EXPECT_EQ(sp.row_ptr, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(sp.col, (std::vector<int64_t>{0, 1, 0}));
  EXPECT_EQ(sp.values, (std::vector<double>{7, 9, 8}));
  sp.validate("sp");
  EXPECT_EQ(f.read("sp", Dtype::i64).to_vector<int64_t>(),
            (std::vector<int64_t>{7, 0, 0, 9, 8, 0}));
  const CsrMatrix logical = f.read_sparse("sp_logical");
  EXPECT_EQ(logical.values, (std::vector<double>{1, 1, 1}));
  EXPECT_EQ(logical.col, sp.col);
  EXPECT_EQ(f.read_string("comment"), "Generated by a test");
  // Element (i, j, k) of a column-major 2×3×2 array is i + 2 j + 6 k.
  const Tensor cube = f.read("cube", Dtype::i64);
  EXPECT_EQ(cube.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(cube.to_vector<int64_t>(),
            (std::vector<int64_t>{0, 6, 2, 8, 4, 10, 1, 7, 3, 9, 5, 11}));
}

TEST(MatFile, ReadsEveryStorageType) {
  TempDir dir;
  write_all_types(dir / "all.mat");
  const MatFile f(dir / "all.mat");
  EXPECT_EQ(f.version(), 5);
  expect_all_types(f);
}

TEST(MatFile, ReadsCompressedVariables) {
  TempDir dir;
  write_all_types(dir / "z.mat", MAT_FT_MAT5, MAT_COMPRESSION_ZLIB);
  expect_all_types(MatFile(dir / "z.mat"));
}

TEST(MatFile, ReadsVersion73) {
  TempDir dir;
  write_all_types(dir / "v73.mat", MAT_FT_MAT73);
  const MatFile f(dir / "v73.mat");
  EXPECT_EQ(f.version(), 73);
  expect_all_types(f);
}

TEST(MatFile, ListsVariables) {
  TempDir dir;
  write_all_types(dir / "all.mat");
  const MatFile f(dir / "all.mat");
  EXPECT_EQ(f.name(), dir / "all.mat");
  ASSERT_EQ(f.variables().size(), kTypes.size() + 6);
  EXPECT_EQ(f.variables()[0].name, "f64");
  EXPECT_TRUE(f.has("sp"));
  EXPECT_FALSE(f.has("nope"));
  const MatVarInfo& u8 = f.info("double_as_u8");
  EXPECT_EQ(u8.class_name, "double");
  EXPECT_EQ(u8.dims, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f.info("flags").class_name, "logical");
  EXPECT_TRUE(f.info("flags").logical);
  EXPECT_EQ(f.info("sp").class_name, "sparse");
  EXPECT_TRUE(f.info("sp").sparse);
  EXPECT_TRUE(f.info("sp_logical").logical);
  EXPECT_EQ(f.info("comment").class_name, "char");
}

TEST(MatFile, ReadsFromBytesAndLeavesNoTemporaryFile) {
  TempDir dir;
  write_all_types(dir / "all.mat");
  write_all_types(dir / "v73.mat", MAT_FT_MAT73);
  const auto leftovers = [] {
    int n = 0;
    for (const auto& e : fs::directory_iterator(fs::temp_directory_path())) {
      n += e.path().filename().string().rfind("basin-mat-", 0) == 0 ? 1 : 0;
    }
    return n;
  };
  const int before = leftovers();
  {
    const MatFile f = MatFile::from_bytes(read_bytes(dir / "all.mat"), "archive.zip:all.mat");
    EXPECT_EQ(f.name(), "archive.zip:all.mat");
    expect_all_types(f);
    const MatFile g = MatFile::from_bytes(read_bytes(dir / "v73.mat"), "v73 in memory");
    EXPECT_EQ(g.version(), 73);
    expect_all_types(g);
    EXPECT_EQ(leftovers(), before);  // unlinked once open
  }
  EXPECT_TRUE(
      throws_error([] { MatFile::from_bytes("", "nothing.mat"); }, {"'nothing.mat'", "empty"}));
  EXPECT_TRUE(throws_error([] { MatFile::from_bytes("not a mat file at all", "junk.mat"); },
                           {"'junk.mat'", "not a readable MAT-file"}));
  EXPECT_EQ(leftovers(), before);
}

TEST(MatFile, MissingVariableListsThosePresent) {
  TempDir dir;
  {
    MatWriter w(dir / "two.mat");
    w.dense("alpha", MAT_C_DOUBLE, MAT_T_DOUBLE, {1, 2}, std::vector<double>{1, 2});
    w.dense("beta", MAT_C_INT32, MAT_T_INT32, {3, 1}, std::vector<int32_t>{1, 2, 3});
  }
  const MatFile f(dir / "two.mat");
  EXPECT_TRUE(throws_error(
      [&] { f.read("gamma"); },
      {dir / "two.mat", "no variable 'gamma'", "'alpha' (1×2 double)", "'beta' (3×1 int32)"}));
  EXPECT_TRUE(throws_error([&] { f.read_sparse("gamma"); }, {"no variable 'gamma'"}));
}

TEST(MatFile, ValuesThatDoNotFitAreErrors) {
  TempDir dir;
  {
    MatWriter w(dir / "bad.mat");
    w.dense("half", MAT_C_DOUBLE, MAT_T_DOUBLE, {2, 2}, std::vector<double>{1, 2, 2.5, 4});
    w.dense("nan", MAT_C_SINGLE, MAT_T_SINGLE, {1, 2},
            std::vector<float>{1, std::numeric_limits<float>::quiet_NaN()});
    w.dense("huge", MAT_C_UINT64, MAT_T_UINT64, {1, 1},
            std::vector<uint64_t>{std::numeric_limits<uint64_t>::max()});
    w.dense("matrix", MAT_C_DOUBLE, MAT_T_DOUBLE, {2, 2}, std::vector<double>{1, 2, 3, 4});
    w.text("name", "x");
    w.sparse("sp_half", 2, 1, {1}, {0, 1}, std::vector<double>{0.5}, MAT_T_DOUBLE);
  }
  const MatFile f(dir / "bad.mat");
  const std::string p = dir / "bad.mat";
  EXPECT_TRUE(throws_error([&] { f.read("half", Dtype::i64); },
                           {p, "'half'", "2.5", "(0, 1)", "not an int64"}));
  EXPECT_TRUE(throws_error([&] { f.read("nan", Dtype::i64); }, {p, "'nan'", "(0, 1)"}));
  EXPECT_TRUE(throws_error([&] { f.read("huge", Dtype::i64); }, {p, "'huge'"}));
  EXPECT_TRUE(throws_error([&] { f.read("sp_half", Dtype::i64); }, {p, "'sp_half'", "0.5"}));
  EXPECT_TRUE(throws_error([&] { f.read("half", Dtype::u8); }, {p, "float64, float32 or int64"}));
  EXPECT_TRUE(throws_error([&] { f.read_vector("matrix"); }, {p, "'matrix'", "2×2, not a vector"}));
  EXPECT_TRUE(
      throws_error([&] { f.read("name"); }, {p, "'name'", "of class char, not a numeric class"}));
  EXPECT_TRUE(throws_error([&] { f.read_string("matrix"); }, {p, "of class double, not char"}));
  EXPECT_TRUE(std::isnan(f.read("nan").to_vector<double>()[1]));
  // Dense variables are accepted as sparse: their non-zeros.
  EXPECT_EQ(f.read_sparse("half").nnz(), 4);
}

TEST(MatFile, ComplexDataIsAnError) {
  TempDir dir;
  {
    mat_t* m = Mat_CreateVer((dir / "c.mat").c_str(), nullptr, MAT_FT_MAT5);
    ASSERT_NE(m, nullptr);
    double re[2] = {1, 2}, im[2] = {3, 4};
    mat_complex_split_t z{re, im};
    size_t dims[2] = {1, 2};
    matvar_t* v = Mat_VarCreate("z", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, &z,
                                MAT_F_COMPLEX | MAT_F_DONT_COPY_DATA);
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(Mat_VarWrite(m, v, MAT_COMPRESSION_NONE), 0);
    Mat_VarFree(v);
    Mat_Close(m);
  }
  const MatFile f(dir / "c.mat");
  EXPECT_TRUE(f.info("z").complex);
  EXPECT_TRUE(throws_error([&] { f.read("z"); }, {"'z'", "complex"}));
}

TEST(MatFile, BadSparseIndicesAreErrors) {
  TempDir dir;
  {
    MatWriter w(dir / "sp.mat");
    w.sparse("row_out_of_range", 2, 2, {0, 5}, {0, 1, 2}, std::vector<double>{1, 2}, MAT_T_DOUBLE);
    w.sparse("jc_decreasing", 2, 2, {0, 1}, {0, 2, 1}, std::vector<double>{1, 2}, MAT_T_DOUBLE);
    w.sparse("too_few_rows", 2, 2, {0}, {0, 1, 2}, std::vector<double>{1, 2}, MAT_T_DOUBLE);
    w.sparse("too_few_values", 2, 2, {0, 1}, {0, 1, 2}, std::vector<double>{1}, MAT_T_DOUBLE);
    w.sparse("duplicate", 2, 1, {1, 1}, {0, 2}, std::vector<double>{1, 2}, MAT_T_DOUBLE);
    w.sparse("unsorted", 3, 1, {2, 0}, {0, 2}, std::vector<double>{5, 6}, MAT_T_DOUBLE);
  }
  const MatFile f(dir / "sp.mat");
  const std::string p = dir / "sp.mat";
  EXPECT_TRUE(throws_error([&] { f.read_sparse("row_out_of_range"); },
                           {p, "'row_out_of_range'", "row index 5, outside [0, 2)"}));
  EXPECT_TRUE(throws_error([&] { f.read_sparse("jc_decreasing"); }, {p, "jc decreases"}));
  EXPECT_TRUE(throws_error([&] { f.read_sparse("too_few_rows"); }, {p, "ir holds only 1"}));
  EXPECT_TRUE(throws_error([&] { f.read_sparse("too_few_values"); }, {p, "only 1 stored values"}));
  EXPECT_TRUE(throws_error([&] { f.read("duplicate"); }, {p, "(1, 0) is stored twice"}));
  // Row indices out of order within a column are put in order.
  const CsrMatrix u = f.read_sparse("unsorted");
  EXPECT_EQ(u.row_ptr, (std::vector<int64_t>{0, 1, 1, 2}));
  EXPECT_EQ(u.values, (std::vector<double>{6, 5}));
}

TEST(MatFile, TruncatedAndCorruptFilesAreErrors) {
  TempDir dir;
  write_all_types(dir / "all.mat");
  const std::string bytes = read_bytes(dir / "all.mat");
  const std::string p = dir / "cut.mat";
  write_bytes(p, bytes.substr(0, bytes.size() / 2));
  EXPECT_TRUE(throws_error([&] { MatFile f(p); }, {p, "truncated", "declares"}));
  // Every cut: an error naming the file at open or when reading the variables, never a crash.
  // Only a cut into the padding after the last element leaves every value readable.
  for (size_t cut = 0; cut < bytes.size(); cut += 3) {
    write_bytes(p, bytes.substr(0, cut));
    try {
      const MatFile f(p);
      expect_all_types(f);
      EXPECT_GT(cut + 8, bytes.size()) << "cut at " << cut << " was not noticed";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
  }
  // A tag whose byte count runs past the end of the file.
  std::string corrupt = bytes;
  corrupt[128 + 4 + 2] = '\x7f';
  write_bytes(p, corrupt);
  EXPECT_TRUE(throws_error([&] { MatFile f(p); }, {p, "truncated", "element 0 at offset 128"}));
  // A top-level element that is not a matrix, and a dimensions element that claims 128 of them.
  corrupt = bytes;
  corrupt[128] = 5;
  write_bytes(p, corrupt);
  EXPECT_TRUE(throws_error([&] { MatFile f(p); }, {p, "corrupt", "read 0 of the 17"}));
  corrupt = bytes;
  corrupt[128 + 24 + 4] = 0;
  corrupt[128 + 24 + 5] = 2;
  write_bytes(p, corrupt);
  EXPECT_TRUE(throws_error([&] { MatFile f(p); }, {p}));
  write_bytes(p, std::string(300, 'x'));
  EXPECT_TRUE(throws_error([&] { MatFile f(p); }, {p, "not a readable MAT-file"}));
  write_bytes(p, "");
  EXPECT_TRUE(throws_error([&] { MatFile f(p); }, {p, "empty"}));
  EXPECT_TRUE(throws_error([&] { MatFile f(dir / "missing.mat"); }, {"missing.mat", "no such"}));
  EXPECT_TRUE(throws_error([&] { MatFile f(dir / ""); }, {"not a regular file"}));
}

TEST(MatFile, CsrHelpers) {
  CsrMatrix m;
  m.rows = 2;
  m.cols = 3;
  m.row_ptr = {0, 2, 3};
  m.col = {0, 2, 1};
  m.values = {1, 2, 3};
  m.validate("m");
  EXPECT_EQ(m.to_dense().to_vector<double>(), (std::vector<double>{1, 0, 2, 0, 3, 0}));
  const CsrMatrix t = m.transposed();
  EXPECT_EQ(t.rows, 3);
  EXPECT_EQ(t.row_ptr, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(t.col, (std::vector<int64_t>{0, 1, 0}));
  EXPECT_EQ(t.values, (std::vector<double>{1, 3, 2}));
  EXPECT_EQ(t.transposed().col, m.col);
  CsrMatrix bad = m;
  bad.col = {2, 0, 1};
  EXPECT_TRUE(throws_error([&] { bad.validate("adj"); }, {"adj", "strictly ascending"}));
  bad = m;
  bad.col[2] = 3;
  EXPECT_TRUE(throws_error([&] { bad.validate("adj"); }, {"column 3, outside [0, 3)"}));
  bad = m;
  bad.row_ptr = {0, 3, 2};
  EXPECT_TRUE(throws_error([&] { bad.validate("adj"); }, {"adj"}));
}

TEST(MatFile, ReadsTheSharedMilFiles) {
  const std::string root = BASIN_SHARED_DATA_DIR;
  const std::string path = root + "/elephant/elephant_100x100_matlab.mat";
  if (!fs::exists(path)) GTEST_SKIP() << "the Elephant MIL file is not in " << root;
  const MatFile f(path);
  EXPECT_EQ(f.version(), 5);
  ASSERT_EQ(f.variables().size(), 4u);
  EXPECT_EQ(f.info("bag_ids").class_name, "double");
  const CsrMatrix x = f.read_sparse("features");
  EXPECT_EQ(x.rows, 1391);
  EXPECT_EQ(x.cols, 230);
  EXPECT_EQ(x.nnz(), 198913);  // nzmax is 198,921: ir is padded
  x.validate("features");
  EXPECT_EQ(f.read_string("comment"), "Generated by milsample.");
  const Tensor ids = f.read_vector("bag_ids", Dtype::i64);
  EXPECT_EQ(ids.numel(), 1391);
  EXPECT_EQ(ids.to_vector<int64_t>().front(), 1);
  EXPECT_EQ(ids.to_vector<int64_t>().back(), 200);
}

}  // namespace
}  // namespace basin::data
