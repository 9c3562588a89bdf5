// The optimizers' fused updates on the CPU (core/prims/optim.h), and their dispatch by device.
#include <algorithm>
#include <cmath>
#include <optional>

#include "backends/cpu/parallel.h"
#include "core/allocator.h"
#include "core/error.h"
#include "core/prims/optim.h"
#include "core/profile.h"

namespace basin {
namespace cuda_backend {
/// The CUDA kernel (backends/cuda/optim.cu; an error in a build without CUDA).
void adam_update(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                 const Tensor& vmax, const prims::AdamStep& step);
}  // namespace cuda_backend

namespace prims {
namespace {

template <class T>
void adam_update_cpu(T* p, const T* g, T* m, T* v, T* vmax, int64_t n, const AdamStep& s) {
  const T b1 = static_cast<T>(s.beta1), b2 = static_cast<T>(s.beta2);
  const T one_b1 = static_cast<T>(1.0 - s.beta1), one_b2 = static_cast<T>(1.0 - s.beta2);
  const T wd = static_cast<T>(s.weight_decay), decay = static_cast<T>(1.0 - s.lr * s.weight_decay);
  const T step_size = static_cast<T>(s.step_size), bc2 = static_cast<T>(s.bias_correction2_sqrt);
  const T eps = static_cast<T>(s.eps);
  cpu::parallel_for(n, 16, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      T grad = g[i];
      if (s.weight_decay != 0) {
        if (s.decoupled) {
          p[i] *= decay;
        } else {
          grad += wd * p[i];
        }
      }
      m[i] = m[i] * b1 + one_b1 * grad;
      v[i] = v[i] * b2 + one_b2 * (grad * grad);
      T second = v[i];
      if (vmax) {
        vmax[i] = std::max(vmax[i], v[i]);
        second = vmax[i];
      }
      p[i] -= step_size * (m[i] / (std::sqrt(second) / bc2 + eps));
    }
  });
}

}  // namespace

void adam_update(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                 const Tensor& vmax, const AdamStep& step) {
  for (const Tensor* t : {&grad, &m, &v}) {
    if (t->shape() != param.shape() || t->dtype() != param.dtype() ||
        t->device() != param.device() || !t->is_contiguous()) {
      fail("[adam_update] gradient and moments must be contiguous {} {} on {} like the parameter",
           shape_str(param.shape()), dtype_name(param.dtype()), param.device().str());
    }
  }
  if (!param.is_contiguous()) fail("[adam_update] the parameter must be contiguous");
  if (step.amsgrad != vmax.defined()) fail("[adam_update] vmax is given exactly with amsgrad");
  std::optional<profile::OpScope> scope;
  if (profile::enabled()) scope.emplace("AdamUpdate", param.device());
  if (param.device().is_cuda()) {
    cuda_backend::adam_update(param, grad, m, v, vmax, step);
    return;
  }
  dispatch_float(param.dtype(), "adam_update", [&](auto tag) {
    using T = typename decltype(tag)::type;
    adam_update_cpu<T>(param.data<T>(), grad.data<T>(), m.data<T>(), v.data<T>(),
                       vmax.defined() ? vmax.data<T>() : nullptr, param.numel(), step);
  });
}

}  // namespace prims
}  // namespace basin
