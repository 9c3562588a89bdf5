// Dtype names, sizes and promotion.
#include "core/dtype.h"

#include <ostream>

namespace basin {

size_t itemsize(Dtype dtype) {
  return dispatch_all(dtype, "itemsize",
                      [](auto tag) { return sizeof(typename decltype(tag)::type); });
}

const char* dtype_name(Dtype dtype) {
  switch (dtype) {
    case Dtype::f32:
      return "float32";
    case Dtype::f64:
      return "float64";
    case Dtype::i32:
      return "int32";
    case Dtype::i64:
      return "int64";
    case Dtype::u8:
      return "uint8";
    case Dtype::boolean:
      return "bool";
  }
  return "unknown";
}

std::ostream& operator<<(std::ostream& os, Dtype dtype) { return os << dtype_name(dtype); }

namespace {
int rank(Dtype d) {
  switch (d) {
    case Dtype::boolean:
      return 0;
    case Dtype::u8:
      return 1;
    case Dtype::i32:
      return 2;
    case Dtype::i64:
      return 3;
    case Dtype::f32:
      return 4;
    case Dtype::f64:
      return 5;
  }
  return 0;
}
}  // namespace

Dtype promote_types(Dtype a, Dtype b) { return rank(a) >= rank(b) ? a : b; }

}  // namespace basin
