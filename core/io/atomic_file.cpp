// Atomic whole-file writes: a synced temporary file renamed over the target.
#include "core/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "core/error.h"

namespace basin::io::detail {

void write_file_atomic(const std::string& path, const std::string& bytes, const char* who) {
  // One write call stays well below the limits of a ssize_t and of the file systems.
  constexpr size_t kChunk = size_t{1} << 30;
  const std::string tmp = fmt::format("{}.tmp-{}", path, static_cast<long>(::getpid()));
  const auto fail_errno = [&](const char* what) {
    const int err = errno;
    fail("[{}] cannot write '{}': {}: {}", who, path, what, std::generic_category().message(err));
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

}  // namespace basin::io::detail
