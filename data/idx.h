// The IDX format of MNIST and Fashion-MNIST (plain or gzip-compressed), and the MNIST dataset.
#pragma once

#include <string>

#include "core/tensor.h"
#include "data/dataset.h"

namespace basin::data {

/// Reads an IDX file, plain or gzip-compressed (detected from the content, not the name).
/// The format: two zero bytes, a type code, the number of dimensions, each dimension as a
/// big-endian uint32, then the elements big-endian in row-major order. Type codes and the dtype
/// they give: 0x08 unsigned byte → u8; 0x09 signed byte, 0x0B int16, 0x0C int32 → i32;
/// 0x0D float32 → f32; 0x0E float64 → f64. Any problem — missing file, bad magic number,
/// unsupported type code, truncated header or data, trailing bytes after the data, corrupt or
/// truncated gzip — is a basin::Error naming the file.
Tensor read_idx(const std::string& path);

/// Writes `t` (on any device, any layout) as an IDX file: u8 → 0x08, i32 → 0x0C, f32 → 0x0D,
/// f64 → 0x0E; other dtypes are an error (IDX has no 64-bit integers: convert int64 to int32).
/// A path ending in ".gz" (any case) is gzip-compressed. The write is atomic (temporary file and
/// rename), as for safetensors.
void write_idx(const std::string& path, const Tensor& t);

/// MNIST-style images and labels (MNIST, Fashion-MNIST, KMNIST, ...) from two IDX files, plain or
/// gzipped: images u8 of shape (N, H, W), labels u8 or i32 of shape (N,). Item i is
/// {"image": f32 (H, W) scaled to [0, 1], "label": i64 ()}. The images stay in memory as one u8
/// tensor; get() converts one slice. Counts that differ are an error naming both files.
DatasetPtr<Example> mnist(const std::string& images_path, const std::string& labels_path);

}  // namespace basin::data
