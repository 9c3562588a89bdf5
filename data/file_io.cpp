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

void write_file_atomic(const std::string& path, const std::string& bytes, const char* who) {
  const std::string tmp = fmt::format("{}.tmp-{}", path, static_cast<long>(::getpid()));
  const auto fail_errno = [&](const char* what) {
    const int err = errno;
    fail("[{}] cannot write '{}': {}: {}", who, path, what, errno_text(err));
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) fail_errno("cannot create the temporary file");
  bool closed = false;
  try {
    const char* p = bytes.data();
    size_t left = bytes.size();
    while (left > 0) {
      const ssize_t r = ::write(fd, p, std::min(left, kChunk));
      if (r < 0) {
        if (errno == EINTR) continue;
        fail_errno("write failed");
      }
      p += r;
      left -= static_cast<size_t>(r);
    }
    // Sync before the rename so that after a crash `path` holds either the old or the new file.
    if (::fsync(fd) != 0) fail_errno("fsync failed");
    closed = true;
    if (::close(fd) != 0) fail_errno("close failed");
    if (::rename(tmp.c_str(), path.c_str()) != 0) fail_errno("cannot rename the temporary file");
  } catch (...) {
    if (!closed) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
}

bool ends_with_nocase(const std::string& path, const std::string& suffix) {
  if (path.size() < suffix.size()) return false;
  return std::equal(suffix.begin(), suffix.end(),
                    path.end() - static_cast<ptrdiff_t>(suffix.size()), [](char a, char b) {
                      return std::tolower(static_cast<unsigned char>(a)) ==
                             std::tolower(static_cast<unsigned char>(b));
                    });
}

}  // namespace basin::data::detail
