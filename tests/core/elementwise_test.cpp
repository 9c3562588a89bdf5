// Elementwise ops: forward against naive references (broadcasting, non-contiguous views, empty
// and size-1 dimensions), first and second derivatives against finite differences, one table.
#include <cmath>

#include "tests/test_util.h"

namespace basin {
namespace {
using testing::all_close;
using testing::make;

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> ref;
  double lo, hi;       // input domain
  bool smooth = true;  // second derivative checked
};

double sigmoid_ref(double x) { return 1.0 / (1.0 + std::exp(-x)); }

std::vector<UnaryCase> unary_cases() {
  return {
      {"neg", [](const Tensor& x) { return neg(x); }, [](double x) { return -x; }, -2, 2},
      {"abs", [](const Tensor& x) { return abs(x); }, [](double x) { return std::abs(x); }, 0.1, 2},
      {"abs_negative", [](const Tensor& x) { return abs(x); }, [](double x) { return std::abs(x); },
       -2, -0.1},
      {"exp", [](const Tensor& x) { return exp(x); }, [](double x) { return std::exp(x); }, -2, 2},
      {"log", [](const Tensor& x) { return log(x); }, [](double x) { return std::log(x); }, 0.2, 3},
      {"log1p", [](const Tensor& x) { return log1p(x); }, [](double x) { return std::log1p(x); },
       -0.5, 3},
      {"expm1", [](const Tensor& x) { return expm1(x); }, [](double x) { return std::expm1(x); },
       -2, 2},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double x) { return std::sqrt(x); }, 0.2,
       3},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, [](double x) { return 1 / std::sqrt(x); },
       0.2, 3},
      {"square", [](const Tensor& x) { return square(x); }, [](double x) { return x * x; }, -2, 2},
      {"sin", [](const Tensor& x) { return sin(x); }, [](double x) { return std::sin(x); }, -3, 3},
      {"cos", [](const Tensor& x) { return cos(x); }, [](double x) { return std::cos(x); }, -3, 3},
      {"tanh", [](const Tensor& x) { return tanh(x); }, [](double x) { return std::tanh(x); }, -2,
       2},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, sigmoid_ref, -4, 4},
      {"relu_positive", [](const Tensor& x) { return relu(x); },
       [](double x) { return x > 0 ? x : 0; }, 0.1, 2},
      {"relu_mixed", [](const Tensor& x) { return relu(x); },
       [](double x) { return x > 0 ? x : 0; }, -2, 2, false},
      {"erf", [](const Tensor& x) { return erf(x); }, [](double x) { return std::erf(x); }, -2, 2},
      {"gelu", [](const Tensor& x) { return gelu(x); },
       [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }, -3, 3},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, true); },
       [](double x) {
         return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
       },
       -3, 3},
      {"silu", [](const Tensor& x) { return silu(x); }, [](double x) { return x * sigmoid_ref(x); },
       -3, 3},
      {"softplus", [](const Tensor& x) { return softplus(x); },
       [](double x) { return std::log1p(std::exp(x)); }, -5, 5},
      {"elu_negative", [](const Tensor& x) { return elu(x, 0.7); },
       [](double x) { return x > 0 ? x : 0.7 * std::expm1(x); }, -3, -0.1},
      {"elu_positive", [](const Tensor& x) { return elu(x, 0.7); },
       [](double x) { return x > 0 ? x : 0.7 * std::expm1(x); }, 0.1, 3},
      {"selu", [](const Tensor& x) { return selu(x); },
       [](double x) {
         return 1.0507009873554805 * (x > 0 ? x : 1.6732632423543772 * std::expm1(x));
       },
       -3, -0.1},
      {"pow_scalar", [](const Tensor& x) { return pow(x, 2.5); },
       [](double x) { return std::pow(x, 2.5); }, 0.2, 3},
      {"pow_scalar_int", [](const Tensor& x) { return pow(x, 3.0); },
       [](double x) { return x * x * x; }, -2, 2},
      {"clamp_inside", [](const Tensor& x) { return clamp(x, -5, 5); }, [](double x) { return x; },
       -2, 2},
      {"clamp_outside", [](const Tensor& x) { return clamp(x, -0.5, 0.5); },
       [](double x) { return std::min(0.5, std::max(-0.5, x)); }, 0.6, 2},
  };
}

const std::vector<Shape> kShapes = {{}, {1}, {7}, {3, 4}, {2, 0, 3}, {1, 4, 1}, {2, 3, 4}};

class Unary : public ::testing::TestWithParam<UnaryCase> {};

TEST_P(Unary, ForwardMatchesReference) {
  const UnaryCase& c = GetParam();
  for (const Shape& shape : kShapes) {
    const Tensor x = make(shape, 1, c.lo, c.hi);
    EXPECT_TRUE(all_close(c.op(x), testing::naive_unary(x, c.ref)))
        << c.name << " " << shape_str(shape);
    const Tensor nc = testing::noncontiguous(x);
    EXPECT_TRUE(all_close(c.op(nc), testing::naive_unary(x, c.ref))) << c.name << " non-contiguous";
    const Tensor x32 = x.astype(Dtype::f32);
    const Tensor y32 = c.op(x32);
    EXPECT_EQ(y32.dtype(), Dtype::f32);
    EXPECT_TRUE(all_close(y32, testing::naive_unary(x32, c.ref), 2e-6, 2e-6))
        << c.name << " float32";
  }
}

TEST_P(Unary, Derivatives) {
  const UnaryCase& c = GetParam();
  const Tensor x = make({3, 4}, 2, c.lo, c.hi);
  const Fn f = [&c](const Tensors& in) { return Tensors{c.op(in[0])}; };
  testing::expect_derivatives(f, {x}, c.smooth);
}

INSTANTIATE_TEST_SUITE_P(Elementwise, Unary, ::testing::ValuesIn(unary_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

struct BinaryCase {
  const char* name;
  std::function<Tensor(const Tensor&, const Tensor&)> op;
  std::function<double(double, double)> ref;
  double lo, hi;
};

std::vector<BinaryCase> binary_cases() {
  return {
      {"add", [](const Tensor& a, const Tensor& b) { return a + b; },
       [](double a, double b) { return a + b; }, -2, 2},
      {"sub", [](const Tensor& a, const Tensor& b) { return a - b; },
       [](double a, double b) { return a - b; }, -2, 2},
      {"mul", [](const Tensor& a, const Tensor& b) { return a * b; },
       [](double a, double b) { return a * b; }, -2, 2},
      {"div", [](const Tensor& a, const Tensor& b) { return a / b; },
       [](double a, double b) { return a / b; }, 0.5, 2},
      {"pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); },
       [](double a, double b) { return std::pow(a, b); }, 0.5, 2},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); },
       [](double a, double b) { return std::max(a, b); }, -2, 2},
      {"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); },
       [](double a, double b) { return std::min(a, b); }, -2, 2},
      {"atan2", [](const Tensor& a, const Tensor& b) { return atan2(a, b); },
       [](double a, double b) { return std::atan2(a, b); }, 0.2, 2},
      {"where", [](const Tensor& a, const Tensor& b) { return where(a > b, a, b * 2.0); },
       [](double a, double b) { return a > b ? a : 2 * b; }, -2, 2},
  };
}

const std::vector<std::pair<Shape, Shape>> kShapePairs = {
    {{3, 4}, {3, 4}}, {{3, 1}, {1, 4}},    {{}, {2, 3}},        {{2, 3}, {}},
    {{4}, {3, 4}},    {{2, 0, 3}, {1, 3}}, {{2, 1, 3}, {4, 1}}, {{1}, {1}}};

class Binary : public ::testing::TestWithParam<BinaryCase> {};

TEST_P(Binary, ForwardMatchesReference) {
  const BinaryCase& c = GetParam();
  for (const auto& [sa, sb] : kShapePairs) {
    const Tensor a = make(sa, 3, c.lo, c.hi);
    const Tensor b = make(sb, 4, c.lo, c.hi);
    const Tensor want = testing::naive_binary(a, b, c.ref);
    EXPECT_TRUE(all_close(c.op(a, b), want))
        << c.name << " " << shape_str(sa) << " " << shape_str(sb);
    EXPECT_TRUE(all_close(c.op(testing::noncontiguous(a), testing::noncontiguous(b)), want))
        << c.name << " non-contiguous";
    EXPECT_TRUE(all_close(c.op(a.astype(Dtype::f32), b.astype(Dtype::f32)),
                          testing::naive_binary(a.astype(Dtype::f32), b.astype(Dtype::f32), c.ref),
                          2e-6, 2e-6))
        << c.name << " float32";
  }
}

TEST_P(Binary, Derivatives) {
  const BinaryCase& c = GetParam();
  const Fn f = [&c](const Tensors& in) { return Tensors{c.op(in[0], in[1])}; };
  testing::expect_derivatives(f, {make({3, 4}, 5, c.lo, c.hi), make({3, 4}, 6, c.lo, c.hi)});
  // Broadcast operands: the gradient is summed back to each operand's shape.
  testing::expect_derivatives(f, {make({3, 1}, 7, c.lo, c.hi), make({4}, 8, c.lo, c.hi)});
}

INSTANTIATE_TEST_SUITE_P(Elementwise, Binary, ::testing::ValuesIn(binary_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Elementwise, ComparisonsAndLogic) {
  const Tensor a = tensor({1.0, 2.0, 3.0});
  const Tensor b = tensor({3.0, 2.0, 1.0});
  EXPECT_EQ((a < b).to_vector<int>(), (std::vector<int>{1, 0, 0}));
  EXPECT_EQ((a <= b).to_vector<int>(), (std::vector<int>{1, 1, 0}));
  EXPECT_EQ((a > b).to_vector<int>(), (std::vector<int>{0, 0, 1}));
  EXPECT_EQ((a >= b).to_vector<int>(), (std::vector<int>{0, 1, 1}));
  EXPECT_EQ((a == b).to_vector<int>(), (std::vector<int>{0, 1, 0}));
  EXPECT_EQ((a != b).to_vector<int>(), (std::vector<int>{1, 0, 1}));
  EXPECT_EQ((a < b).dtype(), Dtype::boolean);
  EXPECT_EQ(((a < b) || (a > b)).to_vector<int>(), (std::vector<int>{1, 0, 1}));
  EXPECT_EQ(((a <= b) && (a >= b)).to_vector<int>(), (std::vector<int>{0, 1, 0}));
  EXPECT_EQ(logical_xor(a < b, a <= b).to_vector<int>(), (std::vector<int>{0, 1, 0}));
  EXPECT_EQ((!(a < b)).to_vector<int>(), (std::vector<int>{0, 1, 1}));
  EXPECT_EQ(isnan(tensor<double>({1.0, NAN})).to_vector<int>(), (std::vector<int>{0, 1}));
}

TEST(Elementwise, IntegerArithmeticAndPromotion) {
  const Tensor i = tensor({1, 2, 3});
  EXPECT_EQ(i.dtype(), Dtype::i32);
  EXPECT_EQ((i * i).to_vector<int>(), (std::vector<int>{1, 4, 9}));
  EXPECT_EQ((i / tensor({0, 2, 2})).to_vector<int>(), (std::vector<int>{0, 1, 1}));
  const Tensor mixed = i + tensor({0.5f, 0.5f, 0.5f});
  EXPECT_EQ(mixed.dtype(), Dtype::f32);
  EXPECT_EQ(mixed.to_vector<float>(), (std::vector<float>{1.5f, 2.5f, 3.5f}));
  EXPECT_EQ(abs(tensor({-2, 3})).to_vector<int>(), (std::vector<int>{2, 3}));
  EXPECT_EQ(relu(tensor({-2, 3})).to_vector<int>(), (std::vector<int>{0, 3}));
  EXPECT_EQ(sign(tensor({-2.0, 0.0, 5.0})).to_vector<double>(), (std::vector<double>{-1, 0, 1}));
}

TEST(Elementwise, ScalarOperatorsKeepTheTensorDtype) {
  const Tensor x = tensor({1.f, 2.f});
  EXPECT_EQ((2.f * x).dtype(), Dtype::f32);
  EXPECT_EQ((x + 1).to_vector<float>(), (std::vector<float>{2.f, 3.f}));
  EXPECT_EQ((1.0 - x).to_vector<float>(), (std::vector<float>{0.f, -1.f}));
  EXPECT_EQ((4.0 / x).to_vector<float>(), (std::vector<float>{4.f, 2.f}));
}

TEST(Elementwise, NanPropagatesThroughMaximum) {
  const Tensor m = maximum(tensor<double>({NAN, 1.0}), tensor<double>({0.0, NAN}));
  const auto v = m.to_vector<double>();
  EXPECT_TRUE(std::isnan(v[0]));
  EXPECT_TRUE(std::isnan(v[1]));
}

TEST(Elementwise, SigmoidAndSoftplusAreStableAtExtremes) {
  const Tensor x = tensor({-1000.0, 1000.0});
  EXPECT_EQ(sigmoid(x).to_vector<double>(), (std::vector<double>{0.0, 1.0}));
  EXPECT_EQ(softplus(x).to_vector<double>(), (std::vector<double>{0.0, 1000.0}));
}

TEST(Elementwise, MaximumSplitsTiesEvenly) {
  const Tensor a = tensor({1.0, 2.0});
  const Tensor b = tensor({1.0, 0.0});
  auto g = grad([](const Tensors& in) { return sum(maximum(in[0], in[1])); }, {0, 1})({a, b});
  EXPECT_EQ(g[0].to_vector<double>(), (std::vector<double>{0.5, 1.0}));
  EXPECT_EQ(g[1].to_vector<double>(), (std::vector<double>{0.5, 0.0}));
}

TEST(Elementwise, Errors) {
  EXPECT_TRUE(testing::throws_error(
      [] {
        add(zeros({2, 3}), zeros({4}));
      },
      {"[add]", "(2, 3)", "(4,)"}));
  EXPECT_TRUE(testing::throws_error([] { exp(zeros({2}, Dtype::i64)); }, {"[exp]", "int64"}));
  EXPECT_TRUE(testing::throws_error(
      [] { add(zeros({2}, Dtype::boolean), zeros({2}, Dtype::boolean)); }, {"[add]", "bool"}));
  EXPECT_TRUE(testing::throws_error([] { where(zeros({2}), zeros({2}), zeros({2})); },
                                    {"[where]", "bool"}));
  EXPECT_TRUE(
      testing::throws_error([] { logical_and(zeros({2}), zeros({2})); }, {"[logical_and]"}));
  EXPECT_TRUE(testing::throws_error([] { add(Tensor(), zeros({2})); }, {"[add]", "undefined"}));
  EXPECT_TRUE(testing::throws_error([] { clamp(zeros({2}), 1, 0); }, {"[clamp]"}));
  if (!cuda_is_available()) {
    EXPECT_TRUE(testing::throws_error([] { zeros({2}).to(Device::cuda(0)); }, {"cuda"}));
  }
}

}  // namespace
}  // namespace basin
