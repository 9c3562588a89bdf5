// MATLAB .mat files (v4, v5 and, through HDF5, v7.3) read with libmatio: variable listing, dense
// numeric arrays of any storage type as tensors, and sparse arrays as CSR matrices.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace basin::data {

/// A sparse matrix in compressed sparse row form: the entries of row r are
/// col[row_ptr[r] .. row_ptr[r + 1]) with values[...] at the same positions, columns ascending
/// within a row. A CSC matrix is the CSR form of its transpose (see transposed()).
struct CsrMatrix {
  int64_t rows = 0, cols = 0;       ///< the matrix is rows × cols
  std::vector<int64_t> row_ptr{0};  ///< (rows + 1,)
  std::vector<int64_t> col;         ///< (nnz,)
  std::vector<double> values;       ///< (nnz,)

  /// The number of stored entries.
  int64_t nnz() const { return static_cast<int64_t>(col.size()); }
  /// The number of stored entries in row r.
  int64_t row_size(int64_t r) const { return row_ptr[r + 1] - row_ptr[r]; }
  /// The matrix transposed, still in CSR form (so the CSC form of this one).
  CsrMatrix transposed() const;
  /// The dense (rows, cols) matrix as `dtype` (f64, f32 or i64; i64 truncates values).
  Tensor to_dense(Dtype dtype = Dtype::f64) const;
  /// Throws a basin::Error naming `what` unless the arrays are consistent: row_ptr of length
  /// rows + 1, starting at 0, non-decreasing and ending at nnz; every column in [0, cols) and
  /// strictly ascending within its row; values as long as col.
  void validate(const std::string& what) const;
};

/// What a .mat file says about one variable, without reading its data.
struct MatVarInfo {
  std::string name;
  /// MATLAB's class: "double", "single", "int8" ... "uint64", "logical", "char", "sparse",
  /// "cell", "struct", "object", "function", "opaque" or "empty".
  std::string class_name;
  std::vector<int64_t> dims;  ///< MATLAB's dimensions (at least two)
  bool sparse = false, logical = false, complex = false;
};

/// An open .mat file. Every error is a basin::Error naming the file (and the variable): a file
/// that is not a MAT-file, a truncated or corrupt one, a missing variable (the message lists the
/// variables present), a variable of the wrong kind, complex data, a value that does not fit
/// the requested dtype. The class of a variable need not match the type its data is stored as
/// (a double `bag_ids` stored as uint8): the values are converted from whatever is stored.
///
/// libmatio's log output is captured (it goes into the error messages instead of stderr); this
/// installs a process-wide matio log handler on first use.
class MatFile {
 public:
  /// Opens the MAT-file at `path` (v4, v5 or v7.3; the kind is detected from the content).
  explicit MatFile(const std::string& path);
  /// Opens a MAT-file held in memory (a member of a .zip). libmatio reads only from files, so the
  /// bytes are written to a private temporary file (mkstemp, mode 0600) that is unlinked as soon
  /// as it is open, or on any error. `name` stands for the file in error messages.
  static MatFile from_bytes(const std::string& bytes, const std::string& name);

  MatFile(MatFile&&) noexcept;
  MatFile& operator=(MatFile&&) noexcept;
  ~MatFile();

  /// The path (or the name given to from_bytes).
  const std::string& name() const;
  /// The file's format version: 4, 5 or 73.
  int version() const;
  /// The variables in file order.
  const std::vector<MatVarInfo>& variables() const;
  /// Whether a variable called `var` exists.
  bool has(const std::string& var) const;
  /// The variable `var` (an error lists the variables when there is none).
  const MatVarInfo& info(const std::string& var) const;

  /// A numeric, logical or sparse variable as a dense tensor of MATLAB's shape, in row-major
  /// order (element (i, j) of a 2-D variable is at [i][j]). `dtype` is f64, f32 or i64; for i64
  /// every value must be an integer in range (NaN, 2.5 or 1e30 are errors naming the element).
  Tensor read(const std::string& var, Dtype dtype = Dtype::f64) const;
  /// As read(), for a variable with at most one dimension larger than one (1×n, n×1, n): the
  /// values as a 1-D tensor of n elements.
  Tensor read_vector(const std::string& var, Dtype dtype = Dtype::f64) const;
  /// A 2-D sparse variable as a CSR matrix of its values converted to double (logical sparse
  /// gives 1.0). The index arrays are checked: `ir` may be longer than nnz = jc[ncols] (padding
  /// up to nzmax, as in the Elephant/Fox files) but the row indices in use must lie in range and
  /// ascend within each column. A dense 2-D variable is also accepted and gives its non-zeros.
  CsrMatrix read_sparse(const std::string& var) const;
  /// A character variable as UTF-8 (rows of a 2-D char array are joined with '\n').
  std::string read_string(const std::string& var) const;

 private:
  struct Impl;
  explicit MatFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace basin::data
