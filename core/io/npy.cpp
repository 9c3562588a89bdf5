// .npy parsing and writing, and .npz archives through libzip (read from disk, built in memory).
#include "core/io/npy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "core/io/atomic_file.h"
#include "core/ops/movement.h"

namespace basin::io {
namespace {

static_assert(std::endian::native == std::endian::little, ".npy I/O assumes a little-endian host");

constexpr std::string_view kMagic = "\x93NUMPY";
// NumPy pads the header so that the data starts on a multiple of this many bytes.
constexpr size_t kAlign = 64;
// NumPy leaves room after the header for the growing axis to reach this many digits.
constexpr size_t kGrowthAxisDigits = 21;

std::string errno_text(int err) { return std::generic_category().message(err); }

// Who is reading or writing what, for error messages: "[who] 'path': member 'm': problem".
struct Context {
  const char* who;
  std::string path;
  std::string member;  // empty for a .npy file

  template <class... Args>
  [[noreturn]] void bad(fmt::format_string<Args...> format, Args&&... args) const {
    const std::string problem = fmt::format(format, std::forward<Args>(args)...);
    if (member.empty()) fail("[{}] '{}': {}", who, path, problem);
    fail("[{}] '{}': member '{}': {}", who, path, member, problem);
  }
};

// --- dtypes ----------------------------------------------------------------------------------

struct NpyType {
  char kind;  // NumPy's kind character
  size_t size;
  Dtype dtype;
};

constexpr NpyType kTypes[] = {
    {'f', 4, Dtype::f32}, {'f', 8, Dtype::f64}, {'i', 4, Dtype::i32},
    {'i', 8, Dtype::i64}, {'u', 1, Dtype::u8},  {'b', 1, Dtype::boolean},
};

std::string descr_of(Dtype dtype) {
  for (const NpyType& t : kTypes) {
    if (t.dtype == dtype) return fmt::format("{}{}{}", t.size == 1 ? '|' : '<', t.kind, t.size);
  }
  fail("[write_npy] unknown dtype {}", static_cast<int>(dtype));
}

// The dtype of a descr such as '<f4'; sets `swap` for big-endian multi-byte data.
Dtype parse_descr(const Context& ctx, const std::string& descr, bool& swap) {
  const auto unsupported = [&] {
    ctx.bad(
        "dtype '{}' is not supported (basin reads float32 'f4', float64 'f8', int32 'i4', int64 "
        "'i8', uint8 'u1' and bool 'b1')",
        descr);
  };
  if (descr.size() < 3) unsupported();
  const char order = descr[0];
  if (order != '<' && order != '>' && order != '|' && order != '=') unsupported();
  size_t size = 0;
  for (size_t i = 2; i < descr.size(); ++i) {
    if (descr[i] < '0' || descr[i] > '9' || size > 1000) unsupported();
    size = size * 10 + static_cast<size_t>(descr[i] - '0');
  }
  for (const NpyType& t : kTypes) {
    if (t.kind == descr[1] && t.size == size) {
      swap = order == '>' && size > 1;
      return t.dtype;
    }
  }
  unsupported();
  return Dtype::f32;  // not reached
}

// --- header ----------------------------------------------------------------------------------

struct Header {
  Dtype dtype = Dtype::f32;
  bool swap = false;
  bool fortran = false;
  Shape shape;
};

// Parses the Python dict literal of a .npy header, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
class HeaderParser {
 public:
  HeaderParser(const Context& ctx, std::string_view text) : ctx_(ctx), text_(text) {}

  Header parse() {
    bool has_descr = false, has_order = false, has_shape = false;
    std::string descr;
    Header h;
    skip_space();
    expect('{');
    for (;;) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = string_literal();
      skip_space();
      expect(':');
      skip_space();
      if (key == "descr") {
        if (peek() == '[') ctx_.bad("structured dtypes are not supported (descr is a list)");
        descr = string_literal();
        has_descr = true;
      } else if (key == "fortran_order") {
        h.fortran = boolean_literal();
        has_order = true;
      } else if (key == "shape") {
        h.shape = tuple_literal();
        has_shape = true;
      } else {
        ctx_.bad("the header has an unexpected key '{}'", key);
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      skip_space();
      if (peek() != '}') bad_syntax("',' or '}'");
    }
    ++pos_;
    skip_space();
    if (pos_ != text_.size()) bad_syntax("the end of the header");
    if (!has_descr || !has_order || !has_shape) {
      ctx_.bad("the header lacks '{}'", !has_descr   ? "descr"
                                        : !has_order ? "fortran_order"
                                                     : "shape");
    }
    h.dtype = parse_descr(ctx_, descr, h.swap);
    return h;
  }

 private:
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }
  [[noreturn]] void bad_syntax(const char* wanted) const {
    ctx_.bad("bad header: expected {} at offset {} of {}", wanted, pos_, quoted());
  }
  std::string quoted() const {
    std::string s(text_.substr(0, 200));
    while (!s.empty() && (s.back() == ' ' || s.back() == '\n')) s.pop_back();
    return "\"" + s + (text_.size() > 200 ? "...\"" : "\"");
  }
  void expect(char c) {
    if (peek() != c) bad_syntax(fmt::format("'{}'", c).c_str());
    ++pos_;
  }
  std::string string_literal() {
    const char quote = peek();
    if (quote != '\'' && quote != '"') bad_syntax("a quoted string");
    const size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string_view::npos) bad_syntax("a closing quote");
    std::string s(text_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return s;
  }
  bool boolean_literal() {
    if (text_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (text_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    bad_syntax("True or False");
  }
  Shape tuple_literal() {
    expect('(');
    Shape shape;
    for (;;) {
      skip_space();
      if (peek() == ')') break;
      if (peek() < '0' || peek() > '9') bad_syntax("a non-negative integer or ')'");
      int64_t d = 0;
      while (peek() >= '0' && peek() <= '9') {
        if (d > (std::numeric_limits<int64_t>::max() - 9) / 10) ctx_.bad("a dimension overflows");
        d = d * 10 + (peek() - '0');
        ++pos_;
      }
      if (peek() == 'L') ++pos_;  // Python 2 long literals
      shape.push_back(d);
      skip_space();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != ')') {
        bad_syntax("',' or ')'");
      }
    }
    ++pos_;
    return shape;
  }

  const Context& ctx_;
  std::string_view text_;
  size_t pos_ = 0;
};

// --- reading ---------------------------------------------------------------------------------

// Reads up to n bytes into p and returns how many it read (fewer only at the end of the data).
using ReadFn = std::function<size_t(void* p, size_t n)>;

uint32_t little_endian(const unsigned char* p, size_t n) {
  uint32_t v = 0;
  for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
  return v;
}

void byteswap(void* data, size_t count, size_t size) {
  auto* p = static_cast<unsigned char*>(data);
  for (size_t i = 0; i < count; ++i, p += size) std::reverse(p, p + size);
}

// Parses one .npy stream of `size` bytes: magic, version, header, data, and nothing after the data.
// Knowing the size up front lets a truncated file fail before its data is allocated.
Tensor parse_npy(const Context& ctx, const ReadFn& read, uint64_t size) {
  unsigned char prefix[12];
  const size_t got = read(prefix, 10);
  if (got < kMagic.size() || std::memcmp(prefix, kMagic.data(), kMagic.size()) != 0) {
    const bool zip = got >= 2 && prefix[0] == 'P' && prefix[1] == 'K';
    ctx.bad("not a .npy file (it does not start with the magic string \"\\x93NUMPY\"){}",
            zip ? "; it starts like a zip archive: an .npz file is read with read_npz" : "");
  }
  if (got < 10) ctx.bad("truncated: the file ends inside the .npy preamble");
  const int major = prefix[6], minor = prefix[7];
  if (major < 1 || major > 3) {
    ctx.bad("unsupported .npy format version {}.{} (basin reads 1.0, 2.0 and 3.0)", major, minor);
  }
  size_t header_len = little_endian(prefix + 8, 2);
  if (major >= 2) {
    if (read(prefix + 10, 2) < 2) ctx.bad("truncated: the file ends inside the .npy preamble");
    header_len = little_endian(prefix + 8, 4);
  }
  if (header_len > (size_t{1} << 24)) ctx.bad("the header length {} is implausible", header_len);
  std::string text(header_len, '\0');
  if (read(text.data(), header_len) < header_len) {
    ctx.bad("truncated: the file ends inside the {}-byte header", header_len);
  }
  const Header h = HeaderParser(ctx, text).parse();
  const uint64_t preamble = (major == 1 ? 10 : 12) + header_len;
  const uint64_t available = size > preamble ? size - preamble : 0;

  const size_t item = itemsize(h.dtype);
  uint64_t count = 1, nbytes = 0;
  bool overflow = false;
  for (int64_t d : h.shape) overflow |= __builtin_mul_overflow(count, uint64_t(d), &count);
  overflow |= __builtin_mul_overflow(count, uint64_t{item}, &nbytes);
  if (overflow || nbytes > (uint64_t{1} << 62)) {
    ctx.bad("shape {} overflows the size of a tensor", shape_str(h.shape));
  }
  if (nbytes > available) {
    ctx.bad("truncated: shape {} and dtype {} need {} data bytes, the file holds {}",
            shape_str(h.shape), dtype_name(h.dtype), nbytes, available);
  }

  // A Fortran-order array is the row-major array of the reversed shape, transposed.
  Shape stored = h.shape;
  if (h.fortran) std::reverse(stored.begin(), stored.end());
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = stored;
  impl->dtype = h.dtype;
  Tensor t(impl);
  t.allocate();
  const size_t data_got = nbytes > 0 ? read(t.raw_data(), nbytes) : 0;
  if (data_got < nbytes) {
    ctx.bad("truncated: shape {} and dtype {} need {} data bytes, the file holds {}",
            shape_str(h.shape), dtype_name(h.dtype), nbytes, data_got);
  }
  char extra[256];
  if (const size_t n = read(extra, sizeof extra); n > 0) {
    ctx.bad("{}{} bytes follow the {} data bytes of shape {} and dtype {}", n,
            n == sizeof extra ? " or more" : "", nbytes, shape_str(h.shape), dtype_name(h.dtype));
  }
  if (h.swap) byteswap(t.raw_data(), count, item);
  if (h.dtype == Dtype::boolean) {
    // A C++ bool holding anything but 0 or 1 is undefined behaviour.
    auto* p = static_cast<unsigned char*>(t.raw_data());
    for (uint64_t i = 0; i < count; ++i) p[i] = p[i] != 0;
  }
  if (h.fortran && t.ndim() > 1) {
    std::vector<int> reverse(static_cast<size_t>(t.ndim()));
    for (size_t i = 0; i < reverse.size(); ++i)
      reverse[i] = static_cast<int>(reverse.size() - 1 - i);
    t = permute(t, reverse).contiguous();
  }
  return t;
}

class InputFile {
 public:
  explicit InputFile(const Context& ctx) : ctx_(ctx) {
    fd_ = ::open(ctx.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      const int err = errno;
      ctx.bad("cannot open: {}", errno_text(err));
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd_);
      ctx.bad("not a regular file");
    }
    size_ = static_cast<uint64_t>(st.st_size);
  }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile() { ::close(fd_); }
  uint64_t size() const { return size_; }

  size_t read(void* data, size_t size) {
    char* p = static_cast<char*>(data);
    size_t done = 0;
    while (done < size) {
      const ssize_t r = ::read(fd_, p + done, std::min<size_t>(size - done, size_t{1} << 30));
      if (r < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        ctx_.bad("read failed: {}", errno_text(err));
      }
      if (r == 0) break;
      done += static_cast<size_t>(r);
    }
    return done;
  }

 private:
  const Context& ctx_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

struct ZipDiscard {
  void operator()(zip_t* z) const { zip_discard(z); }
};
struct ZipFileClose {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};

std::string zip_error_text(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string message = zip_error_strerror(&error);
  zip_error_fini(&error);
  return message;
}

// --- writing ---------------------------------------------------------------------------------

// The .npy bytes of t, laid out as numpy.save lays them out.
std::string npy_bytes(const Tensor& t) {
  // detach: serialising must not record autograd ops on parameters.
  const Tensor c = t.detach().to(Device::cpu()).contiguous();
  std::string shape = "(";
  for (int d = 0; d < c.ndim(); ++d) {
    shape += fmt::format("{}{}", d > 0 ? ", " : "", c.shape(d));
  }
  shape += c.ndim() == 1 ? ",)" : ")";
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                   descr_of(c.dtype()), shape);
  if (c.ndim() > 0) {
    const size_t digits = std::to_string(c.shape(0)).size();
    header.append(kGrowthAxisDigits > digits ? kGrowthAxisDigits - digits : 0, ' ');
  }
  // magic (6) + version (2) + length (2 or 4) + header + '\n', padded to kAlign.
  size_t preamble = kMagic.size() + 2 + 2;
  int major = 1;
  if (header.size() + 1 + preamble + kAlign > 65535) {
    major = 2;
    preamble += 2;
  }
  header.append((kAlign - (preamble + header.size() + 1) % kAlign) % kAlign, ' ');
  header += '\n';

  std::string out(kMagic);
  out += static_cast<char>(major);
  out += '\0';
  const size_t len = header.size();
  for (size_t i = 0; i < (major == 1 ? 2u : 4u); ++i)
    out += static_cast<char>((len >> (8 * i)) & 0xff);
  out += header;
  out.append(static_cast<const char*>(c.raw_data()), c.nbytes());
  return out;
}

// The bytes of a zip archive holding `members` (name, bytes), built in memory by libzip.
std::string zip_bytes(const Context& ctx,
                      const std::vector<std::pair<std::string, std::string>>& members,
                      bool compress) {
  if (members.empty()) {
    // libzip deletes an archive left empty; this is the end record numpy.savez writes for none.
    return std::string("PK\x05\x06", 4) + std::string(18, '\0');
  }
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* buffer = zip_source_buffer_create(nullptr, 0, 0, &error);
  if (buffer == nullptr) ctx.bad("cannot create an in-memory zip: {}", zip_error_strerror(&error));
  zip_t* archive = zip_open_from_source(buffer, ZIP_TRUNCATE, &error);
  if (archive == nullptr) {
    const std::string message = zip_error_strerror(&error);
    zip_source_free(buffer);
    zip_error_fini(&error);
    ctx.bad("cannot create an in-memory zip: {}", message);
  }
  zip_error_fini(&error);
  zip_source_keep(buffer);
  const std::unique_ptr<zip_source_t, decltype(&zip_source_free)> owner(buffer, zip_source_free);
  {
    std::unique_ptr<zip_t, ZipDiscard> guard(archive);
    for (const auto& [name, bytes] : members) {
      zip_source_t* src = zip_source_buffer(archive, bytes.data(), bytes.size(), 0);
      if (src == nullptr) ctx.bad("cannot add '{}': {}", name, zip_strerror(archive));
      const zip_int64_t index =
          zip_file_add(archive, name.c_str(), src, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE);
      if (index < 0) {
        zip_source_free(src);
        ctx.bad("cannot add '{}': {}", name, zip_strerror(archive));
      }
      const auto i = static_cast<zip_uint64_t>(index);
      // A fixed time stamp (the zip epoch, 1980-01-01) keeps the bytes reproducible.
      if (zip_set_file_compression(archive, i, compress ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0) != 0 ||
          zip_file_set_mtime(archive, i, 315532800, 0) != 0) {
        ctx.bad("cannot add '{}': {}", name, zip_strerror(archive));
      }
    }
    if (zip_close(archive) != 0) ctx.bad("cannot build the zip archive: {}", zip_strerror(archive));
    guard.release();  // zip_close freed it
  }
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_source_stat(buffer, &st) != 0 || !(st.valid & ZIP_STAT_SIZE) ||
      zip_source_open(buffer) != 0) {
    ctx.bad("cannot read back the in-memory zip archive");
  }
  std::string out(static_cast<size_t>(st.size), '\0');
  const zip_int64_t got = zip_source_read(buffer, out.data(), st.size);
  zip_source_close(buffer);
  if (got < 0 || static_cast<zip_uint64_t>(got) != st.size) {
    ctx.bad("cannot read back the in-memory zip archive");
  }
  return out;
}

}  // namespace

Tensor read_npy(const std::string& path) {
  const Context ctx{"read_npy", path, ""};
  InputFile file(ctx);
  return parse_npy(
      ctx, [&](void* p, size_t n) { return file.read(p, n); }, file.size());
}

void write_npy(const std::string& path, const Tensor& t) {
  const Context ctx{"write_npy", path, ""};
  if (!t.defined()) ctx.bad("the tensor is undefined");
  detail::write_file_atomic(ctx.path, npy_bytes(t), ctx.who);
}

std::map<std::string, Tensor> read_npz(const std::string& path) {
  Context ctx{"read_npz", path, ""};
  {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      const int err = errno;
      ctx.bad("cannot open: {}", errno_text(err));
    }
    if (!S_ISREG(st.st_mode)) ctx.bad("not a regular file");
  }
  int code = 0;
  std::unique_ptr<zip_t, ZipDiscard> archive(zip_open(path.c_str(), ZIP_RDONLY, &code));
  if (!archive) {
    // A zip archive starts with a local file header ("PK\3\4"); without its end record libzip
    // calls it "not a zip archive", which for such a file means truncated.
    char start[4] = {0, 0, 0, 0};
    std::ifstream(path, std::ios::binary).read(start, 4);
    const bool truncated = code == ZIP_ER_NOZIP && std::memcmp(start, "PK\3\4", 4) == 0;
    ctx.bad("cannot open the zip archive: {}{}", zip_error_text(code),
            truncated ? " (it starts like one: is it truncated?)" : "");
  }
  std::map<std::string, Tensor> out;
  const zip_int64_t count = zip_get_num_entries(archive.get(), 0);
  for (zip_int64_t i = 0; i < count; ++i) {
    const auto index = static_cast<zip_uint64_t>(i);
    const char* raw = zip_get_name(archive.get(), index, 0);
    if (raw == nullptr)
      ctx.bad("cannot read the name of entry {}: {}", i, zip_strerror(archive.get()));
    const std::string name = raw;
    if (name.size() <= 4 || name.compare(name.size() - 4, 4, ".npy") != 0) continue;
    ctx.member = name;
    const std::string key = name.substr(0, name.size() - 4);
    if (out.count(key) != 0) ctx.bad("the archive holds it twice");
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(archive.get(), index, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE)) {
      ctx.bad("cannot read its entry: {}", zip_strerror(archive.get()));
    }
    std::unique_ptr<zip_file_t, ZipFileClose> file(zip_fopen_index(archive.get(), index, 0));
    if (!file) ctx.bad("cannot open: {}", zip_strerror(archive.get()));
    const auto read = [&](void* p, size_t n) {
      size_t done = 0;
      while (done < n) {
        const zip_int64_t r = zip_fread(file.get(), static_cast<char*>(p) + done,
                                        std::min<size_t>(n - done, size_t{1} << 30));
        if (r < 0) ctx.bad("corrupt zip data: {}", zip_file_strerror(file.get()));
        if (r == 0) break;
        done += static_cast<size_t>(r);
      }
      return done;
    };
    out.emplace(key, parse_npy(ctx, read, st.size));
  }
  return out;
}

void write_npz(const std::string& path, const std::map<std::string, Tensor>& tensors,
               bool compress) {
  const Context ctx{"write_npz", path, ""};
  std::vector<std::pair<std::string, std::string>> members;
  for (const auto& [key, t] : tensors) {
    if (key.empty()) ctx.bad("an array has an empty name");
    if (!t.defined()) ctx.bad("array '{}' is undefined", key);
    members.emplace_back(key + ".npy", npy_bytes(t));
  }
  detail::write_file_atomic(ctx.path, zip_bytes(ctx, members, compress), ctx.who);
}

}  // namespace basin::io
