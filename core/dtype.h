// Element types of tensors, and the one place that turns a runtime dtype into a C++ type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>

#include "core/error.h"

namespace basin {

/// Element type of a tensor.
enum class Dtype : uint8_t { f32, f64, i32, i64, u8, boolean };

/// Bytes per element.
size_t itemsize(Dtype dtype);
/// Short name as in NumPy: "float32", "int64", "bool", ...
const char* dtype_name(Dtype dtype);
std::ostream& operator<<(std::ostream& os, Dtype dtype);

inline bool is_floating(Dtype d) { return d == Dtype::f32 || d == Dtype::f64; }
inline bool is_integral(Dtype d) { return d == Dtype::i32 || d == Dtype::i64 || d == Dtype::u8; }

/// The common type of two operands: bool < u8 < i32 < i64 < f32 < f64 (as NumPy for same-kind
/// pairs; an integer with a float gives the float).
Dtype promote_types(Dtype a, Dtype b);

template <class T>
struct DtypeOf;
template <>
struct DtypeOf<float> {
  static constexpr Dtype value = Dtype::f32;
};
template <>
struct DtypeOf<double> {
  static constexpr Dtype value = Dtype::f64;
};
template <>
struct DtypeOf<int32_t> {
  static constexpr Dtype value = Dtype::i32;
};
template <>
struct DtypeOf<int64_t> {
  static constexpr Dtype value = Dtype::i64;
};
template <>
struct DtypeOf<uint8_t> {
  static constexpr Dtype value = Dtype::u8;
};
template <>
struct DtypeOf<bool> {
  static constexpr Dtype value = Dtype::boolean;
};
/// The Dtype of the C++ type T: dtype_of<float> == Dtype::f32.
template <class T>
inline constexpr Dtype dtype_of = DtypeOf<T>::value;

/// Carries a C++ element type into a generic lambda: `[](auto tag) { using T = typename
/// decltype(tag)::type; ... }`.
template <class T>
struct TypeTag {
  using type = T;
};

/// Calls f(TypeTag<T>{}) for the C++ type of `dtype`. `who` names the caller in errors.
template <class F>
decltype(auto) dispatch_all(Dtype dtype, const char* who, F&& f) {
  switch (dtype) {
    case Dtype::f32:
      return f(TypeTag<float>{});
    case Dtype::f64:
      return f(TypeTag<double>{});
    case Dtype::i32:
      return f(TypeTag<int32_t>{});
    case Dtype::i64:
      return f(TypeTag<int64_t>{});
    case Dtype::u8:
      return f(TypeTag<uint8_t>{});
    case Dtype::boolean:
      return f(TypeTag<bool>{});
  }
  fail("[{}] unknown dtype {}", who, static_cast<int>(dtype));
}

/// As dispatch_all, for the floating dtypes only; any other dtype is an error naming `who`.
template <class F>
decltype(auto) dispatch_float(Dtype dtype, const char* who, F&& f) {
  switch (dtype) {
    case Dtype::f32:
      return f(TypeTag<float>{});
    case Dtype::f64:
      return f(TypeTag<double>{});
    default:
      fail("[{}] needs a floating dtype (float32 or float64), got {}", who, dtype_name(dtype));
  }
}

/// As dispatch_all, for the numeric dtypes (everything but bool).
template <class F>
decltype(auto) dispatch_numeric(Dtype dtype, const char* who, F&& f) {
  switch (dtype) {
    case Dtype::f32:
      return f(TypeTag<float>{});
    case Dtype::f64:
      return f(TypeTag<double>{});
    case Dtype::i32:
      return f(TypeTag<int32_t>{});
    case Dtype::i64:
      return f(TypeTag<int64_t>{});
    case Dtype::u8:
      return f(TypeTag<uint8_t>{});
    default:
      fail("[{}] needs a numeric dtype, got {}", who, dtype_name(dtype));
  }
}

/// As dispatch_all, for index dtypes (int32, int64).
template <class F>
decltype(auto) dispatch_index(Dtype dtype, const char* who, F&& f) {
  switch (dtype) {
    case Dtype::i32:
      return f(TypeTag<int32_t>{});
    case Dtype::i64:
      return f(TypeTag<int64_t>{});
    default:
      fail("[{}] needs an index dtype (int32 or int64), got {}", who, dtype_name(dtype));
  }
}

}  // namespace basin
