// CUDA forward of the indexing family: gather, and a deterministic scatter-add without atomics.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <numeric>
#include <vector>

#include "backends/cuda/common.cuh"
#include "backends/cuda/copy.h"
#include "core/prims/index.h"

namespace basin::prims {
namespace {
using cuda::grid_for;
using cuda::kBlock;
using cuda::make_offset_calc;
using cuda::OffsetCalc;
using cuda::stream;

/// No out-of-range index seen (the initial value of the position flag).
constexpr unsigned long long kNone = ~0ull;

// --- kernels -------------------------------------------------------------------------------------

/// out[i] = x[x offset of i + index[i] * axis_stride] over the index's positions. `calc` maps a
/// position to the offsets of x (0 along the axis) and of the index. A thread that meets an
/// out-of-range index reads nothing and records its position; the smallest one is reported.
template <class T, class I>
__global__ void gather_kernel(T* out, const T* x, const I* index, OffsetCalc<2> calc,
                              int64_t axis_stride, int64_t size, int64_t n,
                              unsigned long long* bad) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t o[2];
    calc.offsets(i, o);
    const int64_t k = index[o[1]];
    if (k < 0 || k >= size) {
      atomicMin(bad, static_cast<unsigned long long>(i));
      continue;
    }
    out[i] = x[o[0] + k * axis_stride];
  }
}

/// One thread per column (a position of the index with its axis coordinate left out): it walks
/// the axis in index order and adds each src element at its target. Columns write disjoint
/// elements of out, so there are no atomics and the sums match the CPU's bit for bit. `calc`
/// maps a column to the offsets of out, the index and src.
template <class T, class I>
__global__ void scatter_add_columns_kernel(T* out, const I* index, const T* src, OffsetCalc<3> calc,
                                           int64_t len, int64_t n_inner, int64_t out_axis,
                                           int64_t index_axis, int64_t src_axis, int64_t size,
                                           int64_t columns, unsigned long long* bad) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < columns;
       c += step) {
    int64_t o[3];
    calc.offsets(c, o);
    for (int64_t a = 0; a < len; ++a) {
      const int64_t k = index[o[1] + a * index_axis];
      if (k < 0 || k >= size) {
        // Flat position in the index: (outer, a, inner) row-major.
        const int64_t p = ((c / n_inner) * len + a) * n_inner + c % n_inner;
        atomicMin(bad, static_cast<unsigned long long>(p));
        break;
      }
      out[o[0] + k * out_axis] += src[o[2] + a * src_axis];
    }
  }
}

/// The scatter-add of rows that share one index per row (index_select and embedding backward):
/// rows were grouped by target on the host, and one thread per (group, inner position) adds its
/// group's rows in index order. `starts` has groups + 1 entries; `targets` gives each group's
/// offset in out and `rows` each grouped row's offset in src. `calc` maps an inner position to
/// the offsets of out and src.
template <class T>
__global__ void scatter_add_groups_kernel(T* out, const T* src, const int64_t* starts,
                                          const int64_t* targets, const int64_t* rows,
                                          OffsetCalc<2> calc, int64_t n_inner, int64_t n) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < n; t += step) {
    const int64_t g = t / n_inner;
    int64_t o[2];
    calc.offsets(t % n_inner, o);
    T* dst = out + targets[g] + o[0];
    T acc = *dst;
    for (int64_t r = starts[g]; r < starts[g + 1]; ++r) acc += src[rows[r] + o[1]];
    *dst = acc;
  }
}

// --- launchers -----------------------------------------------------------------------------------

/// The smallest flat index position a kernel found out of range, kept on the device.
class BadPosition {
 public:
  explicit BadPosition(Device device) : storage_(allocate(sizeof(unsigned long long), device)) {
    BASIN_CUDA_CHECK(cudaMemsetAsync(storage_->data, 0xff, sizeof(unsigned long long), stream()));
  }
  unsigned long long* get() const { return static_cast<unsigned long long*>(storage_->data); }
  /// Waits for the kernels; -1 when every index was in range.
  int64_t read() const {
    unsigned long long v = kNone;
    BASIN_CUDA_CHECK(cudaMemcpy(&v, get(), sizeof(v), cudaMemcpyDeviceToHost));
    return v == kNone ? -1 : static_cast<int64_t>(v);
  }

 private:
  std::shared_ptr<Storage> storage_;
};

/// Raises the CPU's error for the index entry at flat position p (row-major over its shape).
template <class I>
[[noreturn]] void fail_out_of_range(const char* api, const Tensor& index, int64_t p, int64_t size,
                                    int axis, const Shape& shape) {
  int64_t offset = 0;
  for (int d = index.ndim() - 1; d >= 0; --d) {
    offset += (p % index.shape()[d]) * index.strides()[d];
    p /= index.shape()[d];
  }
  I value = 0;
  BASIN_CUDA_CHECK(cudaMemcpy(&value, static_cast<const I*>(index.raw_data()) + offset, sizeof(I),
                              cudaMemcpyDeviceToHost));
  fail("[{}] index {} is out of range [0, {}) along axis {} of shape {}", api,
       static_cast<int64_t>(value), size, axis, shape_str(shape));
}

/// `strides` with the entry of `axis` removed (or set to 0 with `zero`).
Shape without_axis(const Shape& strides, int axis, bool zero = false) {
  Shape s = strides;
  if (zero) {
    s[axis] = 0;
  } else {
    s.erase(s.begin() + axis);
  }
  return s;
}

/// Element offsets, for an operand with `strides`, of every position of shape[begin:end] in
/// row-major order.
std::vector<int64_t> offset_table(const Shape& shape, const Shape& strides, int begin, int end) {
  std::vector<int64_t> table{0};
  for (int d = begin; d < end; ++d) {
    std::vector<int64_t> next;
    next.reserve(table.size() * static_cast<size_t>(shape[d]));
    for (int64_t base : table) {
      for (int64_t k = 0; k < shape[d]; ++k) next.push_back(base + k * strides[d]);
    }
    table.swap(next);
  }
  return table;
}

template <class T, class I>
void gather_cuda(const Tensor& x, const Tensor& index, int axis, Tensor& out, const char* api) {
  out.allocate();
  const int64_t n = out.numel();
  if (n == 0) return;
  BASIN_CUDA_CHECK(cudaSetDevice(out.device().index));
  const OffsetCalc<2> calc =
      make_offset_calc<2>(index.shape(), {without_axis(x.strides(), axis, true), index.strides()});
  const int64_t size = x.shape()[axis];
  const BadPosition bad(out.device());
  gather_kernel<T, I><<<grid_for(n), kBlock, 0, stream()>>>(
      static_cast<T*>(out.raw_data()), static_cast<const T*>(x.raw_data()),
      static_cast<const I*>(index.raw_data()), calc, x.strides()[axis], size, n, bad.get());
  BASIN_CUDA_CHECK_LAUNCH();
  const int64_t p = bad.read();
  if (p >= 0) fail_out_of_range<I>(api, index, p, size, axis, x.shape());
}

/// Whether the index holds one value per row: constant over the dimensions after the axis.
bool one_per_row(const Tensor& index, int axis) {
  for (int d = axis + 1; d < index.ndim(); ++d) {
    if (index.shape()[d] != 1 && index.strides()[d] != 0) return false;
  }
  return true;
}

/// Scatter-add of an index with one value per row: the (outer, axis) rows are read to the host,
/// checked, and grouped by target with a stable sort, so each group keeps its index order.
template <class T, class I>
void scatter_add_grouped(const Tensor& index, const Tensor& src, int axis, Tensor& out,
                         const char* api, const Shape& base_shape) {
  const Shape& shape = index.shape();
  const int nd = index.ndim();
  const int64_t len = shape[axis];
  const int64_t size = out.shape()[axis];
  // The index seen with its inner dimensions cut to size 1: one value per row.
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  for (int d = axis + 1; d < nd; ++d) impl->shape[d] = 1;
  impl->dtype = index.dtype();
  impl->device = index.device();
  const Tensor row_index(impl);
  row_index.share_storage(index, index.strides(), index.offset());
  const std::vector<int64_t> ids = row_index.to_vector<int64_t>();
  const int64_t n_rows = static_cast<int64_t>(ids.size());
  for (int64_t r = 0; r < n_rows; ++r) {
    if (ids[r] < 0 || ids[r] >= size) {
      fail("[{}] index {} is out of range [0, {}) along axis {} of shape {}", api, ids[r], size,
           axis, shape_str(base_shape));
    }
  }
  std::vector<int64_t> order(static_cast<size_t>(n_rows));
  std::iota(order.begin(), order.end(), int64_t{0});
  // Row r = (outer o, axis a) targets slice (o, ids[r]); sorting by o then target keeps rows of
  // a group in increasing a.
  auto key = [&](int64_t r) { return std::make_pair(r / len, ids[r]); };
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t p, int64_t q) { return key(p) < key(q); });
  const std::vector<int64_t> out_outer = offset_table(shape, out.strides(), 0, axis);
  const std::vector<int64_t> src_outer = offset_table(shape, src.strides(), 0, axis);
  // One upload: starts (groups + 1), then targets (groups), then rows (n_rows).
  std::vector<int64_t> starts, targets, rows;
  rows.reserve(order.size());
  for (int64_t j = 0; j < n_rows; ++j) {
    const int64_t r = order[j];
    const int64_t o = r / len, a = r % len;
    if (j == 0 || key(r) != key(order[j - 1])) {
      starts.push_back(j);
      targets.push_back(out_outer[o] + ids[r] * out.strides()[axis]);
    }
    rows.push_back(src_outer[o] + a * src.strides()[axis]);
  }
  const int64_t groups = static_cast<int64_t>(targets.size());
  starts.push_back(n_rows);
  std::vector<int64_t> plan = starts;
  plan.insert(plan.end(), targets.begin(), targets.end());
  plan.insert(plan.end(), rows.begin(), rows.end());
  const std::shared_ptr<Storage> dev = allocate(plan.size() * sizeof(int64_t), out.device());
  BASIN_CUDA_CHECK(cudaMemcpyAsync(dev->data, plan.data(), plan.size() * sizeof(int64_t),
                                   cudaMemcpyHostToDevice, stream()));
  const int64_t* p = static_cast<const int64_t*>(dev->data);
  const Shape inner(shape.begin() + axis + 1, shape.end());
  const Shape out_inner(out.strides().begin() + axis + 1, out.strides().end());
  const Shape src_inner(src.strides().begin() + axis + 1, src.strides().end());
  const int64_t n_inner = numel(inner);
  const int64_t n = groups * n_inner;
  // The plan's block goes back to the cache when this returns; its next user is ordered after
  // the kernel on the stream.
  scatter_add_groups_kernel<T><<<grid_for(n), kBlock, 0, stream()>>>(
      static_cast<T*>(out.raw_data()), static_cast<const T*>(src.raw_data()), p, p + groups + 1,
      p + 2 * groups + 1, make_offset_calc<2>(inner, {out_inner, src_inner}), n_inner, n);
  BASIN_CUDA_CHECK_LAUNCH();
}

template <class T, class I>
void scatter_add_cuda(const Tensor& base, const Tensor& index, const Tensor& src, int axis,
                      Tensor& out, const char* api) {
  out.allocate();
  // An empty base can still meet a non-empty index (a 0-sized axis): every entry is then out of
  // range, and the error must be raised as on the CPU.
  BASIN_CUDA_CHECK(cudaSetDevice(out.device().index));
  cuda::copy_strided(out.raw_data(), out.strides(), base.raw_data(), base.strides(), base.shape(),
                     sizeof(T));
  if (index.numel() == 0) return;
  if (one_per_row(index, axis)) {
    scatter_add_grouped<T, I>(index, src, axis, out, api, base.shape());
    return;
  }
  const Shape& shape = index.shape();
  const int64_t len = shape[axis];
  const int64_t columns = index.numel() / len;
  const int64_t n_inner = numel(Shape(shape.begin() + axis + 1, shape.end()));
  const OffsetCalc<3> calc =
      make_offset_calc<3>(without_axis(shape, axis),
                          {without_axis(out.strides(), axis), without_axis(index.strides(), axis),
                           without_axis(src.strides(), axis)});
  const int64_t size = out.shape()[axis];
  const BadPosition bad(out.device());
  scatter_add_columns_kernel<T, I><<<grid_for(columns), kBlock, 0, stream()>>>(
      static_cast<T*>(out.raw_data()), static_cast<const I*>(index.raw_data()),
      static_cast<const T*>(src.raw_data()), calc, len, n_inner, out.strides()[axis],
      index.strides()[axis], src.strides()[axis], size, columns, bad.get());
  BASIN_CUDA_CHECK_LAUNCH();
  const int64_t p = bad.read();
  if (p >= 0) fail_out_of_range<I>(api, index, p, size, axis, base.shape());
}

}  // namespace

void Gather::eval_cuda(const Tensors& in, Tensor& out) {
  dispatch_all(in[0].dtype(), "Gather", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_index(in[1].dtype(), "Gather", [&](auto itag) {
      using I = typename decltype(itag)::type;
      gather_cuda<T, I>(in[0], in[1], axis_, out, api_);
    });
  });
}

void ScatterAdd::eval_cuda(const Tensors& in, Tensor& out) {
  dispatch_numeric(in[0].dtype(), "ScatterAdd", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_index(in[1].dtype(), "ScatterAdd", [&](auto itag) {
      using I = typename decltype(itag)::type;
      scatter_add_cuda<T, I>(in[0], in[1], in[2], axis_, out, api_);
    });
  });
}

}  // namespace basin::prims
