// The math of each elementwise op, written once as a functor and shared by the CPU and CUDA
// kernels of the elementwise family.
#pragma once

#include <cmath>
#include <type_traits>

#ifdef __CUDACC__
#define BASIN_HD __host__ __device__ __forceinline__
#else
#define BASIN_HD inline
#endif

namespace basin::fn {

struct Neg {
  template <class T>
  BASIN_HD T operator()(T x) const {
    return static_cast<T>(-x);
  }
};
struct Abs {
  template <class T>
  BASIN_HD T operator()(T x) const {
    if constexpr (std::is_unsigned_v<T>) {
      return x;
    } else {
      return x < T(0) ? static_cast<T>(-x) : x;
    }
  }
};
struct Sign {
  template <class T>
  BASIN_HD T operator()(T x) const {
    // No `x < 0` for unsigned types: nvcc warns that the comparison is pointless.
    if constexpr (std::is_unsigned_v<T>) {
      return static_cast<T>(T(0) < x);
    } else {
      return static_cast<T>((T(0) < x) - (x < T(0)));
    }
  }
};
struct Exp {
  template <class T>
  BASIN_HD T operator()(T x) const {
    return std::exp(x);
  }
};
struct Log {
  template <class T>
  BASIN_HD T operator()(T x) const {
    return std::log(x);
  }
};
struct Log1p {
  template <class T>
  BASIN_HD T operator()(T x) const {
    return std::log1p(x);
  }
};
struct Expm1 {
  template <class T>
  BASIN_HD T operator()(T x) const {
    return std::expm1(x);
  }
};
struct Sqrt {
  template <class T>
  BASIN_HD T operator()(T x) const {
    return std::sqrt(x);
  }
};
struct Rsqrt {
  template <class T>
  BASIN_HD T operator()(T x) const {
    return T(1) / std::sqrt(x);
  }
};
struct Square {
  template <class T>
  BASIN_HD T operator()(T x) const {
    return static_cast<T>(x * x);
  }
};
struct Sin {
  template <class T>
  BASIN_HD T operator()(T x) const {
    return std::sin(x);
  }
};
struct Cos {
  template <class T>
  BASIN_HD T operator()(T x) const {
    return std::cos(x);
  }
};
struct Tanh {
  template <class T>
  BASIN_HD T operator()(T x) const {
    return std::tanh(x);
  }
};
struct Sigmoid {
  template <class T>
  BASIN_HD T operator()(T x) const {
    // Two branches so that exp never overflows.
    if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
    const T e = std::exp(x);
    return e / (T(1) + e);
  }
};
struct Relu {
  template <class T>
  BASIN_HD T operator()(T x) const {
    return x > T(0) ? x : T(0);
  }
};
struct Erf {
  template <class T>
  BASIN_HD T operator()(T x) const {
    return std::erf(x);
  }
};
struct Softplus {
  template <class T>
  BASIN_HD T operator()(T x) const {
    return (x > T(0) ? x : T(0)) + std::log1p(std::exp(-(x < T(0) ? -x : x)));
  }
};
struct LogicalNot {
  BASIN_HD bool operator()(bool x) const { return !x; }
};
struct PowScalar {
  double p;
  template <class T>
  BASIN_HD T operator()(T x) const {
    if (p == 2.0) return x * x;
    return static_cast<T>(std::pow(x, static_cast<T>(p)));
  }
};
struct Elu {
  double alpha;
  template <class T>
  BASIN_HD T operator()(T x) const {
    return x > T(0) ? x : static_cast<T>(alpha) * std::expm1(x);
  }
};

struct Add {
  template <class T>
  BASIN_HD T operator()(T a, T b) const {
    return static_cast<T>(a + b);
  }
};
struct Sub {
  template <class T>
  BASIN_HD T operator()(T a, T b) const {
    return static_cast<T>(a - b);
  }
};
struct Mul {
  template <class T>
  BASIN_HD T operator()(T a, T b) const {
    return static_cast<T>(a * b);
  }
};
struct Div {
  template <class T>
  BASIN_HD T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) {
      return b == T(0) ? T(0) : static_cast<T>(a / b);  // defined result instead of a trap
    } else {
      return a / b;
    }
  }
};
struct Pow {
  template <class T>
  BASIN_HD T operator()(T a, T b) const {
    return std::pow(a, b);
  }
};
struct Maximum {
  template <class T>
  BASIN_HD T operator()(T a, T b) const {
    if constexpr (std::is_floating_point_v<T>) {
      if (a != a) return a;  // NaN propagates, as in NumPy
      if (b != b) return b;
    }
    return a > b ? a : b;
  }
};
struct Minimum {
  template <class T>
  BASIN_HD T operator()(T a, T b) const {
    if constexpr (std::is_floating_point_v<T>) {
      if (a != a) return a;
      if (b != b) return b;
    }
    return a < b ? a : b;
  }
};
struct Atan2 {
  template <class T>
  BASIN_HD T operator()(T y, T x) const {
    return std::atan2(y, x);
  }
};
struct Equal {
  template <class T>
  BASIN_HD bool operator()(T a, T b) const {
    return a == b;
  }
};
struct NotEqual {
  template <class T>
  BASIN_HD bool operator()(T a, T b) const {
    return a != b;
  }
};
struct Less {
  template <class T>
  BASIN_HD bool operator()(T a, T b) const {
    return a < b;
  }
};
struct LessEqual {
  template <class T>
  BASIN_HD bool operator()(T a, T b) const {
    return a <= b;
  }
};
struct Greater {
  template <class T>
  BASIN_HD bool operator()(T a, T b) const {
    return a > b;
  }
};
struct GreaterEqual {
  template <class T>
  BASIN_HD bool operator()(T a, T b) const {
    return a >= b;
  }
};
struct LogicalAnd {
  BASIN_HD bool operator()(bool a, bool b) const { return a && b; }
};
struct LogicalOr {
  BASIN_HD bool operator()(bool a, bool b) const { return a || b; }
};
struct LogicalXor {
  BASIN_HD bool operator()(bool a, bool b) const { return a != b; }
};

}  // namespace basin::fn
