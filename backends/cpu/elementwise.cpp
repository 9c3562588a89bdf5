// CPU forward of the elementwise family: one unary, one binary and one ternary driver, each with
// a contiguous fast path and a strided/broadcast path; the math comes from the shared functors.
#include <cstring>

#include "backends/cpu/strided.h"
#include "backends/cpu/vec_math.h"
#include "backends/elementwise_functors.h"
#include "core/prims/elementwise.h"

namespace basin::prims {
namespace {
using cpu::broadcast_strides;
using cpu::for_each_run;
using cpu::parallel_for;

template <class In, class Out, class F>
void unary_kernel(const Tensor& x, Tensor& out, F f) {
  if (!out.storage()) out.allocate();
  const In* xp = static_cast<const In*>(x.raw_data());
  Out* yp = static_cast<Out*>(out.raw_data());
  if (x.is_contiguous() && out.is_contiguous() && x.shape() == out.shape()) {
    parallel_for(out.numel(), 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) yp[i] = static_cast<Out>(f(xp[i]));
    });
    return;
  }
  const Shape xs = broadcast_strides(x.shape(), x.strides(), out.shape());
  for_each_run<2>(out.shape(), {out.strides(), xs},
                  [&](const std::array<int64_t, 2>& o, int64_t n, const std::array<int64_t, 2>& s) {
                    Out* y = yp + o[0];
                    const In* p = xp + o[1];
                    for (int64_t j = 0; j < n; ++j) y[j * s[0]] = static_cast<Out>(f(p[j * s[1]]));
                  });
}

template <class T, class Out, class F>
void binary_kernel(const Tensor& a, const Tensor& b, Tensor& out, F f) {
  out.allocate();
  const T* ap = static_cast<const T*>(a.raw_data());
  const T* bp = static_cast<const T*>(b.raw_data());
  Out* yp = static_cast<Out*>(out.raw_data());
  const int64_t n = out.numel();
  const bool a_full = a.shape() == out.shape() && a.is_contiguous();
  const bool b_full = b.shape() == out.shape() && b.is_contiguous();
  if (a_full && b_full) {
    parallel_for(n, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) yp[i] = f(ap[i], bp[i]);
    });
    return;
  }
  if (a_full && b.numel() == 1) {
    const T bv = *bp;
    parallel_for(n, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) yp[i] = f(ap[i], bv);
    });
    return;
  }
  if (b_full && a.numel() == 1) {
    const T av = *ap;
    parallel_for(n, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) yp[i] = f(av, bp[i]);
    });
    return;
  }
  const Shape as = broadcast_strides(a.shape(), a.strides(), out.shape());
  const Shape bs = broadcast_strides(b.shape(), b.strides(), out.shape());
  for_each_run<3>(
      out.shape(), {out.strides(), as, bs},
      [&](const std::array<int64_t, 3>& o, int64_t len, const std::array<int64_t, 3>& s) {
        Out* y = yp + o[0];
        const T* pa = ap + o[1];
        const T* pb = bp + o[2];
        if (s[0] == 1 && s[1] == 1 && s[2] == 0) {
          const T bv = *pb;
          for (int64_t j = 0; j < len; ++j) y[j] = f(pa[j], bv);
        } else if (s[0] == 1 && s[1] == 0 && s[2] == 1) {
          const T av = *pa;
          for (int64_t j = 0; j < len; ++j) y[j] = f(av, pb[j]);
        } else {
          for (int64_t j = 0; j < len; ++j) y[j * s[0]] = f(pa[j * s[1]], pb[j * s[2]]);
        }
      });
}

}  // namespace

// The CPU may swap a shared functor for a faster host version of the same maths.
template <class F>
struct CpuMath {
  using type = F;
};
template <>
struct CpuMath<fn::Exp> {
  using type = cpu::Exp;
};
template <>
struct CpuMath<fn::Sigmoid> {
  using type = cpu::Sigmoid;
};

#define BASIN_UNARY_CPU(Name, dispatcher)                                 \
  void Name::eval_cpu(const Tensors& in, Tensor& out) {                   \
    dispatcher(in[0].dtype(), #Name, [&](auto tag) {                      \
      using T = typename decltype(tag)::type;                             \
      unary_kernel<T, T>(in[0], out, typename CpuMath<fn::Name>::type{}); \
    });                                                                   \
  }

BASIN_UNARY_CPU(Neg, dispatch_numeric)
BASIN_UNARY_CPU(Abs, dispatch_numeric)
BASIN_UNARY_CPU(Sign, dispatch_numeric)
BASIN_UNARY_CPU(Square, dispatch_numeric)
BASIN_UNARY_CPU(Relu, dispatch_numeric)
BASIN_UNARY_CPU(Exp, dispatch_float)
BASIN_UNARY_CPU(Log, dispatch_float)
BASIN_UNARY_CPU(Log1p, dispatch_float)
BASIN_UNARY_CPU(Expm1, dispatch_float)
BASIN_UNARY_CPU(Sqrt, dispatch_float)
BASIN_UNARY_CPU(Rsqrt, dispatch_float)
BASIN_UNARY_CPU(Sin, dispatch_float)
BASIN_UNARY_CPU(Cos, dispatch_float)
BASIN_UNARY_CPU(Tanh, dispatch_float)
BASIN_UNARY_CPU(Sigmoid, dispatch_float)
BASIN_UNARY_CPU(Erf, dispatch_float)
BASIN_UNARY_CPU(Softplus, dispatch_float)
#undef BASIN_UNARY_CPU

void LogicalNot::eval_cpu(const Tensors& in, Tensor& out) {
  unary_kernel<bool, bool>(in[0], out, fn::LogicalNot{});
}

void PowScalar::eval_cpu(const Tensors& in, Tensor& out) {
  dispatch_float(in[0].dtype(), "PowScalar", [&](auto tag) {
    using T = typename decltype(tag)::type;
    unary_kernel<T, T>(in[0], out, fn::PowScalar{p_});
  });
}

void Elu::eval_cpu(const Tensors& in, Tensor& out) {
  dispatch_float(in[0].dtype(), "Elu", [&](auto tag) {
    using T = typename decltype(tag)::type;
    unary_kernel<T, T>(in[0], out, fn::Elu{alpha_});
  });
}

#define BASIN_BINARY_CPU(Name, dispatcher, Out)                        \
  void Name::eval_cpu(const Tensors& in, Tensor& out) {                \
    dispatcher(in[0].dtype(), #Name, [&](auto tag) {                   \
      using T = typename decltype(tag)::type;                          \
      using O = std::conditional_t<std::is_same_v<Out, void>, T, Out>; \
      binary_kernel<T, O>(in[0], in[1], out, fn::Name{});              \
    });                                                                \
  }

BASIN_BINARY_CPU(Add, dispatch_numeric, void)
BASIN_BINARY_CPU(Sub, dispatch_numeric, void)
BASIN_BINARY_CPU(Mul, dispatch_numeric, void)
BASIN_BINARY_CPU(Div, dispatch_numeric, void)
BASIN_BINARY_CPU(Pow, dispatch_float, void)
BASIN_BINARY_CPU(Maximum, dispatch_numeric, void)
BASIN_BINARY_CPU(Minimum, dispatch_numeric, void)
BASIN_BINARY_CPU(Atan2, dispatch_float, void)
BASIN_BINARY_CPU(Equal, dispatch_all, bool)
BASIN_BINARY_CPU(NotEqual, dispatch_all, bool)
BASIN_BINARY_CPU(Less, dispatch_all, bool)
BASIN_BINARY_CPU(LessEqual, dispatch_all, bool)
BASIN_BINARY_CPU(Greater, dispatch_all, bool)
BASIN_BINARY_CPU(GreaterEqual, dispatch_all, bool)
#undef BASIN_BINARY_CPU

#define BASIN_LOGICAL_CPU(Name)                               \
  void Name::eval_cpu(const Tensors& in, Tensor& out) {       \
    binary_kernel<bool, bool>(in[0], in[1], out, fn::Name{}); \
  }
BASIN_LOGICAL_CPU(LogicalAnd)
BASIN_LOGICAL_CPU(LogicalOr)
BASIN_LOGICAL_CPU(LogicalXor)
#undef BASIN_LOGICAL_CPU

void Where::eval_cpu(const Tensors& in, Tensor& out) {
  out.allocate();
  const bool* cp = in[0].data<bool>();
  const Shape cs = broadcast_strides(in[0].shape(), in[0].strides(), out.shape());
  const Shape as = broadcast_strides(in[1].shape(), in[1].strides(), out.shape());
  const Shape bs = broadcast_strides(in[2].shape(), in[2].strides(), out.shape());
  // Each operand either full and contiguous or a single value (the common where(c, x, 0.0)):
  // one parallel flat loop.
  auto flat = [&](const Tensor& t) {
    return t.numel() == 1 || (t.shape() == out.shape() && t.is_contiguous());
  };
  const bool flat_run = out.is_contiguous() && in[0].shape() == out.shape() &&
                        in[0].is_contiguous() && flat(in[1]) && flat(in[2]);
  dispatch_all(out.dtype(), "Where", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* ap = static_cast<const T*>(in[1].raw_data());
    const T* bp = static_cast<const T*>(in[2].raw_data());
    T* yp = static_cast<T*>(out.raw_data());
    if (flat_run) {
      const int64_t sa = in[1].numel() == 1 && out.numel() != 1 ? 0 : 1;
      const int64_t sb = in[2].numel() == 1 && out.numel() != 1 ? 0 : 1;
      parallel_for(out.numel(), 1, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) yp[i] = cp[i] ? ap[i * sa] : bp[i * sb];
      });
      return;
    }
    for_each_run<4>(
        out.shape(), {out.strides(), cs, as, bs},
        [&](const std::array<int64_t, 4>& o, int64_t n, const std::array<int64_t, 4>& s) {
          for (int64_t j = 0; j < n; ++j) {
            yp[o[0] + j * s[0]] = cp[o[1] + j * s[1]] ? ap[o[2] + j * s[2]] : bp[o[3] + j * s[3]];
          }
        });
  });
}

void AsType::eval_cpu(const Tensors& in, Tensor& out) {
  const Tensor& x = in[0];
  if (!out.storage()) out.allocate();
  if (x.dtype() == out.dtype() && x.is_contiguous() && out.is_contiguous() &&
      x.shape() == out.shape()) {
    char* dst = static_cast<char*>(out.raw_data());
    const char* src = static_cast<const char*>(x.raw_data());
    const int64_t bytes = static_cast<int64_t>(out.nbytes());
    if (dst != src) {
      parallel_for(bytes, 1, [&](int64_t b, int64_t e) { std::memcpy(dst + b, src + b, e - b); });
    }
    return;
  }
  dispatch_all(x.dtype(), "AsType", [&](auto in_tag) {
    using In = typename decltype(in_tag)::type;
    dispatch_all(out.dtype(), "AsType", [&](auto out_tag) {
      using Out = typename decltype(out_tag)::type;
      unary_kernel<In, Out>(x, out, [](In v) { return static_cast<Out>(v); });
    });
  });
}

// Moving between devices is a byte copy whichever side runs it; both evals live here.
void ToDevice::eval_cpu(const Tensors& in, Tensor& out) {
  out.allocate();
  copy_bytes(out.raw_data(), out.device(), in[0].raw_data(), in[0].device(), out.nbytes());
}
void ToDevice::eval_cuda(const Tensors& in, Tensor& out) { eval_cpu(in, out); }

}  // namespace basin::prims
