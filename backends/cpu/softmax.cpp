// CPU forward of the softmax family: one driver, three passes per slice (maximum, sum of
// exponentials, write), either along contiguous rows or across blocks of columns.
#include <cmath>
#include <limits>
#include <memory>

#include "backends/cpu/reduce_kernel.h"
#include "core/prims/softmax.h"

namespace basin::prims {
namespace {
using cpu::exp_fast;

/// The shift subtracted before exponentiating: the maximum, or 0 when it is -inf (every element
/// -inf), so that the exponentials are 0 rather than exp(-inf + inf) = NaN.
template <class T>
T shift_of(T m) {
  return m == -std::numeric_limits<T>::infinity() ? T(0) : m;
}

/// Fold functor (for fold_run) summing exp(v - shift) over a contiguous run and, when Store,
/// writing each exponential to y[r] (y at the run's start): fold_run's lanes keep several
/// accumulator chains in flight.
template <class T, bool Store>
struct ExpSumFold {
  using Acc = double;
  static constexpr int lanes = 16;
  T shift;
  T* y;
  Acc init() const { return 0.0; }
  [[gnu::always_inline]] Acc step(Acc a, T v, int64_t, int64_t r) const {
    const T e = exp_fast(static_cast<T>(v - shift));
    if constexpr (Store) y[r] = e;
    return a + e;
  }
  [[gnu::always_inline]] Acc combine(Acc a, Acc b) const { return a + b; }
};

/// One slice of n elements: x at stride xs, y at stride ys.
template <class T, bool Log>
void softmax_row(const T* x, T* y, int64_t n, int64_t xs, int64_t ys) {
  const T m = cpu::fold_run(cpu::ExtremumFold<T, false>{nullptr}, x, n, xs, 0, 0);
  const T shift = shift_of(m);
  const bool unit = xs == 1 && ys == 1;
  double s = 0;
  if (unit) {
    s = cpu::fold_run(ExpSumFold<T, !Log>{shift, y}, x, n, 1, 0, 0);
  } else {
    for (int64_t j = 0; j < n; ++j) {
      const T e = exp_fast(static_cast<T>(x[j * xs] - shift));
      if constexpr (!Log) y[j * ys] = e;
      s += e;
    }
  }
  const bool empty = m == -std::numeric_limits<T>::infinity();
  if constexpr (Log) {
    // (x - m) - log(s) rather than x - (m + log(s)), which rounds at the scale of m. All -inf:
    // shift and log_s are 0 and x stays -inf.
    const T log_s = empty ? T(0) : static_cast<T>(std::log(s));
    if (unit) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) y[j] = (x[j] - shift) - log_s;
    } else {
      for (int64_t j = 0; j < n; ++j) y[j * ys] = (x[j * xs] - shift) - log_s;
    }
  } else {
    const T inv = empty ? T(0) : static_cast<T>(1.0 / s);
    if (unit) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) y[j] *= inv;
    } else {
      for (int64_t j = 0; j < n; ++j) y[j * ys] *= inv;
    }
  }
}

/// `w` slices side by side (columns at strides xc, yc; both 1 when Unit), each of n elements
/// along the axis (strides xa, ya): each pass runs over whole rows of the block, which vectorises.
/// m, shift and s are scratch of at least w elements.
template <class T, bool Log, bool Unit>
void softmax_columns(const T* x, T* y, int64_t n, int64_t xa, int64_t ya, int64_t w, int64_t xc,
                     int64_t yc, T* m, T* shift, double* s) {
  if constexpr (Unit) xc = yc = 1;
  for (int64_t c = 0; c < w; ++c) {
    m[c] = cpu::extremum_init<false, T>();
    s[c] = 0;
  }
  for (int64_t a = 0; a < n; ++a) {
    const T* p = x + a * xa;
#pragma omp simd
    for (int64_t c = 0; c < w; ++c) m[c] = cpu::extremum_step<false>(m[c], p[c * xc]);
  }
  for (int64_t c = 0; c < w; ++c) shift[c] = shift_of(m[c]);
  for (int64_t a = 0; a < n; ++a) {
    const T* p = x + a * xa;
    T* q = y + a * ya;
#pragma omp simd
    for (int64_t c = 0; c < w; ++c) {
      const T e = exp_fast(static_cast<T>(p[c * xc] - shift[c]));
      if constexpr (!Log) q[c * yc] = e;
      s[c] += e;
    }
  }
  // m[] now holds the per-column log(s) (log-softmax) or 1/s (softmax); 0 for all -inf columns.
  const T ninf = -std::numeric_limits<T>::infinity();
  for (int64_t c = 0; c < w; ++c) {
    const bool empty = m[c] == ninf;
    if constexpr (Log) {
      m[c] = empty ? T(0) : static_cast<T>(std::log(s[c]));
    } else {
      m[c] = empty ? T(0) : static_cast<T>(1.0 / s[c]);
    }
  }
  for (int64_t a = 0; a < n; ++a) {
    const T* p = x + a * xa;
    T* q = y + a * ya;
#pragma omp simd
    for (int64_t c = 0; c < w; ++c) {
      if constexpr (Log) {
        q[c * yc] = (p[c * xc] - shift[c]) - m[c];
      } else {
        q[c * yc] *= m[c];
      }
    }
  }
}

template <class T, bool Log>
void softmax_kernel(const Tensor& x, Tensor& out, int axis) {
  out.allocate();
  if (out.numel() == 0) return;
  std::vector<bool> reduced(static_cast<size_t>(x.ndim()), false);
  reduced[static_cast<size_t>(axis)] = true;
  const cpu::ReduceLayout L(x.shape(), x.strides(), out.strides(), reduced);
  // A size-1 axis is dropped from the layout: one element, strides irrelevant.
  const int64_t n = L.red.empty() ? 1 : L.red[0];
  const int64_t xa = L.red.empty() ? 0 : L.red_x[0];
  const int64_t ya = L.red.empty() ? 0 : L.red_out[0];
  const T* xp = static_cast<const T*>(x.raw_data());
  T* yp = out.data<T>();
  if (L.inner_reduced) {
    cpu::parallel_for(L.n_kept, n, [&](int64_t b, int64_t e) {
      cpu::Walker kx(L.kept, L.kept_x, b), ky(L.kept, L.kept_out, b);
      for (int64_t k = b; k < e; ++k, kx.next(), ky.next()) {
        softmax_row<T, Log>(xp + kx.offset, yp + ky.offset, n, xa, ya);
      }
    });
    return;
  }
  const int64_t n_c = L.kept.back(), xc = L.kept_x.back(), yc = L.kept_out.back();
  const int outer_dims = static_cast<int>(L.kept.size()) - 1;
  const int64_t n_outer = L.n_kept / n_c;
  // Wide blocks read rows whole and in order; narrower ones when that leaves threads idle (the
  // axis itself cannot be split: each pass needs the previous one's result).
  int64_t bw = std::min(n_c, cpu::kColumnBlock);
  const int threads = cpu::max_threads();
  if (threads > 1 && out.numel() >= cpu::kParallelGrain &&
      n_outer * ((n_c + bw - 1) / bw) < threads) {
    const int64_t blocks = (threads + n_outer - 1) / n_outer;
    bw = std::min(bw, std::max<int64_t>(64, ((n_c + blocks - 1) / blocks + 15) / 16 * 16));
  }
  const int64_t n_blocks = (n_c + bw - 1) / bw;
  cpu::parallel_for(n_outer * n_blocks, n * bw, [&](int64_t b, int64_t e) {
    std::unique_ptr<T[]> m(new T[static_cast<size_t>(bw)]), shift(new T[static_cast<size_t>(bw)]);
    std::unique_ptr<double[]> s(new double[static_cast<size_t>(bw)]);
    for (int64_t u = b; u < e; ++u) {
      const int64_t outer = u / n_blocks, c0 = (u % n_blocks) * bw;
      const cpu::Walker kx(L.kept, L.kept_x, outer, outer_dims);
      const cpu::Walker ky(L.kept, L.kept_out, outer, outer_dims);
      const int64_t w = std::min(bw, n_c - c0);
      const T* xb = xp + kx.offset + c0 * xc;
      T* yb = yp + ky.offset + c0 * yc;
      if (xc == 1 && yc == 1) {
        softmax_columns<T, Log, true>(xb, yb, n, xa, ya, w, 1, 1, m.get(), shift.get(), s.get());
      } else {
        softmax_columns<T, Log, false>(xb, yb, n, xa, ya, w, xc, yc, m.get(), shift.get(), s.get());
      }
    }
  });
}

}  // namespace

void Softmax::eval_cpu(const Tensors& in, Tensor& out) {
  dispatch_float(in[0].dtype(), "Softmax", [&](auto tag) {
    softmax_kernel<typename decltype(tag)::type, false>(in[0], out, axis_);
  });
}

void LogSoftmax::eval_cpu(const Tensors& in, Tensor& out) {
  dispatch_float(in[0].dtype(), "LogSoftmax", [&](auto tag) {
    softmax_kernel<typename decltype(tag)::type, true>(in[0], out, axis_);
  });
}

}  // namespace basin::prims
