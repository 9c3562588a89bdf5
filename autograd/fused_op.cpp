// FusedOp: forward through the fallback unless a kernel overrides it; vjp through the fallback.
#include "autograd/fused_op.h"

#include "autograd/grad.h"
#include "core/grad_mode.h"

namespace basin {

void FusedOp::eval_fallback(const Tensors& inputs, Tensor& out) const {
  Tensors plain;
  for (const Tensor& t : inputs) plain.push_back(t.detach());
  Tensor result;
  {
    NoGradGuard no_grad;
    result = fallback(plain);
  }
  if (result.shape() != out.shape() || result.dtype() != out.dtype()) {
    fail("[{}] fallback returned {} {} where {} {} was declared", name(), shape_str(result.shape()),
         dtype_name(result.dtype()), shape_str(out.shape()), dtype_name(out.dtype()));
  }
  out.share_storage(result, result.strides(), result.offset());
}

void FusedOp::eval_cpu(const Tensors& inputs, Tensor& out) { eval_fallback(inputs, out); }
void FusedOp::eval_cuda(const Tensors& inputs, Tensor& out) { eval_fallback(inputs, out); }

Tensors FusedOp::vjp(const Tensors& inputs, const Tensor&, const Tensor& cotangent,
                     const std::vector<int>& argnums) {
  const Fn f = [this](const Tensors& x) { return Tensors{fallback(x)}; };
  return basin::vjp(f, inputs, {cotangent}, Argnums(argnums.begin(), argnums.end())).second;
}

}  // namespace basin
