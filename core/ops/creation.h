// Making tensors: constants, ranges, identity, and tensors from host values.
#pragma once

#include <initializer_list>
#include <vector>

#include "core/tensor.h"

namespace basin {

Tensor zeros(const Shape& shape, Dtype dtype = Dtype::f32, Device device = Device::cpu());
Tensor ones(const Shape& shape, Dtype dtype = Dtype::f32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, Dtype dtype = Dtype::f32,
            Device device = Device::cpu());
/// Like `like`'s shape, dtype and device.
Tensor zeros_like(const Tensor& like);
Tensor ones_like(const Tensor& like);
Tensor full_like(const Tensor& like, double value);
/// A 0-d tensor.
Tensor scalar(double value, Dtype dtype = Dtype::f32, Device device = Device::cpu());

/// start, start + step, ... below stop (above it for a negative step).
Tensor arange(double start, double stop, double step = 1.0, Dtype dtype = Dtype::f32,
              Device device = Device::cpu());
Tensor arange(int64_t stop, Dtype dtype = Dtype::i64, Device device = Device::cpu());
/// `num` evenly spaced values from start to stop, both included.
Tensor linspace(double start, double stop, int64_t num, Dtype dtype = Dtype::f32,
                Device device = Device::cpu());
/// The n × m identity (m = n when omitted).
Tensor eye(int64_t n, int64_t m = -1, Dtype dtype = Dtype::f32, Device device = Device::cpu());

/// A tensor of the given shape holding `values` (row-major); the dtype is T's.
template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device = Device::cpu());
/// 1-D and 2-D literals: tensor({1.f, 2.f}), tensor({{1., 2.}, {3., 4.}}).
template <class T>
Tensor tensor(std::initializer_list<T> values, Device device = Device::cpu()) {
  return from_vector(std::vector<T>(values), Shape{static_cast<int64_t>(values.size())}, device);
}
template <class T>
Tensor tensor(std::initializer_list<std::initializer_list<T>> rows, Device device = Device::cpu()) {
  std::vector<T> values;
  const int64_t cols = rows.size() == 0 ? 0 : static_cast<int64_t>(rows.begin()->size());
  for (const auto& row : rows) {
    if (static_cast<int64_t>(row.size()) != cols) fail("[tensor] rows have different lengths");
    values.insert(values.end(), row.begin(), row.end());
  }
  return from_vector(values, Shape{static_cast<int64_t>(rows.size()), cols}, device);
}

}  // namespace basin
