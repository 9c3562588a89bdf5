// MatFile over libmatio: a structural check of v5 files before matio sees them, conversion from
// any stored numeric type, and validation of sparse index arrays.
#include "data/mat.h"

#include <matio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <system_error>
#include <type_traits>

#include "core/ops/creation.h"
#include "core/ops/movement.h"

namespace basin::data {

// --- CsrMatrix -------------------------------------------------------------------------------

CsrMatrix CsrMatrix::transposed() const {
  CsrMatrix t;
  t.rows = cols;
  t.cols = rows;
  t.row_ptr.assign(static_cast<size_t>(cols) + 1, 0);
  for (int64_t c : col) ++t.row_ptr[static_cast<size_t>(c) + 1];
  for (size_t i = 1; i < t.row_ptr.size(); ++i) t.row_ptr[i] += t.row_ptr[i - 1];
  t.col.resize(col.size());
  t.values.resize(values.size());
  std::vector<int64_t> next(t.row_ptr.begin(), t.row_ptr.end() - 1);
  // Rows are visited in order, so each row of the transpose gets ascending columns.
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = row_ptr[r]; k < row_ptr[r + 1]; ++k) {
      const int64_t pos = next[static_cast<size_t>(col[k])]++;
      t.col[pos] = r;
      t.values[pos] = values[k];
    }
  }
  return t;
}

Tensor CsrMatrix::to_dense(Dtype dtype) const {
  if (dtype != Dtype::f64 && dtype != Dtype::f32 && dtype != Dtype::i64) {
    fail("[CsrMatrix::to_dense] dtype must be float64, float32 or int64, got {}",
         dtype_name(dtype));
  }
  std::vector<double> dense(static_cast<size_t>(rows * cols), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = row_ptr[r]; k < row_ptr[r + 1]; ++k) dense[r * cols + col[k]] = values[k];
  }
  return from_vector(dense, {rows, cols}).astype(dtype);
}

void CsrMatrix::validate(const std::string& what) const {
  if (rows < 0 || cols < 0) fail("{}: negative size {}×{}", what, rows, cols);
  if (static_cast<int64_t>(row_ptr.size()) != rows + 1) {
    fail("{}: row_ptr has {} entries, a {}×{} matrix needs {}", what, row_ptr.size(), rows, cols,
         rows + 1);
  }
  if (row_ptr[0] != 0) fail("{}: row_ptr starts at {}, not 0", what, row_ptr[0]);
  if (row_ptr.back() != nnz()) {
    fail("{}: row_ptr ends at {} but there are {} column indices", what, row_ptr.back(), nnz());
  }
  if (values.size() != col.size()) {
    fail("{}: {} values for {} column indices", what, values.size(), col.size());
  }
  for (int64_t r = 0; r < rows; ++r) {
    if (row_ptr[r + 1] < row_ptr[r]) {
      fail("{}: row_ptr decreases at row {} ({} then {})", what, r, row_ptr[r], row_ptr[r + 1]);
    }
    for (int64_t k = row_ptr[r]; k < row_ptr[r + 1]; ++k) {
      if (col[k] < 0 || col[k] >= cols) {
        fail("{}: entry {} of row {} has column {}, outside [0, {})", what, k - row_ptr[r], r,
             col[k], cols);
      }
      if (k > row_ptr[r] && col[k] <= col[k - 1]) {
        fail("{}: row {} has columns {} then {}; they must be strictly ascending", what, r,
             col[k - 1], col[k]);
      }
    }
  }
}

// --- matio plumbing --------------------------------------------------------------------------

namespace {

// What libmatio logged during the current call on this thread.
thread_local std::string matio_log;

void capture_matio_log(int /*level*/, char* message) {
  if (message == nullptr) return;
  if (matio_log.size() > 2000) return;  // the first messages say what went wrong
  if (!matio_log.empty()) matio_log += "; ";
  matio_log += message;
}

// Routes libmatio's log (and, through it, HDF5's error stack) into matio_log, once per process.
void install_matio_log() {
  static std::once_flag once;
  std::call_once(once, [] { Mat_LogInitFunc("basin", &capture_matio_log); });
  matio_log.clear();
}

// " (libmatio: ...)" when matio said something, else "".
std::string matio_said() {
  if (matio_log.empty()) return "";
  std::string said = " (libmatio: " + matio_log + ")";
  matio_log.clear();
  return said;
}

struct VarFree {
  void operator()(matvar_t* v) const { Mat_VarFree(v); }
};
using VarPtr = std::unique_ptr<matvar_t, VarFree>;

const char* class_name(matio_classes c, bool logical) {
  if (logical) return "logical";
  switch (c) {
    case MAT_C_EMPTY:
      return "empty";
    case MAT_C_CELL:
      return "cell";
    case MAT_C_STRUCT:
      return "struct";
    case MAT_C_OBJECT:
      return "object";
    case MAT_C_CHAR:
      return "char";
    case MAT_C_SPARSE:
      return "sparse";
    case MAT_C_DOUBLE:
      return "double";
    case MAT_C_SINGLE:
      return "single";
    case MAT_C_INT8:
      return "int8";
    case MAT_C_UINT8:
      return "uint8";
    case MAT_C_INT16:
      return "int16";
    case MAT_C_UINT16:
      return "uint16";
    case MAT_C_INT32:
      return "int32";
    case MAT_C_UINT32:
      return "uint32";
    case MAT_C_INT64:
      return "int64";
    case MAT_C_UINT64:
      return "uint64";
    case MAT_C_FUNCTION:
      return "function";
    case MAT_C_OPAQUE:
      return "opaque";
  }
  return "unknown";
}

bool is_numeric_class(matio_classes c) { return c >= MAT_C_DOUBLE && c <= MAT_C_UINT64; }

// Calls fn with a typed pointer to `data` stored as `type`; false for a non-numeric type.
template <class F>
bool visit_stored(matio_types type, const void* data, F&& fn) {
  switch (type) {
    case MAT_T_DOUBLE:
      fn(static_cast<const double*>(data));
      return true;
    case MAT_T_SINGLE:
      fn(static_cast<const float*>(data));
      return true;
    case MAT_T_INT8:
      fn(static_cast<const int8_t*>(data));
      return true;
    case MAT_T_UINT8:
      fn(static_cast<const uint8_t*>(data));
      return true;
    case MAT_T_INT16:
      fn(static_cast<const int16_t*>(data));
      return true;
    case MAT_T_UINT16:
      fn(static_cast<const uint16_t*>(data));
      return true;
    case MAT_T_INT32:
      fn(static_cast<const int32_t*>(data));
      return true;
    case MAT_T_UINT32:
      fn(static_cast<const uint32_t*>(data));
      return true;
    case MAT_T_INT64:
      fn(static_cast<const int64_t*>(data));
      return true;
    case MAT_T_UINT64:
      fn(static_cast<const uint64_t*>(data));
      return true;
    default:
      return false;
  }
}

// `v` as an int64, or false when it is not an integer in range.
template <class S>
bool to_int64(S v, int64_t& out) {
  if constexpr (std::is_floating_point_v<S>) {
    // 2^63 is exactly representable; anything at or above it does not fit.
    if (!(v == std::trunc(v)) || v < -9223372036854775808.0 || v >= 9223372036854775808.0) {
      return false;
    }
  } else if constexpr (std::is_same_v<S, uint64_t>) {
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
  }
  out = static_cast<int64_t>(v);
  return true;
}

// Reads a little- or big-endian uint32 from 4 bytes.
uint32_t load_u32(const unsigned char* b, bool big_endian) {
  return big_endian ? uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | b[3]
                    : uint32_t{b[3]} << 24 | uint32_t{b[2]} << 16 | uint32_t{b[1]} << 8 | b[0];
}

// The structure of a v5 file that matio would not report clearly: walks the top-level data
// elements (8-byte tags, data padded to 8 bytes except for miCOMPRESSED; the packed small-element
// form is 8 bytes in all) and fails if one claims more bytes than the file has. Returns the
// number of top-level elements, or -1 for a file that is not v5.
int64_t check_v5_layout(const std::string& path, const std::string& name) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("[mat] '{}': cannot open the file", name);
  in.seekg(0, std::ios::end);
  const auto size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  std::array<unsigned char, 128> header{};
  if (size < 128 || !in.read(reinterpret_cast<char*>(header.data()), 128)) return -1;
  const bool little = header[126] == 'I' && header[127] == 'M';
  const bool big = header[126] == 'M' && header[127] == 'I';
  if (!little && !big) return -1;
  const uint32_t version =
      big ? (uint32_t{header[124]} << 8 | header[125]) : (uint32_t{header[125]} << 8 | header[124]);
  if (version != 0x0100) return -1;  // v7.3 (HDF5) has its own checks
  uint64_t pos = 128;
  int64_t k = 0;
  for (; pos < size; ++k) {
    std::array<unsigned char, 8> tag{};
    const uint64_t left = size - pos;
    if (left < 8) {
      in.read(reinterpret_cast<char*>(tag.data()), static_cast<std::streamsize>(left));
      if (std::any_of(tag.begin(), tag.begin() + static_cast<std::ptrdiff_t>(left),
                      [](unsigned char b) { return b != 0; })) {
        fail("[mat] '{}': truncated: {} bytes at offset {} are too few for a data element tag",
             name, left, pos);
      }
      return k;
    }
    in.read(reinterpret_cast<char*>(tag.data()), 8);
    const uint32_t type = load_u32(tag.data(), big);
    if ((type >> 16) != 0) {  // small data element: the data sits in the tag
      pos += 8;
    } else {
      const uint64_t bytes = load_u32(tag.data() + 4, big);
      if (bytes > left - 8) {
        fail(
            "[mat] '{}': truncated: top-level element {} at offset {} (type {}) declares {} bytes "
            "of data but only {} remain",
            name, k, pos, type, bytes, left - 8);
      }
      uint64_t span = 8 + bytes;
      if (type != MAT_T_COMPRESSED && span % 8 != 0) span += 8 - span % 8;
      pos += std::min(span, left);  // padding of the last element may be missing
    }
    in.seekg(static_cast<std::streamoff>(pos));
  }
  return k;
}

// Rows (or columns) from column-major data: out[row-major index] = convert(in[column-major]).
template <class Out, class In, class Convert>
void column_to_row_major(const In* in, Out* out, const std::vector<int64_t>& dims,
                         Convert&& convert) {
  const size_t rank = dims.size();
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  if (n == 0) return;
  std::vector<int64_t> stride(rank, 1);  // row-major strides of the output
  for (size_t d = rank - 1; d-- > 0;) stride[d] = stride[d + 1] * dims[d + 1];
  std::vector<int64_t> idx(rank, 0);
  int64_t r = 0;
  for (int64_t l = 0; l < n; ++l) {
    out[r] = convert(in[l], l);
    for (size_t d = 0; d < rank; ++d) {  // odometer: the first dimension runs fastest
      if (++idx[d] < dims[d]) {
        r += stride[d];
        break;
      }
      r -= stride[d] * (dims[d] - 1);
      idx[d] = 0;
    }
  }
}

// "(i, j)" for element l (column-major) of an array of dims.
std::string element_str(int64_t l, const std::vector<int64_t>& dims) {
  std::string s = "(";
  for (size_t d = 0; d < dims.size(); ++d) {
    if (d > 0) s += ", ";
    s += std::to_string(l % dims[d]);
    l /= dims[d];
  }
  return s + ")";
}

// More dimensions than any real array has: MATLAB allows at most 2^31 - 1 in theory, but a file
// with more than this many is corrupt for all purposes here.
constexpr int kMaxRank = 64;

// "2×3", shortened after 8 dimensions.
std::string dims_str(const std::vector<int64_t>& dims) {
  std::string s;
  for (size_t d = 0; d < dims.size(); ++d) {
    if (d == 8) return s + fmt::format("×... ({} dimensions)", dims.size());
    if (d > 0) s += "×";
    s += std::to_string(dims[d]);
  }
  return s;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace

// --- MatFile ---------------------------------------------------------------------------------

struct MatFile::Impl {
  std::string name;
  mat_t* mat = nullptr;
  int version = 0;
  std::vector<MatVarInfo> vars;
  mutable std::mutex mutex;  // matio keeps one file position per mat_t

  ~Impl() {
    if (mat != nullptr) Mat_Close(mat);
  }

  // Opens `path`, naming it `name` in errors.
  void open(const std::string& path) {
    const int64_t elements = check_v5_layout(path, name);
    install_matio_log();
    mat = Mat_Open(path.c_str(), MAT_ACC_RDONLY);
    if (mat == nullptr) {
      fail("[mat] '{}': not a readable MAT-file (v4, v5 or v7.3){}", name, matio_said());
    }
    switch (Mat_GetVersion(mat)) {
      case MAT_FT_MAT73:
        version = 73;
        break;
      case MAT_FT_MAT5:
        version = 5;
        break;
      case MAT_FT_MAT4:
        version = 4;
        break;
      default:
        fail("[mat] '{}': unknown MAT-file version", name);
    }
    while (matvar_t* raw = Mat_VarReadNextInfo(mat)) {
      const VarPtr v(raw);
      MatVarInfo info;
      info.name = v->name != nullptr ? v->name : "";
      info.sparse = v->class_type == MAT_C_SPARSE;
      info.logical = v->isLogical != 0;
      info.complex = v->isComplex != 0;
      info.class_name = class_name(v->class_type, info.logical && !info.sparse);
      // A corrupt dimensions element gives thousands of dimensions or sizes that overflow.
      int64_t numel = 1;
      for (int d = 0; d < v->rank; ++d) {
        info.dims.push_back(static_cast<int64_t>(v->dims[d]));
        if (info.dims.back() < 0 || __builtin_mul_overflow(numel, info.dims.back(), &numel)) {
          numel = -1;
        }
      }
      if (v->rank > kMaxRank || numel < 0) {
        fail("[mat] '{}': corrupt: variable {} ('{}') has {} dimensions {}", name, vars.size(),
             info.name, v->rank, dims_str(info.dims));
      }
      vars.push_back(std::move(info));
    }
    if (elements >= 0 && static_cast<int64_t>(vars.size()) < elements) {
      fail("[mat] '{}': corrupt: libmatio read {} of the {} top-level elements{}", name,
           vars.size(), elements, matio_said());
    }
    matio_log.clear();
  }

  std::string names_str() const {
    if (vars.empty()) return "the file holds no variables";
    std::string s = "the file holds: ";
    for (size_t i = 0; i < vars.size(); ++i) {
      if (i > 0) s += ", ";
      s += fmt::format("'{}' ({} {})", vars[i].name, dims_str(vars[i].dims), vars[i].class_name);
    }
    return s;
  }

  const MatVarInfo& info(const std::string& var) const {
    for (const MatVarInfo& v : vars) {
      if (v.name == var) return v;
    }
    fail("[mat] '{}': no variable '{}'; {}", name, var, names_str());
  }

  // The whole variable, or an error; the caller holds the mutex.
  VarPtr read_var(const std::string& var) const {
    install_matio_log();
    VarPtr v(Mat_VarRead(mat, var.c_str()));
    if (!v) fail("[mat] '{}': cannot read variable '{}'{}", name, var, matio_said());
    if (v->isComplex) {
      fail("[mat] '{}': variable '{}' is complex; only real data is supported", name, var);
    }
    return v;
  }
};

MatFile::MatFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MatFile::MatFile(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->name = path;
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) fail("[mat] '{}': no such file", path);
  if (!std::filesystem::is_regular_file(status)) fail("[mat] '{}': not a regular file", path);
  if (std::filesystem::file_size(path, ec) == 0) fail("[mat] '{}': the file is empty", path);
  impl_->open(path);
}

MatFile MatFile::from_bytes(const std::string& bytes, const std::string& name) {
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  if (bytes.empty()) fail("[mat] '{}': the file is empty", name);
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::temp_directory_path(ec);
  if (ec) fail("[mat] '{}': no temporary directory: {}", name, ec.message());
  std::string tmpl = (dir / "basin-mat-XXXXXX").string();
  const int fd = ::mkstemp(tmpl.data());  // creates the file with mode 0600
  if (fd < 0) {
    fail("[mat] '{}': cannot create a temporary file in '{}': {}", name, dir.string(),
         std::strerror(errno));
  }
  struct Cleanup {
    const std::string& path;
    int fd;
    ~Cleanup() {
      if (fd >= 0) ::close(fd);
      ::unlink(path.c_str());
    }
  } cleanup{tmpl, fd};
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      fail("[mat] '{}': cannot write the temporary file '{}': {}", name, tmpl,
           std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  cleanup.fd = -1;
  impl->open(tmpl);  // matio keeps the file open, so unlinking it afterwards is safe
  return MatFile(std::move(impl));
}

MatFile::MatFile(MatFile&&) noexcept = default;
MatFile& MatFile::operator=(MatFile&&) noexcept = default;
MatFile::~MatFile() = default;

const std::string& MatFile::name() const { return impl_->name; }
int MatFile::version() const { return impl_->version; }
const std::vector<MatVarInfo>& MatFile::variables() const { return impl_->vars; }
const MatVarInfo& MatFile::info(const std::string& var) const { return impl_->info(var); }

bool MatFile::has(const std::string& var) const {
  return std::any_of(impl_->vars.begin(), impl_->vars.end(),
                     [&](const MatVarInfo& v) { return v.name == var; });
}

Tensor MatFile::read(const std::string& var, Dtype dtype) const {
  const std::string& file = impl_->name;
  if (dtype != Dtype::f64 && dtype != Dtype::f32 && dtype != Dtype::i64) {
    fail("[mat] '{}': variable '{}' can be read as float64, float32 or int64, not {}", file, var,
         dtype_name(dtype));
  }
  const MatVarInfo& info = impl_->info(var);
  if (info.sparse) {
    const CsrMatrix m = read_sparse(var);
    if (dtype == Dtype::i64) {
      for (int64_t k = 0; k < m.nnz(); ++k) {
        int64_t unused = 0;
        if (!to_int64(m.values[k], unused)) {
          fail("[mat] '{}': variable '{}' has value {} in a sparse entry, not an int64", file, var,
               m.values[k]);
        }
      }
    }
    return m.to_dense(dtype);
  }
  std::lock_guard<std::mutex> lock(impl_->mutex);
  const VarPtr v = impl_->read_var(var);
  if (!is_numeric_class(v->class_type)) {
    fail("[mat] '{}': variable '{}' is of class {}, not a numeric class", file, var,
         class_name(v->class_type, false));
  }
  std::vector<int64_t> dims;
  int64_t n = 1;
  for (int d = 0; d < v->rank; ++d) {
    dims.push_back(static_cast<int64_t>(v->dims[d]));
    if (__builtin_mul_overflow(n, dims.back(), &n)) {
      fail("[mat] '{}': variable '{}' has dimensions that overflow", file, var);
    }
  }
  Tensor out = zeros(dims, dtype);
  if (n == 0) return out;
  const size_t elem = Mat_SizeOf(v->data_type);
  if (v->data == nullptr || elem == 0 || v->nbytes / elem < static_cast<size_t>(n)) {
    fail("[mat] '{}': variable '{}' ({}) holds {} bytes of data, too few for {} elements", file,
         var, dims_str(dims), v->nbytes, n);
  }
  visit_stored(v->data_type, v->data, [&](const auto* src) {
    using S = std::remove_cv_t<std::remove_pointer_t<decltype(src)>>;
    if (dtype == Dtype::i64) {
      column_to_row_major(src, out.data<int64_t>(), dims, [&](S x, int64_t l) {
        int64_t y = 0;
        if (!to_int64(x, y)) {
          fail("[mat] '{}': variable '{}' has {} at {}, which is not an int64", file, var,
               static_cast<double>(x), element_str(l, dims));
        }
        return y;
      });
    } else if (dtype == Dtype::f32) {
      column_to_row_major(src, out.data<float>(), dims,
                          [](S x, int64_t) { return static_cast<float>(x); });
    } else {
      column_to_row_major(src, out.data<double>(), dims,
                          [](S x, int64_t) { return static_cast<double>(x); });
    }
  });
  return out;
}

Tensor MatFile::read_vector(const std::string& var, Dtype dtype) const {
  const MatVarInfo& info = impl_->info(var);
  int64_t n = 1, long_dims = 0;
  for (int64_t d : info.dims) {
    n *= d;
    long_dims += d > 1 ? 1 : 0;
  }
  if (long_dims > 1) {
    fail("[mat] '{}': variable '{}' is {}, not a vector", impl_->name, var, dims_str(info.dims));
  }
  return reshape(read(var, dtype), {n});
}

CsrMatrix MatFile::read_sparse(const std::string& var) const {
  const std::string& file = impl_->name;
  const MatVarInfo& info = impl_->info(var);
  if (info.dims.size() != 2) {
    fail("[mat] '{}': variable '{}' is {}, not a matrix", file, var, dims_str(info.dims));
  }
  if (!info.sparse) {
    const Tensor dense = read(var, Dtype::f64);
    CsrMatrix m;
    m.rows = info.dims[0];
    m.cols = info.dims[1];
    const double* d = dense.data<double>();
    for (int64_t r = 0; r < m.rows; ++r) {
      for (int64_t c = 0; c < m.cols; ++c) {
        if (d[r * m.cols + c] != 0.0) {
          m.col.push_back(c);
          m.values.push_back(d[r * m.cols + c]);
        }
      }
      m.row_ptr.push_back(m.nnz());
    }
    return m;
  }

  std::lock_guard<std::mutex> lock(impl_->mutex);
  const VarPtr v = impl_->read_var(var);
  const auto* sp = static_cast<const mat_sparse_t*>(v->data);
  if (sp == nullptr || v->rank != 2) {
    fail("[mat] '{}': sparse variable '{}' has no data{}", file, var, matio_said());
  }
  const auto rows = static_cast<int64_t>(v->dims[0]);
  const auto cols = static_cast<int64_t>(v->dims[1]);
  const auto bad = [&](const std::string& problem) {
    fail("[mat] '{}': sparse variable '{}' ({}×{}): {}", file, var, rows, cols, problem);
  };
  if (static_cast<int64_t>(sp->njc) != cols + 1 || sp->jc == nullptr) {
    bad(fmt::format("jc has {} entries, {} columns need {}", sp->njc, cols, cols + 1));
  }
  if (sp->jc[0] != 0) bad(fmt::format("jc starts at {}, not 0", sp->jc[0]));
  for (int64_t c = 0; c < cols; ++c) {
    if (sp->jc[c + 1] < sp->jc[c]) {
      bad(fmt::format("jc decreases at column {} ({} then {})", c, sp->jc[c], sp->jc[c + 1]));
    }
  }
  // nnz is jc[ncols]; ir (nzmax entries) may be longer than that, data must hold nnz values.
  const int64_t nnz = sp->jc[cols];
  if (nnz > static_cast<int64_t>(sp->nir) || (nnz > 0 && sp->ir == nullptr)) {
    bad(fmt::format("jc[{}] = {} entries but ir holds only {} row indices", cols, nnz, sp->nir));
  }
  std::vector<double> vals(static_cast<size_t>(nnz), 1.0);
  if (nnz > 0) {
    if (static_cast<int64_t>(sp->ndata) < nnz || sp->data == nullptr) {
      if (!v->isLogical) {
        bad(fmt::format("{} entries but only {} stored values", nnz, sp->ndata));
      }
      // A logical sparse array without stored values: every entry is true.
    } else if (!visit_stored(v->data_type, sp->data, [&](const auto* src) {
                 for (int64_t k = 0; k < nnz; ++k) vals[k] = static_cast<double>(src[k]);
               })) {
      bad(fmt::format("values stored as unsupported type {}", static_cast<int>(v->data_type)));
    }
  }
  // The CSC arrays are the CSR form of the transpose.
  CsrMatrix csc;
  csc.rows = cols;
  csc.cols = rows;
  csc.row_ptr.assign(sp->jc, sp->jc + cols + 1);
  csc.col.resize(static_cast<size_t>(nnz));
  for (int64_t k = 0; k < nnz; ++k) {
    csc.col[k] = sp->ir[k];
    if (csc.col[k] >= rows) {
      bad(fmt::format("entry {} has row index {}, outside [0, {})", k, csc.col[k], rows));
    }
  }
  csc.values = std::move(vals);
  CsrMatrix m = csc.transposed();
  for (int64_t r = 0; r < m.rows; ++r) {
    for (int64_t k = m.row_ptr[r] + 1; k < m.row_ptr[r + 1]; ++k) {
      if (m.col[k] == m.col[k - 1]) bad(fmt::format("entry ({}, {}) is stored twice", r, m.col[k]));
    }
  }
  return m;
}

std::string MatFile::read_string(const std::string& var) const {
  const std::string& file = impl_->name;
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->info(var);
  const VarPtr v = impl_->read_var(var);
  if (v->class_type != MAT_C_CHAR) {
    fail("[mat] '{}': variable '{}' is of class {}, not char", file, var,
         class_name(v->class_type, v->isLogical != 0));
  }
  if (v->rank != 2) fail("[mat] '{}': char variable '{}' is not 2-D", file, var);
  const auto rows = static_cast<int64_t>(v->dims[0]);
  const auto cols = static_cast<int64_t>(v->dims[1]);
  const size_t elem = Mat_SizeOf(v->data_type);
  if (rows * cols > 0 &&
      (v->data == nullptr || elem == 0 || v->nbytes / elem < static_cast<size_t>(rows * cols))) {
    fail("[mat] '{}': char variable '{}' holds too little data", file, var);
  }
  std::vector<uint32_t> units(static_cast<size_t>(rows * cols));  // column-major code units
  if (elem == 1) {
    std::copy_n(static_cast<const uint8_t*>(v->data), units.size(), units.begin());
  } else if (elem == 2) {
    std::copy_n(static_cast<const uint16_t*>(v->data), units.size(), units.begin());
  } else if (!units.empty()) {
    fail("[mat] '{}': char variable '{}' has {}-byte characters", file, var, elem);
  }
  std::string out;
  for (int64_t r = 0; r < rows; ++r) {
    if (r > 0) out += '\n';
    for (int64_t c = 0; c < cols; ++c) {
      uint32_t u = units[r + rows * c];
      if (u >= 0xD800 && u < 0xDC00 && c + 1 < cols) {  // a UTF-16 surrogate pair
        const uint32_t low = units[r + rows * (c + 1)];
        if (low >= 0xDC00 && low < 0xE000) {
          u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00);
          ++c;
        }
      }
      append_utf8(out, u);
    }
  }
  return out;
}

}  // namespace basin::data
