// Walking several strided operands of one shape together: dimensions that are contiguous in every
// operand are merged, and the innermost run is handed to a tight loop.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "backends/cpu/parallel.h"
#include "core/shape.h"

namespace basin::cpu {

/// Shape and per-operand strides (in elements) with mergeable dimensions merged and size-1
/// dimensions dropped.
template <size_t K>
struct StridedLayout {
  Shape shape;
  std::array<Shape, K> strides;

  StridedLayout(const Shape& full_shape, const std::array<Shape, K>& full_strides) {
    for (size_t d = 0; d < full_shape.size(); ++d) {
      if (full_shape[d] == 1) continue;
      bool merge = !shape.empty();
      for (size_t k = 0; k < K && merge; ++k) {
        merge = strides[k].back() == full_strides[k][d] * full_shape[d];
      }
      if (merge) {
        shape.back() *= full_shape[d];
        for (size_t k = 0; k < K; ++k) strides[k].back() = full_strides[k][d];
      } else {
        shape.push_back(full_shape[d]);
        for (size_t k = 0; k < K; ++k) strides[k].push_back(full_strides[k][d]);
      }
    }
    if (shape.empty()) {
      shape.push_back(1);
      for (size_t k = 0; k < K; ++k) strides[k].push_back(0);
    }
  }
};

/// Calls fn(offsets, n, inner_strides) for every innermost run of `full_shape`, where offsets[k]
/// is operand k's element offset of the run's first element. Runs are spread over threads when the
/// shape is large.
template <size_t K, class F>
void for_each_run(const Shape& full_shape, const std::array<Shape, K>& full_strides, F&& fn) {
  if (numel(full_shape) == 0) return;
  const StridedLayout<K> layout(full_shape, full_strides);
  const int nd = static_cast<int>(layout.shape.size());
  const int64_t inner = layout.shape[nd - 1];
  std::array<int64_t, K> inner_strides;
  for (size_t k = 0; k < K; ++k) inner_strides[k] = layout.strides[k][nd - 1];
  const int64_t rows = numel(layout.shape) / inner;
  parallel_for(rows, inner, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> index(nd, 0);
    std::array<int64_t, K> off{};
    int64_t r = begin;
    for (int d = nd - 2; d >= 0; --d) {
      index[d] = r % layout.shape[d];
      r /= layout.shape[d];
      for (size_t k = 0; k < K; ++k) off[k] += index[d] * layout.strides[k][d];
    }
    for (int64_t row = begin; row < end; ++row) {
      fn(off, inner, inner_strides);
      for (int d = nd - 2; d >= 0; --d) {
        ++index[d];
        for (size_t k = 0; k < K; ++k) off[k] += layout.strides[k][d];
        if (index[d] < layout.shape[d]) break;
        for (size_t k = 0; k < K; ++k) off[k] -= index[d] * layout.strides[k][d];
        index[d] = 0;
      }
    }
  });
}

/// Strides of `strides`/`shape` viewed as broadcast to `out_shape` (0 along broadcast dimensions).
inline Shape broadcast_strides(const Shape& shape, const Shape& strides, const Shape& out_shape) {
  Shape out(out_shape.size(), 0);
  const size_t lead = out_shape.size() - shape.size();
  for (size_t i = 0; i < shape.size(); ++i) {
    out[lead + i] = shape[i] == 1 ? 0 : strides[i];
  }
  return out;
}

}  // namespace basin::cpu
