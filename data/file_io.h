// File helpers shared by the readers: whole-file and gzip-transparent reads, gzip compression,
// atomic writes, and the fields of text tables. Every error names the calling function and the
// file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/io/atomic_file.h"

namespace basin::data::detail {

/// Reads a file that may be gzip-compressed (zlib reads plain files as they are). Errors name
/// `who` and the path: missing or unreadable file, not a regular file, corrupt or truncated gzip.
class GzReader {
 public:
  GzReader(const std::string& path, const char* who);
  ~GzReader();
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  /// Reads up to `size` bytes and returns how many were read (fewer only at the end of the data).
  /// A corrupt or truncated gzip stream is an error.
  size_t read(void* data, size_t size);
  /// Reads to the end of the data and returns how many bytes were left.
  uint64_t skip_rest();
  /// True for a plain file, false for gzip; meaningful after the first read.
  bool plain() const;
  /// The size of the file on disk (compressed size for gzip).
  uint64_t file_size() const { return file_size_; }

 private:
  [[noreturn]] void stream_error() const;

  std::string path_;
  const char* who_;
  void* file_ = nullptr;  // gzFile
  uint64_t file_size_ = 0;
};

/// The whole content of a file, gunzipped when it is gzip-compressed.
std::string read_file(const std::string& path, const char* who);

/// `bytes` compressed in the gzip format (RFC 1952).
std::string gzip(const std::string& bytes, const char* who, const std::string& path);

/// Writes `bytes` to `path` atomically: a temporary file `path + ".tmp-<pid>"` is written, synced
/// and renamed over `path`; on failure it is removed and `path` is left as it was. (Shared with
/// core/io, where it lives.)
using io::detail::write_file_atomic;

/// Whether `path` ends with `suffix`, ignoring ASCII case.
bool ends_with_nocase(const std::string& path, const std::string& suffix);

// --- text fields -----------------------------------------------------------------------------

/// `s` without its leading spaces and tabs and its trailing spaces, tabs and carriage returns.
std::string_view trim(std::string_view s);

/// Reads the line of `text` that starts at `pos`, trimmed, into `line` and moves `pos` past its
/// newline; false, with nothing changed, when `pos` is at or past the end of `text`.
bool next_line(std::string_view text, size_t& pos, std::string_view& line);

/// Parses the whole of `s` (a leading '+' allowed) as a number into `out`; false when `s` is
/// empty or not a number in full.
bool parse_double(std::string_view s, double& out);

/// Splits `line` at every comma into `fields` (cleared first), each field trimmed.
void split_commas(std::string_view line, std::vector<std::string_view>& fields);

}  // namespace basin::data::detail
