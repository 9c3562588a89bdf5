// Softmax family: forward against a naive host reference (every axis, scalars, size-0 and size-1
// dims, non-contiguous inputs, row and column layouts at parallel sizes), masked (-inf) slices,
// and first, second and third derivatives against finite differences.
#include <omp.h>

#include <cmath>
#include <limits>

#include "tests/test_util.h"

namespace basin {
namespace {
using testing::all_close;
using testing::make;
using testing::throws_error;

constexpr double kInf = std::numeric_limits<double>::infinity();

/// Reference: softmax (or log-softmax) of every slice along `axis`, by index arithmetic.
Tensor naive_softmax(const Tensor& x, int axis, bool log) {
  const Shape& shape = x.shape();
  if (shape.empty()) return reshape(naive_softmax(reshape(x, {1}), 0, log), {});
  const int a = axis < 0 ? axis + x.ndim() : axis;
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(a) + 1; d < shape.size(); ++d) inner *= shape[d];
  const int64_t n = shape[a];
  const int64_t outer = n * inner == 0 ? 0 : x.numel() / (n * inner);
  const auto v = x.to_vector<double>();
  std::vector<double> out(v.size());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t j) { return static_cast<size_t>((o * n + j) * inner + i); };
      double m = -kInf;
      for (int64_t j = 0; j < n; ++j) m = std::max(m, v[at(j)]);
      double s = 0;
      for (int64_t j = 0; j < n; ++j) s += std::exp(v[at(j)] - m);
      for (int64_t j = 0; j < n; ++j) {
        if (m == -kInf) {
          out[at(j)] = log ? -kInf : 0.0;
        } else {
          out[at(j)] = log ? v[at(j)] - m - std::log(s) : std::exp(v[at(j)] - m) / s;
        }
      }
    }
  }
  return from_vector(out, shape);
}

struct SoftmaxCase {
  const char* name;
  std::function<Tensor(const Tensor&, int)> op;
  bool log;
};

std::vector<SoftmaxCase> softmax_cases() {
  return {{"softmax", [](const Tensor& x, int a) { return softmax(x, a); }, false},
          {"log_softmax", [](const Tensor& x, int a) { return log_softmax(x, a); }, true}};
}

class SoftmaxOps : public ::testing::TestWithParam<SoftmaxCase> {};

TEST_P(SoftmaxOps, ForwardMatchesReference) {
  const SoftmaxCase& c = GetParam();
  const std::vector<Shape> shapes = {{},        {1},       {7},       {3, 4},
                                     {2, 3, 4}, {1, 4, 1}, {2, 0, 3}, {4, 1, 5}};
  for (const Shape& shape : shapes) {
    const int nd = static_cast<int>(shape.size());
    for (int axis = -std::max(nd, 1); axis < std::max(nd, 1); ++axis) {
      SCOPED_TRACE(fmt::format("{} {} axis {}", c.name, shape_str(shape), axis));
      const Tensor x = make(shape, 51, -3, 3);
      const Tensor want = naive_softmax(x, axis, c.log);
      EXPECT_TRUE(all_close(c.op(x, axis), want, 1e-12, 1e-14));
      EXPECT_TRUE(all_close(c.op(testing::noncontiguous(x), axis), want, 1e-12, 1e-14));
      const Tensor x32 = x.astype(Dtype::f32);
      const Tensor y32 = c.op(x32, axis);
      EXPECT_EQ(y32.dtype(), Dtype::f32);
      EXPECT_TRUE(all_close(y32, naive_softmax(x32, axis, c.log), 2e-6, 2e-7));
    }
  }
}

TEST_P(SoftmaxOps, LargeLayoutsMatchReference) {
  // Long rows (the contiguous path), reductions across rows (the column path), transposed
  // inputs (strided), at sizes that run in parallel.
  const Tensor x = make({300, 700}, 52, -8, 8);
  const Tensor x3 = make({6, 500, 40}, 53, -8, 8);
  for (int threads : {1, 3}) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    for (int axis : {0, 1}) {
      SCOPED_TRACE(fmt::format("{} axis {} threads {}", GetParam().name, axis, threads));
      const Tensor want = naive_softmax(x, axis, GetParam().log);
      EXPECT_TRUE(all_close(GetParam().op(x, axis), want, 1e-12, 1e-14));
      EXPECT_TRUE(
          all_close(GetParam().op(transpose(transpose(x).contiguous()), axis), want, 1e-12, 1e-14));
      const Tensor x32 = x.astype(Dtype::f32);
      EXPECT_TRUE(all_close(GetParam().op(x32, axis), naive_softmax(x32, axis, GetParam().log),
                            4e-6, 1e-7));
    }
    for (int axis : {0, 1, 2}) {
      const Tensor want = naive_softmax(x3, axis, GetParam().log);
      EXPECT_TRUE(all_close(GetParam().op(x3, axis), want, 1e-12, 1e-14)) << axis;
      EXPECT_TRUE(
          all_close(GetParam().op(permute(permute(x3, {2, 0, 1}).contiguous(), {1, 2, 0}), axis),
                    want, 1e-12, 1e-14))
          << axis;
    }
    omp_set_num_threads(saved);
  }
}

TEST_P(SoftmaxOps, Derivatives) {
  const SoftmaxCase& c = GetParam();
  for (const auto& [shape, axis] : std::vector<std::pair<Shape, int>>{
           {{3, 4}, -1}, {{3, 4}, 0}, {{2, 3, 4}, 1}, {{5}, 0}, {{2, 1, 3}, 1}}) {
    SCOPED_TRACE(fmt::format("{} {} axis {}", c.name, shape_str(shape), axis));
    const Fn f = [&](const Tensors& in) { return Tensors{c.op(in[0], axis)}; };
    testing::expect_derivatives(f, {make(shape, 54, -2, 2)});
  }
}

TEST_P(SoftmaxOps, ThirdDerivative) {
  const SoftmaxCase& c = GetParam();
  const Tensor x = make({2, 4}, 55, -1.5, 1.5);
  const Tensor u = make({2, 4}, 56);
  const Tensor w = make({2, 4}, 57);
  // f1 = d/dx <u, op(x)>: gradcheck of f1 checks the second derivative, gradgradcheck the third.
  const Fn f1 = [&](const Tensors& in) {
    return Tensors{grad([&](const Tensor& t) { return sum(u * c.op(t, 1)); })(in[0])};
  };
  testing::expect_derivatives(f1, {x});
  // f2 = d/dx <w, f1(x)>: its vjp (a third derivative, by three nested reverse passes) against
  // finite differences of the second derivative.
  const Fn f2 = [&](const Tensors& in) {
    return Tensors{grad([&](const Tensor& t) { return sum(w * f1({t})[0]); })(in[0])};
  };
  const GradcheckResult r = gradcheck(f2, {x});
  EXPECT_TRUE(r.ok) << r.message;
}

INSTANTIATE_TEST_SUITE_P(Softmax, SoftmaxOps, ::testing::ValuesIn(softmax_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Softmax, StableForLargeInputs) {
  const Tensor x = tensor<double>({1000, 1001, 1002});
  const Tensor s = softmax(x);
  EXPECT_TRUE(all_close(s, naive_softmax(x - 1000.0, 0, false)));
  EXPECT_NEAR(sum(s).item<double>(), 1.0, 1e-15);
  const Tensor x32 = tensor<float>({-500.f, 0.f, 500.f});
  EXPECT_EQ(softmax(x32).to_vector<float>(), (std::vector<float>{0.f, 0.f, 1.f}));
  // log_softmax stays exact where softmax underflows.
  EXPECT_EQ(log_softmax(x32).to_vector<float>(), (std::vector<float>{-1000.f, -500.f, 0.f}));
}

TEST(Softmax, FullyMaskedSlicesGiveZeros) {
  // Row 0 fully masked, row 1 partly; along axis 1 and (transposed) axis 0.
  const Tensor x = tensor<double>({{-kInf, -kInf, -kInf}, {-kInf, 0.0, std::log(3.0)}});
  const Tensor want_s = tensor<double>({{0, 0, 0}, {0, 0.25, 0.75}});
  const Tensor want_l =
      tensor<double>({{-kInf, -kInf, -kInf}, {-kInf, std::log(0.25), std::log(0.75)}});
  EXPECT_TRUE(all_close(softmax(x, 1), want_s));
  EXPECT_TRUE(all_close(log_softmax(x, 1), want_l));
  EXPECT_TRUE(all_close(softmax(transpose(x).contiguous(), 0), transpose(want_s).contiguous()));
  EXPECT_TRUE(all_close(log_softmax(transpose(x).contiguous(), 0), transpose(want_l).contiguous()));
  EXPECT_TRUE(all_close(softmax(x.astype(Dtype::f32), 1), want_s, 1e-6, 1e-7));
  // Gradients and second derivatives stay finite (zero on the masked row for softmax).
  const Tensor v = make({2, 3}, 58);
  for (bool log : {false, true}) {
    const Fn f = [&](const Tensors& in) {
      return Tensors{log ? log_softmax(in[0], 1) : softmax(in[0], 1)};
    };
    const Tensor g = vjp(f, {x}, {v}).second[0];
    for (double e : g.to_vector<double>()) EXPECT_TRUE(std::isfinite(e)) << g;
    if (!log) {
      const auto gv = g.to_vector<double>();
      EXPECT_EQ(gv[0], 0.0);
      EXPECT_EQ(gv[1], 0.0);
      EXPECT_EQ(gv[2], 0.0);
    }
    const Tensor h = grad([&](const Tensor& t) {
      const Tensor gt = vjp(f, {t}, {v}).second[0];
      return sum(gt * gt);
    })(x);
    for (double e : h.to_vector<double>()) EXPECT_TRUE(std::isfinite(e)) << h;
  }
}

TEST(Softmax, BroadcastInputs) {
  const Tensor row = make({1, 5}, 60, -2, 2);
  const Tensor b = broadcast_to(row, {300, 5});
  for (int axis : {0, 1}) {
    EXPECT_TRUE(all_close(softmax(b, axis), softmax(b.contiguous(), axis), 1e-14, 1e-15)) << axis;
    EXPECT_TRUE(all_close(log_softmax(b, axis), log_softmax(b.contiguous(), axis), 1e-14, 1e-14))
        << axis;
  }
}

TEST(Softmax, LogSoftmaxIsLogOfSoftmax) {
  const Tensor x = make({4, 6}, 59, -4, 4);
  EXPECT_TRUE(all_close(log_softmax(x, 0), log(softmax(x, 0)), 1e-12, 1e-14));
  EXPECT_TRUE(all_close(exp(logsumexp(x, {1}, true)) * softmax(x, 1), exp(x), 1e-12, 1e-14));
}

TEST(Softmax, Errors) {
  EXPECT_TRUE(throws_error([] { softmax(zeros({2, 3}), 2); }, {"[softmax]", "axis 2"}));
  EXPECT_TRUE(throws_error([] { log_softmax(zeros({2, 3}), -3); }, {"[log_softmax]", "axis -3"}));
  EXPECT_TRUE(throws_error([] { softmax(scalar(1.0), 1); }, {"[softmax]", "axis 1"}));
  EXPECT_TRUE(throws_error([] { softmax(zeros({2}, Dtype::i32)); }, {"[softmax]", "int32"}));
  EXPECT_TRUE(throws_error([] { log_softmax(Tensor()); }, {"[log_softmax]", "undefined"}));
}

}  // namespace
}  // namespace basin
