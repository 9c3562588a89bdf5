// Strided copies and fills on a CUDA device (defined in movement.cu), shared by the kernels that
// need to lay data out before their main pass. C++17, host-callable.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"
#include "core/shape.h"

namespace basin::cuda {

/// Copies a `shape`-shaped region of elements of `itemsize` bytes (1, 4 or 8) from `src` (element
/// strides `src_strides`, any sign) to `dst` (`dst_strides`), on basin's stream. Both pointers
/// address the region's first element.
void copy_strided(void* dst, const Shape& dst_strides, const void* src, const Shape& src_strides,
                  const Shape& shape, size_t itemsize);

/// Sets the `n` elements of the contiguous device buffer `dst` of `dtype` to `value` (converted
/// as static_cast would), on basin's stream.
void fill(void* dst, Dtype dtype, int64_t n, double value);

}  // namespace basin::cuda
