// CPU forward of the reduction family: a small accumulator functor per op, run by the shared
// driver in backends/cpu/reduce_kernel.h.
#include <cmath>
#include <limits>
#include <memory>

#include "backends/cpu/reduce_kernel.h"
#include "core/prims/reduce.h"

namespace basin::prims {
namespace {
using cpu::is_nan;

template <class T>
struct SumFold {
  using Acc = cpu::WideAcc<T>;
  static constexpr int lanes = 16;
  T* y;
  Acc init() const { return Acc(0); }
  [[gnu::always_inline]] Acc step(Acc a, T v, int64_t, int64_t) const {
    return a + static_cast<Acc>(v);
  }
  [[gnu::always_inline]] Acc combine(Acc a, Acc b) const { return a + b; }
  void finish(int64_t o, Acc a) const { y[o] = static_cast<T>(a); }
};

template <class T>
struct ProdFold {
  using Acc = cpu::WideAcc<T>;
  static constexpr int lanes = 16;
  T* y;
  Acc init() const { return Acc(1); }
  [[gnu::always_inline]] Acc step(Acc a, T v, int64_t, int64_t) const {
    return a * static_cast<Acc>(v);
  }
  [[gnu::always_inline]] Acc combine(Acc a, Acc b) const { return a * b; }
  void finish(int64_t o, Acc a) const { y[o] = static_cast<T>(a); }
};

/// Second pass of argmax/argmin: the first position whose element equals the first pass's
/// extreme m (a NaN matching a NaN). A minimum over positions, which vectorises where a fold of
/// (value, position) pairs does not.
template <class T>
struct FirstMatchFold {
  using Acc = int64_t;
  static constexpr int lanes = 8;
  static constexpr bool fuse_rows = false;  // GCC does not vectorise it fused
  const T* m;
  int64_t* y;
  Acc init() const { return std::numeric_limits<int64_t>::max(); }
  [[gnu::always_inline]] Acc step(Acc a, T v, int64_t o, int64_t r) const {
    // A NaN element means the extreme is NaN, so NaN elements are exactly the NaN matches.
    const bool match = (v == m[o]) | is_nan(v);
    return match & (r < a) ? r : a;
  }
  [[gnu::always_inline]] Acc combine(Acc a, Acc b) const { return std::min(a, b); }
  void finish(int64_t o, Acc a) const { y[o] = a; }
};

/// Second pass of logsumexp: sum of exp(x - shift) with shift the first pass's maximum m where
/// it is finite and 0 elsewhere (the finish resolves those without the sum).
template <class T>
struct SumExpFold {
  using Acc = cpu::WideAcc<T>;
  static constexpr int lanes = 16;
  const T* m;
  const T* shift;
  T* y;
  Acc init() const { return Acc(0); }
  [[gnu::always_inline]] Acc step(Acc a, T v, int64_t o, int64_t) const {
    return a + static_cast<Acc>(cpu::exp_fast(static_cast<T>(v - shift[o])));
  }
  [[gnu::always_inline]] Acc combine(Acc a, Acc b) const { return a + b; }
  void finish(int64_t o, Acc a) const {
    y[o] = std::isfinite(m[o]) ? static_cast<T>(m[o] + std::log(a)) : m[o];
  }
};

// Two passes over x: the extreme, then the first position holding it.
template <class T, bool Less>
void arg_extremum(const Tensor& x, int axis, Tensor& out) {
  out.allocate();
  std::unique_ptr<T[]> m(new T[static_cast<size_t>(out.numel())]);
  cpu::reduce<T>(x, {axis}, cpu::ExtremumFold<T, Less>{m.get()});
  cpu::reduce<T>(x, {axis}, FirstMatchFold<T>{m.get(), out.data<int64_t>()});
}

}  // namespace

void Sum::eval_cpu(const Tensors& in, Tensor& out) {
  out.allocate();
  dispatch_numeric(in[0].dtype(), "Sum", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cpu::reduce<T>(in[0], axes_, SumFold<T>{out.data<T>()});
  });
}

void Prod::eval_cpu(const Tensors& in, Tensor& out) {
  out.allocate();
  dispatch_numeric(in[0].dtype(), "Prod", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cpu::reduce<T>(in[0], axes_, ProdFold<T>{out.data<T>()});
  });
}

void Max::eval_cpu(const Tensors& in, Tensor& out) {
  out.allocate();
  dispatch_numeric(in[0].dtype(), "Max", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cpu::reduce<T>(in[0], axes_, cpu::ExtremumFold<T, false>{out.data<T>()});
  });
}

void Min::eval_cpu(const Tensors& in, Tensor& out) {
  out.allocate();
  dispatch_numeric(in[0].dtype(), "Min", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cpu::reduce<T>(in[0], axes_, cpu::ExtremumFold<T, true>{out.data<T>()});
  });
}

void ArgMax::eval_cpu(const Tensors& in, Tensor& out) {
  dispatch_numeric(in[0].dtype(), "ArgMax", [&](auto tag) {
    arg_extremum<typename decltype(tag)::type, false>(in[0], axis_, out);
  });
}

void ArgMin::eval_cpu(const Tensors& in, Tensor& out) {
  dispatch_numeric(in[0].dtype(), "ArgMin", [&](auto tag) {
    arg_extremum<typename decltype(tag)::type, true>(in[0], axis_, out);
  });
}

// Two passes over x: the maximum, then the shifted sum of exponentials (finished in place).
void LogSumExp::eval_cpu(const Tensors& in, Tensor& out) {
  out.allocate();
  dispatch_float(in[0].dtype(), "LogSumExp", [&](auto tag) {
    using T = typename decltype(tag)::type;
    // An empty sub-space gets the maximum's identity, -inf: the log of an empty sum.
    const int64_t n = out.numel();
    std::unique_ptr<T[]> m(new T[static_cast<size_t>(n)]), shift(new T[static_cast<size_t>(n)]);
    cpu::reduce<T>(in[0], axes_, cpu::ExtremumFold<T, false>{m.get()});
    for (int64_t o = 0; o < n; ++o) shift[o] = std::isfinite(m[o]) ? m[o] : T(0);
    cpu::reduce<T>(in[0], axes_, SumExpFold<T>{m.get(), shift.get(), out.data<T>()});
  });
}

}  // namespace basin::prims
