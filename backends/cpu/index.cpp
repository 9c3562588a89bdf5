// CPU forward of the indexing family: one strided driver for gather and one for scatter-add.
#include <algorithm>
#include <atomic>
#include <vector>

#include "backends/cpu/parallel.h"
#include "core/prims/index.h"

namespace basin::prims {
namespace {
using cpu::parallel_for;

/// Element offsets, for an operand with `strides`, of every position of shape[begin:end] in
/// row-major order.
std::vector<int64_t> offset_table(const Shape& shape, const Shape& strides, int begin, int end) {
  std::vector<int64_t> table{0};
  for (int d = begin; d < end; ++d) {
    std::vector<int64_t> next;
    next.reserve(table.size() * static_cast<size_t>(shape[d]));
    for (int64_t base : table) {
      for (int64_t k = 0; k < shape[d]; ++k) next.push_back(base + k * strides[d]);
    }
    table.swap(next);
  }
  return table;
}

/// An operand walked over the index's positions: offsets of the outer and inner positions and
/// the stride along the axis.
struct Walk {
  std::vector<int64_t> outer, inner;
  int64_t axis_stride;
  Walk(const Shape& index_shape, const Tensor& t, int axis)
      : outer(offset_table(index_shape, t.strides(), 0, axis)),
        inner(
            offset_table(index_shape, t.strides(), axis + 1, static_cast<int>(index_shape.size()))),
        axis_stride(t.strides()[axis]) {}
  bool inner_is(int64_t step) const {
    for (size_t i = 0; i < inner.size(); ++i) {
      if (inner[i] != static_cast<int64_t>(i) * step) return false;
    }
    return true;
  }
};

/// The smallest flat index position at which an out-of-range index was seen. Threads skip bad
/// entries and report here, so the error is raised outside the parallel region and always names
/// the first bad entry.
class FirstBad {
 public:
  explicit FirstBad(int64_t none) : none_(none), pos_(none) {}
  void note(int64_t p) {
    int64_t cur = pos_.load();
    while (p < cur && !pos_.compare_exchange_weak(cur, p)) {
    }
  }
  bool any() const { return pos_.load() < none_; }
  int64_t get() const { return pos_.load(); }

 private:
  int64_t none_;
  std::atomic<int64_t> pos_;
};

template <class I>
[[noreturn]] void fail_out_of_range(const char* api, const FirstBad& bad, const I* ip,
                                    const Walk& iw, int64_t len, int64_t size, int axis,
                                    const Shape& shape) {
  const int64_t p = bad.get();
  const int64_t n_inner = static_cast<int64_t>(iw.inner.size());
  const int64_t row = p / n_inner;
  const int64_t value =
      ip[iw.outer[row / len] + (row % len) * iw.axis_stride + iw.inner[p % n_inner]];
  fail("[{}] index {} is out of range [0, {}) along axis {} of shape {}", api, value, size, axis,
       shape_str(shape));
}

template <class T, class I>
void gather_kernel(const Tensor& x, const Tensor& index, int axis, Tensor& out, const char* api) {
  out.allocate();
  if (out.numel() == 0) return;
  const Shape& shape = index.shape();
  const Walk xw(shape, x, axis), iw(shape, index, axis);
  const int64_t len = shape[axis];
  const int64_t n_inner = static_cast<int64_t>(iw.inner.size());
  const int64_t rows = static_cast<int64_t>(iw.outer.size()) * len;
  const int64_t size = x.shape()[axis];
  const T* xp = static_cast<const T*>(x.raw_data());
  const I* ip = static_cast<const I*>(index.raw_data());
  T* yp = static_cast<T*>(out.raw_data());
  // index_select and embedding: one index per row, and often contiguous rows to copy.
  const bool one_per_row = iw.inner_is(0);
  const bool x_unit = xw.inner_is(1);
  FirstBad bad(out.numel());
  parallel_for(rows, n_inner, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t o = r / len;
      const I* irow = ip + iw.outer[o] + (r % len) * iw.axis_stride;
      const T* xrow = xp + xw.outer[o];
      T* y = yp + r * n_inner;
      if (one_per_row) {
        const int64_t k = irow[0];
        if (k < 0 || k >= size) {
          bad.note(r * n_inner);
          return;
        }
        const T* src = xrow + k * xw.axis_stride;
        if (x_unit) {
          std::copy(src, src + n_inner, y);
        } else {
          for (int64_t i = 0; i < n_inner; ++i) y[i] = src[xw.inner[i]];
        }
        continue;
      }
      for (int64_t i = 0; i < n_inner; ++i) {
        const int64_t k = irow[iw.inner[i]];
        if (k < 0 || k >= size) {
          bad.note(r * n_inner + i);
          return;
        }
        y[i] = xrow[k * xw.axis_stride + xw.inner[i]];
      }
    }
  });
  if (bad.any()) fail_out_of_range(api, bad, ip, iw, len, size, axis, x.shape());
}

template <class T, class I>
void scatter_add_kernel(const Tensor& base, const Tensor& index, const Tensor& src, int axis,
                        Tensor& out, const char* api) {
  out.allocate();
  out.assign(base);
  if (index.numel() == 0) return;
  const Shape& shape = index.shape();
  const Walk ow(shape, out, axis), iw(shape, index, axis), sw(shape, src, axis);
  const int64_t len = shape[axis];
  const int64_t n_inner = static_cast<int64_t>(iw.inner.size());
  const int64_t columns = static_cast<int64_t>(iw.outer.size()) * n_inner;
  const int64_t size = out.shape()[axis];
  const I* ip = static_cast<const I*>(index.raw_data());
  const T* sp = static_cast<const T*>(src.raw_data());
  T* yp = static_cast<T*>(out.raw_data());
  // The backward of index_select and embedding: one index per row, often contiguous rows.
  const bool one_per_row = iw.inner_is(0);
  const bool unit = ow.inner_is(1) && sw.inner_is(1);
  FirstBad bad(index.numel());
  // Threads own disjoint (outer, inner) columns of the output, and each walks its columns along
  // the axis in index order: no atomics, and the sums are the same on any number of threads.
  parallel_for(columns, len, [&](int64_t begin, int64_t end) {
    for (int64_t o = begin / n_inner; o * n_inner < end; ++o) {
      const int64_t lo = std::max<int64_t>(begin - o * n_inner, 0);
      const int64_t hi = std::min<int64_t>(end - o * n_inner, n_inner);
      T* orow = yp + ow.outer[o];
      for (int64_t a = 0; a < len; ++a) {
        const I* irow = ip + iw.outer[o] + a * iw.axis_stride;
        const T* srow = sp + sw.outer[o] + a * sw.axis_stride;
        if (one_per_row) {
          const int64_t k = irow[0];
          if (k < 0 || k >= size) {
            bad.note((o * len + a) * n_inner + lo);
            return;
          }
          T* dst = orow + k * ow.axis_stride;
          if (unit) {
            for (int64_t i = lo; i < hi; ++i) dst[i] += srow[i];
          } else {
            for (int64_t i = lo; i < hi; ++i) dst[ow.inner[i]] += srow[sw.inner[i]];
          }
          continue;
        }
        for (int64_t i = lo; i < hi; ++i) {
          const int64_t k = irow[iw.inner[i]];
          if (k < 0 || k >= size) {
            bad.note((o * len + a) * n_inner + i);
            return;
          }
          orow[k * ow.axis_stride + ow.inner[i]] += srow[sw.inner[i]];
        }
      }
    }
  });
  if (bad.any()) fail_out_of_range(api, bad, ip, iw, len, size, axis, base.shape());
}

}  // namespace

void Gather::eval_cpu(const Tensors& in, Tensor& out) {
  dispatch_all(in[0].dtype(), "Gather", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_index(in[1].dtype(), "Gather", [&](auto itag) {
      using I = typename decltype(itag)::type;
      gather_kernel<T, I>(in[0], in[1], axis_, out, api_);
    });
  });
}

void ScatterAdd::eval_cpu(const Tensors& in, Tensor& out) {
  dispatch_numeric(in[0].dtype(), "ScatterAdd", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_index(in[1].dtype(), "ScatterAdd", [&](auto itag) {
      using I = typename decltype(itag)::type;
      scatter_add_kernel<T, I>(in[0], in[1], in[2], axis_, out, api_);
    });
  });
}

}  // namespace basin::prims
