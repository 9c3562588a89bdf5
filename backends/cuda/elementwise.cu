// CUDA forward of the elementwise family: one n-ary map kernel (unary, binary, where and the
// dtype cast) with a vectorised contiguous form and a strided/broadcast form; the math comes
// from the functors shared with the CPU.
#include <cstdint>
#include <type_traits>
#include <utility>

#include "backends/cuda/common.cuh"
#include "backends/elementwise_functors.h"
#include "core/prims/elementwise.h"

namespace basin::prims {
namespace {
using cuda::kBlock;
using cuda::OffsetCalc;

// --- kernels ------------------------------------------------------------------------------------

/// N consecutive elements read or written as one aligned access.
template <class T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

/// Elements per thread in the contiguous kernel: one 16-byte access of the widest operand.
template <class Out, class... In>
constexpr int pack_width() {
  size_t widest = sizeof(Out);
  ((widest = sizeof(In) > widest ? sizeof(In) : widest), ...);
  return static_cast<int>(16 / widest);
}

template <int N, class Out, class F, class... In>
__device__ __forceinline__ void map_pack(const F& f, Out* y, const Pack<In, N>&... x) {
  Pack<Out, N> r;
#pragma unroll
  for (int k = 0; k < N; ++k) r.v[k] = static_cast<Out>(f(x.v[k]...));
  *reinterpret_cast<Pack<Out, N>*>(y) = r;
}

/// y[i] = f(x[i]...) over n contiguous elements, N per thread (every pointer aligned to a pack);
/// the first n % N threads also take the tail.
template <int N, class Out, class F, class... In>
__global__ void map_contiguous_kernel(int64_t n, F f, Out* __restrict__ y,
                                      const In* __restrict__... x) {
  const int64_t packs = n / N;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t p = first; p < packs; p += stride) {
    map_pack<N>(f, y + p * N, reinterpret_cast<const Pack<In, N>*>(x)[p]...);
  }
  const int64_t i = packs * N + first;
  if (i < n) y[i] = static_cast<Out>(f(x[i]...));
}

template <class Out, class F, class... In, size_t... Is>
__device__ __forceinline__ void map_at(const F& f, const int64_t* off, std::index_sequence<Is...>,
                                       Out* y, const In*... x) {
  y[off[0]] = static_cast<Out>(f(x[off[Is + 1]]...));
}

/// y = f(x...) over n positions of the output's shape; `calc` maps each to the offsets of y and
/// of every input (0 strides along an input's broadcast dimensions).
template <class Out, class F, class... In>
__global__ void map_strided_kernel(int64_t n, OffsetCalc<1 + sizeof...(In)> calc, F f, Out* y,
                                   const In*... x) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    int64_t off[1 + sizeof...(In)];
    calc.offsets(i, off);
    map_at(f, off, std::index_sequence_for<In...>{}, y, x...);
  }
}

/// The dtype cast of AsType.
template <class Out>
struct CastTo {
  template <class In>
  BASIN_HD Out operator()(In v) const {
    return static_cast<Out>(v);
  }
};

/// where(cond, a, b).
struct Select {
  template <class T>
  BASIN_HD T operator()(bool c, T a, T b) const {
    return c ? a : b;
  }
};

// --- launchers ----------------------------------------------------------------------------------

/// Whether `p` may be read or written `bytes` at a time (views with an offset may not be).
bool aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

/// Launches the vectorised kernel when every operand is contiguous in out's shape and aligned to
/// a pack, the strided one otherwise.
template <class Out, class... In, class F, size_t... Is>
void map_impl(const F& f, const Tensor& out, const Tensors& x, std::index_sequence<Is...>) {
  constexpr int N = pack_width<Out, In...>();
  const int64_t n = out.numel();
  Out* y = static_cast<Out*>(out.raw_data());
  const bool contiguous =
      out.is_contiguous() && ((x[Is].is_contiguous() && x[Is].shape() == out.shape()) && ...);
  const bool packed =
      aligned(y, sizeof(Out) * N) && (aligned(x[Is].raw_data(), sizeof(In) * N) && ...);
  if (contiguous && packed) {
    map_contiguous_kernel<N><<<cuda::grid_for(n / N > 0 ? n / N : 1), kBlock, 0, cuda::stream()>>>(
        n, f, y, static_cast<const In*>(x[Is].raw_data())...);
  } else {
    const auto calc = cuda::make_offset_calc<1 + sizeof...(In)>(
        out.shape(), {out.strides(), cuda::broadcast_strides(x[Is], out.shape())...});
    map_strided_kernel<<<cuda::grid_for(n), kBlock, 0, cuda::stream()>>>(
        n, calc, f, y, static_cast<const In*>(x[Is].raw_data())...);
  }
  BASIN_CUDA_CHECK_LAUNCH();
}

/// out = f(x...) elementwise, the inputs broadcast to out's shape. Allocates out unless it already
/// has a buffer (AsType writing in place), whose layout is then kept.
template <class Out, class... In, class F>
void launch_map(const F& f, Tensor& out, const Tensors& x) {
  if (!out.storage()) out.allocate();
  if (out.numel() == 0) return;
  BASIN_CUDA_CHECK(cudaSetDevice(out.device().index));
  map_impl<Out, In...>(f, out, x, std::index_sequence_for<In...>{});
}

}  // namespace

#define BASIN_UNARY_CUDA(Name, dispatcher)               \
  void Name::eval_cuda(const Tensors& in, Tensor& out) { \
    dispatcher(in[0].dtype(), #Name, [&](auto tag) {     \
      using T = typename decltype(tag)::type;            \
      launch_map<T, T>(fn::Name{}, out, in);             \
    });                                                  \
  }

BASIN_UNARY_CUDA(Neg, dispatch_numeric)
BASIN_UNARY_CUDA(Abs, dispatch_numeric)
BASIN_UNARY_CUDA(Sign, dispatch_numeric)
BASIN_UNARY_CUDA(Square, dispatch_numeric)
BASIN_UNARY_CUDA(Relu, dispatch_numeric)
BASIN_UNARY_CUDA(Exp, dispatch_float)
BASIN_UNARY_CUDA(Log, dispatch_float)
BASIN_UNARY_CUDA(Log1p, dispatch_float)
BASIN_UNARY_CUDA(Expm1, dispatch_float)
BASIN_UNARY_CUDA(Sqrt, dispatch_float)
BASIN_UNARY_CUDA(Rsqrt, dispatch_float)
BASIN_UNARY_CUDA(Sin, dispatch_float)
BASIN_UNARY_CUDA(Cos, dispatch_float)
BASIN_UNARY_CUDA(Tanh, dispatch_float)
BASIN_UNARY_CUDA(Sigmoid, dispatch_float)
BASIN_UNARY_CUDA(Erf, dispatch_float)
BASIN_UNARY_CUDA(Softplus, dispatch_float)
#undef BASIN_UNARY_CUDA

void LogicalNot::eval_cuda(const Tensors& in, Tensor& out) {
  launch_map<bool, bool>(fn::LogicalNot{}, out, in);
}

void PowScalar::eval_cuda(const Tensors& in, Tensor& out) {
  dispatch_float(in[0].dtype(), "PowScalar", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_map<T, T>(fn::PowScalar{p_}, out, in);
  });
}

void Elu::eval_cuda(const Tensors& in, Tensor& out) {
  dispatch_float(in[0].dtype(), "Elu", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_map<T, T>(fn::Elu{alpha_}, out, in);
  });
}

#define BASIN_BINARY_CUDA(Name, dispatcher, Out)                       \
  void Name::eval_cuda(const Tensors& in, Tensor& out) {               \
    dispatcher(in[0].dtype(), #Name, [&](auto tag) {                   \
      using T = typename decltype(tag)::type;                          \
      using O = std::conditional_t<std::is_same_v<Out, void>, T, Out>; \
      launch_map<O, T, T>(fn::Name{}, out, in);                        \
    });                                                                \
  }

BASIN_BINARY_CUDA(Add, dispatch_numeric, void)
BASIN_BINARY_CUDA(Sub, dispatch_numeric, void)
BASIN_BINARY_CUDA(Mul, dispatch_numeric, void)
BASIN_BINARY_CUDA(Div, dispatch_numeric, void)
BASIN_BINARY_CUDA(Pow, dispatch_float, void)
BASIN_BINARY_CUDA(Maximum, dispatch_numeric, void)
BASIN_BINARY_CUDA(Minimum, dispatch_numeric, void)
BASIN_BINARY_CUDA(Atan2, dispatch_float, void)
BASIN_BINARY_CUDA(Equal, dispatch_all, bool)
BASIN_BINARY_CUDA(NotEqual, dispatch_all, bool)
BASIN_BINARY_CUDA(Less, dispatch_all, bool)
BASIN_BINARY_CUDA(LessEqual, dispatch_all, bool)
BASIN_BINARY_CUDA(Greater, dispatch_all, bool)
BASIN_BINARY_CUDA(GreaterEqual, dispatch_all, bool)
#undef BASIN_BINARY_CUDA

#define BASIN_LOGICAL_CUDA(Name)                         \
  void Name::eval_cuda(const Tensors& in, Tensor& out) { \
    launch_map<bool, bool, bool>(fn::Name{}, out, in);   \
  }
BASIN_LOGICAL_CUDA(LogicalAnd)
BASIN_LOGICAL_CUDA(LogicalOr)
BASIN_LOGICAL_CUDA(LogicalXor)
#undef BASIN_LOGICAL_CUDA

void Where::eval_cuda(const Tensors& in, Tensor& out) {
  dispatch_all(out.dtype(), "Where", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_map<T, bool, T, T>(Select{}, out, in);
  });
}

void AsType::eval_cuda(const Tensors& in, Tensor& out) {
  const Tensor& x = in[0];
  if (!out.storage()) out.allocate();
  if (x.dtype() == out.dtype() && x.is_contiguous() && out.is_contiguous() &&
      x.shape() == out.shape()) {
    if (out.raw_data() != x.raw_data() && out.nbytes() > 0) {
      BASIN_CUDA_CHECK(cudaMemcpyAsync(out.raw_data(), x.raw_data(), out.nbytes(),
                                       cudaMemcpyDeviceToDevice, cuda::stream()));
    }
    return;
  }
  dispatch_all(x.dtype(), "AsType", [&](auto in_tag) {
    using In = typename decltype(in_tag)::type;
    dispatch_all(out.dtype(), "AsType", [&](auto out_tag) {
      using Out = typename decltype(out_tag)::type;
      launch_map<Out, In>(CastTo<Out>{}, out, in);
    });
  });
}

}  // namespace basin::prims
