// NumPy's .npy (one array) and .npz (a zip archive of .npy members) files: reading and writing.
#pragma once

#include <map>
#include <string>

#include "core/tensor.h"

namespace basin::io {

/// Reads a .npy file (format versions 1.0, 2.0 and 3.0) into a CPU tensor with its own buffer.
/// dtypes: float32 (f4), float64 (f8), int32 (i4), int64 (i8), uint8 (u1) and bool (b1), in
/// little-endian ('<'), native ('='), not-applicable ('|') or big-endian ('>', byte-swapped on
/// reading) order; C and Fortran order (the result is always row-major); any shape, including 0-d
/// and empty ones. Any other dtype, a bad magic string or header, or data that does not match the
/// header's size is a basin::Error naming the file and the problem.
Tensor read_npy(const std::string& path);

/// Writes `t` as a .npy file (format 1.0, or 2.0 when the header needs it), C order, little
/// endian, with NumPy's header layout; strided tensors and tensors on other devices are written
/// as their row-major values. The write is atomic: a temporary file `path + ".tmp-<pid>"` is
/// written, synced and renamed over `path`.
void write_npy(const std::string& path, const Tensor& t);

/// Reads every array of a .npz archive (numpy.savez or savez_compressed: members stored or
/// deflated, zip64 included). Keys are the member names without ".npy"; members whose names do not
/// end in ".npy" are skipped, as are directories. Each member is read as read_npy reads a file; a
/// file that is not a zip archive, a corrupt or truncated archive or member, and a bad member are
/// errors naming the file and the member.
std::map<std::string, Tensor> read_npz(const std::string& path);

/// Writes `tensors` as a .npz archive that numpy.load reads: member "<key>.npy" per key, each as
/// write_npy writes it, stored (no compression) unless `compress` (deflate, as
/// numpy.savez_compressed). Keys must be non-empty. The write is atomic, as in write_npy.
void write_npz(const std::string& path, const std::map<std::string, Tensor>& tensors,
               bool compress = false);

}  // namespace basin::io
