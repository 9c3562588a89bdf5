// IDX reading and writing with full validation; MNIST built on tensor_dataset and map.
#include "data/idx.h"

#include <bit>
#include <cstring>
#include <limits>
#include <vector>

#include "core/ops/creation.h"
#include "data/file_io.h"
#include "data/image.h"

namespace basin::data {
namespace {

static_assert(std::endian::native == std::endian::little, "IDX I/O assumes a little-endian host");

// deflate cannot compress better than about 1032:1, so a gzip file of n bytes holds at most this
// many bytes of data; a header that claims more is wrong (or the file is cut short).
constexpr uint64_t kMaxDeflateRatio = 1032;

struct IdxType {
  uint8_t code;
  const char* name;
  size_t bytes;  // per element in the file
  Dtype dtype;   // what basin holds it as
};

constexpr IdxType kIdxTypes[] = {
    {0x08, "unsigned byte", 1, Dtype::u8}, {0x09, "signed byte", 1, Dtype::i32},
    {0x0B, "int16", 2, Dtype::i32},        {0x0C, "int32", 4, Dtype::i32},
    {0x0D, "float32", 4, Dtype::f32},      {0x0E, "float64", 8, Dtype::f64},
};

const IdxType* idx_type(uint8_t code) {
  for (const IdxType& t : kIdxTypes) {
    if (t.code == code) return &t;
  }
  return nullptr;
}

// Reverses the byte order of each `width`-byte element in place.
void swap_bytes(void* data, size_t n, size_t width) {
  char* p = static_cast<char*>(data);
  if (width == 2) {
    for (size_t i = 0; i < n; ++i) {
      uint16_t v;
      std::memcpy(&v, p + 2 * i, 2);
      v = __builtin_bswap16(v);
      std::memcpy(p + 2 * i, &v, 2);
    }
  } else if (width == 4) {
    for (size_t i = 0; i < n; ++i) {
      uint32_t v;
      std::memcpy(&v, p + 4 * i, 4);
      v = __builtin_bswap32(v);
      std::memcpy(p + 4 * i, &v, 4);
    }
  } else if (width == 8) {
    for (size_t i = 0; i < n; ++i) {
      uint64_t v;
      std::memcpy(&v, p + 8 * i, 8);
      v = __builtin_bswap64(v);
      std::memcpy(p + 8 * i, &v, 8);
    }
  }
}

}  // namespace

Tensor read_idx(const std::string& path) {
  const auto bad = [&path](const std::string& problem) {
    fail("[read_idx] '{}': {}", path, problem);
  };
  detail::GzReader in(path, "read_idx");

  unsigned char magic[4];
  const size_t got_magic = in.read(magic, 4);
  if (got_magic < 4) {
    bad(fmt::format("the data is {} bytes, too short for the 4-byte IDX magic number", got_magic));
  }
  const uint32_t magic_value = uint32_t{magic[0]} << 24 | uint32_t{magic[1]} << 16 |
                               uint32_t{magic[2]} << 8 | uint32_t{magic[3]};
  if (magic[0] != 0 || magic[1] != 0) {
    bad(fmt::format(
        "bad magic number 0x{:08x}: an IDX file starts with two zero bytes, a type code and the "
        "number of dimensions (e.g. 0x00000803)",
        magic_value));
  }
  const IdxType* type = idx_type(magic[2]);
  if (type == nullptr) {
    bad(fmt::format(
        "unsupported type code 0x{:02x} in magic number 0x{:08x} (IDX has 0x08 unsigned byte, 0x09 "
        "signed byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64)",
        magic[2], magic_value));
  }
  const int ndim = magic[3];

  std::vector<unsigned char> dims_bytes(static_cast<size_t>(4 * ndim));
  const size_t got_dims = in.read(dims_bytes.data(), dims_bytes.size());
  if (got_dims < dims_bytes.size()) {
    bad(fmt::format("truncated header: {} dimensions need {} bytes after the magic number, got {}",
                    ndim, dims_bytes.size(), got_dims));
  }
  Shape shape(static_cast<size_t>(ndim));
  uint64_t count = 1;
  bool overflow = false;
  for (int d = 0; d < ndim; ++d) {
    const unsigned char* b = &dims_bytes[static_cast<size_t>(4 * d)];
    const uint32_t size =
        uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | uint32_t{b[3]};
    shape[static_cast<size_t>(d)] = size;
    overflow |= __builtin_mul_overflow(count, uint64_t{size}, &count);
  }
  uint64_t data_bytes = 0;
  overflow |= __builtin_mul_overflow(count, uint64_t{type->bytes}, &data_bytes);
  if (overflow || data_bytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    bad(fmt::format("dimensions {} overflow the size of a tensor", shape_str(shape)));
  }

  // Check what the file can hold before allocating what the header asks for.
  const uint64_t header_bytes = 4 + dims_bytes.size();
  if (in.plain()) {
    const uint64_t available = in.file_size() - header_bytes;
    if (available < data_bytes) {
      bad(fmt::format("truncated data: dimensions {} of {} need {} bytes, the file has {}",
                      shape_str(shape), type->name, data_bytes, available));
    }
    if (available > data_bytes) {
      bad(fmt::format("{} trailing bytes after the data (dimensions {} of {} need {} bytes)",
                      available - data_bytes, shape_str(shape), type->name, data_bytes));
    }
  } else if (data_bytes / kMaxDeflateRatio > in.file_size()) {
    bad(fmt::format(
        "dimensions {} of {} need {} bytes, more than a gzip file of {} bytes can hold: the "
        "header is wrong or the file is truncated",
        shape_str(shape), type->name, data_bytes, in.file_size()));
  }

  Tensor out = zeros(shape, type->dtype);
  const size_t n = static_cast<size_t>(count);
  const auto read_data = [&](void* dst) {
    const size_t got = in.read(dst, static_cast<size_t>(data_bytes));
    if (got < data_bytes) {
      bad(fmt::format("truncated data: dimensions {} of {} need {} bytes, the data ends after {}",
                      shape_str(shape), type->name, data_bytes, got));
    }
  };
  if (type->bytes == itemsize(type->dtype)) {
    read_data(out.raw_data());
    swap_bytes(out.raw_data(), n, type->bytes);
  } else {
    // int8 and int16 widen to int32.
    std::vector<char> raw(static_cast<size_t>(data_bytes));
    read_data(raw.data());
    int32_t* dst = out.data<int32_t>();
    for (size_t i = 0; i < n; ++i) {
      if (type->bytes == 1) {
        dst[i] = static_cast<int8_t>(raw[i]);
      } else {
        uint16_t v;
        std::memcpy(&v, &raw[2 * i], 2);
        dst[i] = static_cast<int16_t>(__builtin_bswap16(v));
      }
    }
  }
  const uint64_t trailing = in.skip_rest();
  if (trailing > 0) {
    bad(fmt::format("{} trailing bytes after the data (dimensions {} of {} need {} bytes)",
                    trailing, shape_str(shape), type->name, data_bytes));
  }
  return out;
}

void write_idx(const std::string& path, const Tensor& t) {
  if (!t.defined()) fail("[write_idx] cannot write '{}': the tensor is undefined", path);
  uint8_t code = 0;
  switch (t.dtype()) {
    case Dtype::u8:
      code = 0x08;
      break;
    case Dtype::i32:
      code = 0x0C;
      break;
    case Dtype::f32:
      code = 0x0D;
      break;
    case Dtype::f64:
      code = 0x0E;
      break;
    default:
      fail(
          "[write_idx] cannot write '{}': IDX has no type for {} (it holds uint8, int32, float32, "
          "float64; convert int64 to int32)",
          path, dtype_name(t.dtype()));
  }
  if (t.ndim() > 255)
    fail("[write_idx] cannot write '{}': IDX allows at most 255 dimensions", path);
  for (int64_t s : t.shape()) {
    if (s > std::numeric_limits<uint32_t>::max()) {
      fail("[write_idx] cannot write '{}': dimension {} of shape {} exceeds the uint32 limit", path,
           s, shape_str(t.shape()));
    }
  }
  const Tensor c = t.detach().to(Device::cpu()).contiguous();
  std::string bytes;
  bytes.reserve(4 + 4 * static_cast<size_t>(t.ndim()) + c.nbytes());
  bytes += {0, 0, static_cast<char>(code), static_cast<char>(t.ndim())};
  for (int64_t s : t.shape()) {
    const auto v = static_cast<uint32_t>(s);
    bytes += {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
              static_cast<char>(v)};
  }
  const size_t start = bytes.size();
  if (c.nbytes() > 0) bytes.append(static_cast<const char*>(c.raw_data()), c.nbytes());
  swap_bytes(bytes.data() + start, static_cast<size_t>(c.numel()), itemsize(c.dtype()));
  if (detail::ends_with_nocase(path, ".gz")) bytes = detail::gzip(bytes, "write_idx", path);
  detail::write_file_atomic(path, bytes, "write_idx");
}

DatasetPtr<Example> mnist(const std::string& images_path, const std::string& labels_path) {
  const Tensor images = read_idx(images_path);
  const Tensor labels = read_idx(labels_path);
  if (images.dtype() != Dtype::u8 || images.ndim() != 3) {
    fail("[mnist] '{}': images must be unsigned bytes of shape (N, H, W), got {} of shape {}",
         images_path, dtype_name(images.dtype()), shape_str(images.shape()));
  }
  if (!is_integral(labels.dtype()) || labels.ndim() != 1) {
    fail("[mnist] '{}': labels must be integers of shape (N,), got {} of shape {}", labels_path,
         dtype_name(labels.dtype()), shape_str(labels.shape()));
  }
  if (images.shape(0) != labels.shape(0)) {
    fail("[mnist] '{}' has {} images but '{}' has {} labels", images_path, images.shape(0),
         labels_path, labels.shape(0));
  }
  auto items = tensor_dataset({{"image", images}, {"label", labels.astype(Dtype::i64)}});
  return map(items, [](Example e) {
    e.at("image") = to_unit_float(e.at("image"));
    return e;
  });
}

}  // namespace basin::data
