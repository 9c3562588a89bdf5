// layer_norm: fused kernel vs naive reference and vs its fallback to second order, errors.
#include <cmath>

#include "core/prims/norm.h"
#include "tests/test_util.h"

namespace basin {
namespace {
using testing::all_close;
using testing::make;

/// Layer norm on the host in double, row by row.
Tensor naive_layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, double eps) {
  const int64_t d = x.shape(-1);
  auto v = x.to_vector<double>();
  const auto wv = w.defined() ? w.to_vector<double>() : std::vector<double>(d, 1.0);
  const auto bv = b.defined() ? b.to_vector<double>() : std::vector<double>(d, 0.0);
  for (size_t r = 0; d > 0 && r < v.size() / d; ++r) {
    double* row = v.data() + r * d;
    double mu = 0, var = 0;
    for (int64_t j = 0; j < d; ++j) mu += row[j] / d;
    for (int64_t j = 0; j < d; ++j) var += (row[j] - mu) * (row[j] - mu) / d;
    for (int64_t j = 0; j < d; ++j) row[j] = (row[j] - mu) / std::sqrt(var + eps) * wv[j] + bv[j];
  }
  return from_vector(v, x.shape());
}

/// The op's own fallback, evaluated directly.
Tensor fallback(const Tensor& x, const Tensor& w, const Tensor& b, double eps) {
  Tensors in{x};
  if (w.defined()) in.push_back(w);
  if (b.defined()) in.push_back(b);
  return prims::LayerNorm(eps, w.defined(), b.defined()).fallback(in);
}

const std::vector<Shape> kShapes = {{7}, {3, 4}, {2, 3, 5}, {4, 1}, {1, 6}, {0, 4}, {3, 0}};

TEST(LayerNorm, ForwardMatchesReferenceAndFallback) {
  for (const Shape& shape : kShapes) {
    const int64_t d = shape.back();
    const Tensor x = make(shape, 1, -2, 3);
    for (int mask = 0; mask < 4; ++mask) {
      const Tensor w = mask & 1 ? make({d}, 2, 0.5, 1.5) : Tensor();
      const Tensor b = mask & 2 ? make({d}, 3) : Tensor();
      const std::string what = shape_str(shape) + " weight " + std::to_string(mask & 1) + " bias " +
                               std::to_string(mask >> 1);
      const Tensor want = naive_layer_norm(x, w, b, 1e-5);
      const Tensor got = layer_norm(x, w, b);
      EXPECT_TRUE(all_close(got, want, 1e-12, 1e-12)) << what;
      EXPECT_TRUE(all_close(got, fallback(x, w, b, 1e-5), 1e-12, 1e-12)) << what << " vs fallback";
      EXPECT_TRUE(all_close(layer_norm(testing::noncontiguous(x), w, b), want, 1e-12, 1e-12))
          << what << " non-contiguous";
      const Tensor x32 = x.astype(Dtype::f32);
      const Tensor w32 = w.defined() ? w.astype(Dtype::f32) : w;
      const Tensor b32 = b.defined() ? b.astype(Dtype::f32) : b;
      const Tensor got32 = layer_norm(x32, w32, b32);
      EXPECT_EQ(got32.dtype(), Dtype::f32);
      EXPECT_TRUE(all_close(got32, naive_layer_norm(x32, w32, b32, 1e-5), 1e-5, 1e-5))
          << what << " float32";
      EXPECT_TRUE(all_close(got32, fallback(x32, w32, b32, 1e-5), 1e-5, 1e-5))
          << what << " float32 fallback";
    }
  }
}

TEST(LayerNorm, RowsWithALargeMeanStayAccurate) {
  // float32 rows around 1e4: the kernel accumulates in double, two passes, so it matches the
  // double reference on the same float32 values.
  const Tensor x = (make({16, 64}, 4) + 1e4).astype(Dtype::f32);
  EXPECT_TRUE(all_close(layer_norm(x), naive_layer_norm(x, Tensor(), Tensor(), 1e-5), 1e-5, 1e-5));
  // A constant row normalises to zero rather than to noise.
  const Tensor flat = full({2, 8}, 3.25, Dtype::f32);
  EXPECT_TRUE(all_close(layer_norm(flat), zeros({2, 8}), 0, 0));
}

TEST(LayerNorm, LargeInputsUseEveryThread) {
  // Enough rows for the kernel to run in parallel; the result must not depend on it.
  const Tensor x = make({512, 257}, 5);
  const Tensor w = make({257}, 6), b = make({257}, 7);
  EXPECT_TRUE(all_close(layer_norm(x, w, b, 1e-3), naive_layer_norm(x, w, b, 1e-3), 1e-12, 1e-12));
}

TEST(LayerNorm, EqualsItsFallbackInGradientAndSecondDerivative) {
  const Tensor x = make({3, 5}, 8), w = make({5}, 9, 0.5, 1.5), b = make({5}, 10);
  const Tensor v = make({3, 5}, 11);
  const Fn fused = [](const Tensors& in) { return Tensors{layer_norm(in[0], in[1], in[2], 1e-3)}; };
  const Fn plain = [](const Tensors& in) { return Tensors{fallback(in[0], in[1], in[2], 1e-3)}; };
  const auto gf = vjp(fused, {x, w, b}, {v}).second;
  const auto gp = vjp(plain, {x, w, b}, {v}).second;
  ASSERT_EQ(gf.size(), 3u);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_TRUE(all_close(gf[i], gp[i], 1e-12, 1e-12)) << "input " << i;

  // Second derivative: the vjp of (x, w, b, v) -> vjp(f, (x, w, b), v).
  auto second = [&](const Fn& f) {
    const Fn g = [f](const Tensors& in) { return vjp(f, {in[0], in[1], in[2]}, {in[3]}).second; };
    return vjp(g, {x, w, b, v}, {make({3, 5}, 12), make({5}, 13), make({5}, 14)}).second;
  };
  const auto hf = second(fused), hp = second(plain);
  ASSERT_EQ(hf.size(), 4u);
  for (size_t i = 0; i < 4; ++i)
    EXPECT_TRUE(all_close(hf[i], hp[i], 1e-12, 1e-12)) << "input " << i;
}

TEST(LayerNorm, GradientsMatchFallbackForEveryShape) {
  // The fused vjp (LayerNormGradInput and its reductions) against the composite's, with and
  // without the affine parameters, in both dtypes, with a non-contiguous cotangent.
  for (const Shape& shape : kShapes) {
    const int64_t d = shape.back();
    for (int mask = 0; mask < 4; ++mask) {
      for (Dtype dtype : {Dtype::f64, Dtype::f32}) {
        const double tol = dtype == Dtype::f64 ? 1e-11 : 1e-4;
        const bool hw = mask & 1, hb = mask & 2;
        Tensors in{make(shape, 21, -2, 3, dtype)};
        if (hw) in.push_back(make({d}, 22, 0.5, 1.5, dtype));
        if (hb) in.push_back(make({d}, 23, -1, 1, dtype));
        auto call = [hw, hb](const Tensors& t, bool fused) {
          const Tensor w = hw ? t[1] : Tensor(), b = hb ? t[hw ? 2 : 1] : Tensor();
          return fused ? layer_norm(t[0], w, b) : fallback(t[0], w, b, 1e-5);
        };
        const Fn fused = [&](const Tensors& t) { return Tensors{call(t, true)}; };
        const Fn plain = [&](const Tensors& t) { return Tensors{call(t, false)}; };
        const Tensor v = testing::noncontiguous(make(shape, 24, -1, 1, dtype));
        const auto gf = vjp(fused, in, {v}).second, gp = vjp(plain, in, {v}).second;
        ASSERT_EQ(gf.size(), in.size());
        for (size_t i = 0; i < in.size(); ++i) {
          EXPECT_TRUE(all_close(gf[i], gp[i], tol, tol))
              << shape_str(shape) << " mask " << mask << " " << dtype_name(dtype) << " input " << i;
        }
      }
    }
  }
}

TEST(LayerNorm, ThirdDerivatives) {
  // gradcheck and gradgradcheck of (x, w, b, v) -> vjp(layer_norm, (x, w, b), v) reach the
  // second and third derivatives, through LayerNormGradInput's own fallback.
  const Fn back = [](const Tensors& in) {
    const Fn f = [](const Tensors& t) { return Tensors{layer_norm(t[0], t[1], t[2], 0.1)}; };
    return vjp(f, {in[0], in[1], in[2]}, {in[3]}).second;
  };
  testing::expect_derivatives(
      back, {make({2, 4}, 25), make({4}, 26, 0.5, 1.5), make({4}, 27), make({2, 4}, 28)});
}

TEST(LayerNorm, Derivatives) {
  const Tensor x = make({3, 5}, 15), w = make({5}, 16, 0.5, 1.5), b = make({5}, 17);
  testing::expect_derivatives([](const Tensors& in) { return Tensors{layer_norm(in[0])}; }, {x});
  testing::expect_derivatives([](const Tensors& in) { return Tensors{layer_norm(in[0], in[1])}; },
                              {x, w});
  testing::expect_derivatives(
      [](const Tensors& in) { return Tensors{layer_norm(in[0], Tensor(), in[1])}; }, {x, b});
  testing::expect_derivatives(
      [](const Tensors& in) { return Tensors{layer_norm(in[0], in[1], in[2], 0.1)}; }, {x, w, b});
  testing::expect_derivatives(
      [](const Tensors& in) { return Tensors{layer_norm(in[0], in[1], in[2])}; },
      {make({2, 2, 4}, 18), make({4}, 19), make({4}, 20)});
}

TEST(LayerNorm, Errors) {
  EXPECT_TRUE(testing::throws_error(
      [] {
        layer_norm(zeros({2, 4}), zeros({5}));
      },
      {"[layer_norm]", "weight", "(5,)", "(2, 4)"}));
  EXPECT_TRUE(testing::throws_error(
      [] {
        layer_norm(zeros({2, 4}), Tensor(), zeros({4, 1}));
      },
      {"[layer_norm]", "bias", "(4, 1)", "(2, 4)"}));
  EXPECT_TRUE(testing::throws_error([] { layer_norm(zeros({})); }, {"[layer_norm]", "()"}));
  EXPECT_TRUE(testing::throws_error(
      [] {
        layer_norm(zeros({2, 4}, Dtype::i32));
      },
      {"[layer_norm]", "int32"}));
  EXPECT_TRUE(testing::throws_error(
      [] {
        layer_norm(zeros({2, 4}), Tensor(), Tensor(), -1.0);
      },
      {"[layer_norm]", "eps"}));
  EXPECT_TRUE(testing::throws_error([] { layer_norm(Tensor()); }, {"[layer_norm]", "undefined"}));
}

}  // namespace
}  // namespace basin
