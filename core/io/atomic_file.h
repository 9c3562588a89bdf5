// Atomic whole-file writes shared by the writers in core/io and data/: a synced temporary file
// renamed over the target.
#pragma once

#include <string>

namespace basin::io::detail {

/// Writes `bytes` to `path` atomically: a temporary file `path + ".tmp-<pid>"` is written, synced
/// and renamed over `path`; on failure it is removed and `path` is left as it was. Errors are
/// basin::Error "[who] cannot write 'path': what: reason".
void write_file_atomic(const std::string& path, const std::string& bytes, const char* who);

}  // namespace basin::io::detail
