// Matmul: forward vs a naive triple loop for every layout, derivatives to third order, errors.
#include <cmath>

#include "tests/test_util.h"

namespace basin {
namespace {
using testing::all_close;
using testing::make;

/// numpy.matmul on the host, in double, by explicit index arithmetic.
Tensor naive_matmul(const Tensor& a, const Tensor& b) {
  Shape sa = a.shape(), sb = b.shape();
  if (sa.size() == 1) sa.insert(sa.begin(), 1);
  if (sb.size() == 1) sb.push_back(1);
  const int64_t m = sa[sa.size() - 2], k = sa.back(), n = sb.back();
  const Shape ba(sa.begin(), sa.end() - 2), bb(sb.begin(), sb.end() - 2);
  const Shape batch = broadcast_shapes(ba, bb, "naive_matmul");
  const auto av = a.to_vector<double>();
  const auto bv = b.to_vector<double>();
  // Flat index of batch entry `i` in an operand with batch shape `s` (size-1 dims broadcast).
  auto entry = [&batch](const Shape& s, int64_t i) {
    int64_t idx = 0, stride = 1;
    for (size_t d = batch.size(); d-- > 0;) {
      const int64_t coord = i % batch[d];
      i /= batch[d];
      const int64_t sd = static_cast<int64_t>(d) - static_cast<int64_t>(batch.size() - s.size());
      if (sd >= 0) {
        if (s[sd] != 1) idx += coord * stride;
        stride *= s[sd];
      }
    }
    return idx;
  };
  std::vector<double> out(static_cast<size_t>(numel(batch) * m * n), 0.0);
  for (int64_t e = 0; e < numel(batch); ++e) {
    const double* pa = av.data() + entry(ba, e) * m * k;
    const double* pb = bv.data() + entry(bb, e) * k * n;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0.0;
        for (int64_t l = 0; l < k; ++l) acc += pa[i * k + l] * pb[l * n + j];
        out[(e * m + i) * n + j] = acc;
      }
    }
  }
  Shape result = batch;
  if (a.ndim() > 1) result.push_back(m);
  if (b.ndim() > 1) result.push_back(n);
  return from_vector(out, result);
}

const std::vector<std::pair<Shape, Shape>> kShapes = {
    {{3}, {3}},                 // dot product
    {{3}, {3, 4}},              // 1-D on the left
    {{2, 3}, {3}},              // 1-D on the right
    {{2, 3}, {3, 4}},           // plain
    {{5, 2, 3}, {5, 3, 4}},     // batched
    {{5, 2, 3}, {3, 4}},        // batch times one matrix (folded into one product)
    {{5, 2, 3}, {3}},           // batch times a vector
    {{3}, {5, 3, 4}},           // vector times a batch
    {{2, 3}, {5, 3, 4}},        // one matrix times a batch
    {{2, 1, 4, 3}, {5, 3, 2}},  // broadcast batch dimensions
    {{1, 4, 3}, {6, 3, 2}},
    {{3, 1, 2, 4}, {1, 2, 4, 3}},
    {{0, 3}, {3, 4}},  // empty dimensions
    {{2, 3}, {3, 0}},
    {{2, 0}, {0, 3}},  // empty inner dimension: zeros
    {{0, 2, 3}, {3, 4}},
    {{4, 0, 2, 3}, {1, 3, 2}},
    {{1, 1}, {1, 1}},  // size-1 dimensions
    {{1, 3}, {3, 1}},
    {{4, 1}, {1, 5}},
    {{1, 1, 3}, {2, 3, 1}},
};

TEST(Matmul, ForwardMatchesNaiveReference) {
  for (const auto& [sa, sb] : kShapes) {
    const Tensor a = make(sa, 1);
    const Tensor b = make(sb, 2);
    const Tensor want = naive_matmul(a, b);
    const std::string what = shape_str(sa) + " @ " + shape_str(sb);
    const Tensor got = matmul(a, b);
    EXPECT_EQ(got.dtype(), Dtype::f64) << what;
    EXPECT_TRUE(all_close(got, want, 1e-12, 1e-12)) << what;
    EXPECT_TRUE(
        all_close(matmul(testing::noncontiguous(a), testing::noncontiguous(b)), want, 1e-12, 1e-12))
        << what << " non-contiguous";
    const Tensor a32 = a.astype(Dtype::f32), b32 = b.astype(Dtype::f32);
    const Tensor got32 = matmul(a32, b32);
    EXPECT_EQ(got32.dtype(), Dtype::f32) << what;
    EXPECT_TRUE(all_close(got32, naive_matmul(a32, b32), 1e-5, 1e-6)) << what << " float32";
    EXPECT_TRUE(all_close(matmul(testing::noncontiguous(a32), testing::noncontiguous(b32)),
                          naive_matmul(a32, b32), 1e-5, 1e-6))
        << what << " float32 non-contiguous";
  }
}

TEST(Matmul, TransposedAndStridedOperands) {
  for (Dtype dtype : {Dtype::f64, Dtype::f32}) {
    const double tol = dtype == Dtype::f64 ? 1e-12 : 1e-5;
    const Tensor at = make({7, 5}, 3, -1, 1, dtype);  // read as its transpose (5, 7)
    const Tensor bt = make({6, 7}, 4, -1, 1, dtype);  // read as its transpose (7, 6)
    const Tensor a = transpose(at), b = transpose(bt);
    ASSERT_FALSE(a.is_contiguous());
    const Tensor want = naive_matmul(a, b);
    EXPECT_TRUE(all_close(matmul(a, b), want, tol, 1e-6));
    EXPECT_TRUE(all_close(matmul(a, b.contiguous()), want, tol, 1e-6));
    EXPECT_TRUE(all_close(matmul(a.contiguous(), b), want, tol, 1e-6));
    // Rows with a gap after them (a leading dimension larger than the row).
    const Tensor wide = make({5, 10}, 5, -1, 1, dtype);
    const Tensor padded = slice(wide, 1, 2, 9);  // (5, 7), row stride 10
    EXPECT_TRUE(all_close(matmul(padded, b), naive_matmul(padded, b), tol, 1e-6));
    // Every other column: neither layout fits BLAS, so the operand is packed.
    const Tensor strided = slice(wide, 1, 0, 10, 2);  // (5, 5), column stride 2
    const Tensor c = make({5, 3}, 6, -1, 1, dtype);
    EXPECT_TRUE(all_close(matmul(strided, c), naive_matmul(strided, c), tol, 1e-6));
    // Zero strides inside the matrix (a broadcast row) are packed too.
    const Tensor row = broadcast_to(make({1, 7}, 7, -1, 1, dtype), {5, 7});
    EXPECT_TRUE(all_close(matmul(row, b), naive_matmul(row, b), tol, 1e-6));
    // Batched, with the batch of B transposed like the keys of attention: (8, 9, 4) @ (8, 4, 9).
    const Tensor q = make({8, 9, 4}, 8, -1, 1, dtype);
    const Tensor keys = make({8, 9, 4}, 9, -1, 1, dtype);
    EXPECT_TRUE(all_close(matmul(q, transpose(keys)), naive_matmul(q, transpose(keys)), tol, 1e-6));
    // Batch dimensions permuted: (4, 8, 3) seen as (8, 4, 3).
    const Tensor perm = permute(make({4, 8, 3}, 10, -1, 1, dtype), {1, 0, 2});
    const Tensor w = make({8, 3, 2}, 11, -1, 1, dtype);
    EXPECT_TRUE(all_close(matmul(perm, w), naive_matmul(perm, w), tol, 1e-6));
  }
}

TEST(Matmul, TransposedAndBroadcastOperandsAreNotCopied) {
  // One allocation (the result) when BLAS can read both operands in place; a packed copy of
  // each operand only when it cannot.
  auto allocations = [](const std::function<void()>& fn) {
    const size_t before = allocator_stats(Device::cpu()).n_allocs;
    fn();
    return allocator_stats(Device::cpu()).n_allocs - before;
  };
  for (Dtype dtype : {Dtype::f32, Dtype::f64}) {
    const Tensor q = make({8, 9, 4}, 30, -1, 1, dtype), keys = make({8, 9, 4}, 31, -1, 1, dtype);
    EXPECT_EQ(allocations([&] { matmul(q, transpose(keys)); }), 1u) << dtype_name(dtype);
    EXPECT_EQ(allocations([&] { matmul(transpose(keys), q); }), 1u) << dtype_name(dtype);
    const Tensor a = make({2, 1, 4, 3}, 32, -1, 1, dtype), b = make({5, 3, 2}, 33, -1, 1, dtype);
    EXPECT_EQ(allocations([&] { matmul(a, b); }), 1u) << dtype_name(dtype);
    const Tensor x = make({5, 2, 3}, 34, -1, 1, dtype), w = make({4, 3}, 35, -1, 1, dtype);
    EXPECT_EQ(allocations([&] { matmul(x, transpose(w)); }), 1u) << dtype_name(dtype);
    const Tensor every_other = slice(make({5, 10}, 36, -1, 1, dtype), 1, 0, 10, 2);
    EXPECT_EQ(allocations([&] { matmul(every_other, transpose(every_other)); }), 3u)
        << dtype_name(dtype);
  }
}

TEST(Matmul, LargerShapesOnEveryStrategy) {
  // Sizes where the kernel picks oneDNN's batched matmul, threads over the batch, one multi-
  // threaded product per entry, or one folded product, in both dtypes.
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{64, 65, 32}, {64, 32, 65}},  // attention-sized heads
      {{1024, 4, 4}, {1024, 4, 4}},  // many tiny products
      {{3, 200, 150}, {3, 150, 120}}, {{2, 3, 50, 40}, {40, 60}},
      {{300, 200}, {200, 100}},       {{2, 1, 40, 30}, {3, 30, 20}},
  };
  for (const auto& [sa, sb] : shapes) {
    for (Dtype dtype : {Dtype::f64, Dtype::f32}) {
      const Tensor a = make(sa, 12, -1, 1, dtype), b = make(sb, 13, -1, 1, dtype);
      const double tol = dtype == Dtype::f64 ? 1e-12 : 2e-5;
      const std::string what = shape_str(sa) + " @ " + shape_str(sb) + " " + dtype_name(dtype);
      EXPECT_TRUE(all_close(matmul(a, b), naive_matmul(a, b), tol, 1e-4)) << what;
      const Tensor bt = transpose(transpose(b).contiguous());  // b's values, column-major
      EXPECT_TRUE(all_close(matmul(a, bt), naive_matmul(a, b), tol, 1e-4))
          << what << " transposed B";
    }
  }
}

TEST(Matmul, EdgeLayoutsAtSizesForEitherLibrary) {
  // Single rows, unit inner dimensions, transposed and padded operands, at sizes that reach
  // oneDNN's sgemm as well as OpenBLAS (float32 picks by size), and float64.
  for (Dtype dtype : {Dtype::f32, Dtype::f64}) {
    const double tol = dtype == Dtype::f64 ? 1e-12 : 2e-5;
    auto m = [dtype](const Shape& s, uint64_t seed) { return make(s, seed, -1, 1, dtype); };
    const std::vector<std::pair<Tensor, Tensor>> cases = {
        {m({1, 64}, 40), transpose(m({300, 64}, 41))},
        {m({64}, 42), m({64, 300}, 43)},
        {m({5000}, 44), m({5000}, 45)},
        {m({300, 1}, 46), m({1, 200}, 47)},
        {transpose(m({1, 300}, 48)), m({1, 200}, 49)},
        {transpose(m({40, 50}, 50)), m({40, 60}, 51)},
        {transpose(m({40, 50}, 52)), transpose(m({60, 40}, 53))},
        {slice(m({60, 100}, 54), 1, 10, 90), m({80, 70}, 55)},
        {m({60, 80}, 56), slice(m({80, 100}, 57), 1, 5, 75)},
        {m({2, 3, 50, 40}, 58), transpose(m({60, 40}, 59))},
        {transpose(m({3, 40, 50}, 60)), m({3, 40, 60}, 61)},
    };
    for (const auto& [a, b] : cases) {
      EXPECT_TRUE(all_close(matmul(a, b), naive_matmul(a, b), tol, 1e-4))
          << shape_str(a.shape()) << " @ " << shape_str(b.shape()) << " " << dtype_name(dtype);
    }
  }
}

TEST(Matmul, MixedDtypesPromote) {
  const Tensor a = make({2, 3}, 14, -1, 1, Dtype::f32);
  const Tensor b = make({3, 2}, 15);
  const Tensor c = matmul(a, b);
  EXPECT_EQ(c.dtype(), Dtype::f64);
  EXPECT_TRUE(all_close(c, naive_matmul(a, b)));
}

TEST(Matmul, Derivatives) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3}, {3}},
      {{3}, {3, 2}},
      {{2, 3}, {3}},
      {{2, 3}, {3, 4}},
      {{2, 2, 3}, {2, 3, 2}},
      {{2, 2, 3}, {3, 2}},
      {{2, 1, 2, 3}, {3, 3, 2}},
      {{1, 2, 3}, {2, 3, 2}},
      {{3}, {2, 3, 2}},
  };
  for (const auto& [sa, sb] : shapes) {
    SCOPED_TRACE(shape_str(sa) + " @ " + shape_str(sb));
    const Fn f = [](const Tensors& in) { return Tensors{matmul(in[0], in[1])}; };
    testing::expect_derivatives(f, {make(sa, 16), make(sb, 17)});
    // Transposed operand: the same maths through the 'T' path.
    if (sa.size() >= 2) {
      const Fn ft = [](const Tensors& in) { return Tensors{matmul(transpose(in[0]), in[1])}; };
      Shape st = sa;
      std::swap(st[st.size() - 1], st[st.size() - 2]);
      testing::expect_derivatives(ft, {make(st, 18), make(sb, 19)});
    }
  }
}

TEST(Matmul, GradientShapesFollowBroadcasting) {
  const Tensor a = make({2, 1, 4, 3}, 20);
  const Tensor b = make({5, 3, 2}, 21);
  const auto g = grad([](const Tensors& in) { return sum(matmul(in[0], in[1])); }, {0, 1})({a, b});
  EXPECT_EQ(g[0].shape(), a.shape());
  EXPECT_EQ(g[1].shape(), b.shape());
  // d/dA sum(A B) = 1 B^T summed over the broadcast batch: every row of dA is sum_h rowsum(B_h).
  const Tensor rows = sum(b, {0, 2});  // (3,)
  EXPECT_TRUE(all_close(g[0], broadcast_to(rows, a.shape())));
}

TEST(Matmul, ThirdDerivativeOfTanhChain) {
  // f(x) = sum(tanh(A x)) with a batched A. Nested grads give d3 f contracted with u and w; it is
  // compared with central differences of the second-order quantity, and with the closed form.
  const Tensor a = make({2, 3, 4}, 22);
  const Tensor x = make({4}, 23);
  const Tensor u = make({4}, 24);
  const Tensor w = make({4}, 25);
  auto f = [&a](const Tensor& v) { return sum(tanh(matmul(a, v))); };
  auto d1 = grad(f);
  auto s1 = [&](const Tensor& v) { return sum(d1(v) * u); };
  auto d2 = grad(s1);
  auto s2 = [&](const Tensor& v) { return sum(d2(v) * w); };
  auto d3 = grad(s2);
  const Tensor got = d3(x);

  const double eps = 1e-5;
  std::vector<double> numeric(4);
  for (int i = 0; i < 4; ++i) {
    auto e = std::vector<double>(4, 0.0);
    e[i] = eps;
    const Tensor step = from_vector(e, {4});
    numeric[i] = (s2(x + step).item<double>() - s2(x - step).item<double>()) / (2 * eps);
  }
  EXPECT_TRUE(all_close(got, from_vector(numeric, {4}), 1e-6, 1e-7));

  // Closed form: sum_i t'''(z_i) (a_i . u) (a_i . w) a_i with t''' = (1 - t^2)(6 t^2 - 2).
  const Tensor t = tanh(matmul(a, x));
  const Tensor t3 = (1.0 - t * t) * (6.0 * t * t - 2.0);
  const Tensor closed = sum(unsqueeze(t3 * matmul(a, u) * matmul(a, w), -1) * a, {0, 1});
  EXPECT_TRUE(all_close(got, closed, 1e-10, 1e-12));

  // The same through the checkers: gradcheck and gradgradcheck of d1 reach the third order.
  testing::expect_derivatives([&](const Tensors& in) { return Tensors{d1(in[0])}; }, {x});
}

TEST(Matmul, Errors) {
  EXPECT_TRUE(testing::throws_error(
      [] {
        matmul(zeros({4, 3}), zeros({2, 5}));
      },
      {"[matmul] inner dimensions differ: (4, 3) @ (2, 5)"}));
  EXPECT_TRUE(
      testing::throws_error([] { matmul(zeros({3}), zeros({4})); }, {"[matmul]", "(3,) @ (4,)"}));
  EXPECT_TRUE(testing::throws_error(
      [] {
        matmul(zeros({2, 3, 4}), zeros({5, 4, 2}));
      },
      {"[matmul]", "batch", "(2, 3, 4) @ (5, 4, 2)"}));
  EXPECT_TRUE(
      testing::throws_error([] { matmul(zeros({}), zeros({3})); }, {"[matmul]", "() @ (3,)"}));
  EXPECT_TRUE(testing::throws_error(
      [] {
        matmul(zeros({2, 2}, Dtype::i32), zeros({2, 2}, Dtype::i32));
      },
      {"[matmul]", "int32", "(2, 2) @ (2, 2)"}));
  EXPECT_TRUE(
      testing::throws_error([] { matmul(Tensor(), zeros({2})); }, {"[matmul]", "undefined"}));
}

}  // namespace
}  // namespace basin
