// Printing tensors: nested brackets like NumPy, summarised with "..." past 1000 elements.
#include <ostream>
#include <sstream>

#include "core/tensor.h"

namespace basin {
namespace {

constexpr int64_t kSummariseAbove = 1000;
constexpr int64_t kEdgeItems = 3;

std::string format_value(double v, Dtype dtype) {
  if (dtype == Dtype::boolean) return v != 0 ? "true" : "false";
  if (!is_floating(dtype)) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{:.6g}", v);
}

void print_level(std::ostream& os, const std::vector<std::string>& cells, const Shape& shape,
                 const Shape& strides, size_t dim, int64_t offset, size_t width, bool summarise,
                 int indent) {
  if (dim == shape.size()) {
    const std::string& s = cells[static_cast<size_t>(offset)];
    os << std::string(width - s.size(), ' ') << s;
    return;
  }
  os << '[';
  const int64_t n = shape[dim];
  for (int64_t i = 0; i < n; ++i) {
    if (summarise && n > 2 * kEdgeItems && i == kEdgeItems) {
      os << (dim + 1 == shape.size() ? "..., " : "...,\n" + std::string(indent + 1, ' '));
      i = n - kEdgeItems - 1;
      continue;
    }
    print_level(os, cells, shape, strides, dim + 1, offset + i * strides[dim], width, summarise,
                indent + 1);
    if (i + 1 < n) {
      if (dim + 1 == shape.size()) {
        os << ", ";
      } else {
        os << ',' << std::string(shape.size() - dim - 1, '\n') << std::string(indent + 1, ' ');
      }
    }
  }
  os << ']';
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "Tensor(undefined)";
  const auto values = t.to_vector<double>();
  std::vector<std::string> cells;
  size_t width = 0;
  for (double v : values) {
    cells.push_back(format_value(v, t.dtype()));
    width = std::max(width, cells.back().size());
  }
  os << "Tensor(shape=" << shape_str(t.shape()) << ", dtype=" << dtype_name(t.dtype())
     << ", device=" << t.device().str() << ")\n";
  if (t.ndim() == 0) return os << cells[0];
  print_level(os, cells, t.shape(), contiguous_strides(t.shape()), 0, 0, width,
              t.numel() > kSummariseAbove, 0);
  return os;
}

}  // namespace basin
