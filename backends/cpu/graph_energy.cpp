// CPU kernels of the graph attention energy's gradient core (graph ET): each query's edges in
// one pass, then each key's edges through a transposed index, with only the (E, H) edge
// probabilities in between — none of the (E, H, Y) gathered rows the fallback builds.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/cpu/parallel.h"
#include "core/prims/energy.h"

namespace basin::prims {
namespace {

/// A CSR graph checked and in int64, with its transposed index: the edges out of each key B are
/// by_src[src_offsets[B] .. src_offsets[B + 1]) (edge ids, in increasing order), and dst[e] is
/// the query of edge e.
struct GraphIndex {
  std::vector<int64_t> offsets, src, dst, src_offsets, by_src;
};

GraphIndex graph_index(const Tensor& offsets_in, const Tensor& src_in, int64_t n, const char* who) {
  GraphIndex g;
  const Tensor offsets = offsets_in.astype(Dtype::i64).contiguous();
  const Tensor src = src_in.astype(Dtype::i64).contiguous();
  const int64_t e = src.numel();
  g.offsets.assign(offsets.data<int64_t>(), offsets.data<int64_t>() + offsets.numel());
  g.src.assign(src.data<int64_t>(), src.data<int64_t>() + e);
  check(static_cast<int64_t>(g.offsets.size()) == n + 1 && g.offsets.front() == 0 &&
            g.offsets.back() == e,
        "[{}] CSR offsets must run from 0 to the {} edges over {} nodes", who, e, n);
  g.dst.resize(static_cast<size_t>(e));
  g.src_offsets.assign(static_cast<size_t>(n + 1), 0);
  for (int64_t c = 0; c < n; ++c) {
    const int64_t lo = g.offsets[static_cast<size_t>(c)],
                  hi = g.offsets[static_cast<size_t>(c) + 1];
    check(lo <= hi && hi <= e,
          "[{}] CSR offsets must not decrease nor pass the {} edges (node {}: {} to {})", who, e, c,
          lo, hi);
    for (int64_t i = lo; i < hi; ++i) {
      const int64_t b = g.src[static_cast<size_t>(i)];
      check(b >= 0 && b < n, "[{}] edge {} comes from node {}, outside [0, {})", who, i, b, n);
      g.dst[static_cast<size_t>(i)] = c;
      ++g.src_offsets[static_cast<size_t>(b) + 1];
    }
  }
  for (int64_t b = 0; b < n; ++b)
    g.src_offsets[static_cast<size_t>(b) + 1] += g.src_offsets[static_cast<size_t>(b)];
  g.by_src.resize(static_cast<size_t>(e));
  std::vector<int64_t> next(g.src_offsets.begin(), g.src_offsets.end() - 1);
  for (int64_t i = 0; i < e; ++i) {
    g.by_src[static_cast<size_t>(next[static_cast<size_t>(g.src[static_cast<size_t>(i)])]++)] = i;
  }
  return g;
}

template <class T>
T dot(const T* a, const T* b, int64_t n) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

template <class T>
void axpy(T alpha, const T* x, T* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

/// Sizes of the core: N nodes, H heads of Y; rows of [Q | K] (and of the cotangents) hold
/// 2·H·Y values, the query heads first.
struct CoreSizes {
  int64_t n, heads, y;
  int64_t hy() const { return heads * y; }
};

/// The softmax over query c's edges of head h, into p[e·H + h] for its edges: scores β Q_c·K_B,
/// −inf for B = c when exclude_self. A query without an edge left gets zeros.
template <class T>
void edge_softmax(const T* qk, const T* beta, const GraphIndex& g, const CoreSizes& s,
                  bool exclude_self, int64_t c, int64_t h, T* p) {
  const int64_t lo = g.offsets[static_cast<size_t>(c)], hi = g.offsets[static_cast<size_t>(c) + 1];
  const int64_t row = 2 * s.hy(), y = s.y;
  const T* q = qk + c * row + h * y;
  T top = -std::numeric_limits<T>::infinity();
  for (int64_t e = lo; e < hi; ++e) {
    const int64_t b = g.src[static_cast<size_t>(e)];
    const T score = exclude_self && b == c ? -std::numeric_limits<T>::infinity()
                                           : beta[h] * dot(q, qk + b * row + s.hy() + h * y, y);
    p[e * s.heads + h] = score;
    top = std::max(top, score);
  }
  if (top == -std::numeric_limits<T>::infinity()) {
    for (int64_t e = lo; e < hi; ++e) p[e * s.heads + h] = T(0);
    return;
  }
  double total = 0;
  for (int64_t e = lo; e < hi; ++e) {
    const T v = std::exp(p[e * s.heads + h] - top);
    p[e * s.heads + h] = v;
    total += v;
  }
  const T inv = static_cast<T>(1.0 / total);
  for (int64_t e = lo; e < hi; ++e) p[e * s.heads + h] *= inv;
}

template <class T>
void graph_core(const T* qk, const T* beta, const GraphIndex& g, const CoreSizes& s,
                bool exclude_self, T* out) {
  const int64_t row = 2 * s.hy(), y = s.y, e_total = static_cast<int64_t>(g.src.size());
  std::vector<T> p(static_cast<size_t>(e_total * s.heads));
  std::fill(out, out + s.n * row, T(0));
  const int64_t mean_degree = e_total / std::max<int64_t>(s.n, 1) + 1;
  // U_C = Σ P_e K_B over C's edges.
  cpu::parallel_for(s.n, 2 * mean_degree * s.hy(), [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      for (int64_t h = 0; h < s.heads; ++h) {
        edge_softmax(qk, beta, g, s, exclude_self, c, h, p.data());
        T* u = out + c * row + h * y;
        for (int64_t e = g.offsets[static_cast<size_t>(c)];
             e < g.offsets[static_cast<size_t>(c) + 1]; ++e) {
          const T pe = p[static_cast<size_t>(e * s.heads + h)];
          if (pe != T(0)) axpy(pe, qk + g.src[static_cast<size_t>(e)] * row + s.hy() + h * y, u, y);
        }
      }
    }
  });
  // V_B = Σ P_e Q_C over B's out-edges.
  cpu::parallel_for(s.n, mean_degree * s.hy(), [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      T* v = out + b * row + s.hy();
      for (int64_t j = g.src_offsets[static_cast<size_t>(b)];
           j < g.src_offsets[static_cast<size_t>(b) + 1]; ++j) {
        const int64_t e = g.by_src[static_cast<size_t>(j)], c = g.dst[static_cast<size_t>(e)];
        for (int64_t h = 0; h < s.heads; ++h) {
          const T pe = p[static_cast<size_t>(e * s.heads + h)];
          if (pe != T(0)) axpy(pe, qk + c * row + h * y, v + h * y, y);
        }
      }
    }
  });
}

template <class T>
void graph_core_vjp(const T* qk, const T* cot, const T* beta, const GraphIndex& g,
                    const CoreSizes& s, bool exclude_self, T* out) {
  const int64_t hy = s.hy(), row = 2 * hy, orow = 3 * hy, y = s.y;
  const int64_t e_total = static_cast<int64_t>(g.src.size());
  std::vector<T> p(static_cast<size_t>(e_total * s.heads)), sbar(p.size());
  std::fill(out, out + s.n * orow, T(0));
  const int64_t mean_degree = e_total / std::max<int64_t>(s.n, 1) + 1;
  // Per query C: P, P̄_e = Ū_C·K_B + V̄_B·Q_C, S̄, then Q̄_C = Σ P V̄_B + β R_C, R_C = Σ S̄ K_B.
  cpu::parallel_for(s.n, 6 * mean_degree * hy, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      const int64_t e0 = g.offsets[static_cast<size_t>(c)],
                    e1 = g.offsets[static_cast<size_t>(c) + 1];
      for (int64_t h = 0; h < s.heads; ++h) {
        edge_softmax(qk, beta, g, s, exclude_self, c, h, p.data());
        const T* q = qk + c * row + h * y;
        const T* ubar = cot + c * row + h * y;
        double mean = 0;
        for (int64_t e = e0; e < e1; ++e) {
          const size_t i = static_cast<size_t>(e * s.heads + h);
          if (p[i] == T(0)) {
            sbar[i] = T(0);
            continue;
          }
          const int64_t b = g.src[static_cast<size_t>(e)];
          const T pbar =
              dot(ubar, qk + b * row + hy + h * y, y) + dot(cot + b * row + hy + h * y, q, y);
          sbar[i] = pbar;  // P̄ for now
          mean += static_cast<double>(p[i]) * pbar;
        }
        T* qbar = out + c * orow + h * y;
        T* r = out + c * orow + 2 * hy + h * y;
        for (int64_t e = e0; e < e1; ++e) {
          const size_t i = static_cast<size_t>(e * s.heads + h);
          if (p[i] == T(0)) continue;
          sbar[i] = p[i] * (sbar[i] - static_cast<T>(mean));
          const int64_t b = g.src[static_cast<size_t>(e)];
          axpy(p[i], cot + b * row + hy + h * y, qbar, y);
          axpy(sbar[i], qk + b * row + hy + h * y, r, y);
        }
        axpy(beta[h], r, qbar, y);
      }
    }
  });
  // Per key B: K̄_B = Σ over its out-edges of P_e Ū_C + β S̄_e Q_C.
  cpu::parallel_for(s.n, 2 * mean_degree * hy, [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      T* kbar = out + b * orow + hy;
      for (int64_t j = g.src_offsets[static_cast<size_t>(b)];
           j < g.src_offsets[static_cast<size_t>(b) + 1]; ++j) {
        const int64_t e = g.by_src[static_cast<size_t>(j)], c = g.dst[static_cast<size_t>(e)];
        for (int64_t h = 0; h < s.heads; ++h) {
          const size_t i = static_cast<size_t>(e * s.heads + h);
          if (p[i] == T(0)) continue;
          axpy(p[i], cot + c * row + h * y, kbar + h * y, y);
          axpy(beta[h] * sbar[i], qk + c * row + h * y, kbar + h * y, y);
        }
      }
    }
  });
}

}  // namespace

void EnergyAttentionGraphCore::eval_cpu(const Tensors& in, Tensor& out) {
  out.allocate();
  const Tensor qk = in[0].contiguous(), beta = in[1].contiguous();
  const int64_t n = qk.shape(0);
  const CoreSizes s{n, heads_, heads_ > 0 ? qk.shape(1) / (2 * heads_) : 0};
  const GraphIndex g = graph_index(in[2], in[3], n, name());
  if (out.numel() == 0) return;
  dispatch_float(qk.dtype(), name(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    graph_core<T>(qk.data<T>(), beta.data<T>(), g, s, exclude_self_, out.data<T>());
  });
}

void EnergyAttentionGraphCoreVjp::eval_cpu(const Tensors& in, Tensor& out) {
  out.allocate();
  const Tensor qk = in[0].contiguous(), cot = in[1].contiguous(), beta = in[2].contiguous();
  const int64_t n = qk.shape(0);
  const CoreSizes s{n, heads_, heads_ > 0 ? qk.shape(1) / (2 * heads_) : 0};
  const GraphIndex g = graph_index(in[3], in[4], n, name());
  if (out.numel() == 0) return;
  dispatch_float(qk.dtype(), name(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    graph_core_vjp<T>(qk.data<T>(), cot.data<T>(), beta.data<T>(), g, s, exclude_self_,
                      out.data<T>());
  });
}

}  // namespace basin::prims
