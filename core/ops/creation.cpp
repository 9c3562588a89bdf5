// Making tensors: constants, ranges, identity, and tensors from host values. Constants are filled
// on their device (on a GPU without a copy, which would wait for the queued work); other values
// are written on the host and moved to the target device.
#include "core/ops/creation.h"

#include <cmath>
#include <cstring>

#include "core/allocator.h"

namespace basin {
namespace {

Tensor empty_on(const Shape& shape, Dtype dtype, Device device = Device::cpu()) {
  for (int64_t s : shape) {
    if (s < 0) fail("[zeros] negative dimension in shape {}", shape_str(shape));
  }
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->device = device;
  Tensor t(impl);
  t.allocate();
  return t;
}

template <class F>
Tensor generate(const Shape& shape, Dtype dtype, Device device, F&& value_at) {
  Tensor t = empty_on(shape, dtype);
  dispatch_all(dtype, "zeros", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = t.data<T>();
    const int64_t n = t.numel();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(value_at(i));
  });
  return device.is_cpu() ? t : t.to(device);
}

}  // namespace

Tensor full(const Shape& shape, double value, Dtype dtype, Device device) {
  if (device.is_cuda()) {
    Tensor t = empty_on(shape, dtype, device);
    cuda_backend::fill(t.raw_data(), dtype, value, t.numel(), device.index);
    return t;
  }
  return generate(shape, dtype, device, [value](int64_t) { return value; });
}
Tensor zeros(const Shape& shape, Dtype dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}
Tensor ones(const Shape& shape, Dtype dtype, Device device) {
  return full(shape, 1.0, dtype, device);
}
Tensor zeros_like(const Tensor& like) { return zeros(like.shape(), like.dtype(), like.device()); }
Tensor ones_like(const Tensor& like) { return ones(like.shape(), like.dtype(), like.device()); }
Tensor full_like(const Tensor& like, double value) {
  return full(like.shape(), value, like.dtype(), like.device());
}
Tensor scalar(double value, Dtype dtype, Device device) { return full({}, value, dtype, device); }

Tensor arange(double start, double stop, double step, Dtype dtype, Device device) {
  if (step == 0 || !std::isfinite(start) || !std::isfinite(stop) || !std::isfinite(step)) {
    fail("[arange] needs finite bounds and a non-zero step, got ({}, {}, {})", start, stop, step);
  }
  const int64_t n = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((stop - start) / step)));
  return generate({n}, dtype, device,
                  [=](int64_t i) { return start + step * static_cast<double>(i); });
}

Tensor arange(int64_t stop, Dtype dtype, Device device) {
  return arange(0.0, static_cast<double>(stop), 1.0, dtype, device);
}

Tensor linspace(double start, double stop, int64_t num, Dtype dtype, Device device) {
  if (num < 0) fail("[linspace] number of values must be non-negative, got {}", num);
  const double step = num > 1 ? (stop - start) / static_cast<double>(num - 1) : 0.0;
  return generate({num}, dtype, device, [=](int64_t i) {
    return i == num - 1 ? stop : start + step * static_cast<double>(i);
  });
}

Tensor eye(int64_t n, int64_t m, Dtype dtype, Device device) {
  if (m < 0) m = n;
  if (n < 0) fail("[eye] size must be non-negative, got {}", n);
  return generate({n, m}, dtype, device, [m](int64_t i) { return i / m == i % m ? 1.0 : 0.0; });
}

template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device) {
  if (basin::numel(shape) != static_cast<int64_t>(values.size())) {
    fail("[from_vector] {} values do not fill shape {}", values.size(), shape_str(shape));
  }
  Tensor t = empty_on(shape, dtype_of<T>);
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
  return device.is_cpu() ? t : t.to(device);
}

template Tensor from_vector(const std::vector<float>&, const Shape&, Device);
template Tensor from_vector(const std::vector<double>&, const Shape&, Device);
template Tensor from_vector(const std::vector<int32_t>&, const Shape&, Device);
template Tensor from_vector(const std::vector<int64_t>&, const Shape&, Device);
template Tensor from_vector(const std::vector<uint8_t>&, const Shape&, Device);

template <>
Tensor from_vector(const std::vector<bool>& values, const Shape& shape, Device device) {
  if (basin::numel(shape) != static_cast<int64_t>(values.size())) {
    fail("[from_vector] {} values do not fill shape {}", values.size(), shape_str(shape));
  }
  Tensor t = empty_on(shape, Dtype::boolean);
  bool* p = t.data<bool>();
  for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  return device.is_cpu() ? t : t.to(device);
}

}  // namespace basin
