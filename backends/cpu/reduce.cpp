// CPU forward of the reduction family.
#include "backends/cpu/reduce_kernel.h"
#include "core/prims/reduce.h"

namespace basin::prims {

void Sum::eval_cpu(const Tensors& in, Tensor& out) {
  out.allocate();
  dispatch_numeric(in[0].dtype(), "Sum", [&](auto tag) {
    using T = typename decltype(tag)::type;
    // Floating sums accumulate in double; integer sums in int64.
    using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
    T* y = out.data<T>();
    cpu::reduce_rows<T>(in[0], axes_, [&](int64_t o, auto&& visit) {
      Acc acc = 0;
      visit([&](const T* p, int64_t n, int64_t s) {
        if (s == 1) {
          Acc local = 0;
          for (int64_t j = 0; j < n; ++j) local += p[j];
          acc += local;
        } else {
          for (int64_t j = 0; j < n; ++j) acc += p[j * s];
        }
      });
      y[o] = static_cast<T>(acc);
    });
  });
}

}  // namespace basin::prims
