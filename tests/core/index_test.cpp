// Indexing ops: forward vs naive references, determinism, derivatives, error messages.
#include <cmath>

#include "tests/test_util.h"

namespace basin {
namespace {
using testing::all_close;
using testing::make;

Tensor random_index(const Shape& shape, int64_t size, uint64_t seed, Dtype dtype) {
  if (numel(shape) == 0 || size == 0) return zeros(shape, dtype);
  Generator gen(seed);
  return randint(0, size, shape, dtype, Device::cpu(), &gen);
}

Shape unravel(int64_t flat, const Shape& shape) {
  Shape coords(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    coords[d] = flat % shape[d];
    flat /= shape[d];
  }
  return coords;
}

int64_t ravel(const Shape& coords, const Shape& shape) {
  int64_t flat = 0;
  for (size_t d = 0; d < shape.size(); ++d) flat = flat * shape[d] + coords[d];
  return flat;
}

Tensor naive_gather(const Tensor& x, int axis, const Tensor& index) {
  const auto xv = x.to_vector<double>();
  const auto iv = index.to_vector<int64_t>();
  std::vector<double> out(iv.size());
  for (size_t p = 0; p < iv.size(); ++p) {
    Shape c = unravel(static_cast<int64_t>(p), index.shape());
    c[axis] = iv[p];
    out[p] = xv[ravel(c, x.shape())];
  }
  return from_vector(out, index.shape());
}

/// Serial scatter-add in the index's row-major order, accumulating in T.
template <class T>
Tensor naive_scatter_add(const Tensor& base, int axis, const Tensor& index, const Tensor& src) {
  auto out = base.to_vector<T>();
  const auto iv = index.to_vector<int64_t>();
  const auto sv = broadcast_to(src, index.shape()).to_vector<T>();
  for (size_t p = 0; p < iv.size(); ++p) {
    Shape c = unravel(static_cast<int64_t>(p), index.shape());
    c[axis] = iv[p];
    out[ravel(c, base.shape())] += sv[p];
  }
  return from_vector(out, base.shape());
}

struct AxisCase {
  const char* name;
  Shape x_shape;
  int axis;
  Shape index_shape;
};

std::vector<AxisCase> axis_cases() {
  return {
      {"rows", {5, 4}, 0, {7, 4}},
      {"cols", {5, 4}, 1, {5, 6}},
      {"negative_axis", {2, 3, 4}, -1, {2, 3, 5}},
      {"middle_axis_smaller_index", {4, 5, 3}, 1, {2, 6, 3}},
      {"smaller_trailing", {3, 4, 5}, 0, {4, 2, 3}},
      {"one_d", {6}, 0, {9}},
      {"size_one", {1, 1}, 0, {3, 1}},
      {"empty_index", {3, 4}, 0, {0, 4}},
      {"empty_x", {0, 4}, 1, {0, 2}},
  };
}

class IndexAxis : public ::testing::TestWithParam<AxisCase> {};

TEST_P(IndexAxis, GatherMatchesReference) {
  const AxisCase& c = GetParam();
  const int axis = c.axis < 0 ? c.axis + static_cast<int>(c.x_shape.size()) : c.axis;
  const Tensor x = make(c.x_shape, 1);
  for (Dtype it : {Dtype::i32, Dtype::i64}) {
    const Tensor index = random_index(c.index_shape, c.x_shape[axis], 2, it);
    const Tensor want = naive_gather(x, axis, index);
    EXPECT_TRUE(all_close(gather(x, c.axis, index), want)) << c.name;
    EXPECT_TRUE(all_close(gather(testing::noncontiguous(x), c.axis, index), want)) << c.name;
    EXPECT_TRUE(all_close(gather(x, c.axis, testing::noncontiguous(index)), want)) << c.name;
    const Tensor y32 = gather(x.astype(Dtype::f32), c.axis, index);
    EXPECT_EQ(y32.dtype(), Dtype::f32);
    EXPECT_TRUE(all_close(y32, want, 1e-6, 1e-6)) << c.name;
  }
}

TEST_P(IndexAxis, ScatterAddMatchesReference) {
  const AxisCase& c = GetParam();
  const int axis = c.axis < 0 ? c.axis + static_cast<int>(c.x_shape.size()) : c.axis;
  const Tensor base = make(c.x_shape, 3);
  const Tensor src = make(c.index_shape, 4);
  for (Dtype it : {Dtype::i32, Dtype::i64}) {
    const Tensor index = random_index(c.index_shape, c.x_shape[axis], 5, it);
    const Tensor want = naive_scatter_add<double>(base, axis, index, src);
    EXPECT_TRUE(all_close(scatter_add(base, c.axis, index, src), want, 1e-12, 1e-12)) << c.name;
    EXPECT_TRUE(all_close(scatter_add(testing::noncontiguous(base), c.axis,
                                      testing::noncontiguous(index), testing::noncontiguous(src)),
                          want, 1e-12, 1e-12))
        << c.name;
  }
}

TEST_P(IndexAxis, Derivatives) {
  const AxisCase& c = GetParam();
  const int axis = c.axis < 0 ? c.axis + static_cast<int>(c.x_shape.size()) : c.axis;
  const Tensor index = random_index(c.index_shape, c.x_shape[axis], 6, Dtype::i32);
  // square() makes the second derivative depend on x, not only on the cotangent.
  testing::expect_derivatives(
      [&](const Tensors& in) { return Tensors{square(gather(in[0], c.axis, in[1]))}; },
      {make(c.x_shape, 7), index});
  testing::expect_derivatives(
      [&](const Tensors& in) { return Tensors{square(scatter_add(in[0], c.axis, in[1], in[2]))}; },
      {make(c.x_shape, 8), index, make(c.index_shape, 9)});
}

INSTANTIATE_TEST_SUITE_P(Index, IndexAxis, ::testing::ValuesIn(axis_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Index, ScatterAddBroadcastSourceAndDuplicates) {
  const Tensor base = zeros({4});
  const Tensor index = tensor<int64_t>({1, 3, 1, 1});
  EXPECT_EQ(scatter_add(base, 0, index, scalar(1.0)).to_vector<float>(),
            (std::vector<float>{0, 3, 0, 1}));
  // Integer tensors scatter too; src is cast to base's dtype.
  EXPECT_EQ(scatter_add(zeros({3}, Dtype::i32), 0, tensor<int32_t>({2, 2}), tensor({1.0, 2.0}))
                .to_vector<int>(),
            (std::vector<int>{0, 0, 3}));
}

TEST(Index, ScatterAddIsDeterministicAndMatchesSerialOrder) {
  // Many duplicates into few rows, large enough to run on several threads: the float32 sums must
  // equal a serial pass in index order bit for bit.
  const int64_t n = 20000, d = 8, rows = 7;
  const Tensor index =
      broadcast_to(reshape(random_index({n}, rows, 10, Dtype::i64), {n, 1}), {n, d});
  const Tensor src = make({n, d}, 11, -1, 1, Dtype::f32);
  const Tensor base = make({rows, d}, 12, -1, 1, Dtype::f32);
  const auto want = naive_scatter_add<float>(base, 0, index, src).to_vector<float>();
  for (int rep = 0; rep < 3; ++rep) {
    EXPECT_EQ(scatter_add(base, 0, index, src).to_vector<float>(), want);
  }
  // Along the last axis the columns are the rows of base.
  const Tensor index_t = random_index({d, n}, rows, 13, Dtype::i32);
  const Tensor src_t = make({d, n}, 14, -1, 1, Dtype::f32);
  const Tensor base_t = make({d, rows}, 15, -1, 1, Dtype::f32);
  EXPECT_EQ(scatter_add(base_t, 1, index_t, src_t).to_vector<float>(),
            naive_scatter_add<float>(base_t, 1, index_t, src_t).to_vector<float>());
}

TEST(Index, LargeGatherMatchesReference) {
  const Tensor x = make({300, 200}, 16);
  const Tensor index = random_index({300, 500}, 200, 17, Dtype::i64);
  EXPECT_TRUE(all_close(gather(x, 1, index), naive_gather(x, 1, index)));
  const Tensor rows = random_index({1000}, 300, 18, Dtype::i32);
  const Tensor want = naive_gather(x, 0, broadcast_to(reshape(rows, {1000, 1}), {1000, 200}));
  EXPECT_TRUE(all_close(index_select(x, 0, rows), want));
  EXPECT_TRUE(all_close(index_select(testing::noncontiguous(x), 0, rows), want));
}

struct SelectCase {
  const char* name;
  Shape x_shape;
  int axis;
  std::vector<int64_t> index;
};

std::vector<SelectCase> select_cases() {
  return {
      {"rows", {5, 3}, 0, {4, 0, 4, 2}}, {"cols", {3, 5}, 1, {1, 1, 0}},
      {"middle", {2, 4, 3}, 1, {3, 0}},  {"last_negative_axis", {2, 3, 4}, -1, {0, 3, 3, 1, 2}},
      {"empty_index", {4, 2}, 0, {}},    {"one_d", {6}, 0, {5, 0, 2}},
  };
}

class IndexSelect : public ::testing::TestWithParam<SelectCase> {};

TEST_P(IndexSelect, MatchesReference) {
  const SelectCase& c = GetParam();
  const int axis = c.axis < 0 ? c.axis + static_cast<int>(c.x_shape.size()) : c.axis;
  const Tensor x = make(c.x_shape, 20);
  const int64_t k = static_cast<int64_t>(c.index.size());
  Shape out_shape = c.x_shape;
  out_shape[axis] = k;
  const auto xv = x.to_vector<double>();
  std::vector<double> want(static_cast<size_t>(numel(out_shape)));
  for (size_t p = 0; p < want.size(); ++p) {
    Shape coords = unravel(static_cast<int64_t>(p), out_shape);
    coords[axis] = c.index[coords[axis]];
    want[p] = xv[ravel(coords, c.x_shape)];
  }
  for (Dtype it : {Dtype::i32, Dtype::i64}) {
    const Tensor index = from_vector(c.index, {k}).astype(it);
    EXPECT_TRUE(all_close(index_select(x, c.axis, index), from_vector(want, out_shape))) << c.name;
    EXPECT_TRUE(all_close(index_select(testing::noncontiguous(x), c.axis, index),
                          from_vector(want, out_shape)))
        << c.name;
  }
}

TEST_P(IndexSelect, Derivatives) {
  const SelectCase& c = GetParam();
  const Tensor index = from_vector(c.index, {static_cast<int64_t>(c.index.size())});
  testing::expect_derivatives(
      [&](const Tensors& in) { return Tensors{square(index_select(in[0], c.axis, in[1]))}; },
      {testing::noncontiguous(make(c.x_shape, 21)), index});
}

INSTANTIATE_TEST_SUITE_P(Index, IndexSelect, ::testing::ValuesIn(select_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Index, EmbeddingLooksUpRows) {
  const Tensor weight = make({6, 3}, 22);
  const Tensor ids = tensor<int32_t>({{1, 5, 1}, {0, 2, 5}});
  const Tensor e = embedding(weight, ids);
  EXPECT_EQ(e.shape(), (Shape{2, 3, 3}));
  const auto wv = weight.to_vector<double>();
  const auto iv = ids.to_vector<int64_t>();
  std::vector<double> want;
  for (int64_t id : iv) want.insert(want.end(), wv.begin() + 3 * id, wv.begin() + 3 * id + 3);
  EXPECT_TRUE(all_close(e, from_vector(want, {2, 3, 3})));
  // A 0-d id gives one row; empty ids give an empty lookup.
  EXPECT_EQ(embedding(weight, scalar(4, Dtype::i64)).shape(), (Shape{3}));
  EXPECT_EQ(embedding(weight, zeros({0, 2}, Dtype::i64)).shape(), (Shape{0, 2, 3}));
  // Repeated ids accumulate their gradients.
  const Tensor g = grad([&](const Tensor& w) { return sum(embedding(w, ids)); })(weight);
  EXPECT_EQ(sum(g, {1}).to_vector<double>(), (std::vector<double>{3, 6, 3, 0, 0, 6}));
  testing::expect_derivatives(
      [](const Tensors& in) { return Tensors{square(embedding(in[0], in[1]))}; }, {weight, ids});
}

TEST(Index, IndexPutReplacesOrAccumulates) {
  const Tensor x = make({4, 3}, 23);
  const Tensor values = make({2, 3}, 24);
  const Tensor index = tensor<int64_t>({3, 1});
  auto xv = x.to_vector<double>();
  const auto vv = values.to_vector<double>();
  auto put = xv;
  auto acc = xv;
  for (int k = 0; k < 2; ++k) {
    const int row = k == 0 ? 3 : 1;
    for (int j = 0; j < 3; ++j) {
      put[row * 3 + j] = vv[k * 3 + j];
      acc[row * 3 + j] += vv[k * 3 + j];
    }
  }
  EXPECT_TRUE(all_close(index_put(x, 0, index, values), from_vector(put, {4, 3})));
  EXPECT_TRUE(all_close(index_put(x, 0, index, values, true), from_vector(acc, {4, 3})));
  // The input is untouched (functional), values broadcast, and accumulate adds duplicates.
  EXPECT_EQ(x.to_vector<double>(), xv);
  EXPECT_EQ(index_put(zeros({2, 3}), 1, tensor<int32_t>({2, 0}), scalar(5.0)).to_vector<float>(),
            (std::vector<float>{5, 0, 5, 5, 0, 5}));
  EXPECT_EQ(
      index_put(zeros({3}), 0, tensor<int32_t>({2, 2, 0}), scalar(1.0), true).to_vector<float>(),
      (std::vector<float>{1, 0, 2}));
  // Values broadcast along the non-indexed axis.
  EXPECT_EQ(index_put(zeros({3, 2}), 0, tensor<int64_t>({2, 0}), tensor({{1.0}, {2.0}}))
                .to_vector<float>(),
            (std::vector<float>{2, 2, 0, 0, 1, 1}));
}

TEST(Index, MaskedFillAndOneHot) {
  const Tensor x = tensor({{1.0, 2.0}, {3.0, 4.0}});
  const Tensor mask = tensor<bool>({true, false});
  EXPECT_EQ(masked_fill(x, mask, -1.0).to_vector<double>(), (std::vector<double>{-1, 2, -1, 4}));
  EXPECT_EQ(masked_fill(x, x > 2.5, 0.0).to_vector<double>(), (std::vector<double>{1, 2, 0, 0}));

  const Tensor oh = one_hot(tensor<int64_t>({2, 0, 2}), 3);
  EXPECT_EQ(oh.dtype(), Dtype::f32);
  EXPECT_EQ(oh.shape(), (Shape{3, 3}));
  EXPECT_EQ(oh.to_vector<float>(), (std::vector<float>{0, 0, 1, 1, 0, 0, 0, 0, 1}));
  const Tensor ob = one_hot(tensor<int32_t>({{1}, {0}}), 2, Dtype::boolean);
  EXPECT_EQ(ob.dtype(), Dtype::boolean);
  EXPECT_EQ(ob.shape(), (Shape{2, 1, 2}));
  EXPECT_EQ(ob.to_vector<int>(), (std::vector<int>{0, 1, 1, 0}));
  EXPECT_EQ(one_hot(scalar(1, Dtype::i32), 4, Dtype::i64).to_vector<int64_t>(),
            (std::vector<int64_t>{0, 1, 0, 0}));
  EXPECT_EQ(one_hot(zeros({0}, Dtype::i64), 0).shape(), (Shape{0, 0}));
}

/// Derivatives of the compositions, in one table.
struct DerivativeCase {
  const char* name;
  Fn f;
  Tensors inputs;
};

std::vector<DerivativeCase> derivative_cases() {
  return {
      {"scatter_add_broadcast_src",
       [](const Tensors& in) { return Tensors{square(scatter_add(in[0], 0, in[1], in[2]))}; },
       {make({4, 3}, 30), tensor<int64_t>({{0, 3, 3}, {0, 0, 1}}), make({1, 3}, 31)}},
      {"gather_of_scatter_add",
       [](const Tensors& in) {
         return Tensors{gather(exp(scatter_add(in[0], 1, in[1], in[2])), 1, in[1])};
       },
       {make({3, 4}, 32), tensor<int32_t>({{1, 1}, {3, 0}, {2, 2}}), make({3, 2}, 33)}},
      {"index_put",
       [](const Tensors& in) { return Tensors{square(index_put(in[0], 1, in[1], in[2]))}; },
       {make({3, 4}, 34), tensor<int64_t>({3, 0}), make({3, 2}, 35)}},
      {"index_put_accumulate",
       [](const Tensors& in) { return Tensors{square(index_put(in[0], 0, in[1], in[2], true))}; },
       {make({3, 2}, 36), tensor<int32_t>({2, 0, 2}), make({3, 2}, 37)}},
      {"masked_fill",
       [](const Tensors& in) { return Tensors{square(masked_fill(in[0], in[0] > 0.2, 0.5))}; },
       {make({3, 4}, 38)}},
      {"one_hot_weights",
       [](const Tensors& in) {
         return Tensors{sum(square(one_hot(in[1], 4, Dtype::f64) * in[0]), {1})};
       },
       {make({3, 4}, 39), tensor<int64_t>({3, 0, 3})}},
  };
}

class IndexDerivatives : public ::testing::TestWithParam<DerivativeCase> {};

TEST_P(IndexDerivatives, FirstAndSecond) {
  const DerivativeCase& c = GetParam();
  testing::expect_derivatives(c.f, c.inputs);
}

INSTANTIATE_TEST_SUITE_P(Index, IndexDerivatives, ::testing::ValuesIn(derivative_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Index, Errors) {
  using testing::throws_error;
  const Tensor x = zeros({3, 5});
  const Tensor ok = zeros({3, 2}, Dtype::i64);
  EXPECT_TRUE(throws_error(
      [&] {
        gather(x, 1, tensor<int64_t>({{0, 7}, {1, 2}, {0, 0}}));
      },
      {"[gather]", "index 7", "[0, 5)", "axis 1", "(3, 5)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        gather(x, 1, tensor<int32_t>({{0, 1}, {-1, 2}, {0, 0}}));
      },
      {"[gather]", "index -1", "[0, 5)"}));
  EXPECT_TRUE(throws_error([&] { gather(x, 1, zeros({3}, Dtype::i64)); },
                           {"[gather]", "(3,)", "(3, 5)", "rank"}));
  EXPECT_TRUE(throws_error(
      [&] {
        gather(x, 1, zeros({4, 5}, Dtype::i64));
      },
      {"[gather]", "(4, 5)", "(3, 5)", "axis 0"}));
  EXPECT_TRUE(throws_error([&] { gather(x, 1, zeros({3, 2})); }, {"[gather]", "float32", "int64"}));
  EXPECT_TRUE(throws_error([&] { gather(x, 2, ok); }, {"[gather]", "axis 2"}));
  EXPECT_NO_THROW(gather(x, 0, ok));
  EXPECT_TRUE(throws_error(
      [&] {
        scatter_add(x, 0, tensor<int64_t>({{0, 1}, {3, 0}}), ones({2, 2}));
      },
      {"[scatter_add]", "index 3", "[0, 3)", "axis 0", "(3, 5)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        scatter_add(x, 1, ok, ones({2, 2}));
      },
      {"[scatter_add]", "(2, 2)", "(3, 2)"}));
  EXPECT_TRUE(throws_error([&] { scatter_add(zeros({2}, Dtype::boolean), 0, ok, ones({2})); },
                           {"[scatter_add]", "bool"}));
  EXPECT_TRUE(throws_error([&] { index_select(x, 0, ok); }, {"[index_select]", "1-D", "(3, 2)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        index_select(x, 1, tensor<int64_t>({1, 5}));
      },
      {"[index_select]", "index 5", "[0, 5)", "axis 1"}));
  EXPECT_TRUE(throws_error(
      [&] {
        embedding(zeros({10, 4}), tensor<int32_t>({{1, 10}}));
      },
      {"[embedding]", "index 10", "[0, 10)", "(10, 4)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        embedding(zeros({10, 4}), zeros({2}));
      },
      {"[embedding]", "ids", "float32"}));
  EXPECT_TRUE(throws_error(
      [&] {
        index_put(x, 0, tensor<int64_t>({1, 1}), ones({2, 5}));
      },
      {"[index_put]", "index 1 appears 2 times", "accumulate"}));
  EXPECT_TRUE(throws_error(
      [&] {
        index_put(x, 0, tensor<int64_t>({1, 4}), ones({2, 5}));
      },
      {"[index_put]", "index 4", "[0, 3)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        index_put(x, 0, tensor<int64_t>({1, 2}), ones({3, 5}));
      },
      {"[index_put]", "(3, 5)", "(2, 5)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        masked_fill(x, zeros({3, 5}), 1.0);
      },
      {"[masked_fill]", "bool", "float32"}));
  EXPECT_TRUE(throws_error(
      [&] {
        masked_fill(zeros({5}), zeros({3, 5}, Dtype::boolean), 1.0);
      },
      {"[masked_fill]", "(3, 5)", "(5,)"}));
  EXPECT_TRUE(throws_error(
      [] {
        one_hot(tensor<int64_t>({0, 3}), 3);
      },
      {"[one_hot]", "index 3", "[0, 3)"}));
  EXPECT_TRUE(throws_error([] { one_hot(tensor<int64_t>({0}), -1); }, {"[one_hot]", "-1"}));
  EXPECT_TRUE(throws_error([] { one_hot(tensor({0.0}), 2); }, {"[one_hot]", "labels", "float64"}));
  EXPECT_TRUE(
      throws_error([] { gather(Tensor(), 0, zeros({1}, Dtype::i64)); }, {"[gather]", "undefined"}));
}

}  // namespace
}  // namespace basin
