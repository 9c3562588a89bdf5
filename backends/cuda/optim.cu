// The optimizers' fused updates on a GPU (core/prims/optim.h): one kernel per parameter.
#include <cmath>

#include "backends/cuda/common.cuh"
#include "core/prims/optim.h"

namespace basin {
namespace {

template <class T>
__global__ void adam_kernel(T* p, const T* g, T* m, T* v, T* vmax, int64_t n, T b1, T b2, T one_b1,
                            T one_b2, T wd, T decay, int decay_mode, T step_size, T bc2, T eps) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    T grad = g[i], param = p[i];
    if (decay_mode == 1) {
      param *= decay;  // AdamW: decoupled
    } else if (decay_mode == 2) {
      grad += wd * param;  // Adam: L2 in the gradient
    }
    const T mi = m[i] * b1 + one_b1 * grad;
    const T vi = v[i] * b2 + one_b2 * (grad * grad);
    m[i] = mi;
    v[i] = vi;
    T second = vi;
    if (vmax) {
      second = vmax[i] > vi ? vmax[i] : vi;
      vmax[i] = second;
    }
    p[i] = param - step_size * (mi / (sqrt(second) / bc2 + eps));
  }
}

}  // namespace

namespace cuda_backend {

void adam_update(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                 const Tensor& vmax, const prims::AdamStep& s) {
  const int64_t n = param.numel();
  if (n == 0) return;
  BASIN_CUDA_CHECK(cudaSetDevice(param.device().index));
  dispatch_float(param.dtype(), "adam_update", [&](auto tag) {
    using T = typename decltype(tag)::type;
    auto ptr = [](const Tensor& t) {
      return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr;
    };
    const int decay_mode = s.weight_decay == 0 ? 0 : s.decoupled ? 1 : 2;
    adam_kernel<T><<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(
        ptr(param), ptr(grad), ptr(m), ptr(v), ptr(vmax), n, T(s.beta1), T(s.beta2),
        T(1.0 - s.beta1), T(1.0 - s.beta2), T(s.weight_decay), T(1.0 - s.lr * s.weight_decay),
        decay_mode, T(s.step_size), T(s.bias_correction2_sqrt), T(s.eps));
    BASIN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace cuda_backend
}  // namespace basin
