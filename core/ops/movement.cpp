// Movement ops: argument checks, output shapes, views and each op's vector-Jacobian product.
#include "core/ops/movement.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <type_traits>

#include <fmt/ranges.h>

#include "core/op.h"
#include "core/ops/reduce.h"
#include "core/prims/movement.h"

namespace basin {
namespace {

void check_defined(const Tensor& x, const char* op) {
  if (!x.defined()) fail("[{}] got an undefined tensor", op);
}

/// `shape` with its -1 (if any) replaced so that the element count matches x's.
Shape infer_shape(const Tensor& x, const Shape& shape, const char* op) {
  Shape target = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == -1) {
      if (infer >= 0) fail("[{}] only one dimension can be -1, got {}", op, shape_str(shape));
      infer = static_cast<int>(i);
    } else if (target[i] < 0) {
      fail("[{}] invalid dimension {} in {}", op, target[i], shape_str(shape));
    } else {
      known *= target[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || x.numel() % known != 0) {
      fail("[{}] cannot reshape {} into {}", op, shape_str(x.shape()), shape_str(shape));
    }
    target[infer] = x.numel() / known;
  }
  if (numel(target) != x.numel()) {
    fail("[{}] cannot reshape {} ({} elements) into {}", op, shape_str(x.shape()), x.numel(),
         shape_str(shape));
  }
  return target;
}

/// Strides that show x's elements in row-major order with shape `target` without copying, or
/// nothing when no such strides exist. PyTorch's rule: x's dimensions are cut into chunks that are
/// contiguous among themselves, and each chunk must map onto whole dimensions of the target.
std::optional<Shape> view_strides(const Tensor& x, const Shape& target) {
  if (x.numel() == 0 || x.is_contiguous()) return contiguous_strides(target);
  const Shape& shape = x.shape();
  const Shape& strides = x.strides();
  Shape out(target.size(), 0);
  int view_d = static_cast<int>(target.size()) - 1;
  int64_t chunk_stride = strides.back();
  int64_t tensor_numel = 1;
  int64_t view_numel = 1;
  for (int d = x.ndim() - 1; d >= 0; --d) {
    tensor_numel *= shape[d];
    // A chunk ends where the next outer dimension does not continue it (size-1 dimensions do).
    if (d == 0 || (shape[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || target[view_d] == 1)) {
        out[view_d] = view_numel * chunk_stride;
        view_numel *= target[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_stride = strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

/// `length` elements from `start` every `step` along a normalised axis; no checks.
Tensor slice_unchecked(const Tensor& x, int axis, int64_t start, int64_t length, int64_t step) {
  const int64_t n = x.shape()[axis];
  if (length == n && (start == 0 || n == 0) && (step == 1 || n <= 1)) return x;
  if (length == 0) start = 0;  // keeps the view's offset inside the buffer
  Shape shape = x.shape();
  shape[axis] = length;
  return apply(std::make_shared<prims::Slice>(axis, start, step), {x}, shape, x.dtype());
}

/// Size of a dimension of n elements after XLA-style padding.
int64_t padded_size(int64_t n, int64_t low, int64_t high, int64_t interior) {
  return low + high + (n > 0 ? n + (n - 1) * interior : 0);
}

/// The Pad primitive with amounts already checked to be >= 0.
Tensor pad_unchecked(const Tensor& x, const Shape& low, const Shape& high, const Shape& interior,
                     double value) {
  Shape shape(x.ndim());
  bool identity = true;
  for (int d = 0; d < x.ndim(); ++d) {
    shape[d] = padded_size(x.shape()[d], low[d], high[d], interior[d]);
    identity = identity && low[d] == 0 && high[d] == 0 && (interior[d] == 0 || x.shape()[d] <= 1);
  }
  if (identity) return x;
  return apply(std::make_shared<prims::Pad>(low, high, interior, value), {x}, shape, x.dtype());
}

/// tile with reps and shape both padded to the same length with leading 1s: x seen as
/// (1, s0, 1, s1, ...), broadcast to (r0, s0, r1, s1, ...) and merged pairwise.
Tensor tile_impl(const Tensor& x, const Shape& reps, const char* op) {
  check_defined(x, op);
  for (int64_t r : reps) {
    if (r < 0) fail("[{}] negative repeat count {} in {}", op, r, shape_str(reps));
  }
  const size_t nd = std::max(static_cast<size_t>(x.ndim()), reps.size());
  Shape xs(nd - x.ndim(), 1);
  xs.insert(xs.end(), x.shape().begin(), x.shape().end());
  Shape rs(nd - reps.size(), 1);
  rs.insert(rs.end(), reps.begin(), reps.end());
  Shape split_shape, broadcast_shape, out;
  for (size_t d = 0; d < nd; ++d) {
    split_shape.insert(split_shape.end(), {1, xs[d]});
    broadcast_shape.insert(broadcast_shape.end(), {rs[d], xs[d]});
    out.push_back(rs[d] * xs[d]);
  }
  return reshape(broadcast_to(reshape(x, split_shape), broadcast_shape), out);
}

}  // namespace

// --- views ---------------------------------------------------------------------------------------
Tensor reshape(const Tensor& x, const Shape& shape) {
  check_defined(x, "reshape");
  const Shape target = infer_shape(x, shape, "reshape");
  if (target == x.shape()) return x;
  const Tensor base = view_strides(x, target) ? x : x.contiguous();
  return apply(std::make_shared<prims::Reshape>(), {base}, target, x.dtype());
}

Tensor view(const Tensor& x, const Shape& shape) {
  check_defined(x, "view");
  const Shape target = infer_shape(x, shape, "view");
  if (target == x.shape()) return x;
  if (!view_strides(x, target)) {
    fail(
        "[view] a tensor of shape {} with strides {} cannot be viewed as {} without a copy; "
        "use reshape",
        shape_str(x.shape()), shape_str(x.strides()), shape_str(shape));
  }
  return apply(std::make_shared<prims::Reshape>(), {x}, target, x.dtype());
}

Tensor permute(const Tensor& x, const std::vector<int>& perm) {
  check_defined(x, "permute");
  if (static_cast<int>(perm.size()) != x.ndim()) {
    fail("[permute] permutation of {} axes for a tensor of shape {}", perm.size(),
         shape_str(x.shape()));
  }
  std::vector<int> p;
  std::vector<bool> seen(perm.size(), false);
  for (int a : perm) {
    const int n = normalize_axis(a, x.ndim(), "permute");
    if (seen[n]) fail("[permute] axis {} appears twice", a);
    seen[n] = true;
    p.push_back(n);
  }
  Shape shape;
  bool identity = true;
  for (size_t i = 0; i < p.size(); ++i) {
    shape.push_back(x.shape()[p[i]]);
    identity = identity && p[i] == static_cast<int>(i);
  }
  if (identity) return x;
  return apply(std::make_shared<prims::Permute>(p), {x}, shape, x.dtype());
}

Tensor transpose(const Tensor& x, int a, int b) {
  check_defined(x, "transpose");
  const int na = normalize_axis(a, x.ndim(), "transpose");
  const int nb = normalize_axis(b, x.ndim(), "transpose");
  std::vector<int> perm(x.ndim());
  for (int i = 0; i < x.ndim(); ++i) perm[i] = i;
  std::swap(perm[na], perm[nb]);
  return permute(x, perm);
}

Tensor swapaxes(const Tensor& x, int a, int b) {
  check_defined(x, "swapaxes");
  normalize_axis(a, x.ndim(), "swapaxes");
  normalize_axis(b, x.ndim(), "swapaxes");
  return transpose(x, a, b);
}

Tensor movedim(const Tensor& x, int source, int destination) {
  return movedim(x, std::vector<int>{source}, std::vector<int>{destination});
}

Tensor movedim(const Tensor& x, const std::vector<int>& source,
               const std::vector<int>& destination) {
  check_defined(x, "movedim");
  if (source.size() != destination.size()) {
    fail("[movedim] {} source axes but {} destination axes", source.size(), destination.size());
  }
  const int nd = x.ndim();
  std::vector<int> perm(nd, -1);
  std::vector<bool> moved(nd, false);
  for (size_t i = 0; i < source.size(); ++i) {
    const int s = normalize_axis(source[i], nd, "movedim");
    const int d = normalize_axis(destination[i], nd, "movedim");
    if (moved[s]) fail("[movedim] source axis {} appears twice", source[i]);
    if (perm[d] >= 0) fail("[movedim] destination axis {} appears twice", destination[i]);
    moved[s] = true;
    perm[d] = s;
  }
  // The dimensions not moved fill the remaining positions in their original order.
  int next = 0;
  for (int& p : perm) {
    if (p >= 0) continue;
    while (moved[next]) ++next;
    p = next++;
  }
  return permute(x, perm);
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  check_defined(x, "broadcast_to");
  if (broadcast_shapes(x.shape(), shape, "broadcast_to") != shape) {
    fail("[broadcast_to] shape {} cannot be broadcast to {}", shape_str(x.shape()),
         shape_str(shape));
  }
  if (x.shape() == shape) return x;
  return apply(std::make_shared<prims::BroadcastTo>(), {x}, shape, x.dtype());
}

Tensor expand(const Tensor& x, const Shape& shape) {
  check_defined(x, "expand");
  const int lead = static_cast<int>(shape.size()) - x.ndim();
  if (lead < 0) {
    fail("[expand] the target {} has fewer dimensions than the shape {}", shape_str(shape),
         shape_str(x.shape()));
  }
  Shape target = shape;
  for (size_t i = 0; i < target.size(); ++i) {
    const int d = static_cast<int>(i) - lead;
    if (target[i] == -1 && d >= 0) target[i] = x.shape()[d];
    const bool ok = target[i] >= 0 && (d < 0 || x.shape()[d] == 1 || x.shape()[d] == target[i]);
    if (!ok) {
      fail("[expand] shape {} cannot be expanded to {} (dimension {})", shape_str(x.shape()),
           shape_str(shape), i);
    }
  }
  return broadcast_to(x, target);
}

Tensor squeeze(const Tensor& x, const std::vector<int>& axes) {
  check_defined(x, "squeeze");
  std::vector<bool> drop(x.ndim(), false);
  if (axes.empty()) {
    for (int d = 0; d < x.ndim(); ++d) drop[d] = x.shape()[d] == 1;
  } else {
    for (int a : axes) {
      const int d = normalize_axis(a, x.ndim(), "squeeze");
      if (x.shape()[d] != 1) {
        fail("[squeeze] axis {} has size {}, not 1, in shape {}", a, x.shape()[d],
             shape_str(x.shape()));
      }
      drop[d] = true;
    }
  }
  Shape shape;
  for (int d = 0; d < x.ndim(); ++d) {
    if (!drop[d]) shape.push_back(x.shape()[d]);
  }
  return reshape(x, shape);
}

Tensor unsqueeze(const Tensor& x, int axis) {
  check_defined(x, "unsqueeze");
  const int d = normalize_axis(axis, x.ndim() + 1, "unsqueeze");
  Shape shape = x.shape();
  shape.insert(shape.begin() + d, 1);
  return reshape(x, shape);
}

Tensor flatten(const Tensor& x, int start, int end) {
  check_defined(x, "flatten");
  if (x.ndim() == 0) return reshape(x, {1});
  const int s = normalize_axis(start, x.ndim(), "flatten");
  const int e = normalize_axis(end, x.ndim(), "flatten");
  if (s > e) fail("[flatten] start axis {} is after end axis {}", start, end);
  Shape shape(x.shape().begin(), x.shape().begin() + s);
  int64_t merged = 1;
  for (int d = s; d <= e; ++d) merged *= x.shape()[d];
  shape.push_back(merged);
  shape.insert(shape.end(), x.shape().begin() + e + 1, x.shape().end());
  return reshape(x, shape);
}

Tensor slice(const Tensor& x, int axis, int64_t start, int64_t stop, int64_t step) {
  check_defined(x, "slice");
  const int d = normalize_axis(axis, x.ndim(), "slice");
  if (step <= 0) {
    fail("[slice] step must be positive, got {} (axis {} of shape {})", step, axis,
         shape_str(x.shape()));
  }
  const int64_t n = x.shape()[d];
  auto clamp_index = [n](int64_t i) { return std::clamp<int64_t>(i < 0 ? i + n : i, 0, n); };
  const int64_t begin = clamp_index(start);
  const int64_t end = clamp_index(stop);
  const int64_t length = end > begin ? (end - begin - 1) / step + 1 : 0;
  return slice_unchecked(x, d, begin, length, step);
}

Tensor narrow(const Tensor& x, int axis, int64_t start, int64_t length) {
  check_defined(x, "narrow");
  const int d = normalize_axis(axis, x.ndim(), "narrow");
  const int64_t n = x.shape()[d];
  const int64_t begin = start < 0 ? start + n : start;
  if (begin < 0 || begin > n || length < 0 || length > n - begin) {
    fail("[narrow] start {} and length {} do not fit axis {} of shape {}", start, length, axis,
         shape_str(x.shape()));
  }
  return slice_unchecked(x, d, begin, length, 1);
}

// --- copies --------------------------------------------------------------------------------------
Tensor concat(const Tensors& tensors, int axis) {
  if (tensors.empty()) fail("[concat] needs at least one tensor, got an empty list");
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!tensors[i].defined()) fail("[concat] tensor {} is undefined", i);
  }
  const Tensor& first = tensors[0];
  if (first.ndim() == 0) fail("[concat] cannot join 0-d tensors along an axis; use stack");
  const int d = normalize_axis(axis, first.ndim(), "concat");
  Shape shape = first.shape();
  shape[d] = 0;
  Dtype dtype = first.dtype();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    bool match = t.ndim() == first.ndim();
    for (int k = 0; k < first.ndim() && match; ++k) {
      match = k == d || t.shape()[k] == first.shape()[k];
    }
    if (!match) {
      fail(
          "[concat] tensor {} has shape {} but tensor 0 has shape {}: sizes must match except "
          "along axis {}",
          i, shape_str(t.shape()), shape_str(first.shape()), axis);
    }
    if (t.device() != first.device()) {
      fail("[concat] tensor {} is on {} but tensor 0 is on {}", i, t.device().str(),
           first.device().str());
    }
    shape[d] += t.shape()[d];
    dtype = promote_types(dtype, t.dtype());
  }
  Tensors inputs;
  for (const Tensor& t : tensors) inputs.push_back(t.astype(dtype));
  return apply(std::make_shared<prims::Concat>(d), inputs, shape, dtype);
}

Tensor stack(const Tensors& tensors, int axis) {
  if (tensors.empty()) fail("[stack] needs at least one tensor, got an empty list");
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!tensors[i].defined()) fail("[stack] tensor {} is undefined", i);
    if (tensors[i].shape() != tensors[0].shape()) {
      fail("[stack] tensor {} has shape {} but tensor 0 has shape {}: all shapes must be equal", i,
           shape_str(tensors[i].shape()), shape_str(tensors[0].shape()));
    }
  }
  const int d = normalize_axis(axis, tensors[0].ndim() + 1, "stack");
  Tensors parts;
  for (const Tensor& t : tensors) parts.push_back(unsqueeze(t, d));
  return concat(parts, d);
}

Tensors split(const Tensor& x, const std::vector<int64_t>& sizes, int axis) {
  check_defined(x, "split");
  const int d = normalize_axis(axis, x.ndim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    if (s < 0) fail("[split] negative size {} in sizes ({})", s, fmt::join(sizes, ", "));
    total += s;
  }
  if (total != x.shape()[d]) {
    fail("[split] sizes ({}) add up to {} but axis {} of shape {} has {} elements",
         fmt::join(sizes, ", "), total, axis, shape_str(x.shape()), x.shape()[d]);
  }
  Tensors parts;
  int64_t start = 0;
  for (int64_t s : sizes) {
    parts.push_back(slice_unchecked(x, d, start, s, 1));
    start += s;
  }
  return parts;
}

Tensors split(const Tensor& x, int64_t size_each, int axis) {
  check_defined(x, "split");
  const int d = normalize_axis(axis, x.ndim(), "split");
  if (size_each <= 0) {
    fail("[split] piece size must be positive, got {} (axis {} of shape {})", size_each, axis,
         shape_str(x.shape()));
  }
  const int64_t n = x.shape()[d];
  if (n == 0) return {x};
  Tensors parts;
  for (int64_t start = 0; start < n; start += size_each) {
    parts.push_back(slice_unchecked(x, d, start, std::min(size_each, n - start), 1));
  }
  return parts;
}

Tensors chunk(const Tensor& x, int64_t n, int axis) {
  check_defined(x, "chunk");
  const int d = normalize_axis(axis, x.ndim(), "chunk");
  if (n <= 0) fail("[chunk] number of chunks must be positive, got {}", n);
  const int64_t size = x.shape()[d];
  if (size == 0) return Tensors(static_cast<size_t>(n), x);
  return split(x, (size + n - 1) / n, d);
}

Tensor flip(const Tensor& x, const std::vector<int>& axes) {
  check_defined(x, "flip");
  std::vector<int> flipped;
  for (int a : normalize_axes(axes, x.ndim(), "flip")) {
    if (x.shape()[a] > 1) flipped.push_back(a);  // reversing 0 or 1 elements changes nothing
  }
  if (flipped.empty()) return x;
  return apply(std::make_shared<prims::Flip>(flipped), {x}, x.shape(), x.dtype());
}

Tensor pad(const Tensor& x, const std::vector<PadWidth>& pads, double value) {
  check_defined(x, "pad");
  if (static_cast<int>(pads.size()) != x.ndim()) {
    fail("[pad] got {} (before, after) pairs for a tensor of shape {}; need one per dimension",
         pads.size(), shape_str(x.shape()));
  }
  // Converting an out-of-range double to an integer type is undefined, so refuse it here.
  dispatch_all(x.dtype(), "pad", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      if (!(value >= static_cast<double>(std::numeric_limits<T>::min()) &&
            value < static_cast<double>(std::numeric_limits<T>::max()) + 1.0)) {
        fail("[pad] value {} does not fit a {} tensor", value, dtype_name(x.dtype()));
      }
    }
  });
  // Negative amounts crop (a slice), the rest is padding.
  Tensor y = x;
  Shape low(x.ndim()), high(x.ndim());
  for (int d = 0; d < x.ndim(); ++d) {
    const auto [before, after] = pads[d];
    const int64_t n = x.shape()[d];
    const int64_t cut_before = std::max<int64_t>(-before, 0);
    const int64_t cut_after = std::max<int64_t>(-after, 0);
    if (cut_before > n - cut_after) {
      fail("[pad] padding ({}, {}) of axis {} removes more than its {} elements (shape {})", before,
           after, d, n, shape_str(x.shape()));
    }
    if (cut_before > 0 || cut_after > 0) {
      y = slice_unchecked(y, d, cut_before, n - cut_before - cut_after, 1);
    }
    low[d] = std::max<int64_t>(before, 0);
    high[d] = std::max<int64_t>(after, 0);
  }
  return pad_unchecked(y, low, high, Shape(x.ndim(), 0), value);
}

Tensor repeat(const Tensor& x, const Shape& reps) {
  check_defined(x, "repeat");
  if (static_cast<int>(reps.size()) < x.ndim()) {
    fail("[repeat] {} repeat counts {} for a tensor of shape {}; need at least one per dimension",
         reps.size(), shape_str(reps), shape_str(x.shape()));
  }
  return tile_impl(x, reps, "repeat");
}

Tensor tile(const Tensor& x, const Shape& reps) { return tile_impl(x, reps, "tile"); }

// --- primitives: layouts and vector-Jacobian products --------------------------------------------
namespace prims {

void Reshape::make_view(const Tensor& x, Tensor& out) const {
  const std::optional<Shape> strides = view_strides(x, out.shape());
  if (!strides) {
    fail("[reshape] internal: shape {} with strides {} has no view as {}", shape_str(x.shape()),
         shape_str(x.strides()), shape_str(out.shape()));
  }
  out.share_storage(x, *strides, x.offset());
}
Tensors Reshape::vjp(const Tensors& in, const Tensor&, const Tensor& cot, const std::vector<int>&) {
  return {reshape(cot, in[0].shape())};
}

void Permute::make_view(const Tensor& x, Tensor& out) const {
  Shape strides;
  for (int p : perm_) strides.push_back(x.strides()[p]);
  out.share_storage(x, strides, x.offset());
}
Tensors Permute::vjp(const Tensors&, const Tensor&, const Tensor& cot, const std::vector<int>&) {
  std::vector<int> inverse(perm_.size());
  for (size_t i = 0; i < perm_.size(); ++i) inverse[perm_[i]] = static_cast<int>(i);
  return {permute(cot, inverse)};
}

void BroadcastTo::make_view(const Tensor& x, Tensor& out) const {
  Shape strides(out.ndim(), 0);
  const int lead = out.ndim() - x.ndim();
  for (int d = 0; d < x.ndim(); ++d) strides[lead + d] = x.shape()[d] == 1 ? 0 : x.strides()[d];
  out.share_storage(x, strides, x.offset());
}
Tensors BroadcastTo::vjp(const Tensors& in, const Tensor&, const Tensor& cot,
                         const std::vector<int>&) {
  return {sum_to(cot, in[0].shape())};
}

void Slice::make_view(const Tensor& x, Tensor& out) const {
  Shape strides = x.strides();
  const int64_t offset = x.offset() + start_ * strides[axis_];
  strides[axis_] *= step_;
  out.share_storage(x, strides, offset);
}
Tensors Slice::vjp(const Tensors& in, const Tensor&, const Tensor& cot, const std::vector<int>&) {
  // The cotangent goes back to positions start, start + step, ...; zeros everywhere else.
  const int64_t n = in[0].shape()[axis_];
  const int64_t m = cot.shape()[axis_];
  Shape low(cot.ndim(), 0), high(cot.ndim(), 0), interior(cot.ndim(), 0);
  low[axis_] = start_;
  interior[axis_] = step_ - 1;
  high[axis_] = n - padded_size(m, start_, 0, step_ - 1);
  return {pad_unchecked(cot, low, high, interior, 0.0)};
}

Tensors Concat::vjp(const Tensors& in, const Tensor&, const Tensor& cot,
                    const std::vector<int>& argnums) {
  std::vector<int64_t> starts(in.size() + 1, 0);
  for (size_t i = 0; i < in.size(); ++i) starts[i + 1] = starts[i] + in[i].shape()[axis_];
  Tensors g;
  for (int i : argnums)
    g.push_back(slice_unchecked(cot, axis_, starts[i], in[i].shape()[axis_], 1));
  return g;
}

Tensors Pad::vjp(const Tensors& in, const Tensor&, const Tensor& cot, const std::vector<int>&) {
  Tensor g = cot;
  for (int d = 0; d < cot.ndim(); ++d)
    g = slice_unchecked(g, d, low_[d], in[0].shape()[d], interior_[d] + 1);
  return {g};
}

Tensors Flip::vjp(const Tensors&, const Tensor&, const Tensor& cot, const std::vector<int>&) {
  return {flip(cot, axes_)};
}

}  // namespace prims
}  // namespace basin
