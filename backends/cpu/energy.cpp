// CPU kernels of the energy layers' closed-form gradients: BLAS products around row-wise
// softmax / ReLU passes, with per-thread scratch instead of full-size intermediates.
#include <cblas.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/cpu/parallel.h"
#include "backends/cpu/vec_math.h"
#include "core/counters.h"
#include "core/prims/energy.h"

namespace basin::prims {
namespace {

/// C = alpha op(A) op(B) + beta C, row-major. Inside a parallel region oneDNN and the OpenMP
/// OpenBLAS stay on the calling thread. float32 goes to oneDNN's sgemm except for tiny products,
/// as in the matmul kernel (backends/cpu/matmul.cpp has the measurements).
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  count_matmul_flops(2 * m * n * k);
  if (m * n * k >= 16384) {
    const dnnl_status_t status =
        dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    if (status != dnnl_success) {
      fail("[energy kernels] oneDNN sgemm failed with status {}", static_cast<int>(status));
    }
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a,
              static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
          int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  count_matmul_flops(2 * m * n * k);
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a,
              static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

/// Softmax of row[0..n) in place (vectorised: exp_fast, simd reductions); an all -inf row
/// becomes zeros.
template <class T>
void softmax_row(T* row, int64_t n) {
  T top = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : top)
  for (int64_t j = 0; j < n; ++j) top = std::max(top, row[j]);
  if (top == -std::numeric_limits<T>::infinity()) {
    std::fill(row, row + n, T(0));
    return;
  }
  double total = 0.0;
#pragma omp simd reduction(+ : total)
  for (int64_t j = 0; j < n; ++j) {
    const T e = cpu::exp_fast(static_cast<T>(row[j] - top));
    row[j] = e;
    total += static_cast<double>(e);
  }
  const T scale = static_cast<T>(1.0 / total);
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) row[j] *= scale;
}

/// Softmax of row[0..n) in place over the entries `allowed(j)` (the others become 0), the sum in
/// double. A row with no allowed (or only -inf) entry becomes all zeros, as softmax() does.
template <class T, class Allowed>
void masked_softmax_row(T* row, int64_t n, Allowed&& allowed) {
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  for (int64_t j = 0; j < n; ++j) {
    if (!allowed(j)) row[j] = kNegInf;
  }
  softmax_row(row, n);
}

/// The attention probabilities of one (batch, head) block in place: each row c of the n × n
/// scores softmaxed over the keys its mask row allows (all without a mask), never key c itself
/// with exclude_self.
template <class T>
void attention_softmax(T* p, int64_t n, const bool* mask, bool exclude_self) {
  for (int64_t c = 0; c < n; ++c) {
    const bool* mrow = mask ? mask + c * n : nullptr;
    if (mrow || exclude_self) {
      masked_softmax_row(p + c * n, n, [&](int64_t key) {
        return (!mrow || mrow[key]) && !(exclude_self && key == c);
      });
    } else {
      softmax_row(p + c * n, n);
    }
  }
}

/// Projections of every token onto every head: out (R, H·Y) = g (R, D) W (H·Y, D)ᵀ + bias.
template <class T>
void project(const T* g, const T* w, const T* bias, T* out, int64_t rows, int64_t hy, int64_t d) {
  gemm(false, true, rows, hy, d, T(1), g, d, w, d, T(0), out, hy);
  if (!bias) return;
  cpu::parallel_for(rows, hy, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      for (int64_t j = 0; j < hy; ++j) out[r * hy + j] += bias[j];
    }
  });
}

struct AttentionSizes {
  int64_t batch, tokens, dim, heads, head_dim;
};

template <class T>
void energy_attention_grad(const T* g, const T* wq, const T* wk, const T* beta, const T* bq,
                           const T* bk, const bool* mask, int64_t mask_batch_stride,
                           bool exclude_self, T* out, const AttentionSizes& s) {
  const int64_t n = s.tokens, y = s.head_dim, hy = s.heads * s.head_dim, rows = s.batch * n;
  std::vector<T> q(rows * hy), k(rows * hy), dq(rows * hy), dk(rows * hy);
  project(g, wq, bq, q.data(), rows, hy, s.dim);
  project(g, wk, bk, k.data(), rows, hy, s.dim);
  // One (batch, head) pair per task: scores, masked softmax over keys, then both terms.
  cpu::parallel_for(s.batch * s.heads, 3 * n * n * y, [&](int64_t lo, int64_t hi) {
    std::vector<T> p(n * n);
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t b = task / s.heads, h = task % s.heads;
      const int64_t at = b * n * hy + h * y;  // block (b, h) of the (R, H·Y) projections
      const bool* mb = mask ? mask + b * mask_batch_stride : nullptr;
      gemm(false, true, n, n, y, beta[h], q.data() + at, hy, k.data() + at, hy, T(0), p.data(), n);
      attention_softmax(p.data(), n, mb, exclude_self);
      // Queries pulled towards the keys they attend to, keys towards the queries attending them.
      gemm(false, false, n, y, n, T(1), p.data(), n, k.data() + at, hy, T(0), dq.data() + at, hy);
      gemm(true, false, n, y, n, T(1), p.data(), n, q.data() + at, hy, T(0), dk.data() + at, hy);
    }
  });
  gemm(false, false, rows, s.dim, hy, T(-1), dq.data(), hy, wq, s.dim, T(0), out, s.dim);
  gemm(false, false, rows, s.dim, hy, T(-1), dk.data(), hy, wk, s.dim, T(1), out, s.dim);
}

/// EnergyAttentionCoreVjp per (batch, head) pair: P, then U = P K, V = Pᵀ Q, P̄ = Ū Kᵀ + Q V̄ᵀ,
/// S̄ = P ⊙ (P̄ − rowsum(P ⊙ P̄)), R = S̄ K, Q̄ = P V̄ + β R, K̄ = Pᵀ Ū + β S̄ᵀ Q.
template <class T>
void energy_attention_core_vjp(const T* qk, const T* cot, const T* beta, const bool* mask,
                               int64_t mask_batch_stride, bool exclude_self, T* out,
                               const AttentionSizes& s) {
  const int64_t n = s.tokens, y = s.head_dim, hy = s.heads * s.head_dim;
  const int64_t in_row = 2 * hy, out_row = 5 * hy;
  cpu::parallel_for(s.batch * s.heads, 10 * n * n * y, [&](int64_t lo, int64_t hi) {
    std::vector<T> p(n * n), sbar(n * n);
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t b = task / s.heads, h = task % s.heads;
      const T* q = qk + b * n * in_row + h * y;
      const T* k = q + hy;
      const T* ubar = cot + b * n * in_row + h * y;
      const T* vbar = ubar + hy;
      T* u = out + b * n * out_row + h * y;
      T *v = u + hy, *qbar = u + 2 * hy, *kbar = u + 3 * hy, *r = u + 4 * hy;
      const bool* mb = mask ? mask + b * mask_batch_stride : nullptr;
      gemm(false, true, n, n, y, beta[h], q, in_row, k, in_row, T(0), p.data(), n);
      attention_softmax(p.data(), n, mb, exclude_self);
      gemm(false, false, n, y, n, T(1), p.data(), n, k, in_row, T(0), u, out_row);
      gemm(true, false, n, y, n, T(1), p.data(), n, q, in_row, T(0), v, out_row);
      // P̄ into sbar, then S̄ in place, row by row.
      gemm(false, true, n, n, y, T(1), ubar, in_row, k, in_row, T(0), sbar.data(), n);
      gemm(false, true, n, n, y, T(1), q, in_row, vbar, in_row, T(1), sbar.data(), n);
      for (int64_t c = 0; c < n; ++c) {
        const T* pr = p.data() + c * n;
        T* sr = sbar.data() + c * n;
        double dot = 0;
        for (int64_t j = 0; j < n; ++j) dot += static_cast<double>(pr[j]) * sr[j];
        const T mean = static_cast<T>(dot);
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) sr[j] = pr[j] * (sr[j] - mean);
      }
      gemm(false, false, n, y, n, T(1), sbar.data(), n, k, in_row, T(0), r, out_row);
      gemm(false, false, n, y, n, T(1), p.data(), n, vbar, in_row, T(0), qbar, out_row);
      for (int64_t c = 0; c < n; ++c) {
#pragma omp simd
        for (int64_t j = 0; j < y; ++j) qbar[c * out_row + j] += beta[h] * r[c * out_row + j];
      }
      gemm(true, false, n, y, n, T(1), p.data(), n, ubar, in_row, T(0), kbar, out_row);
      gemm(true, false, n, y, n, beta[h], sbar.data(), n, q, in_row, T(1), kbar, out_row);
    }
  });
}

template <class T>
void hopfield_energy_grad(const T* g, const T* xi, const T* beta, T* out, int64_t rows, int64_t d,
                          int64_t m) {
  // Blocks of tokens small enough that their (block × M) activations stay in cache-sized scratch.
  const int64_t block = std::max<int64_t>(1, std::min<int64_t>(64, rows));
  const int64_t blocks = (rows + block - 1) / block;
  cpu::parallel_for(blocks, 2 * block * m * d, [&](int64_t lo, int64_t hi) {
    std::vector<T> h(block * m);
    for (int64_t bl = lo; bl < hi; ++bl) {
      const int64_t r0 = bl * block, nr = std::min(block, rows - r0);
      const T scale = beta ? *beta : T(1);
      gemm(false, true, nr, m, d, scale, g + r0 * d, d, xi, d, T(0), h.data(), m);
      if (beta) {
        for (int64_t r = 0; r < nr; ++r) softmax_row(h.data() + r * m, m);
      } else {
        for (int64_t i = 0; i < nr * m; ++i) h[i] = std::max(h[i], T(0));
      }
      gemm(false, false, nr, d, m, T(-1), h.data(), m, xi, d, T(0), out + r0 * d, d);
    }
  });
}

}  // namespace

void EnergyAttentionGrad::eval_cpu(const Tensors& in, Tensor& out) {
  out.allocate();
  if (out.numel() == 0) return;
  const Tensor g = in[0].contiguous(), wq = in[1].contiguous(), wk = in[2].contiguous();
  const Tensor beta = in[3].contiguous();
  const Tensor bq = has_bias_ ? in[4].contiguous() : Tensor();
  const Tensor bk = has_bias_ ? in[5].contiguous() : Tensor();
  const Tensor mask = has_mask_ ? in[has_bias_ ? 6 : 4].contiguous() : Tensor();
  const AttentionSizes s{g.shape(0), g.shape(1), g.shape(2), wq.shape(0), wq.shape(1)};
  const int64_t mask_stride = mask.defined() && mask.ndim() == 3 ? s.tokens * s.tokens : 0;
  dispatch_float(g.dtype(), "EnergyAttentionGrad", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (s.heads * s.head_dim == 0) {
      std::fill(out.data<T>(), out.data<T>() + out.numel(), T(0));
      return;
    }
    energy_attention_grad<T>(
        g.data<T>(), wq.data<T>(), wk.data<T>(), beta.data<T>(),
        bq.defined() ? bq.data<T>() : nullptr, bk.defined() ? bk.data<T>() : nullptr,
        mask.defined() ? mask.data<bool>() : nullptr, mask_stride, exclude_self_, out.data<T>(), s);
  });
}

void EnergyAttentionCoreVjp::eval_cpu(const Tensors& in, Tensor& out) {
  out.allocate();
  if (out.numel() == 0) return;
  const Tensor qk = in[0].contiguous(), cot = in[1].contiguous(), beta = in[2].contiguous();
  const Tensor mask = has_mask_ ? in[3].contiguous() : Tensor();
  const int64_t hy = qk.shape(2) / 2;
  const AttentionSizes s{qk.shape(0), qk.shape(1), 0, heads_, heads_ > 0 ? hy / heads_ : 0};
  const int64_t mask_stride = mask.defined() && mask.ndim() == 3 ? s.tokens * s.tokens : 0;
  dispatch_float(qk.dtype(), "EnergyAttentionCoreVjp", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (hy == 0) return;
    energy_attention_core_vjp<T>(qk.data<T>(), cot.data<T>(), beta.data<T>(),
                                 mask.defined() ? mask.data<bool>() : nullptr, mask_stride,
                                 exclude_self_, out.data<T>(), s);
  });
}

void HopfieldEnergyGrad::eval_cpu(const Tensors& in, Tensor& out) {
  out.allocate();
  if (out.numel() == 0) return;
  const Tensor g = in[0].contiguous(), xi = in[1].contiguous();
  const Tensor beta = log_sum_exp_ ? in[2].contiguous() : Tensor();
  const int64_t d = g.shape(-1), rows = g.numel() / d, m = xi.shape(0);
  dispatch_float(g.dtype(), "HopfieldEnergyGrad", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (m == 0) {
      std::fill(out.data<T>(), out.data<T>() + out.numel(), T(0));
      return;
    }
    hopfield_energy_grad<T>(g.data<T>(), xi.data<T>(), beta.defined() ? beta.data<T>() : nullptr,
                            out.data<T>(), rows, d, m);
  });
}

}  // namespace basin::prims
