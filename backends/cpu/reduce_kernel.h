// The CPU reduction driver shared by the reduction and softmax families: a canonical layout of
// kept and reduced dimensions, and one templated driver that folds each output's reduced
// sub-space with a small accumulator functor, in the layout that suits the input's strides.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include <omp.h>

#include "backends/cpu/strided.h"
#include "backends/cpu/vec_math.h"
#include "core/tensor.h"

namespace basin::cpu {

/// True for a floating NaN; integers and bools are never NaN (and `v != v` would warn on them).
template <class T>
[[gnu::always_inline]] inline bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::isnan(v);
  } else {
    return false;
  }
}

/// The running maximum (Less = false) or minimum (Less = true) after seeing v; a NaN wins, so
/// that it propagates to the result.
template <bool Less, class T>
[[gnu::always_inline]] inline T extremum_step(T a, T v) {
  // Bitwise | rather than ||: no branch, so the lanes vectorise to compare-and-blend.
  const bool take = (Less ? v < a : v > a) | is_nan(v);
  return take ? v : a;
}

/// Identity of a maximum (Less = false) or minimum: ±inf for floats, so that a slice of
/// infinities reduces to itself.
template <bool Less, class T>
inline T extremum_init() {
  using Lim = std::numeric_limits<T>;
  if constexpr (Lim::has_infinity) {
    return Less ? Lim::infinity() : -Lim::infinity();
  } else {
    return Less ? Lim::max() : Lim::lowest();
  }
}

/// Fold functor (see reduce) of a maximum or minimum, writing to y.
template <class T, bool Less>
struct ExtremumFold {
  using Acc = T;
  static constexpr int lanes = 16;
  T* y;
  Acc init() const { return extremum_init<Less, T>(); }
  [[gnu::always_inline]] Acc step(Acc a, T v, int64_t, int64_t) const {
    return extremum_step<Less>(a, v);
  }
  [[gnu::always_inline]] Acc combine(Acc a, Acc b) const { return extremum_step<Less>(a, b); }
  void finish(int64_t o, Acc a) const { y[o] = a; }
};

/// Accumulator type of sums and products: double for floating inputs (accurate and no slower on
/// streamed data), wrapping 64-bit unsigned arithmetic for integers (no signed-overflow UB).
template <class T>
using WideAcc = std::conditional_t<std::is_floating_point_v<T>, double, uint64_t>;

/// x's dimensions split into kept and reduced ones, size-1 dimensions dropped, sorted by input
/// stride (outermost first) so the innermost loop runs over the smallest stride, and merged where
/// both the input and the output walk them as one dimension.
struct ReduceLayout {
  Shape kept, kept_x, kept_out;  // kept dimensions: sizes, input strides, output strides
  Shape red, red_x, red_out;     // reduced dimensions: sizes, input strides, output strides
  bool inner_reduced = true;     // the innermost dimension is a reduced one
  int64_t n_kept = 1, n_red = 1;

  /// `out_strides` are the output's strides per input dimension (0 for the reduced dimensions of
  /// a reduction); `reduced[d]` marks the reduced dimensions.
  ReduceLayout(const Shape& shape, const Shape& x_strides, const Shape& out_strides,
               const std::vector<bool>& reduced) {
    struct Dim {
      int64_t n, xs, os;
      bool red;
    };
    std::vector<Dim> dims;
    for (size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] != 1) dims.push_back({shape[d], x_strides[d], out_strides[d], reduced[d]});
    }
    std::stable_sort(dims.begin(), dims.end(),
                     [](const Dim& a, const Dim& b) { return a.xs > b.xs; });
    std::vector<Dim> merged;
    for (const Dim& d : dims) {
      if (!merged.empty()) {
        Dim& m = merged.back();
        if (m.red == d.red && m.xs == d.xs * d.n && m.os == d.os * d.n) {
          m.n *= d.n;
          m.xs = d.xs;
          m.os = d.os;
          continue;
        }
      }
      merged.push_back(d);
    }
    for (const Dim& d : merged) {
      (d.red ? red : kept).push_back(d.n);
      (d.red ? red_x : kept_x).push_back(d.xs);
      (d.red ? red_out : kept_out).push_back(d.os);
    }
    inner_reduced = merged.empty() || merged.back().red;
    n_kept = numel(kept);
    n_red = numel(red);
  }
};

/// A multi-index over the first `nd` dimensions of `shape` starting at flat (row-major) position
/// `start`, tracking the offset it reaches through `strides`. Allocation-free for up to 12
/// dimensions, since one is made per output row.
class Walker {
 public:
  Walker(const Shape& shape, const Shape& strides, int64_t start, int nd = -1)
      : shape_(shape.data()),
        strides_(strides.data()),
        nd_(nd < 0 ? static_cast<int>(shape.size()) : nd) {
    if (nd_ > static_cast<int>(small_.size())) {
      big_.resize(static_cast<size_t>(nd_));
      index_ = big_.data();
    }
    for (int d = nd_ - 1; d >= 0; --d) {
      index_[d] = start % shape_[d];
      start /= shape_[d];
      offset += index_[d] * strides_[d];
    }
  }
  Walker(const Walker&) = delete;
  Walker& operator=(const Walker&) = delete;

  void next() {
    for (int d = nd_ - 1; d >= 0; --d) {
      offset += strides_[d];
      if (++index_[d] < shape_[d]) return;
      offset -= index_[d] * strides_[d];
      index_[d] = 0;
    }
  }

  int64_t offset = 0;

 private:
  const int64_t* shape_;
  const int64_t* strides_;
  int nd_;
  std::array<int64_t, 12> small_{};
  std::vector<int64_t> big_;
  int64_t* index_ = small_.data();
};

/// Offset reached through `strides` at flat position `i` of `shape`.
inline int64_t offset_of(const Shape& shape, const Shape& strides, int64_t i) {
  int64_t off = 0;
  for (size_t d = shape.size(); d-- > 0;) {
    off += (i % shape[d]) * strides[d];
    i /= shape[d];
  }
  return off;
}

inline int max_threads() { return omp_in_parallel() ? 1 : omp_get_max_threads(); }

/// Folds `n` elements from `p` (stride `s`) into one accumulator. A contiguous run is folded in
/// blocks with Op::lanes independent accumulators, which the compiler vectorises and which keeps
/// float sums accurate (blocked summation).
template <class T, class Op>
typename Op::Acc fold_run(const Op& op, const T* p, int64_t n, int64_t s, int64_t o, int64_t r0) {
  using Acc = typename Op::Acc;
  constexpr int L = Op::lanes;
  constexpr int64_t kBlock = 64 * L;
  Acc total = op.init();
  if (s != 1 || n < L) {
    for (int64_t j = 0; j < n; ++j) total = op.step(total, p[j * s], o, r0 + j);
    return total;
  }
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    Acc lane[L];
    for (int k = 0; k < L; ++k) lane[k] = op.init();
    const int64_t full = b + (e - b) / L * L;
    for (int64_t j = b; j < full; j += L) {
      // simd keeps GCC from unrolling the lanes into scalar code before vectorising them.
#pragma omp simd
      for (int k = 0; k < L; ++k) lane[k] = op.step(lane[k], p[j + k], o, r0 + j + k);
    }
    for (int64_t j = full; j < e; ++j) lane[0] = op.step(lane[0], p[j], o, r0 + j);
    for (int w = L / 2; w > 0; w /= 2) {
      for (int k = 0; k < w; ++k) lane[k] = op.combine(lane[k], lane[k + w]);
    }
    total = op.combine(total, lane[0]);
  }
  return total;
}

/// Whether the column layout may fold four rows per pass over the accumulators (Op::fuse_rows,
/// true unless an op says otherwise: for some the fused loop does not vectorise).
template <class Op>
constexpr bool fuses_rows() {
  if constexpr (requires { Op::fuse_rows; }) {
    return Op::fuse_rows;
  } else {
    return true;
  }
}

/// Most columns folded together in the column layout. Wide, so that a typical row is read whole
/// and in order (short strided pieces of many rows defeat the prefetcher and the TLB), yet the
/// accumulators stay in L2.
inline constexpr int64_t kColumnBlock = 4096;
/// Fewest elements worth giving their own thread when the outputs are too few.
inline constexpr int64_t kMinChunk = 16384;

/// Reduces x over `axes` (sorted, normalised). The output is the contiguous tensor of x's kept
/// dimensions; output element o receives op.finish(o, acc). Op provides:
///   using Acc; static constexpr int lanes;
///   Acc init() const;                            // identity
///   Acc step(Acc a, T v, int64_t o, int64_t r) const;  // fold element v of output o; r is its
///                                                // position in the reduced sub-space when that
///                                                // is one dimension (arg-reductions)
///   Acc combine(Acc a, Acc b) const;             // merge partials; a holds the earlier ones
///   void finish(int64_t o, Acc a) const;
///   static constexpr bool fuse_rows = false;    // optional, see fuses_rows
/// step and combine should be [[gnu::always_inline]]: the loops only vectorise with them inlined,
/// and GCC's heuristics decline to inline them into the driver's large loops.
/// Layouts: reducing the innermost dimension folds each output's runs with vector lanes
/// (parallel over outputs); reducing outer dimensions of a kept innermost one folds whole blocks
/// of columns at once (parallel over column blocks). When there are too few outputs to occupy
/// the threads, the reduced sub-space is split too and the partial accumulators combined.
template <class T, class Op>
void reduce(const Tensor& x, const std::vector<int>& axes, const Op& op) {
  using Acc = typename Op::Acc;
  const int nd = x.ndim();
  std::vector<bool> reduced(static_cast<size_t>(nd), false);
  for (int a : axes) reduced[static_cast<size_t>(a)] = true;
  // Output strides per input dimension: contiguous over the kept dimensions, 0 on reduced ones.
  Shape out_strides(static_cast<size_t>(nd), 0);
  int64_t n_out = 1, n_red = 1;
  for (int d = nd - 1; d >= 0; --d) {
    if (reduced[d]) {
      n_red *= x.shape()[d];
    } else {
      out_strides[d] = n_out;
      n_out *= x.shape()[d];
    }
  }
  if (n_out == 0) return;
  if (n_red == 0) {
    parallel_for(n_out, 1, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) op.finish(o, op.init());
    });
    return;
  }
  const ReduceLayout L(x.shape(), x.strides(), out_strides, reduced);
  const T* base = static_cast<const T*>(x.raw_data());
  const int threads = max_threads();
  const bool parallel = n_out * n_red >= kParallelGrain && threads > 1;
  // The reduced sub-space is split into chunks only when `units` output tasks (each of `width`
  // outputs) cannot occupy the threads (few outputs, e.g. a full reduction).
  auto chunk_count = [&](int64_t units, int64_t width) -> int64_t {
    if (!parallel || units >= threads) return 1;
    const int64_t want = (threads + units - 1) / units;
    return std::max<int64_t>(1, std::min<int64_t>(want, n_red * width / kMinChunk));
  };

  if (L.inner_reduced) {
    // Row layout: each output folds runs of the innermost reduced dimension.
    const int64_t n_in = L.red.empty() ? 1 : L.red.back();
    const int64_t s_in = L.red.empty() ? 0 : L.red_x.back();
    const int row_dims = std::max(0, static_cast<int>(L.red.size()) - 1);
    // Folds reduced positions [rb, re) of the output at `o` whose elements start at `p`.
    auto fold = [&](const T* p, int64_t o, int64_t rb, int64_t re) {
      if (row_dims == 0) return fold_run(op, p + rb * s_in, re - rb, s_in, o, rb);
      Acc acc = op.init();
      Walker rows(L.red, L.red_x, rb / n_in, row_dims);
      int64_t j = rb % n_in;
      for (int64_t pos = rb; pos < re; rows.next()) {
        const int64_t len = std::min(n_in - j, re - pos);
        acc = op.combine(acc, fold_run(op, p + rows.offset + j * s_in, len, s_in, o, pos));
        pos += len;
        j = 0;
      }
      return acc;
    };
    const int64_t chunks = chunk_count(L.n_kept, 1);
    if (chunks == 1) {
      parallel_for(L.n_kept, parallel ? n_red : 1, [&](int64_t b, int64_t e) {
        Walker kx(L.kept, L.kept_x, b), ko(L.kept, L.kept_out, b);
        for (int64_t k = b; k < e; ++k, kx.next(), ko.next()) {
          op.finish(ko.offset, fold(base + kx.offset, ko.offset, 0, n_red));
        }
      });
      return;
    }
    std::unique_ptr<Acc[]> partial(new Acc[static_cast<size_t>(chunks * L.n_kept)]);
    parallel_for(chunks * L.n_kept, kParallelGrain, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const int64_t c = t / L.n_kept, k = t % L.n_kept;
        partial[static_cast<size_t>(t)] =
            fold(base + offset_of(L.kept, L.kept_x, k), offset_of(L.kept, L.kept_out, k),
                 n_red * c / chunks, n_red * (c + 1) / chunks);
      }
    });
    for (int64_t k = 0; k < L.n_kept; ++k) {
      Acc acc = partial[static_cast<size_t>(k)];
      for (int64_t c = 1; c < chunks; ++c) {
        acc = op.combine(acc, partial[static_cast<size_t>(c * L.n_kept + k)]);
      }
      op.finish(offset_of(L.kept, L.kept_out, k), acc);
    }
    return;
  }

  // Column layout: the innermost dimension is kept; a block of its columns folds whole rows.
  const int64_t n_c = L.kept.back(), cs = L.kept_x.back(), co = L.kept_out.back();
  const int outer_dims = static_cast<int>(L.kept.size()) - 1;
  const int64_t bw = std::min(n_c, kColumnBlock);
  const int64_t n_blocks = (n_c + bw - 1) / bw;
  const int64_t units = L.n_kept / n_c * n_blocks;
  // Where a unit (one column block of one outer position) starts: input offset, output offset
  // and width.
  struct Unit {
    int64_t x, o, width;
  };
  auto unit_at = [&](int64_t u) {
    const int64_t outer = u / n_blocks, c0 = (u % n_blocks) * bw;
    const int64_t x0 = outer_dims == 0 ? 0 : Walker(L.kept, L.kept_x, outer, outer_dims).offset;
    const int64_t o0 = outer_dims == 0 ? 0 : Walker(L.kept, L.kept_out, outer, outer_dims).offset;
    return Unit{x0 + c0 * cs, o0 + c0 * co, std::min(bw, n_c - c0)};
  };
  // Folds reduced positions [rb, re) of a unit into acc[0, width). Four rows go into each pass
  // over the accumulators, which cuts their load/store traffic (the bottleneck once they
  // outgrow L1) by four.
  auto fold_block = [&](const Unit& un, int64_t rb, int64_t re, Acc* acc) {
    // A local copy: its fields provably do not alias acc[], so their loads leave the loop.
    const Op f = op;
    for (int64_t c = 0; c < un.width; ++c) acc[c] = f.init();
    const T* base_u = base + un.x;
    const int64_t w = un.width, o = un.o;
    Walker rows(L.red, L.red_x, rb);
    int64_t r = rb;
    if (cs == 1 && co == 1) {
      if constexpr (fuses_rows<Op>()) {
        for (; r + 4 <= re; r += 4) {
          const T* p0 = base_u + rows.offset;
          rows.next();
          const T* p1 = base_u + rows.offset;
          rows.next();
          const T* p2 = base_u + rows.offset;
          rows.next();
          const T* p3 = base_u + rows.offset;
          rows.next();
#pragma omp simd
          for (int64_t c = 0; c < w; ++c) {
            Acc a = f.step(acc[c], p0[c], o + c, r);
            a = f.step(a, p1[c], o + c, r + 1);
            a = f.step(a, p2[c], o + c, r + 2);
            acc[c] = f.step(a, p3[c], o + c, r + 3);
          }
        }
      }
      for (; r < re; ++r, rows.next()) {
        const T* p = base_u + rows.offset;
#pragma omp simd
        for (int64_t c = 0; c < w; ++c) acc[c] = f.step(acc[c], p[c], o + c, r);
      }
      return;
    }
    for (; r < re; ++r, rows.next()) {
      const T* p = base_u + rows.offset;
      for (int64_t c = 0; c < w; ++c) acc[c] = f.step(acc[c], p[c * cs], o + c * co, r);
    }
  };
  const int64_t chunks = chunk_count(units, bw);
  if (chunks == 1) {
    parallel_for(units, parallel ? n_red * bw : 1, [&](int64_t b, int64_t e) {
      std::unique_ptr<Acc[]> acc(new Acc[static_cast<size_t>(bw)]);
      for (int64_t u = b; u < e; ++u) {
        const Unit un = unit_at(u);
        fold_block(un, 0, n_red, acc.get());
        for (int64_t c = 0; c < un.width; ++c) op.finish(un.o + c * co, acc[c]);
      }
    });
    return;
  }
  // Partial accumulators: bw slots per unit per chunk.
  const int64_t slots = units * bw;
  std::unique_ptr<Acc[]> partial(new Acc[static_cast<size_t>(chunks * slots)]);
  parallel_for(chunks * units, kParallelGrain, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t c = t / units, u = t % units;
      fold_block(unit_at(u), n_red * c / chunks, n_red * (c + 1) / chunks,
                 partial.get() + c * slots + u * bw);
    }
  });
  parallel_for(units, chunks * bw, [&](int64_t b, int64_t e) {
    for (int64_t u = b; u < e; ++u) {
      const Unit un = unit_at(u);
      for (int64_t col = 0; col < un.width; ++col) {
        Acc acc = partial[static_cast<size_t>(u * bw + col)];
        for (int64_t c = 1; c < chunks; ++c) {
          acc = op.combine(acc, partial[static_cast<size_t>(c * slots + u * bw + col)]);
        }
        op.finish(un.o + col * co, acc);
      }
    }
  });
}

}  // namespace basin::cpu
