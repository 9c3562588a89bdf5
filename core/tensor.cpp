// Tensor handle: accessors, layout queries, leaf flags and the node's teardown.
#include "core/tensor.h"

#include "core/op.h"

namespace basin {
namespace {
const Shape kEmpty;
const Tensors kNoInputs;
const std::shared_ptr<Op> kNoOp;
const std::shared_ptr<Storage> kNoStorage;

TensorImpl& node(const std::shared_ptr<TensorImpl>& impl, const char* what) {
  if (!impl) fail("[{}] called on an undefined tensor", what);
  return *impl;
}
}  // namespace

TensorImpl::~TensorImpl() {
  // Tear long graphs down with an explicit stack: a chain of thousands of recorded ops would
  // otherwise destroy itself recursively and overflow the call stack.
  if (inputs.empty()) return;
  std::vector<std::shared_ptr<TensorImpl>> stack;
  for (Tensor& t : inputs) {
    if (t.impl_) stack.push_back(std::move(t.impl_));
  }
  inputs.clear();
  while (!stack.empty()) {
    std::shared_ptr<TensorImpl> p = std::move(stack.back());
    stack.pop_back();
    if (p.use_count() == 1) {
      for (Tensor& t : p->inputs) {
        if (t.impl_) stack.push_back(std::move(t.impl_));
      }
      p->inputs.clear();
    }
  }
}

const Shape& Tensor::shape() const { return impl_ ? impl_->shape : kEmpty; }

int64_t Tensor::shape(int axis) const { return shape()[normalize_axis(axis, ndim(), "shape")]; }

int64_t Tensor::numel() const { return basin::numel(shape()); }
const Shape& Tensor::strides() const { return impl_ ? impl_->strides : kEmpty; }
int64_t Tensor::offset() const { return impl_ ? impl_->offset : 0; }
Dtype Tensor::dtype() const { return node(impl_, "dtype").dtype; }
Device Tensor::device() const { return node(impl_, "device").device; }

bool Tensor::is_contiguous() const {
  const TensorImpl& n = node(impl_, "is_contiguous");
  int64_t expected = 1;
  for (size_t i = n.shape.size(); i-- > 0;) {
    if (n.shape[i] == 1) continue;
    if (n.strides[i] != expected) return false;
    expected *= n.shape[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  const TensorImpl& n = node(impl_, "data");
  if (!n.storage) return nullptr;
  return static_cast<char*>(n.storage->data) + n.offset * static_cast<int64_t>(itemsize(n.dtype));
}

const std::shared_ptr<Storage>& Tensor::storage() const {
  return impl_ ? impl_->storage : kNoStorage;
}

void Tensor::check_access(Dtype want, const char* what) const {
  const TensorImpl& n = node(impl_, what);
  if (n.dtype != want) {
    fail("[{}] tensor has dtype {}, accessed as {}", what, dtype_name(n.dtype), dtype_name(want));
  }
  if (!n.device.is_cpu())
    fail("[{}] tensor is on {}; move it to the cpu first", what, n.device.str());
}

Tensor Tensor::detach() const {
  const TensorImpl& n = node(impl_, "detach");
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = n.shape;
  impl->strides = n.strides;
  impl->offset = n.offset;
  impl->dtype = n.dtype;
  impl->device = n.device;
  impl->storage = n.storage;
  return Tensor(impl);
}

bool Tensor::requires_grad() const { return impl_ && (impl_->requires_grad || impl_->op); }

Tensor& Tensor::set_requires_grad(bool enabled) {
  TensorImpl& n = node(impl_, "set_requires_grad");
  if (n.op)
    fail("[set_requires_grad] only leaves can be marked; this tensor is the result of {}", "an op");
  if (enabled && !is_floating(n.dtype)) {
    fail("[set_requires_grad] only floating tensors can require a gradient, got {}",
         dtype_name(n.dtype));
  }
  n.requires_grad = enabled;
  return *this;
}

bool Tensor::is_leaf() const { return node(impl_, "is_leaf").op == nullptr; }

Tensor Tensor::grad() const {
  const TensorImpl& n = node(impl_, "grad");
  return n.grad ? Tensor(n.grad) : Tensor();
}

void Tensor::set_grad(const Tensor& grad) const {
  TensorImpl& n = node(impl_, "set_grad");
  if (grad.defined() && grad.shape() != n.shape) {
    fail("[set_grad] gradient of shape {} for a tensor of shape {}", shape_str(grad.shape()),
         shape_str(n.shape));
  }
  n.grad = grad.defined() ? std::shared_ptr<TensorImpl>(grad.impl_) : nullptr;
}

void Tensor::zero_grad() const { node(impl_, "zero_grad").grad = nullptr; }

const std::shared_ptr<Op>& Tensor::op() const { return impl_ ? impl_->op : kNoOp; }
const Tensors& Tensor::inputs() const { return impl_ ? impl_->inputs : kNoInputs; }

void Tensor::allocate() const {
  TensorImpl& n = node(impl_, "allocate");
  n.strides = contiguous_strides(n.shape);
  n.offset = 0;
  n.storage =
      basin::allocate(static_cast<size_t>(basin::numel(n.shape)) * itemsize(n.dtype), n.device);
}

void Tensor::share_storage(const Tensor& base, const Shape& strides, int64_t offset) const {
  TensorImpl& n = node(impl_, "share_storage");
  n.storage = base.storage();
  n.strides = strides;
  n.offset = offset;
}

}  // namespace basin
