// Writes MAT files with libmatio for the tests of the .mat readers. Data is column-major, as
// MATLAB stores it.
#pragma once

#include <gtest/gtest.h>
#include <matio.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace basin::testing {

/// Writes one variable per call into a new MAT file (v5 unless told otherwise).
class MatWriter {
 public:
  explicit MatWriter(const std::string& path, mat_ft version = MAT_FT_MAT5,
                     matio_compression compression = MAT_COMPRESSION_NONE)
      : mat_(Mat_CreateVer(path.c_str(), nullptr, version)), compression_(compression) {
    EXPECT_NE(mat_, nullptr) << path;
  }
  ~MatWriter() { Mat_Close(mat_); }
  MatWriter(const MatWriter&) = delete;
  MatWriter& operator=(const MatWriter&) = delete;

  /// A numeric or logical array of class `cls` whose data is stored as `type`.
  template <class T>
  void dense(const char* name, matio_classes cls, matio_types type, std::vector<size_t> dims,
             std::vector<T> data, int flags = 0) {
    write(Mat_VarCreate(name, cls, type, static_cast<int>(dims.size()), dims.data(), data.data(),
                        MAT_F_DONT_COPY_DATA | flags));
  }

  /// A rows × cols sparse array (CSC: ir row indices, jc column pointers, values stored as type).
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

  /// The dense column-major rows × cols double matrix `dense` written as sparse (zeros left out).
  /// `pad_ir` adds an unused row index past the nonzeros, as in the Elephant and Fox files.
  void sparse(const char* name, size_t rows, size_t cols, const std::vector<double>& dense,
              bool pad_ir = false) {
    std::vector<uint32_t> ir, jc{0};
    std::vector<double> values;
    for (size_t c = 0; c < cols; ++c) {
      for (size_t r = 0; r < rows; ++r) {
        if (dense[r + rows * c] != 0.0) {
          ir.push_back(static_cast<uint32_t>(r));
          values.push_back(dense[r + rows * c]);
        }
      }
      jc.push_back(static_cast<uint32_t>(ir.size()));
    }
    if (pad_ir) ir.push_back(0);
    sparse(name, rows, cols, std::move(ir), std::move(jc), std::move(values), MAT_T_DOUBLE);
  }

  /// A character array holding `s`.
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

}  // namespace basin::testing
