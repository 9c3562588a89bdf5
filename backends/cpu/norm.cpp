// CPU kernels of layer_norm and its input gradient: fused passes per row, sums in double.
#include <cmath>

#include "backends/cpu/parallel.h"
#include "backends/layer_norm_stats.h"
#include "core/prims/norm.h"

namespace basin::prims {
namespace {

/// Two passes, as the composite: the sum, then the centred sum of squares (no cancellation).
/// `omp simd` lets the double sums reassociate, so they vectorise.
template <class T>
RowStats<T> row_stats(const T* x, int64_t d, double eps) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < d; ++j) s += static_cast<double>(x[j]);
  const double mean = s / static_cast<double>(d);
  double q = 0.0;
#pragma omp simd reduction(+ : q)
  for (int64_t j = 0; j < d; ++j) {
    const double c = static_cast<double>(x[j]) - mean;
    q += c * c;
  }
  return RowStats<T>::from_sums(mean, q, d, eps);
}

template <class T, bool HasWeight, bool HasBias>
void layer_norm_rows(const T* x, const T* w, const T* b, T* y, int64_t rows, int64_t d,
                     double eps) {
  cpu::parallel_for(rows, 4 * d, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* xr = x + r * d;
      T* yr = y + r * d;
      const RowStats<T> st = row_stats(xr, d, eps);
      for (int64_t j = 0; j < d; ++j) {
        T v = st.normalised(xr[j]);
        if constexpr (HasWeight) v *= w[j];
        if constexpr (HasBias) v += b[j];
        yr[j] = v;
      }
    }
  });
}

template <class T, bool HasWeight>
void layer_norm_grad_rows(const T* x, const T* w, const T* g, T* dx, int64_t rows, int64_t d,
                          double eps) {
  cpu::parallel_for(rows, 6 * d, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* xr = x + r * d;
      const T* gr = g + r * d;
      T* out = dx + r * d;
      const RowStats<T> st = row_stats(xr, d, eps);
      double sh = 0.0, shx = 0.0;  // sums of h = g * w and of h * x̂
#pragma omp simd reduction(+ : sh, shx)
      for (int64_t j = 0; j < d; ++j) {
        double h = static_cast<double>(gr[j]);
        if constexpr (HasWeight) h *= static_cast<double>(w[j]);
        sh += h;
        shx += h * (static_cast<double>(xr[j]) - st.mean) * st.rstd;
      }
      const T mean_h = static_cast<T>(sh / static_cast<double>(d));
      const T mean_hx = static_cast<T>(shx / static_cast<double>(d));
      for (int64_t j = 0; j < d; ++j) {
        T h = gr[j];
        if constexpr (HasWeight) h *= w[j];
        out[j] = st.r * (h - mean_h - st.normalised(xr[j]) * mean_hx);
      }
    }
  });
}

}  // namespace

void LayerNorm::eval_cpu(const Tensors& in, Tensor& out) {
  out.allocate();
  if (out.numel() == 0) return;
  const Tensor x = in[0].contiguous();
  const Tensor w = has_weight_ ? in[1].contiguous() : Tensor();
  const Tensor b = has_bias_ ? in[has_weight_ ? 2 : 1].contiguous() : Tensor();
  const int64_t d = x.shape(-1), rows = x.numel() / d;
  dispatch_float(x.dtype(), "LayerNorm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* wp = w.defined() ? w.data<T>() : nullptr;
    const T* bp = b.defined() ? b.data<T>() : nullptr;
    auto run = [&](auto kernel) { kernel(x.data<T>(), wp, bp, out.data<T>(), rows, d, eps_); };
    if (wp && bp) run(layer_norm_rows<T, true, true>);
    if (wp && !bp) run(layer_norm_rows<T, true, false>);
    if (!wp && bp) run(layer_norm_rows<T, false, true>);
    if (!wp && !bp) run(layer_norm_rows<T, false, false>);
  });
}

void LayerNormGradInput::eval_cpu(const Tensors& in, Tensor& out) {
  out.allocate();
  if (out.numel() == 0) return;
  const Tensor x = in[0].contiguous();
  const Tensor w = has_weight_ ? in[1].contiguous() : Tensor();
  const Tensor g = in[has_weight_ ? 2 : 1].contiguous();
  const int64_t d = x.shape(-1), rows = x.numel() / d;
  dispatch_float(x.dtype(), "LayerNormGradInput", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (has_weight_) {
      layer_norm_grad_rows<T, true>(x.data<T>(), w.data<T>(), g.data<T>(), out.data<T>(), rows, d,
                                    eps_);
    } else {
      layer_norm_grad_rows<T, false>(x.data<T>(), nullptr, g.data<T>(), out.data<T>(), rows, d,
                                     eps_);
    }
  });
}

}  // namespace basin::prims
