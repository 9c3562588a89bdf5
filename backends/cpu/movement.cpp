// CPU forward of Concat, Pad and Flip: one strided-copy driver with memcpy for contiguous runs.
#include <algorithm>
#include <cstring>

#include "backends/cpu/strided.h"
#include "core/prims/movement.h"

namespace basin::prims {
namespace {
using cpu::for_each_run;
using cpu::parallel_for;

/// True when `strides` lay `shape` out row-major without gaps (size-1 dimensions ignored).
bool dense(const Shape& shape, const Shape& strides) {
  int64_t expected = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] == 1) continue;
    if (strides[d] != expected) return false;
    expected *= shape[d];
  }
  return true;
}

/// Copies a `shape`-shaped region from src (element strides src_strides) to dst (dst_strides).
template <class T>
void copy_region(const T* src, const Shape& src_strides, T* dst, const Shape& dst_strides,
                 const Shape& shape) {
  const int64_t n = numel(shape);
  if (n == 0) return;
  if (dense(shape, src_strides) && dense(shape, dst_strides)) {
    parallel_for(n, 1, [&](int64_t b, int64_t e) {
      std::memcpy(dst + b, src + b, static_cast<size_t>(e - b) * sizeof(T));
    });
    return;
  }
  for_each_run<2>(
      shape, {dst_strides, src_strides},
      [&](const std::array<int64_t, 2>& o, int64_t len, const std::array<int64_t, 2>& s) {
        T* y = dst + o[0];
        const T* x = src + o[1];
        if (s[0] == 1 && s[1] == 1) {
          std::memcpy(y, x, static_cast<size_t>(len) * sizeof(T));
        } else {
          for (int64_t j = 0; j < len; ++j) y[j * s[0]] = x[j * s[1]];
        }
      });
}

/// Runs body(TypeTag<T>) for out's dtype after giving out a fresh buffer; skipped when empty.
template <class F>
void with_output(Tensor& out, const char* who, F&& body) {
  out.allocate();
  if (out.numel() == 0) return;
  dispatch_all(out.dtype(), who, body);
}

}  // namespace

void Concat::eval_cpu(const Tensors& in, Tensor& out) {
  with_output(out, "Concat", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* y = static_cast<T*>(out.raw_data());
    int64_t start = 0;
    for (const Tensor& x : in) {
      if (x.numel() > 0) {
        copy_region(static_cast<const T*>(x.raw_data()), x.strides(),
                    y + start * out.strides()[axis_], out.strides(), x.shape());
      }
      start += x.shape()[axis_];
    }
  });
}

void Pad::eval_cpu(const Tensors& in, Tensor& out) {
  with_output(out, "Pad", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* y = static_cast<T*>(out.raw_data());
    const T fill = static_cast<T>(value_);
    parallel_for(out.numel(), 1, [&](int64_t b, int64_t e) { std::fill(y + b, y + e, fill); });
    const Tensor& x = in[0];
    if (x.numel() == 0) return;
    // The input lands at low[d] along each dimension, every interior[d] + 1 elements.
    int64_t start = 0;
    Shape strides(out.ndim());
    for (int d = 0; d < out.ndim(); ++d) {
      start += low_[d] * out.strides()[d];
      strides[d] = out.strides()[d] * (interior_[d] + 1);
    }
    copy_region(static_cast<const T*>(x.raw_data()), x.strides(), y + start, strides, x.shape());
  });
}

void Flip::eval_cpu(const Tensors& in, Tensor& out) {
  with_output(out, "Flip", [&](auto tag) {
    using T = typename decltype(tag)::type;
    // Read the input from its last element backwards along the flipped axes: negative strides.
    const Tensor& x = in[0];
    Shape strides = x.strides();
    int64_t start = 0;
    for (int a : axes_) {
      start += (x.shape()[a] - 1) * strides[a];
      strides[a] = -strides[a];
    }
    copy_region(static_cast<const T*>(x.raw_data()) + start, strides,
                static_cast<T*>(out.raw_data()), out.strides(), x.shape());
  });
}

}  // namespace basin::prims
