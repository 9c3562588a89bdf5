// safetensors I/O: the reference writer's exact bytes, its reader's checks, atomic writes.
#include "core/io/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <system_error>

#include "core/ops/creation.h"

namespace basin::io {
namespace {

// The format stores little-endian data and we copy buffers byte for byte.
static_assert(std::endian::native == std::endian::little,
              "safetensors I/O assumes a little-endian host");

// ordered_json keeps insertion order, which the writer needs for the reference key order and the
// reader uses to break ties between zero-size tensors deterministically.
using Json = nlohmann::ordered_json;

// The reference reader's limit on the header length.
constexpr uint64_t kMaxHeaderSize = 100'000'000;

struct DtypeInfo {
  const char* name;
  Dtype dtype;
  // Position in the reference's Dtype enum (only the relative order matters): its writer sorts
  // tensors by this, descending, so we must too to reproduce its bytes.
  int rank;
};

constexpr DtypeInfo kDtypes[] = {
    {"BOOL", Dtype::boolean, 0}, {"U8", Dtype::u8, 1},   {"I32", Dtype::i32, 2},
    {"F32", Dtype::f32, 3},      {"F64", Dtype::f64, 4}, {"I64", Dtype::i64, 5},
};

// Valid safetensors dtypes (current and past reference releases) that basin cannot hold: named so
// that such a file gets "not supported" rather than "unknown".
constexpr std::string_view kUnsupportedDtypes[] = {
    "I8",      "I16",     "U16",     "U32", "U64",     "F16",     "BF16",
    "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4",  "F6_E2M3", "F6_E3M2", "C64",
};

const DtypeInfo& info_of(Dtype dtype) {
  for (const DtypeInfo& d : kDtypes) {
    if (d.dtype == dtype) return d;
  }
  fail("[safetensors] unknown dtype {}", static_cast<int>(dtype));
}

std::string errno_text(int err) { return std::generic_category().message(err); }

// --- writing ----------------------------------------------------------------------------------

// A contiguous host copy of t. For a tensor on another device, only the span of the buffer it views
// is copied to the host and compacted there: this needs no device kernels and no device memory
// for a contiguous copy of a strided view.
Tensor host_contiguous(const Tensor& t) {
  if (t.device().is_cpu()) return t.contiguous();
  if (t.numel() == 0) return zeros(t.shape(), t.dtype());
  int64_t lo = t.offset(), hi = t.offset();
  for (int d = 0; d < t.ndim(); ++d) {
    const int64_t reach = (t.shape()[d] - 1) * t.strides()[d];
    (reach < 0 ? lo : hi) += reach;
  }
  const size_t item = itemsize(t.dtype());
  const int64_t span = hi - lo + 1;
  auto base_impl = std::make_shared<TensorImpl>();
  base_impl->shape = {span};
  base_impl->dtype = t.dtype();
  const Tensor base(base_impl);
  base.allocate();
  copy_bytes(base.raw_data(), Device::cpu(),
             static_cast<const char*>(t.storage()->data) + static_cast<size_t>(lo) * item,
             t.device(), static_cast<size_t>(span) * item);
  auto view_impl = std::make_shared<TensorImpl>();
  view_impl->shape = t.shape();
  view_impl->dtype = t.dtype();
  const Tensor view(view_impl);
  view.share_storage(base, t.strides(), t.offset() - lo);
  return view.contiguous();
}

struct Prepared {
  std::string header;            // JSON, padded to a multiple of 8 bytes
  std::vector<Tensor> contents;  // CPU, contiguous, in file order
};

Prepared prepare(const std::string& path, const NamedTensors& tensors,
                 const std::map<std::string, std::string>& metadata) {
  const auto bad = [&path](const std::string& problem) {
    fail("[save_safetensors] cannot write '{}': {}", path, problem);
  };
  std::set<std::string_view> seen;
  for (const auto& [name, t] : tensors) {
    if (!t.defined()) bad(fmt::format("tensor '{}' is undefined", name));
    // The reader would take a tensor by this name for the metadata map.
    if (name == "__metadata__") bad("'__metadata__' is reserved and cannot name a tensor");
    if (!seen.insert(name).second) bad(fmt::format("duplicate tensor name '{}'", name));
  }

  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const int ra = info_of(tensors[a].second.dtype()).rank;
    const int rb = info_of(tensors[b].second.dtype()).rank;
    if (ra != rb) return ra > rb;
    return tensors[a].first < tensors[b].first;  // bytewise, as Rust's String ordering
  });

  Prepared out;
  Json header = Json::object();
  if (!metadata.empty()) {
    Json meta = Json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  for (size_t i : order) {
    const auto& [name, t] = tensors[i];
    // detach: serialising must not record autograd ops on parameters.
    Tensor c = host_contiguous(t.detach());
    const uint64_t n = c.nbytes();
    Json entry = Json::object();
    entry["dtype"] = info_of(c.dtype()).name;
    entry["shape"] = c.shape();
    entry["data_offsets"] = Json::array({offset, offset + n});
    header[name] = std::move(entry);
    offset += n;
    out.contents.push_back(std::move(c));
  }
  try {
    out.header = header.dump();
  } catch (const Json::exception& e) {
    bad(fmt::format("tensor names and metadata must be valid UTF-8 ({})", e.what()));
  }
  // The reference pads with spaces so that the data starts 8-byte aligned.
  out.header.append((8 - out.header.size() % 8) % 8, ' ');
  return out;
}

// Owns the temporary file until it is renamed into place; removes it on any failure.
class TempFile {
 public:
  explicit TempFile(const std::string& path)
      : path_(path), tmp_(fmt::format("{}.tmp-{}", path, static_cast<long>(::getpid()))) {
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd_ < 0) fail_errno(fmt::format("cannot create temporary file '{}'", tmp_));
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }

  void write(const void* data, size_t size) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
      // Chunks keep each call below the kernel's per-call limit (about 2 GiB).
      const ssize_t r = ::write(fd_, p, std::min<size_t>(size, size_t{1} << 30));
      if (r < 0) {
        if (errno == EINTR) continue;
        fail_errno("write failed");
      }
      p += r;
      size -= static_cast<size_t>(r);
    }
  }

  void commit() {
    // Sync before the rename so that after a crash `path` holds either the old or the new file.
    if (::fsync(fd_) != 0) fail_errno("fsync failed");
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail_errno("close failed");
    if (::rename(tmp_.c_str(), path_.c_str()) != 0)
      fail_errno("cannot rename the temporary file over it");
    committed_ = true;
    // Best effort: make the rename itself durable; not every file system supports this.
    const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
    const std::filesystem::path dir = parent.empty() ? std::filesystem::path(".") : parent;
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      (void)::fsync(dfd);
      ::close(dfd);
    }
  }

 private:
  [[noreturn]] void fail_errno(const std::string& what) const {
    const int err = errno;
    fail("[save_safetensors] cannot write '{}': {}: {}", path_, what, errno_text(err));
  }

  std::string path_;
  std::string tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

// --- reading ----------------------------------------------------------------------------------

// Where a reader is: who is asking and which file, for error messages.
struct Context {
  const char* who;
  const std::string& path;

  template <class... Args>
  [[noreturn]] void bad(fmt::format_string<Args...> format, Args&&... args) const {
    fail("[{}] '{}': {}", who, path, fmt::format(format, std::forward<Args>(args)...));
  }
};

struct Entry {
  std::string name;
  Dtype dtype;
  Shape shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

struct Header {
  std::vector<Entry> entries;  // sorted by data offset
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // file offset of the byte buffer
};

class InputFile {
 public:
  explicit InputFile(const Context& ctx) : ctx_(ctx) {
    fd_ = ::open(ctx.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      const int err = errno;
      ctx.bad("cannot open: {}", errno_text(err));
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      const int err = errno;
      ctx.bad("cannot stat: {}", errno_text(err));
    }
    if (!S_ISREG(st.st_mode)) ctx.bad("not a regular file");
    size_ = static_cast<uint64_t>(st.st_size);
  }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile() { ::close(fd_); }

  uint64_t size() const { return size_; }

  void read(void* data, uint64_t size, uint64_t offset) const {
    char* p = static_cast<char*>(data);
    while (size > 0) {
      const ssize_t r =
          ::pread(fd_, p, std::min<uint64_t>(size, uint64_t{1} << 30), static_cast<off_t>(offset));
      if (r < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        ctx_.bad("read failed: {}", errno_text(err));
      }
      if (r == 0) ctx_.bad("the file ended early (was it changed while being read?)");
      p += r;
      size -= static_cast<uint64_t>(r);
      offset += static_cast<uint64_t>(r);
    }
  }

 private:
  const Context& ctx_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// Parses JSON, reporting the first key repeated within one object: nlohmann silently keeps the
// last, the reference rejects such headers.
Json parse_json(const Context& ctx, const std::string& text) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  bool has_duplicate = false;
  const Json::parser_callback_t callback = [&](int, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case Json::parse_event_t::object_end:
        open_objects.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!open_objects.back().insert(parsed.get<std::string>()).second && !has_duplicate) {
          has_duplicate = true;
          duplicate = parsed.get<std::string>();
        }
        break;
      default:
        break;
    }
    return true;
  };
  // nlohmann stops at a NUL byte as if the input ended there; JSON never allows one, and the
  // reference rejects it, so check before parsing.
  if (text.find('\0') != std::string::npos)
    ctx.bad("header is not valid JSON (it holds a NUL byte)");
  Json j;
  try {
    j = Json::parse(text, callback);
  } catch (const Json::exception& e) {
    ctx.bad("header is not valid JSON ({})", e.what());
  }
  if (has_duplicate) ctx.bad("duplicate key '{}' in the header", duplicate);
  if (!j.is_object()) ctx.bad("header is not a JSON object");
  return j;
}

Dtype parse_dtype(const Context& ctx, const std::string& tensor, const std::string& name) {
  for (const DtypeInfo& d : kDtypes) {
    if (name == d.name) return d.dtype;
  }
  for (std::string_view u : kUnsupportedDtypes) {
    if (name == u) {
      ctx.bad(
          "tensor '{}': dtype {} is not supported by basin (it has BOOL, U8, I32, I64, F32, F64)",
          tensor, name);
    }
  }
  ctx.bad("tensor '{}': unknown dtype '{}'", tensor, name);
}

const Json& field(const Context& ctx, const std::string& tensor, const Json& entry,
                  const char* key) {
  const auto it = entry.find(key);
  if (it == entry.end()) ctx.bad("tensor '{}': missing \"{}\"", tensor, key);
  return *it;
}

Entry parse_entry(const Context& ctx, const std::string& name, const Json& value) {
  if (!value.is_object()) ctx.bad("tensor '{}': entry is not an object", name);
  Entry e;
  e.name = name;

  const Json& dtype = field(ctx, name, value, "dtype");
  if (!dtype.is_string()) ctx.bad("tensor '{}': \"dtype\" is not a string", name);
  e.dtype = parse_dtype(ctx, name, dtype.get<std::string>());

  const Json& shape = field(ctx, name, value, "shape");
  if (!shape.is_array()) ctx.bad("tensor '{}': \"shape\" is not a list", name);
  uint64_t numel = 1;
  bool overflow = false;
  for (const Json& d : shape) {
    if (!d.is_number_unsigned()) {
      ctx.bad("tensor '{}': \"shape\" must hold non-negative integers, got {}", name, shape.dump());
    }
    const uint64_t size = d.get<uint64_t>();
    if (size > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) overflow = true;
    overflow |= __builtin_mul_overflow(numel, size, &numel);
    e.shape.push_back(static_cast<int64_t>(size));
  }
  uint64_t nbytes = 0;
  overflow |= __builtin_mul_overflow(numel, uint64_t{itemsize(e.dtype)}, &nbytes);
  if (overflow) ctx.bad("tensor '{}': shape {} overflows the size of a tensor", name, shape.dump());

  const Json& offsets = field(ctx, name, value, "data_offsets");
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned()) {
    ctx.bad("tensor '{}': \"data_offsets\" must be two non-negative integers [BEGIN, END], got {}",
            name, offsets.dump());
  }
  e.begin = offsets[0].get<uint64_t>();
  e.end = offsets[1].get<uint64_t>();
  if (e.end < e.begin)
    ctx.bad("tensor '{}': data_offsets [{}, {}] end before they begin", name, e.begin, e.end);
  if (e.end - e.begin != nbytes) {
    ctx.bad("tensor '{}': data_offsets [{}, {}] span {} bytes, but dtype {} and shape {} need {}",
            name, e.begin, e.end, e.end - e.begin, info_of(e.dtype).name, shape.dump(), nbytes);
  }
  return e;
}

Header read_header(const Context& ctx, const InputFile& file) {
  if (file.size() < 8) {
    ctx.bad("file is {} bytes, too short for the 8-byte header length", file.size());
  }
  unsigned char prefix[8];
  file.read(prefix, 8, 0);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | prefix[i];
  if (n > kMaxHeaderSize)
    ctx.bad("header length {} exceeds the limit of {} bytes", n, kMaxHeaderSize);
  if (n > file.size() - 8) {
    ctx.bad("header length {} runs past the end of the file ({} bytes)", n, file.size());
  }
  std::string text(n, '\0');
  file.read(text.data(), n, 8);
  if (text.empty() || text[0] != '{') ctx.bad("header does not start with '{{'");

  const Json j = parse_json(ctx, text);
  Header h;
  h.data_start = 8 + n;
  for (const auto& [key, value] : j.items()) {
    if (key == "__metadata__") {
      if (value.is_null()) continue;  // the reference reads null as "no metadata"
      if (!value.is_object()) ctx.bad("\"__metadata__\" must be a map of strings to strings");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) {
          ctx.bad("\"__metadata__\" must be a map of strings to strings; key '{}' holds {}", mk,
                  mv.dump());
        }
        h.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    h.entries.push_back(parse_entry(ctx, key, value));
  }

  // The reference sorts by offsets and requires the tensors to tile the buffer exactly.
  std::stable_sort(h.entries.begin(), h.entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  for (const Entry& e : h.entries) {
    if (e.begin != expected) {
      ctx.bad(
          "tensor '{}': data_offsets [{}, {}] leave a gap or overlap (expected it to begin at {})",
          e.name, e.begin, e.end, expected);
    }
    expected = e.end;
  }
  const uint64_t buffer = file.size() - h.data_start;
  if (expected != buffer) {
    ctx.bad("the tensors cover {} bytes but the data buffer after the header has {} bytes",
            expected, buffer);
  }
  return h;
}

Tensor read_tensor(const InputFile& file, const Header& h, const Entry& e) {
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = e.shape;
  impl->dtype = e.dtype;
  Tensor t(impl);
  t.allocate();
  const uint64_t n = e.end - e.begin;
  if (n > 0) file.read(t.raw_data(), n, h.data_start + e.begin);
  if (e.dtype == Dtype::boolean) {
    // A C++ bool holding anything but 0 or 1 is undefined behaviour; other writers may use any
    // non-zero byte for true.
    auto* p = static_cast<unsigned char*>(t.raw_data());
    for (uint64_t i = 0; i < n; ++i) p[i] = p[i] != 0;
  }
  return t;
}

}  // namespace

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const Prepared prepared = prepare(path, tensors, metadata);
  TempFile file(path);
  unsigned char prefix[8];
  uint64_t n = prepared.header.size();
  for (unsigned char& b : prefix) {
    b = static_cast<unsigned char>(n & 0xff);
    n >>= 8;
  }
  file.write(prefix, sizeof prefix);
  file.write(prepared.header.data(), prepared.header.size());
  for (const Tensor& t : prepared.contents) {
    if (t.nbytes() > 0) file.write(t.raw_data(), t.nbytes());
  }
  file.commit();
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  save_safetensors(path, NamedTensors(tensors.begin(), tensors.end()), metadata);
}

void save_safetensors(const std::string& path,
                      std::initializer_list<std::pair<std::string, Tensor>> tensors,
                      const std::map<std::string, std::string>& metadata) {
  save_safetensors(path, NamedTensors(tensors), metadata);
}

SafetensorsFile load_safetensors(const std::string& path) {
  const Context ctx{"load_safetensors", path};
  const InputFile file(ctx);
  const Header h = read_header(ctx, file);
  SafetensorsFile out;
  out.metadata = h.metadata;
  for (const Entry& e : h.entries) {
    out.tensors.emplace(e.name, read_tensor(file, h, e));
    out.order.push_back(e.name);
  }
  return out;
}

Tensor load_tensor(const std::string& path, const std::string& name) {
  const Context ctx{"load_tensor", path};
  const InputFile file(ctx);
  const Header h = read_header(ctx, file);
  for (const Entry& e : h.entries) {
    if (e.name == name) return read_tensor(file, h, e);
  }
  ctx.bad("no tensor named '{}'", name);
}

}  // namespace basin::io
