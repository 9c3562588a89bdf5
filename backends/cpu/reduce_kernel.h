// The CPU reduction driver shared by the reduction family: each output element folds the
// elements of its reduced sub-space with an accumulator.
#pragma once

#include <vector>

#include "backends/cpu/strided.h"
#include "core/tensor.h"

namespace basin::cpu {

/// Splits x's dimensions into kept and reduced ones (axes sorted, normalised).
struct ReduceSplit {
  Shape kept_shape, kept_strides, red_shape, red_strides;
  ReduceSplit(const Tensor& x, const std::vector<int>& axes) {
    size_t k = 0;
    for (int d = 0; d < x.ndim(); ++d) {
      if (k < axes.size() && axes[k] == d) {
        red_shape.push_back(x.shape()[d]);
        red_strides.push_back(x.strides()[d]);
        ++k;
      } else {
        kept_shape.push_back(x.shape()[d]);
        kept_strides.push_back(x.strides()[d]);
      }
    }
  }
};

/// For every output element o (row-major over the kept dimensions), calls
/// fn(o, ptr, n_runs_visitor) where `visit(f)` calls f(const T* run, int64_t len, int64_t stride)
/// for each innermost run of the reduced sub-space.
template <class T, class F>
void reduce_rows(const Tensor& x, const std::vector<int>& axes, F&& fn) {
  const ReduceSplit split(x, axes);
  const T* base = static_cast<const T*>(x.raw_data());
  const int64_t n_out = numel(split.kept_shape);
  const int64_t n_red = numel(split.red_shape);
  const StridedLayout<1> red(split.red_shape, {split.red_strides});
  const int nd = static_cast<int>(red.shape.size());
  const int64_t inner = red.shape[nd - 1];
  const int64_t inner_stride = red.strides[0][nd - 1];
  const int64_t outer = n_red == 0 ? 0 : n_red / inner;
  parallel_for(n_out, n_red, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> idx(nd, 0);
    for (int64_t o = begin; o < end; ++o) {
      int64_t off = 0;
      int64_t r = o;
      for (size_t d = split.kept_shape.size(); d-- > 0;) {
        off += (r % split.kept_shape[d]) * split.kept_strides[d];
        r /= split.kept_shape[d];
      }
      const T* p = base + off;
      auto visit = [&](auto&& f) {
        std::fill(idx.begin(), idx.end(), 0);
        int64_t roff = 0;
        for (int64_t row = 0; row < outer; ++row) {
          f(p + roff, inner, inner_stride);
          for (int d = nd - 2; d >= 0; --d) {
            ++idx[d];
            roff += red.strides[0][d];
            if (idx[d] < red.shape[d]) break;
            roff -= idx[d] * red.strides[0][d];
            idx[d] = 0;
          }
        }
      };
      fn(o, visit);
    }
  });
}

}  // namespace basin::cpu
