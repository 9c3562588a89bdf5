// Reading and writing the safetensors format (Hugging Face), byte-compatible with its reference.
#pragma once

#include <initializer_list>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace basin::io {

/// Named tensors as an ordered list; the order does not matter, the file's layout is canonical.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

/// The contents of a safetensors file.
struct SafetensorsFile {
  /// Every tensor by name, on the CPU, contiguous, each with its own buffer.
  std::map<std::string, Tensor> tensors;
  /// The "__metadata__" string map (empty when the file has none).
  std::map<std::string, std::string> metadata;
  /// The tensor names in the order their data lies in the file (by data offset).
  std::vector<std::string> order;
};

/// Writes `tensors` to `path` in the safetensors format exactly as the reference writer does:
/// tensors sorted by dtype (64-bit types first, BOOL last) then name, header padded with spaces
/// to a multiple of 8 bytes, data little-endian and row-major. Tensors on other devices are copied
/// to the CPU and strided ones written contiguously. `metadata` (when not empty) becomes
/// "__metadata__". The write is atomic: a temporary file `path + ".tmp-<pid>"` is written, synced
/// and renamed over `path`; on failure it is removed, `path` is left as it was, and a basin::Error
/// naming the path is thrown. Names must be unique, valid UTF-8 and not "__metadata__".
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});
/// As above, for tensors held in a map.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
/// As above, for a braced list: save_safetensors(path, {{"w", w}, {"b", b}}).
void save_safetensors(const std::string& path,
                      std::initializer_list<std::pair<std::string, Tensor>> tensors,
                      const std::map<std::string, std::string>& metadata = {});

/// Reads a safetensors file with every check of the reference reader (header size and syntax,
/// duplicate keys, dtypes, shapes, data offsets tiling the buffer exactly). Any problem is a
/// basin::Error naming the file and the problem. The dtypes basin has (BOOL, U8, I32, I64, F32,
/// F64) are read; other valid safetensors dtypes (F16, BF16, ...) are rejected as unsupported.
SafetensorsFile load_safetensors(const std::string& path);

/// Reads the one tensor `name` from a safetensors file (the header is checked in full, only that
/// tensor's data is read). A missing name is an error naming the file and the tensor.
Tensor load_tensor(const std::string& path, const std::string& name);

}  // namespace basin::io
