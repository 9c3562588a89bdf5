// CUDA forward of the reduction family: one generic reduction kernel (a group of threads per
// output, combined along a fixed tree, optionally split across blocks for long reductions) run
// with a small accumulator functor per op, as the CPU driver does.
#include <cuda/std/limits>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <type_traits>
#include <vector>

#include "backends/cuda/common.cuh"
#include "backends/cuda/group_reduce.cuh"
#include "core/prims/reduce.h"

namespace basin::prims {
namespace {
using cuda::GroupLayout;
using cuda::kBlock;
using cuda::OffsetCalc;

// --- accumulator functors -----------------------------------------------------------------------
// Each provides Acc, init(), step(acc, v, o, r) (element v at position r of output o's reduced
// sub-space), combine(a, b) and finish(o, acc), as the CPU's fold functors do.

template <class T>
__device__ __forceinline__ bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    return v != v;
  } else {
    return false;
  }
}

/// Accumulator of sums and products: double for floating inputs, wrapping 64-bit unsigned
/// arithmetic for integers (the CPU's choice, so that results agree bit for bit on integers).
template <class T>
using WideAcc = std::conditional_t<std::is_floating_point_v<T>, double, uint64_t>;

template <class T>
struct SumOp {
  using Acc = WideAcc<T>;
  T* y;
  __device__ Acc init() const { return Acc(0); }
  __device__ Acc step(Acc a, T v, int64_t, int64_t) const { return a + static_cast<Acc>(v); }
  __device__ Acc combine(Acc a, Acc b) const { return a + b; }
  __device__ void finish(int64_t o, Acc a) const { y[o] = static_cast<T>(a); }
};

template <class T>
struct ProdOp {
  using Acc = WideAcc<T>;
  T* y;
  __device__ Acc init() const { return Acc(1); }
  __device__ Acc step(Acc a, T v, int64_t, int64_t) const { return a * static_cast<Acc>(v); }
  __device__ Acc combine(Acc a, Acc b) const { return a * b; }
  __device__ void finish(int64_t o, Acc a) const { y[o] = static_cast<T>(a); }
};

/// Identity of a maximum (Less = false) or minimum: ±inf for floats, so that a slice of
/// infinities reduces to itself.
template <bool Less, class T>
__device__ T extremum_init() {
  using Lim = ::cuda::std::numeric_limits<T>;
  if constexpr (Lim::has_infinity) {
    return Less ? Lim::infinity() : -Lim::infinity();
  } else {
    return Less ? Lim::max() : Lim::lowest();
  }
}

/// Maximum (Less = false) or minimum; a NaN wins, so that it propagates.
template <class T, bool Less>
struct ExtremumOp {
  using Acc = T;
  T* y;
  __device__ Acc init() const { return extremum_init<Less, T>(); }
  __device__ Acc step(Acc a, T v, int64_t, int64_t) const { return combine(a, v); }
  __device__ Acc combine(Acc a, Acc b) const { return (Less ? b < a : b > a) || is_nan(b) ? b : a; }
  __device__ void finish(int64_t o, Acc a) const { y[o] = a; }
};

/// Position of the first maximum (Less = false) or minimum, a NaN counting as the extreme. The
/// lanes see interleaved positions, so ties go to the smaller position rather than to the
/// earlier partial.
template <class T, bool Less>
struct ArgExtremumOp {
  struct Acc {
    T v;
    int64_t i;
  };
  int64_t* y;
  __device__ Acc init() const {
    return {extremum_init<Less, T>(), ::cuda::std::numeric_limits<int64_t>::max()};
  }
  __device__ Acc step(Acc a, T v, int64_t, int64_t r) const { return combine(a, {v, r}); }
  __device__ Acc combine(Acc a, Acc b) const {
    const bool a_nan = is_nan(a.v), b_nan = is_nan(b.v);
    if (a_nan != b_nan) return a_nan ? a : b;
    if (!a_nan && a.v != b.v) return (Less ? b.v < a.v : b.v > a.v) ? b : a;
    return b.i < a.i ? b : a;
  }
  __device__ void finish(int64_t o, Acc a) const { y[o] = a.i; }
};

/// Second pass of logsumexp: the sum of exp(x - m) with m the first pass's maximum, shifted by 0
/// instead where m is not finite (the finish then gives m itself: -inf, +inf or NaN).
template <class T>
struct SumExpOp {
  using Acc = double;
  const T* m;
  T* y;
  __device__ Acc init() const { return 0.0; }
  __device__ Acc step(Acc a, T v, int64_t o, int64_t) const {
    const T mo = m[o];
    const T shift = std::isfinite(mo) ? mo : T(0);
    return a + static_cast<double>(std::exp(static_cast<T>(v - shift)));
  }
  __device__ Acc combine(Acc a, Acc b) const { return a + b; }
  __device__ void finish(int64_t o, Acc a) const {
    const T mo = m[o];
    y[o] = std::isfinite(mo) ? static_cast<T>(mo + std::log(a)) : mo;
  }
};

// --- kernels ------------------------------------------------------------------------------------

/// Folds output o's reduced positions [blockIdx.y * chunk, + chunk) (o = the block's group
/// index): the lanes of a group stride through them, then combine along group_reduce's tree.
/// Writes op.finish, or the partial accumulator to partial[blockIdx.y * n_out + o] when the
/// reduction is split across blocks.
template <class T, class Op>
__global__ void reduce_kernel(const T* x, OffsetCalc<1> kept, OffsetCalc<1> red, int64_t n_out,
                              int64_t n_red, int64_t chunk, GroupLayout g, Op op,
                              typename Op::Acc* partial) {
  using Acc = typename Op::Acc;
  const int64_t o = static_cast<int64_t>(blockIdx.x) * g.groups + g.group();
  const int64_t begin = static_cast<int64_t>(blockIdx.y) * chunk;
  const int64_t end = begin + chunk < n_red ? begin + chunk : n_red;
  Acc acc = op.init();
  if (o < n_out) {  // threads past the last output still take part in the tree
    const T* base = x + cuda::offset_of(kept, o);
    for (int64_t r = begin + g.lane(); r < end; r += g.lanes) {
      acc = op.step(acc, base[cuda::offset_of(red, r)], o, r);
    }
  }
  acc = cuda::group_reduce(acc, cuda::group_scratch<Acc>(), g, op);
  if (o < n_out && g.lane() == 0) {
    if (partial) {
      partial[static_cast<int64_t>(blockIdx.y) * n_out + o] = acc;
    } else {
      op.finish(o, acc);
    }
  }
}

/// Combines the `splits` partial accumulators of each output in order and finishes it.
template <class Op>
__global__ void combine_partials_kernel(const typename Op::Acc* partial, int64_t n_out,
                                        int64_t splits, Op op) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < n_out;
       o += stride) {
    typename Op::Acc acc = partial[o];
    for (int64_t s = 1; s < splits; ++s) acc = op.combine(acc, partial[s * n_out + o]);
    op.finish(o, acc);
  }
}

// --- launchers ----------------------------------------------------------------------------------

/// Blocks worth having in flight before a long reduction is split across blocks (a few per
/// multiprocessor on current GPUs); a constant rather than a device query, so that the split,
/// and with it the rounding of float sums, is the same on every GPU.
constexpr int64_t kTargetBlocks = 512;
/// Fewest elements each thread of a split reduction should fold.
constexpr int64_t kMinPerThread = 64;

/// Reduces x over `axes` (sorted, normalised) into the n_out outputs of op, numbered in
/// row-major order over x's kept dimensions.
template <class T, class Op>
void reduce(const Tensor& x, const std::vector<int>& axes, int64_t n_out, const Op& op) {
  using Acc = typename Op::Acc;
  if (n_out == 0) return;
  BASIN_CUDA_CHECK(cudaSetDevice(x.device().index));
  std::vector<bool> reduced(static_cast<size_t>(x.ndim()), false);
  for (int a : axes) reduced[static_cast<size_t>(a)] = true;
  Shape kept_shape, kept_strides, red_shape, red_strides;
  for (int d = 0; d < x.ndim(); ++d) {
    (reduced[d] ? red_shape : kept_shape).push_back(x.shape()[d]);
    (reduced[d] ? red_strides : kept_strides).push_back(x.strides()[d]);
  }
  const int64_t n_red = numel(red_shape);
  const OffsetCalc<1> kept = cuda::make_offset_calc<1>(kept_shape, {kept_strides});
  const OffsetCalc<1> red = cuda::make_offset_calc<1>(red_shape, {red_strides});
  const int64_t kept_step = std::abs(kept.strides[0][kept.ndim - 1]);
  const int64_t red_step = std::abs(red.strides[0][red.ndim - 1]);
  // Consecutive outputs closer in memory than consecutive reduced elements (a reduction over outer
  // dimensions): consecutive threads take consecutive outputs, so their reads coalesce.
  const GroupLayout g = cuda::choose_layout(n_out, n_red, kept_step < red_step);
  const int64_t out_blocks = (n_out + g.groups - 1) / g.groups;
  int64_t splits = 1;
  if (out_blocks < kTargetBlocks && n_red >= 2 * g.lanes * kMinPerThread) {
    splits =
        std::min((kTargetBlocks + out_blocks - 1) / out_blocks, n_red / (g.lanes * kMinPerThread));
  }
  const int64_t chunk = (n_red + splits - 1) / splits;
  const dim3 grid(static_cast<unsigned>(out_blocks), static_cast<unsigned>(splits));
  const T* xp = static_cast<const T*>(x.raw_data());
  if (splits == 1) {
    reduce_kernel<<<grid, kBlock, 0, cuda::stream()>>>(xp, kept, red, n_out, n_red, chunk, g, op,
                                                       static_cast<Acc*>(nullptr));
    BASIN_CUDA_CHECK_LAUNCH();
    return;
  }
  // The partials' buffer goes back to the caching allocator on return; work queued later on the
  // same stream runs after these kernels, so reusing it is safe.
  const auto partial = allocate(static_cast<size_t>(splits * n_out) * sizeof(Acc), x.device());
  Acc* pp = static_cast<Acc*>(partial->data);
  reduce_kernel<<<grid, kBlock, 0, cuda::stream()>>>(xp, kept, red, n_out, n_red, chunk, g, op, pp);
  BASIN_CUDA_CHECK_LAUNCH();
  combine_partials_kernel<<<cuda::grid_for(n_out), kBlock, 0, cuda::stream()>>>(pp, n_out, splits,
                                                                                op);
  BASIN_CUDA_CHECK_LAUNCH();
}

template <class T, bool Less>
void arg_extremum(const Tensor& x, int axis, Tensor& out) {
  out.allocate();
  reduce<T>(x, {axis}, out.numel(), ArgExtremumOp<T, Less>{static_cast<int64_t*>(out.raw_data())});
}

}  // namespace

void Sum::eval_cuda(const Tensors& in, Tensor& out) {
  out.allocate();
  dispatch_numeric(in[0].dtype(), "Sum", [&](auto tag) {
    using T = typename decltype(tag)::type;
    reduce<T>(in[0], axes_, out.numel(), SumOp<T>{static_cast<T*>(out.raw_data())});
  });
}

void Prod::eval_cuda(const Tensors& in, Tensor& out) {
  out.allocate();
  dispatch_numeric(in[0].dtype(), "Prod", [&](auto tag) {
    using T = typename decltype(tag)::type;
    reduce<T>(in[0], axes_, out.numel(), ProdOp<T>{static_cast<T*>(out.raw_data())});
  });
}

void Max::eval_cuda(const Tensors& in, Tensor& out) {
  out.allocate();
  dispatch_numeric(in[0].dtype(), "Max", [&](auto tag) {
    using T = typename decltype(tag)::type;
    reduce<T>(in[0], axes_, out.numel(), ExtremumOp<T, false>{static_cast<T*>(out.raw_data())});
  });
}

void Min::eval_cuda(const Tensors& in, Tensor& out) {
  out.allocate();
  dispatch_numeric(in[0].dtype(), "Min", [&](auto tag) {
    using T = typename decltype(tag)::type;
    reduce<T>(in[0], axes_, out.numel(), ExtremumOp<T, true>{static_cast<T*>(out.raw_data())});
  });
}

void ArgMax::eval_cuda(const Tensors& in, Tensor& out) {
  dispatch_numeric(in[0].dtype(), "ArgMax", [&](auto tag) {
    arg_extremum<typename decltype(tag)::type, false>(in[0], axis_, out);
  });
}

void ArgMin::eval_cuda(const Tensors& in, Tensor& out) {
  dispatch_numeric(in[0].dtype(), "ArgMin", [&](auto tag) {
    arg_extremum<typename decltype(tag)::type, true>(in[0], axis_, out);
  });
}

// Two reductions over x: the maximum, then the shifted sum of exponentials (finished in place).
void LogSumExp::eval_cuda(const Tensors& in, Tensor& out) {
  out.allocate();
  dispatch_float(in[0].dtype(), "LogSumExp", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t n = out.numel();
    // An empty sub-space gets the maximum's identity, -inf: the log of an empty sum.
    const auto m = allocate(static_cast<size_t>(n) * sizeof(T), out.device());
    T* mp = static_cast<T*>(m->data);
    reduce<T>(in[0], axes_, n, ExtremumOp<T, false>{mp});
    reduce<T>(in[0], axes_, n, SumExpOp<T>{mp, static_cast<T*>(out.raw_data())});
  });
}

}  // namespace basin::prims
