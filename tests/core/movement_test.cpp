// Movement ops: naive references for every dtype and layout, views, derivatives, errors.
#include <limits>

#include "tests/test_util.h"

namespace basin {
namespace {
using testing::all_close;
using testing::make;
using testing::throws_error;

// --- naive references
// ------------------------------------------------------------------------------
using Index = std::vector<int64_t>;

Index unravel(int64_t flat, const Shape& shape) {
  Index idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return idx;
}

/// The element of x (a host copy, row-major) at a multi-index.
struct Host {
  Shape shape;
  std::vector<double> v;
  explicit Host(const Tensor& x) : shape(x.shape()), v(x.to_vector<double>()) {}
  double at(const Index& idx) const {
    int64_t flat = 0;
    for (size_t d = 0; d < shape.size(); ++d) flat = flat * shape[d] + idx[d];
    return v[static_cast<size_t>(flat)];
  }
};

/// A tensor of `shape` and `dtype` whose element at each index is value(index).
Tensor build(const Shape& shape, Dtype dtype, const std::function<double(const Index&)>& value) {
  std::vector<double> v(static_cast<size_t>(numel(shape)));
  for (int64_t i = 0; i < numel(shape); ++i) v[i] = value(unravel(i, shape));
  return from_vector(v, shape).astype(dtype);
}

/// The indices Python's range(*slice(start, stop, step).indices(n)) yields, for step > 0.
std::vector<int64_t> python_range(int64_t n, int64_t start, int64_t stop, int64_t step) {
  auto norm = [n](int64_t i) {
    if (i < 0) i = std::max<int64_t>(i + n, 0);
    return std::min(i, n);
  };
  std::vector<int64_t> out;
  for (int64_t i = norm(start); i < norm(stop); i += step) out.push_back(i);
  return out;
}

Tensor slice_ref(const Tensor& x, int axis, int64_t start, int64_t stop, int64_t step = 1) {
  const Host h(x);
  const int a = axis < 0 ? axis + x.ndim() : axis;
  const auto picks = python_range(x.shape(a), start, stop, step);
  Shape shape = x.shape();
  shape[a] = static_cast<int64_t>(picks.size());
  return build(shape, x.dtype(), [&](Index i) {
    i[a] = picks[i[a]];
    return h.at(i);
  });
}

Tensor concat_ref(const Tensors& xs, int axis) {
  const int a = axis < 0 ? axis + xs[0].ndim() : axis;
  std::vector<Host> hs;
  Shape shape = xs[0].shape();
  shape[a] = 0;
  for (const Tensor& x : xs) {
    hs.emplace_back(x);
    shape[a] += x.shape(a);
  }
  return build(shape, xs[0].dtype(), [&](Index i) {
    size_t k = 0;
    while (i[a] >= hs[k].shape[a]) i[a] -= hs[k++].shape[a];
    return hs[k].at(i);
  });
}

Tensor stack_ref(const Tensors& xs, int axis) {
  const int a = axis < 0 ? axis + xs[0].ndim() + 1 : axis;
  std::vector<Host> hs(xs.begin(), xs.end());
  Shape shape = xs[0].shape();
  shape.insert(shape.begin() + a, static_cast<int64_t>(xs.size()));
  return build(shape, xs[0].dtype(), [&](Index i) {
    const int64_t k = i[a];
    i.erase(i.begin() + a);
    return hs[k].at(i);
  });
}

Tensor flip_ref(const Tensor& x, std::vector<int> axes) {
  const Host h(x);
  if (axes.empty()) {
    for (int d = 0; d < x.ndim(); ++d) axes.push_back(d);
  }
  return build(x.shape(), x.dtype(), [&](Index i) {
    for (int a : axes) {
      const int d = a < 0 ? a + x.ndim() : a;
      i[d] = x.shape(d) - 1 - i[d];
    }
    return h.at(i);
  });
}

Tensor pad_ref(const Tensor& x, const std::vector<PadWidth>& pads, double value) {
  const Host h(x);
  Shape shape = x.shape();
  for (size_t d = 0; d < shape.size(); ++d) shape[d] += pads[d].first + pads[d].second;
  return build(shape, x.dtype(), [&](Index i) {
    for (size_t d = 0; d < i.size(); ++d) {
      i[d] -= pads[d].first;
      if (i[d] < 0 || i[d] >= x.shape()[d]) return value;
    }
    return h.at(i);
  });
}

Tensor tile_ref(const Tensor& x, Shape reps) {
  Shape xs = x.shape();
  while (xs.size() < reps.size()) xs.insert(xs.begin(), 1);
  while (reps.size() < xs.size()) reps.insert(reps.begin(), 1);
  const Host h(reshape(x, xs));
  Shape shape(xs.size());
  for (size_t d = 0; d < xs.size(); ++d) shape[d] = xs[d] * reps[d];
  return build(shape, x.dtype(), [&](Index i) {
    for (size_t d = 0; d < i.size(); ++d) i[d] %= xs[d];
    return h.at(i);
  });
}

/// out[i] = x[i permuted]: out.shape[k] = x.shape[perm[k]].
Tensor permute_ref(const Tensor& x, const std::vector<int>& perm) {
  const Host h(x);
  Shape shape;
  for (int p : perm) shape.push_back(x.shape(p));
  return build(shape, x.dtype(), [&](const Index& i) {
    Index src(i.size());
    for (size_t k = 0; k < perm.size(); ++k) src[perm[k]] = i[k];
    return h.at(src);
  });
}

/// x's values in row-major order with a new shape.
Tensor reshape_ref(const Tensor& x, const Shape& shape) {
  return from_vector(x.to_vector<double>(), shape).astype(x.dtype());
}

// --- forward table
// -----------------------------------------------------------------------------------
struct ForwardCase {
  const char* name;
  std::vector<Shape> shapes;
  std::function<Tensor(const Tensors&)> op;
  std::function<Tensor(const Tensors&)> ref;
};

std::vector<ForwardCase> forward_cases() {
  using T = const Tensors&;
  return {
      {"slice_rows",
       {{5, 4}},
       [](T x) { return slice(x[0], 0, 1, 4); },
       [](T x) { return slice_ref(x[0], 0, 1, 4); }},
      {"slice_step_negative_axis",
       {{3, 7}},
       [](T x) { return slice(x[0], -1, -6, 100, 2); },
       [](T x) { return slice_ref(x[0], -1, -6, 100, 2); }},
      {"slice_step_3d",
       {{2, 9, 3}},
       [](T x) { return slice(x[0], 1, 1, -1, 3); },
       [](T x) { return slice_ref(x[0], 1, 1, -1, 3); }},
      {"slice_empty_range",
       {{4, 3}},
       [](T x) { return slice(x[0], 0, 3, 1); },
       [](T x) { return slice_ref(x[0], 0, 3, 1); }},
      {"slice_size0_dim",
       {{0, 5}},
       [](T x) { return slice(x[0], 1, 1, 3); },
       [](T x) { return slice_ref(x[0], 1, 1, 3); }},
      {"slice_size1_dims",
       {{1, 6, 1}},
       [](T x) { return slice(x[0], 1, 0, 6, 5); },
       [](T x) { return slice_ref(x[0], 1, 0, 6, 5); }},
      {"slice_of_slice",
       {{6, 8}},
       [](T x) { return slice(slice(x[0], 1, 1, 8, 2), 0, -4, -1); },
       [](T x) { return slice_ref(slice_ref(x[0], 1, 1, 8, 2), 0, -4, -1); }},
      {"narrow",
       {{4, 6}},
       [](T x) { return narrow(x[0], 1, -4, 3); },
       [](T x) { return slice_ref(x[0], 1, 2, 5); }},
      {"concat_axis0",
       {{2, 3}, {1, 3}, {4, 3}},
       [](T x) { return concat(x, 0); },
       [](T x) { return concat_ref(x, 0); }},
      {"concat_negative_axis",
       {{2, 1, 3}, {2, 4, 3}},
       [](T x) { return concat(x, -2); },
       [](T x) { return concat_ref(x, -2); }},
      {"concat_with_empty",
       {{3, 0}, {3, 2}, {3, 0}},
       [](T x) { return concat(x, 1); },
       [](T x) { return concat_ref(x, 1); }},
      {"concat_all_empty",
       {{0, 2}, {0, 2}},
       [](T x) { return concat(x, 0); },
       [](T x) { return concat_ref(x, 0); }},
      {"concat_other_dim_empty",
       {{0, 2}, {0, 3}},
       [](T x) { return concat(x, 1); },
       [](T x) { return concat_ref(x, 1); }},
      {"concat_one",
       {{2, 2}},
       [](T x) { return concat(x, 1); },
       [](T x) { return concat_ref(x, 1); }},
      {"stack_middle",
       {{2, 3}, {2, 3}, {2, 3}},
       [](T x) { return stack(x, 1); },
       [](T x) { return stack_ref(x, 1); }},
      {"stack_last",
       {{4}, {4}},
       [](T x) { return stack(x, -1); },
       [](T x) { return stack_ref(x, -1); }},
      {"stack_scalars",
       {{}, {}, {}},
       [](T x) { return stack(x, 0); },
       [](T x) { return stack_ref(x, 0); }},
      {"flip_all",
       {{3, 4, 2}},
       [](T x) { return flip(x[0]); },
       [](T x) { return flip_ref(x[0], {}); }},
      {"flip_axes",
       {{3, 4, 2}},
       [](T x) {
         return flip(x[0], {0, -1});
       },
       [](T x) {
         return flip_ref(x[0], {0, -1});
       }},
      {"flip_size1",
       {{1, 5}},
       [](T x) { return flip(x[0], {0}); },
       [](T x) { return flip_ref(x[0], {0}); }},
      {"flip_size0",
       {{0, 3}},
       [](T x) { return flip(x[0], {1}); },
       [](T x) { return flip_ref(x[0], {1}); }},
      {"flip_broadcast",
       {{4}},
       [](T x) {
         return flip(broadcast_to(x[0], {3, 4}), {0, 1});
       },
       [](T x) {
         return flip_ref(tile_ref(x[0], {3, 1}), {0, 1});
       }},
      {"concat_broadcast",
       {{3}, {2, 3}},
       [](T x) {
         return concat({broadcast_to(x[0], {2, 3}), x[1]}, 1);
       },
       [](T x) {
         return concat_ref({tile_ref(x[0], {2, 1}), x[1]}, 1);
       }},
      {"pad_broadcast",
       {{1, 3}},
       [](T x) {
         return pad(expand(x[0], {2, 3}), {{1, 0}, {1, 1}}, 1);
       },
       [](T x) {
         return pad_ref(tile_ref(x[0], {2, 1}), {{1, 0}, {1, 1}}, 1);
       }},
      {"pad_2d",
       {{2, 3}},
       [](T x) {
         return pad(x[0], {{1, 2}, {0, 3}});
       },
       [](T x) {
         return pad_ref(x[0], {{1, 2}, {0, 3}}, 0);
       }},
      {"pad_value",
       {{3}},
       [](T x) {
         return pad(x[0], {{2, 1}}, 7);
       },
       [](T x) {
         return pad_ref(x[0], {{2, 1}}, 7);
       }},
      {"pad_negative_crops",
       {{4, 5}},
       [](T x) {
         return pad(x[0], {{-1, 2}, {1, -3}}, 2);
       },
       [](T x) {
         return pad_ref(slice_ref(slice_ref(x[0], 0, 1, 4), 1, 0, 2), {{0, 2}, {1, 0}}, 2);
       }},
      {"pad_empty_input",
       {{0, 3}},
       [](T x) {
         return pad(x[0], {{1, 1}, {2, 0}}, 3);
       },
       [](T x) {
         return pad_ref(x[0], {{1, 1}, {2, 0}}, 3);
       }},
      {"pad_3d",
       {{2, 1, 3}},
       [](T x) {
         return pad(x[0], {{0, 1}, {2, 0}, {1, 1}}, 1);
       },
       [](T x) {
         return pad_ref(x[0], {{0, 1}, {2, 0}, {1, 1}}, 1);
       }},
      {"pad_scalar", {{}}, [](T x) { return pad(x[0], {}); }, [](T x) { return x[0]; }},
      {"tile_same_rank",
       {{2, 3}},
       [](T x) {
         return tile(x[0], {2, 1});
       },
       [](T x) {
         return tile_ref(x[0], {2, 1});
       }},
      {"tile_short_reps",
       {{2, 3}},
       [](T x) { return tile(x[0], {3}); },
       [](T x) { return tile_ref(x[0], {3}); }},
      {"tile_long_reps",
       {{2, 3}},
       [](T x) {
         return tile(x[0], {2, 1, 2});
       },
       [](T x) {
         return tile_ref(x[0], {2, 1, 2});
       }},
      {"tile_zero",
       {{2, 3}},
       [](T x) {
         return tile(x[0], {0, 2});
       },
       [](T x) {
         return tile_ref(x[0], {0, 2});
       }},
      {"repeat",
       {{2, 3}},
       [](T x) {
         return repeat(x[0], {1, 2, 2});
       },
       [](T x) {
         return tile_ref(x[0], {1, 2, 2});
       }},
      {"movedim",
       {{2, 3, 4}},
       [](T x) { return movedim(x[0], 0, -1); },
       [](T x) {
         return permute_ref(x[0], {1, 2, 0});
       }},
      {"movedim_many",
       {{2, 3, 4, 5}},
       [](T x) {
         return movedim(x[0], {0, 1}, {3, 0});
       },
       [](T x) {
         return permute_ref(x[0], {1, 2, 3, 0});
       }},
      {"swapaxes",
       {{2, 3, 4}},
       [](T x) { return swapaxes(x[0], 0, -1); },
       [](T x) {
         return permute_ref(x[0], {2, 1, 0});
       }},
      {"expand",
       {{3, 1}},
       [](T x) {
         return expand(x[0], {2, -1, 4});
       },
       [](T x) {
         return tile_ref(x[0], {2, 1, 4});
       }},
      {"reshape",
       {{3, 4}},
       [](T x) {
         return reshape(x[0], {2, -1});
       },
       [](T x) {
         return reshape_ref(x[0], {2, 6});
       }},
      {"reshape_split_dim",
       {{3, 4}},
       [](T x) {
         return reshape(x[0], {3, 2, 2});
       },
       [](T x) {
         return reshape_ref(x[0], {3, 2, 2});
       }},
      {"flatten_size0",
       {{2, 0, 3}},
       [](T x) { return flatten(x[0]); },
       [](T x) { return reshape_ref(x[0], {0}); }},
  };
}

const std::vector<Dtype> kDtypes = {Dtype::f64, Dtype::f32, Dtype::i64,
                                    Dtype::i32, Dtype::u8,  Dtype::boolean};

/// Inputs of the given shapes and dtype: integers in [0, 100), bools about half true.
Tensors inputs_of(const std::vector<Shape>& shapes, Dtype dtype) {
  Tensors xs;
  uint64_t seed = 10;
  for (const Shape& s : shapes) {
    if (dtype == Dtype::boolean) {
      xs.push_back(make(s, seed++) > 0.0);
    } else if (is_floating(dtype)) {
      xs.push_back(make(s, seed++, -1, 1, dtype));
    } else {
      xs.push_back(make(s, seed++, 0, 100, dtype));
    }
  }
  return xs;
}

class MovementForward : public ::testing::TestWithParam<ForwardCase> {};

TEST_P(MovementForward, MatchesReferenceForEveryDtype) {
  const ForwardCase& c = GetParam();
  for (Dtype dtype : kDtypes) {
    const Tensors xs = inputs_of(c.shapes, dtype);
    const Tensor want = c.ref(xs);
    const Tensor got = c.op(xs);
    EXPECT_EQ(got.dtype(), dtype) << c.name;
    EXPECT_TRUE(all_close(got, want)) << c.name << " " << dtype_name(dtype);
    Tensors nc;
    for (const Tensor& x : xs) nc.push_back(testing::noncontiguous(x));
    EXPECT_TRUE(all_close(c.op(nc), want)) << c.name << " non-contiguous " << dtype_name(dtype);
  }
}

INSTANTIATE_TEST_SUITE_P(Movement, MovementForward, ::testing::ValuesIn(forward_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

// --- derivatives table
// -------------------------------------------------------------------------------
struct DerivativeCase {
  const char* name;
  std::vector<Shape> shapes;
  Fn f;
};

std::vector<DerivativeCase> derivative_cases() {
  using T = const Tensors&;
  return {
      {"slice", {{5, 4}}, [](T x) { return Tensors{slice(x[0], 0, 1, 4)}; }},
      {"slice_step", {{3, 7}}, [](T x) { return Tensors{slice(x[0], -1, -6, 100, 2)}; }},
      {"slice_step_from_start", {{2, 8}}, [](T x) { return Tensors{slice(x[0], 1, 0, 8, 3)}; }},
      {"slice_empty", {{4, 3}}, [](T x) { return Tensors{slice(x[0], 0, 3, 1)}; }},
      {"slice_of_noncontiguous",
       {{4, 6}},
       [](T x) { return Tensors{slice(transpose(x[0]), 0, 1, 6, 2)}; }},
      {"narrow", {{4, 6}}, [](T x) { return Tensors{narrow(x[0], 1, -4, 3)}; }},
      {"concat", {{2, 1}, {2, 3}, {2, 2}}, [](T x) { return Tensors{concat(x, 1)}; }},
      {"concat_with_empty", {{0, 3}, {2, 3}}, [](T x) { return Tensors{concat(x, 0)}; }},
      {"concat_same_input_twice",
       {{2, 3}},
       [](T x) {
         return Tensors{concat({x[0], x[0]}, -1)};
       }},
      {"stack", {{3}, {3}}, [](T x) { return Tensors{stack(x, -1)}; }},
      {"split",
       {{5, 3}},
       [](T x) {
         return split(x[0], {2, 0, 3}, 0);
       }},
      {"split_each", {{2, 7}}, [](T x) { return split(x[0], int64_t{3}, -1); }},
      {"chunk", {{7, 2}}, [](T x) { return chunk(x[0], 3); }},
      {"flip", {{3, 4}}, [](T x) { return Tensors{flip(x[0], {-1})}; }},
      {"flip_all", {{2, 3, 2}}, [](T x) { return Tensors{flip(x[0])}; }},
      {"pad",
       {{2, 3}},
       [](T x) {
         return Tensors{pad(x[0], {{1, 2}, {0, 3}})};
       }},
      {"pad_value",
       {{2, 3}},
       [](T x) {
         return Tensors{pad(x[0], {{1, 0}, {2, 1}}, 1.5)};
       }},
      {"pad_negative",
       {{4, 5}},
       [](T x) {
         return Tensors{pad(x[0], {{-1, 2}, {1, -3}})};
       }},
      {"tile",
       {{2, 3}},
       [](T x) {
         return Tensors{tile(x[0], {2, 1, 2})};
       }},
      {"repeat",
       {{3}},
       [](T x) {
         return Tensors{repeat(x[0], {2, 2})};
       }},
      {"movedim", {{2, 3, 4}}, [](T x) { return Tensors{movedim(x[0], 0, 2)}; }},
      {"expand",
       {{3, 1}},
       [](T x) {
         return Tensors{expand(x[0], {2, -1, 4})};
       }},
      {"view",
       {{3, 4}},
       [](T x) {
         return Tensors{view(x[0], {2, 2, 3})};
       }},
      {"reshape_needs_copy", {{3, 4}}, [](T x) { return Tensors{reshape(transpose(x[0]), {12})}; }},
      {"reshape_view_of_noncontiguous",
       {{3, 4}},
       [](T x) {
         return Tensors{reshape(transpose(x[0]), {2, 2, 3})};
       }},
      // Nonlinear chains, so the second derivatives are not zero.
      {"slice_concat_pad_chain",
       {{2, 3}, {4, 2}},
       [](T x) {
         const Tensor joined = concat({pad(x[0], {{1, 1}, {0, 1}}, 0.5), x[1]}, 1);
         return Tensors{square(slice(joined, 0, 1, 100, 2)) * slice(joined, 0, 0, 3, 2)};
       }},
      {"flip_times_self", {{3, 4}}, [](T x) { return Tensors{x[0] * flip(x[0], {0})}; }},
      {"stack_split_product",
       {{2, 3}, {2, 3}},
       [](T x) {
         const Tensors parts = chunk(stack(x, 0), 2, 2);
         return Tensors{parts[0] * parts[1]};
       }},
  };
}

class MovementDerivatives : public ::testing::TestWithParam<DerivativeCase> {};

TEST_P(MovementDerivatives, FirstAndSecondOrder) {
  const DerivativeCase& c = GetParam();
  Tensors xs;
  uint64_t seed = 20;
  for (const Shape& s : c.shapes) xs.push_back(make(s, seed++));
  testing::expect_derivatives(c.f, xs);
}

INSTANTIATE_TEST_SUITE_P(Movement, MovementDerivatives, ::testing::ValuesIn(derivative_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

// --- individual behaviours
// ----------------------------------------------------------------------------
TEST(MovementSlice, FollowsPythonRules) {
  const Tensor x = arange(10);
  constexpr int64_t kBig = std::numeric_limits<int64_t>::max();
  constexpr int64_t kSmall = std::numeric_limits<int64_t>::min();
  struct Row {
    int64_t start, stop, step;
    std::vector<int64_t> want;
  };
  const std::vector<Row> rows = {
      {2, 7, 1, {2, 3, 4, 5, 6}},
      {-3, 100, 1, {7, 8, 9}},
      {-100, 3, 1, {0, 1, 2}},
      {1, 9, 3, {1, 4, 7}},
      {8, 2, 1, {}},
      {0, 10, 4, {0, 4, 8}},
      {-1, -100, 1, {}},
      {kSmall, kBig, 1, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
      {9, kBig, kBig, {9}},
      {10, 20, 1, {}},
  };
  for (const Row& r : rows) {
    EXPECT_EQ(slice(x, 0, r.start, r.stop, r.step).to_vector<int64_t>(), r.want)
        << r.start << ":" << r.stop << ":" << r.step;
  }
}

TEST(MovementViews, ShareStorage) {
  const Tensor x = make({4, 6}, 1);
  const Tensor t = transpose(x);
  for (const Tensor& v :
       {slice(x, 1, 1, 5, 2), narrow(x, 0, 1, 2), expand(slice(x, 0, 0, 1), {3, -1}),
        view(x, {2, 12}), movedim(x, 0, 1), swapaxes(x, 0, 1), reshape(t, {3, 2, 4}),
        unsqueeze(t, 1), squeeze(unsqueeze(t, 0)), flatten(slice(x, 0, 1, 3), 0, 1)}) {
    EXPECT_EQ(v.storage(), x.storage()) << shape_str(v.shape());
  }
  for (const Tensor& v : split(x, {1, 2, 3}, 1)) EXPECT_EQ(v.storage(), x.storage());
  for (const Tensor& v : chunk(x, 3, 0)) EXPECT_EQ(v.storage(), x.storage());
  // Copies: a fresh buffer.
  for (const Tensor& c : {concat({x}, 0), flip(x, {0}), pad(x, {{1, 0}, {0, 0}}), tile(x, {2, 1}),
                          reshape(t, {24})}) {
    EXPECT_NE(c.storage(), x.storage()) << shape_str(c.shape());
  }
  // Writing through a slice view changes the base.
  const Tensor base = zeros({2, 4}, Dtype::i64);
  slice(base, 1, 1, 4, 2).assign(full({2, 2}, 5, Dtype::i64));
  EXPECT_EQ(base.to_vector<int64_t>(), (std::vector<int64_t>{0, 5, 0, 5, 0, 5, 0, 5}));
}

TEST(MovementViews, ReshapeFollowsStrideRules) {
  const Tensor x = reshape(arange(24), {4, 6});
  const Tensor rows = slice(x, 0, 0, 4, 2);  // shape (2, 6), strides (12, 1)
  const Tensor split_cols = reshape(rows, {2, 2, 3});
  EXPECT_EQ(split_cols.storage(), x.storage());
  EXPECT_EQ(split_cols.strides(), (Shape{12, 3, 1}));
  EXPECT_TRUE(all_close(split_cols, reshape_ref(rows, {2, 2, 3})));
  const Tensor merged = reshape(rows, {12});  // the two rows are not adjacent: a copy
  EXPECT_NE(merged.storage(), x.storage());
  EXPECT_TRUE(all_close(merged, reshape_ref(rows, {12})));
  // Broadcast (zero-stride) dimensions can be split but not merged with real ones.
  const Tensor b = broadcast_to(arange(3), {4, 3});
  EXPECT_EQ(reshape(b, {2, 2, 3}).strides(), (Shape{0, 0, 1}));
  EXPECT_TRUE(all_close(reshape(b, {12}), reshape_ref(b, {12})));
  EXPECT_TRUE(
      throws_error([&] { view(rows, {12}); }, {"[view]", "(2, 6)", "(12, 1)", "(12,)", "reshape"}));
}

TEST(MovementSplit, PiecesAndCounts) {
  const Tensor x = make({3, 7}, 2);
  const Tensors a = split(x, {2, 0, 5}, -1);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_TRUE(all_close(a[0], slice_ref(x, 1, 0, 2)));
  EXPECT_EQ(a[1].shape(), (Shape{3, 0}));
  EXPECT_TRUE(all_close(a[2], slice_ref(x, 1, 2, 7)));
  const Tensors b = split(x, int64_t{3}, 1);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[2].shape(), (Shape{3, 1}));
  EXPECT_TRUE(all_close(b[1], slice_ref(x, 1, 3, 6)));
  // PyTorch's chunk: ceil(7 / 4) = 2 per piece, so 4 pieces of 2, 2, 2, 1; ceil(5 / 4) gives 3.
  EXPECT_EQ(chunk(x, 4, 1).size(), 4u);
  EXPECT_EQ(chunk(zeros({5}), 4).size(), 3u);
  EXPECT_EQ(chunk(zeros({5}), 4)[2].shape(), (Shape{1}));
  EXPECT_EQ(chunk(zeros({2, 0}), 3, 1).size(), 3u);
  EXPECT_EQ(split(zeros({0}), int64_t{2}).size(), 1u);
  EXPECT_TRUE(all_close(concat(chunk(x, 3, 1), 1), x));
}

TEST(MovementConcat, PromotesDtypes) {
  const Tensor c = concat({tensor({1, 2}), tensor({0.5f})});
  EXPECT_EQ(c.dtype(), Dtype::f32);
  EXPECT_EQ(c.to_vector<float>(), (std::vector<float>{1, 2, 0.5f}));
  const Tensor b = concat({tensor({1.0}) > 0.0, tensor<int64_t>({7})});
  EXPECT_EQ(b.dtype(), Dtype::i64);
  EXPECT_EQ(b.to_vector<int64_t>(), (std::vector<int64_t>{1, 7}));
}

TEST(MovementConcat, LargeInputsUseEveryPath) {
  // Big enough to run on several threads: contiguous blocks (memcpy) and strided rows.
  const Tensor a = make({300, 200}, 3);
  const Tensor b = make({300, 100}, 4);
  EXPECT_TRUE(all_close(concat({a, b}, 1), concat_ref({a, b}, 1)));
  EXPECT_TRUE(all_close(concat({a, a}, 0), concat_ref({a, a}, 0)));
  EXPECT_TRUE(all_close(concat({transpose(a), transpose(a)}, 0),
                        concat_ref({transpose(a).contiguous(), transpose(a).contiguous()}, 0)));
  EXPECT_TRUE(all_close(flip(a, {1}), flip_ref(a, {1})));
  EXPECT_TRUE(all_close(pad(b, {{3, 1}, {0, 7}}, -1), pad_ref(b, {{3, 1}, {0, 7}}, -1)));
}

TEST(MovementGrad, SecondDerivativeOfStridedSlice) {
  // f(x) = sum(x[::2]^3): f' = 3x^2 at even positions, and d/dx sum(f') = 6x there.
  const Tensor x = tensor({1.0, 2.0, 3.0, 4.0, 5.0});
  const auto f = [](const Tensor& v) { return sum(pow(slice(v, 0, 0, 5, 2), 3.0)); };
  const auto df = grad(f);
  EXPECT_TRUE(all_close(df(x), tensor({3.0, 0.0, 27.0, 0.0, 75.0})));
  const auto d2f = grad([&df](const Tensor& v) { return sum(df(v)); });
  EXPECT_TRUE(all_close(d2f(x), tensor({6.0, 0.0, 18.0, 0.0, 30.0})));
}

TEST(MovementGrad, ConcatOfIntegerAndFloat) {
  // Only floating inputs receive a gradient; the integer one passes through.
  const auto g = grad([](const Tensors& in) {
    return sum(concat({in[0], tensor({5, 6})}) * 2.0);
  })({tensor({1.0, 2.0})});
  EXPECT_TRUE(all_close(g[0], tensor({2.0, 2.0})));
}

TEST(MovementErrors, MessagesNameTheProblem) {
  const Tensor x = zeros({2, 3});
  EXPECT_TRUE(throws_error([&] { slice(x, 2, 0, 1); }, {"[slice]", "axis 2", "2 dimensions"}));
  EXPECT_TRUE(throws_error([&] { slice(x, 0, 0, 1, 0); }, {"[slice]", "step", "0", "(2, 3)"}));
  EXPECT_TRUE(throws_error([&] { slice(x, 0, 0, 1, -1); }, {"[slice]", "step", "-1"}));
  EXPECT_TRUE(throws_error([&] { slice(scalar(1.0), 0, 0, 1); }, {"[slice]", "0 dimensions"}));
  EXPECT_TRUE(throws_error([&] { narrow(x, 1, 2, 2); }, {"[narrow]", "(2, 3)"}));
  EXPECT_TRUE(throws_error([&] { narrow(x, -3, 0, 1); }, {"[narrow]", "axis -3"}));
  EXPECT_TRUE(throws_error([] { concat({}, 0); }, {"[concat]", "empty"}));
  EXPECT_TRUE(throws_error(
      [&] {
        concat({x, zeros({2, 4})}, 0);
      },
      {"[concat]", "(2, 4)", "(2, 3)", "axis 0"}));
  EXPECT_TRUE(throws_error(
      [&] {
        concat({x, zeros({2, 3, 1})}, 1);
      },
      {"[concat]", "(2, 3, 1)", "(2, 3)"}));
  EXPECT_TRUE(throws_error([&] { concat({x, x}, -3); }, {"[concat]", "axis -3"}));
  EXPECT_TRUE(throws_error([] { concat({scalar(1.0), scalar(2.0)}, 0); }, {"[concat]", "0-d"}));
  EXPECT_TRUE(throws_error(
      [&] {
        concat({x, Tensor()}, 0);
      },
      {"[concat]", "tensor 1", "undefined"}));
  EXPECT_TRUE(throws_error([] { stack({}, 0); }, {"[stack]", "empty"}));
  EXPECT_TRUE(throws_error([&] { stack({x, zeros({3, 2})}, 0); }, {"[stack]", "(3, 2)", "(2, 3)"}));
  EXPECT_TRUE(throws_error([&] { stack({x, x}, 3); }, {"[stack]", "axis 3"}));
  EXPECT_TRUE(throws_error([&] { split(x, {1, 1}, 1); }, {"[split]", "add up to 2", "(2, 3)"}));
  EXPECT_TRUE(throws_error([&] { split(x, {4, -1}, 1); }, {"[split]", "negative", "-1"}));
  EXPECT_TRUE(throws_error([&] { split(x, int64_t{0}, 1); }, {"[split]", "positive"}));
  EXPECT_TRUE(throws_error([&] { chunk(x, 0, 1); }, {"[chunk]", "positive"}));
  EXPECT_TRUE(throws_error([&] { flip(x, {0, -2}); }, {"[flip]", "repeated"}));
  EXPECT_TRUE(throws_error([&] { flip(x, {2}); }, {"[flip]", "axis 2"}));
  EXPECT_TRUE(throws_error(
      [&] {
        pad(x, {{1, 1}});
      },
      {"[pad]", "1 (before, after) pairs", "(2, 3)"}));
  EXPECT_TRUE(throws_error([&] { pad(x, {{0, 0}, {-2, -2}}); }, {"[pad]", "axis 1", "3 elements"}));
  EXPECT_TRUE(throws_error(
      [] {
        pad(zeros({2}, Dtype::u8), {{1, 1}}, -1);
      },
      {"[pad]", "-1", "uint8"}));
  EXPECT_TRUE(throws_error([] { pad(zeros({2}, Dtype::i32), {{1, 1}}, NAN); }, {"[pad]", "int32"}));
  EXPECT_TRUE(throws_error([&] { expand(x, {3}); }, {"[expand]", "(3,)", "(2, 3)"}));
  EXPECT_TRUE(throws_error([&] { expand(x, {2, 4}); }, {"[expand]", "(2, 4)", "(2, 3)"}));
  EXPECT_TRUE(throws_error([&] { expand(x, {-1, 2, 3}); }, {"[expand]", "(-1, 2, 3)"}));
  EXPECT_TRUE(throws_error([&] { view(x, {4, -1}); }, {"[view]", "(2, 3)"}));
  EXPECT_TRUE(
      throws_error([&] { view(transpose(x), {6}); }, {"[view]", "(3, 2)", "(1, 3)", "(6,)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        movedim(x, {0, 1}, {1});
      },
      {"[movedim]", "2 source", "1 destination"}));
  EXPECT_TRUE(throws_error([&] { movedim(x, {0, 0}, {0, 1}); }, {"[movedim]", "twice"}));
  EXPECT_TRUE(throws_error([&] { movedim(x, 2, 0); }, {"[movedim]", "axis 2"}));
  EXPECT_TRUE(throws_error([&] { swapaxes(x, 0, 5); }, {"[swapaxes]", "axis 5"}));
  EXPECT_TRUE(throws_error([&] { repeat(x, {2}); }, {"[repeat]", "(2,)", "(2, 3)"}));
  EXPECT_TRUE(throws_error([&] { tile(x, {2, -1}); }, {"[tile]", "negative", "-1"}));
  EXPECT_TRUE(throws_error([] { slice(Tensor(), 0, 0, 1); }, {"[slice]", "undefined"}));
  EXPECT_TRUE(throws_error([] { flip(Tensor()); }, {"[flip]", "undefined"}));
}

}  // namespace
}  // namespace basin
