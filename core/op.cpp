// Applying ops: device checks, evaluation, and recording the graph when a gradient may be needed.
#include "core/op.h"

#include "core/grad_mode.h"

namespace basin {

void Op::eval_cuda(const Tensors&, Tensor&) {
#ifdef BASIN_HAS_CUDA
  fail("[{}] has no CUDA kernel", name());
#else
  fail("[{}] cannot run on a CUDA device: basin was built without CUDA", name());
#endif
}

Tensor apply(std::shared_ptr<Op> op, const Tensors& inputs, const Shape& shape, Dtype dtype) {
  const Device device = inputs.empty() ? Device::cpu() : inputs[0].device();
  return apply(std::move(op), inputs, shape, dtype, device);
}

Tensor apply(std::shared_ptr<Op> op, const Tensors& inputs, const Shape& shape, Dtype dtype,
             Device device) {
  bool record = false;
  for (const Tensor& t : inputs) {
    if (!t.defined()) fail("[{}] got an undefined tensor as input", op->name());
    if (t.device() != inputs[0].device()) {
      fail("[{}] inputs are on different devices: {} and {}", op->name(), inputs[0].device().str(),
           t.device().str());
    }
    record = record || t.requires_grad();
  }
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->device = device;
  Tensor out(impl);
  const Device where = inputs.empty() ? device : inputs[0].device();
  if (where.is_cpu()) {
    op->eval_cpu(inputs, out);
  } else {
    op->eval_cuda(inputs, out);
  }
  if (record && is_floating(dtype) && is_grad_enabled()) {
    impl->inputs = inputs;
    impl->op = std::move(op);
  }
  return out;
}

}  // namespace basin
