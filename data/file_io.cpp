// File helpers for the readers: zlib's gz* interface for gzip-transparent reads, deflate for
// gzip output, POSIX calls for atomic writes.
#include "data/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <system_error>

#include "core/error.h"

namespace basin::data::detail {
namespace {

std::string errno_text(int err) { return std::generic_category().message(err); }

gzFile as_gz(void* f) { return static_cast<gzFile>(f); }

// zlib's gzread takes an unsigned int length; stay well below it.
constexpr size_t kChunk = size_t{1} << 30;

}  // namespace

// --- reading ---------------------------------------------------------------------------------

GzReader::GzReader(const std::string& path, const char* who) : path_(path), who_(who) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    fail("[{}] '{}': cannot open: {}", who, path, errno_text(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("[{}] '{}': not a regular file", who, path);
  }
  file_size_ = static_cast<uint64_t>(st.st_size);
  gzFile f = gzdopen(fd, "rb");
  if (f == nullptr) {
    ::close(fd);
    fail("[{}] '{}': cannot open for reading (out of memory)", who, path);
  }
  file_ = f;
  gzbuffer(f, 1 << 17);
}

GzReader::~GzReader() {
  if (file_ != nullptr) gzclose(as_gz(file_));
}

void GzReader::stream_error() const {
  const int err = errno;  // for Z_ERRNO, before anything else can change it
  int errnum = Z_OK;
  std::string msg = gzerror(as_gz(file_), &errnum);
  // zlib prefixes its message with the file's name, "<fd:N>" for a descriptor: we name the path.
  if (msg.rfind("<fd:", 0) == 0 && msg.find(": ") != std::string::npos) {
    msg.erase(0, msg.find(": ") + 2);
  }
  switch (errnum) {
    case Z_ERRNO:
      fail("[{}] '{}': read failed: {}", who_, path_, errno_text(err));
    case Z_BUF_ERROR:
      fail("[{}] '{}': the gzip data is truncated (it ends before the end of the stream)", who_,
           path_);
    case Z_DATA_ERROR:
      fail("[{}] '{}': corrupt gzip data ({})", who_, path_, msg);
    case Z_MEM_ERROR:
      fail("[{}] '{}': out of memory while decompressing", who_, path_);
    default:
      fail("[{}] '{}': read failed ({})", who_, path_, msg);
  }
}

size_t GzReader::read(void* data, size_t size) {
  char* p = static_cast<char*>(data);
  size_t got = 0;
  while (got < size) {
    const int r =
        gzread(as_gz(file_), p + got, static_cast<unsigned>(std::min(size - got, kChunk)));
    if (r < 0) stream_error();
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  // A stream cut short still hands out the bytes it had: check for the error it recorded.
  int errnum = Z_OK;
  gzerror(as_gz(file_), &errnum);
  if (errnum != Z_OK) stream_error();
  return got;
}

uint64_t GzReader::skip_rest() {
  std::string buffer(size_t{1} << 16, '\0');
  uint64_t total = 0;
  for (;;) {
    const size_t r = read(buffer.data(), buffer.size());
    total += r;
    if (r < buffer.size()) return total;
  }
}

bool GzReader::plain() const { return gzdirect(as_gz(file_)) != 0; }

std::string read_file(const std::string& path, const char* who) {
  GzReader reader(path, who);
  std::string bytes;
  // The on-disk size is exact for plain files (one more byte finds the end in one read) and a
  // first guess for gzip ones.
  size_t capacity = std::max<size_t>(static_cast<size_t>(reader.file_size()) + 1, 1 << 16);
  for (;;) {
    const size_t start = bytes.size();
    bytes.resize(std::max(capacity, start + 1));
    const size_t want = bytes.size() - start;
    const size_t got = reader.read(bytes.data() + start, want);
    bytes.resize(start + got);
    if (got < want) return bytes;
    capacity = bytes.size() * 2;
  }
}

// --- writing ---------------------------------------------------------------------------------

std::string gzip(const std::string& bytes, const char* who, const std::string& path) {
  z_stream zs{};
  // windowBits 15 + 16 asks deflate for a gzip header and trailer.
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    fail("[{}] '{}': cannot start gzip compression", who, path);
  }
  std::string out;
  out.resize(deflateBound(&zs, static_cast<uLong>(bytes.size())) + 64);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  size_t in_left = bytes.size();
  size_t produced = 0;
  int status = Z_OK;
  while (status != Z_STREAM_END) {
    if (zs.avail_in == 0 && in_left > 0) {
      zs.avail_in = static_cast<uInt>(std::min(in_left, kChunk));
      in_left -= zs.avail_in;
    }
    if (produced == out.size()) out.resize(out.size() * 2);
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    zs.avail_out = static_cast<uInt>(std::min(out.size() - produced, kChunk));
    const uInt before = zs.avail_out;
    status = deflate(&zs, in_left == 0 ? Z_FINISH : Z_NO_FLUSH);
    produced += before - zs.avail_out;
    if (status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR) {
      deflateEnd(&zs);
      fail("[{}] '{}': gzip compression failed (zlib status {})", who, path, status);
    }
  }
  deflateEnd(&zs);
  out.resize(produced);
  return out;
}

bool ends_with_nocase(const std::string& path, const std::string& suffix) {
  if (path.size() < suffix.size()) return false;
  return std::equal(suffix.begin(), suffix.end(),
                    path.end() - static_cast<ptrdiff_t>(suffix.size()), [](char a, char b) {
                      return std::tolower(static_cast<unsigned char>(a)) ==
                             std::tolower(static_cast<unsigned char>(b));
                    });
}

// --- text fields -----------------------------------------------------------------------------

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool next_line(std::string_view text, size_t& pos, std::string_view& line) {
  if (pos >= text.size()) return false;
  size_t end = text.find('\n', pos);
  if (end == std::string_view::npos) end = text.size();
  line = trim(text.substr(pos, end - pos));
  pos = end + 1;
  return true;
}

bool parse_double(std::string_view s, double& out) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

void split_commas(std::string_view line, std::vector<std::string_view>& fields) {
  fields.clear();
  for (size_t start = 0;;) {
    const size_t comma = line.find(',', start);
    fields.push_back(
        trim(line.substr(start, comma == std::string_view::npos ? comma : comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
}

}  // namespace basin::data::detail
