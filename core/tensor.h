// Tensor: a cheap handle to a node holding shape, strides, dtype, device, a shared buffer and —
// only when a gradient may be needed — the op that made it and its inputs.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <vector>

#include "core/allocator.h"
#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"

namespace basin {

class Op;
class Tensor;
struct TensorImpl;
using Tensors = std::vector<Tensor>;

/// A handle to a tensor. Copies share the node; views share the buffer. Evaluation is eager.
class Tensor {
 public:
  /// An undefined handle (`defined()` is false).
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  /// Size along `axis` (negative counts from the end).
  int64_t shape(int axis) const;
  int ndim() const { return static_cast<int>(shape().size()); }
  int64_t numel() const;
  /// Strides in elements.
  const Shape& strides() const;
  /// Offset of the first element into the buffer, in elements.
  int64_t offset() const;
  Dtype dtype() const;
  Device device() const;
  bool is_contiguous() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * itemsize(dtype()); }

  /// Pointer to the first element on the host; the dtype must be T's and the tensor on the CPU.
  template <class T>
  T* data() const {
    check_access(dtype_of<T>, "data");
    return static_cast<T*>(raw_data());
  }
  /// Untyped pointer to the first element (host or device).
  void* raw_data() const;
  const std::shared_ptr<Storage>& storage() const;

  /// The value of a one-element tensor, converted to T.
  template <class T>
  T item() const;
  /// The elements in row-major order, converted to T.
  template <class T>
  std::vector<T> to_vector() const;

  /// This tensor if its layout is row-major contiguous, otherwise a contiguous copy.
  Tensor contiguous() const;
  /// A copy converted to `dtype` (this tensor when the dtype is already `dtype`).
  Tensor astype(Dtype dtype) const;
  /// This tensor on `device` (a copy when it is elsewhere). Differentiable.
  Tensor to(Device device) const;
  /// A contiguous copy with its own buffer. Differentiable.
  Tensor clone() const;
  /// The same buffer, cut from the graph: no gradient flows through the result.
  Tensor detach() const;

  // --- autograd -------------------------------------------------------------------------------
  /// True for leaves marked with set_requires_grad and for results recorded from them.
  bool requires_grad() const;
  /// Marks a leaf as needing a gradient (parameters); an error on a recorded result.
  Tensor& set_requires_grad(bool enabled = true);
  bool is_leaf() const;
  /// The gradient accumulated by backward(); undefined before the first one.
  Tensor grad() const;
  void set_grad(const Tensor& grad) const;
  void zero_grad() const;
  /// Accumulates d(this)/d(leaf) into every leaf's grad(). A non-scalar needs a cotangent.
  /// With create_graph the accumulated gradients are themselves recorded (gradients of gradients).
  void backward(const Tensor& cotangent = Tensor(), bool create_graph = false) const;

  /// The op that produced this tensor, if it was recorded (null otherwise).
  const std::shared_ptr<Op>& op() const;
  /// The inputs of op(); empty for leaves.
  const Tensors& inputs() const;
  TensorImpl* impl() const { return impl_.get(); }

  // --- for op implementations ------------------------------------------------------------------
  /// Gives this (fresh) tensor a new contiguous buffer for its shape, dtype and device.
  void allocate() const;
  /// Makes this (fresh) tensor a view of `base`'s buffer with the given layout.
  void share_storage(const Tensor& base, const Shape& strides, int64_t offset) const;
  /// Copies the values of `src` (broadcast to this shape, cast to this dtype) into this tensor's
  /// buffer, in place and unrecorded: optimizer updates and buffers. Returns *this.
  const Tensor& assign(const Tensor& src) const;

 private:
  friend struct TensorImpl;
  void check_access(Dtype want, const char* what) const;
  std::shared_ptr<TensorImpl> impl_;
};

/// The node behind a Tensor handle.
struct TensorImpl {
  Shape shape;
  Shape strides;
  int64_t offset = 0;
  Dtype dtype = Dtype::f32;
  Device device;
  std::shared_ptr<Storage> storage;

  // Autograd: set only when the op was recorded (a gradient may be needed).
  std::shared_ptr<Op> op;
  Tensors inputs;
  bool requires_grad = false;  // leaves only
  std::shared_ptr<TensorImpl> grad;

  TensorImpl() = default;
  TensorImpl(const TensorImpl&) = delete;
  TensorImpl& operator=(const TensorImpl&) = delete;
  ~TensorImpl();
};

/// Prints shape, dtype, device and the values (summarised when large).
std::ostream& operator<<(std::ostream& os, const Tensor& t);

template <class T>
T Tensor::item() const {
  if (numel() != 1)
    fail("[item] needs a tensor with one element, got shape {}", shape_str(shape()));
  return to_vector<T>()[0];
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = to(Device::cpu()).contiguous();
  std::vector<T> out(static_cast<size_t>(numel()));
  dispatch_all(dtype(), "to_vector", [&](auto tag) {
    using S = typename decltype(tag)::type;
    const S* p = static_cast<const S*>(c.raw_data());
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<T>(p[i]);
  });
  return out;
}

}  // namespace basin
