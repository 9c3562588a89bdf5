// Applying ops: device checks, evaluation, and recording the graph when a gradient may be needed.
#include "core/op.h"

#include <cstdio>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "core/grad_mode.h"
#include "core/profile.h"

namespace basin {

void Op::eval_cuda(const Tensors& inputs, Tensor& out) {
#ifdef BASIN_HAS_CUDA
  static std::mutex mutex;
  static std::set<std::string> warned;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (warned.insert(name()).second) {
      std::fprintf(stderr, "basin: [%s] has no CUDA kernel yet; running it on the host\n", name());
    }
  }
  // Each input's whole buffer goes to the host and is viewed there with the same layout, so no
  // device op (not even a contiguous copy) is needed on the way.
  Tensors host;
  for (const Tensor& t : inputs) {
    auto view = std::make_shared<TensorImpl>();
    view->shape = t.shape();
    view->strides = t.strides();
    view->offset = t.offset();
    view->dtype = t.dtype();
    if (t.storage()) {
      view->storage = allocate(t.storage()->nbytes, Device::cpu());
      copy_bytes(view->storage->data, Device::cpu(), t.storage()->data, t.device(),
                 t.storage()->nbytes);
    }
    host.push_back(Tensor(view));
  }
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = out.shape();
  impl->dtype = out.dtype();
  Tensor result(impl);
  eval_cpu(host, result);
  const Tensor back = result.contiguous().to(out.device());
  out.share_storage(back, back.strides(), back.offset());
#else
  (void)inputs;
  (void)out;
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
  {
    std::optional<profile::OpScope> scope;
    if (profile::enabled()) scope.emplace(op->name(), where);
    if (where.is_cpu()) {
      op->eval_cpu(inputs, out);
    } else {
      op->eval_cuda(inputs, out);
    }
  }
  if (record && is_floating(dtype) && is_grad_enabled()) {
    impl->inputs = inputs;
    impl->op = std::move(op);
  }
  return out;
}

}  // namespace basin
