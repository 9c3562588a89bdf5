// CUDA parity of the elementwise, reduction, softmax and layer-norm kernels: every case of the
// tables runs on the CPU and on the GPU (values, first and second derivatives compared by
// normalised error, see parity.h), across dtypes and layouts (contiguous, transposed, misaligned,
// broadcast, empty). Skips without a GPU.
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "tests/backends/cuda/parity.h"

namespace basin {
namespace {
using namespace testing::parity;
using testing::make;
using testing::noncontiguous;
using X = const Tensors&;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
const std::vector<Dtype> kBool = {Dtype::boolean};

/// x's values in a contiguous view that starts one element into its buffer: the pointer is not
/// aligned for the vectorised kernels, so the strided ones run.
Tensor misaligned(const Tensor& x) {
  const Tensor flat = concat({zeros({1}, x.dtype(), x.device()), reshape(x, {x.numel()})});
  return reshape(slice(flat, 0, 1, x.numel() + 1), x.shape());
}

/// Host values of `dtype` uniform in [lo, hi) for floats; sample_data() otherwise.
Tensor in_range(const Shape& shape, uint64_t seed, Dtype dtype, double lo, double hi) {
  return is_floating(dtype) ? make(shape, seed, lo, hi, dtype) : sample_data(shape, seed, dtype);
}

/// Host values from a list, cast to `dtype`.
Tensor values(const std::vector<double>& v, const Shape& shape, Dtype dtype) {
  return from_vector(v, shape).astype(dtype);
}

// --- elementwise --------------------------------------------------------------------------------

/// How a table expands an op over layouts.
enum class Layout { contiguous, transposed, misaligned };
const std::vector<std::pair<Layout, const char*>> kLayouts = {{Layout::contiguous, "contiguous"},
                                                              {Layout::transposed, "transposed"},
                                                              {Layout::misaligned, "misaligned"}};

Tensor lay_out(const Tensor& x, Layout layout) {
  switch (layout) {
    case Layout::transposed:
      return noncontiguous(x);
    case Layout::misaligned:
      return misaligned(x);
    default:
      return x;
  }
}

/// A unary op on a (5, 37) input in [lo, hi) (an odd count: the vector kernel's tail runs), in
/// each layout.
void unary(std::vector<Case>& cases, const std::string& name,
           std::function<Tensor(const Tensor&)> f, std::vector<Dtype> dtypes, double lo = -1,
           double hi = 1, bool differentiable = true) {
  for (const auto& [layout, layout_name] : kLayouts) {
    cases.push_back({name + "_" + layout_name,
                     [lo, hi](Dtype dt) {
                       return Tensors{in_range({5, 37}, 1, dt, lo, hi)};
                     },
                     [f, layout = layout](X x) { return f(lay_out(x[0], layout)); }, dtypes, 1e-5,
                     differentiable ? std::vector<int>{0} : std::vector<int>{}});
  }
}

std::vector<Case> unary_cases() {
  using T = const Tensor&;
  std::vector<Case> c;
  unary(
      c, "neg", [](T x) { return neg(x); }, kNumeric);
  unary(
      c, "abs", [](T x) { return abs(x); }, kNumeric);
  unary(
      c, "sign", [](T x) { return sign(x); }, kNumeric);
  unary(
      c, "square", [](T x) { return square(x); }, kNumeric);
  unary(
      c, "relu", [](T x) { return relu(x); }, kNumeric);
  unary(
      c, "exp", [](T x) { return exp(x); }, kFloat, -3, 3);
  unary(
      c, "log", [](T x) { return log(x); }, kFloat, 0.2, 3);
  unary(
      c, "log1p", [](T x) { return log1p(x); }, kFloat, -0.5, 3);
  unary(
      c, "expm1", [](T x) { return expm1(x); }, kFloat, -2, 2);
  unary(
      c, "sqrt", [](T x) { return sqrt(x); }, kFloat, 0.2, 3);
  unary(
      c, "rsqrt", [](T x) { return rsqrt(x); }, kFloat, 0.2, 3);
  unary(
      c, "sin", [](T x) { return sin(x); }, kFloat, -3, 3);
  unary(
      c, "cos", [](T x) { return cos(x); }, kFloat, -3, 3);
  unary(
      c, "tanh", [](T x) { return tanh(x); }, kFloat, -3, 3);
  unary(
      c, "sigmoid", [](T x) { return sigmoid(x); }, kFloat, -8, 8);
  unary(
      c, "erf", [](T x) { return erf(x); }, kFloat, -2, 2);
  unary(
      c, "softplus", [](T x) { return softplus(x); }, kFloat, -6, 6);
  unary(
      c, "elu", [](T x) { return elu(x, 0.7); }, kFloat, -3, 3);
  unary(
      c, "pow_scalar", [](T x) { return pow(x, 2.5); }, kFloat, 0.2, 3);
  unary(
      c, "pow_scalar_square", [](T x) { return pow(x, 2.0); }, kFloat, -2, 2);
  unary(
      c, "pow_scalar_negative", [](T x) { return pow(x, -1.5); }, kFloat, 0.3, 3);
  unary(
      c, "logical_not", [](T x) { return logical_not(x); }, kBool, -1, 1, false);
  // Composites that run several kernels, and an empty tensor.
  c.push_back(on("gelu_tanh", {{4, 9}}, [](X x) { return gelu(x[0], true); }, kFloat, 1e-5, {0}));
  c.push_back(on("unary_empty", {{0, 5}}, [](X x) { return exp(x[0]); }, kFloat, 1e-5, {0}));
  c.push_back(on("unary_scalar", {{}}, [](X x) { return tanh(x[0]); }, kFloat, 1e-5, {0}));
  return c;
}

/// Operand shapes of the binary table, each paired with its name.
struct BinaryShapes {
  const char* name;
  Shape a, b;
  bool transpose = false;
  bool misalign = false;
};
const std::vector<BinaryShapes> kBinaryShapes = {
    {"same", {5, 37}, {5, 37}},
    {"broadcast", {4, 1, 6}, {3, 1}},
    {"scalar_rhs", {5, 37}, {}},
    {"scalar_lhs", {}, {5, 37}},
    {"row", {1, 37}, {5, 37}},
    {"transposed", {6, 7}, {7, 6}, true},
    {"misaligned", {5, 37}, {5, 37}, false, true},
    {"empty", {0, 5}, {1, 5}},
};

/// A binary op over every entry of kBinaryShapes; `make_b` gives the right operand's values.
void binary(std::vector<Case>& cases, const std::string& name,
            std::function<Tensor(const Tensor&, const Tensor&)> f, std::vector<Dtype> dtypes,
            std::function<Tensor(const Shape&, uint64_t, Dtype)> make_a,
            std::function<Tensor(const Shape&, uint64_t, Dtype)> make_b, bool differentiable) {
  for (const BinaryShapes& s : kBinaryShapes) {
    cases.push_back({name + "_" + s.name,
                     [s, make_a, make_b](Dtype dt) {
                       return Tensors{make_a(s.a, 1, dt), make_b(s.b, 2, dt)};
                     },
                     [f, s](X x) {
                       if (s.transpose) return f(noncontiguous(x[0]), transpose(x[1]));
                       if (s.misalign) return f(misaligned(x[0]), misaligned(x[1]));
                       return f(x[0], x[1]);
                     },
                     dtypes, 1e-5, differentiable ? std::vector<int>{0, 1} : std::vector<int>{}});
  }
}

/// Values in [lo, hi) for floats, sample_data() otherwise.
std::function<Tensor(const Shape&, uint64_t, Dtype)> range(double lo, double hi) {
  return
      [lo, hi](const Shape& s, uint64_t seed, Dtype dt) { return in_range(s, seed, dt, lo, hi); };
}

/// Few distinct values (integers in [-4, 4) in the dtype), so that comparisons see ties.
Tensor with_ties(const Shape& s, uint64_t seed, Dtype dt) {
  if (dt == Dtype::boolean) return sample_data(s, seed, dt);
  const Tensor v = make(s, seed, -4, 4).astype(Dtype::i32);
  return (dt == Dtype::u8 ? v + 4 : v).astype(dt);
}

std::vector<Case> binary_cases() {
  using T = const Tensor&;
  std::vector<Case> c;
  const auto any = range(-1, 1);
  binary(
      c, "add", [](T a, T b) { return a + b; }, kNumeric, any, any, true);
  binary(
      c, "sub", [](T a, T b) { return a - b; }, kNumeric, any, any, true);
  binary(
      c, "mul", [](T a, T b) { return a * b; }, kNumeric, any, any, true);
  // Integer operands include 0 divisors (defined as 0); float divisors stay away from 0.
  binary(
      c, "div", [](T a, T b) { return a / b; }, kNumeric, any, range(0.5, 2), true);
  binary(
      c, "pow", [](T a, T b) { return pow(a, b); }, kFloat, range(0.2, 3), range(-2, 2), true);
  binary(
      c, "maximum", [](T a, T b) { return maximum(a, b); }, kNumeric, any, any, true);
  binary(
      c, "minimum", [](T a, T b) { return minimum(a, b); }, kNumeric, any, any, true);
  binary(
      c, "atan2", [](T a, T b) { return atan2(a, b); }, kFloat, any, any, true);
  binary(
      c, "equal", [](T a, T b) { return equal(a, b); }, kAll, with_ties, with_ties, false);
  binary(
      c, "not_equal", [](T a, T b) { return not_equal(a, b); }, kAll, with_ties, with_ties, false);
  binary(
      c, "less", [](T a, T b) { return less(a, b); }, kAll, with_ties, with_ties, false);
  binary(
      c, "less_equal", [](T a, T b) { return less_equal(a, b); }, kAll, with_ties, with_ties,
      false);
  binary(
      c, "greater", [](T a, T b) { return greater(a, b); }, kAll, with_ties, with_ties, false);
  binary(
      c, "greater_equal", [](T a, T b) { return greater_equal(a, b); }, kAll, with_ties, with_ties,
      false);
  binary(
      c, "logical_and", [](T a, T b) { return logical_and(a, b); }, kBool, any, any, false);
  binary(
      c, "logical_or", [](T a, T b) { return logical_or(a, b); }, kBool, any, any, false);
  binary(
      c, "logical_xor", [](T a, T b) { return logical_xor(a, b); }, kBool, any, any, false);
  // NaN propagates through maximum and minimum.
  c.push_back({"maximum_minimum_nan",
               [](Dtype dt) {
                 return Tensors{values({1, kNan, -2, kNan, 0.5}, {5}, dt),
                                values({kNan, 3, -1, kNan, 0.25}, {5}, dt)};
               },
               [](X x) { return maximum(x[0], x[1]) + minimum(x[0], x[1]) * 3.0; }, kFloat});
  // Mixed dtypes promote before the kernel.
  c.push_back({"add_mixed_dtypes",
               [](Dtype dt) {
                 return Tensors{sample_data({4, 6}, 1, dt), sample_data({6}, 2, Dtype::i32)};
               },
               [](X x) { return x[0] * x[1] + x[1]; },
               kFloat,
               1e-5,
               {0}});
  return c;
}

std::vector<Case> where_cases() {
  auto where_of = [](const std::string& name, Shape sc, Shape sa, Shape sb, bool transposed) {
    return Case{name,
                [=](Dtype dt) {
                  return Tensors{sample_data(sc, 1, Dtype::boolean), sample_data(sa, 2, dt),
                                 sample_data(sb, 3, dt)};
                },
                [transposed](X x) {
                  if (transposed) {
                    return where(noncontiguous(x[0]), noncontiguous(x[1]), transpose(x[2]));
                  }
                  return where(x[0], x[1], x[2]);
                },
                kAll,
                1e-5,
                {1, 2}};
  };
  return {
      where_of("where_same", {5, 37}, {5, 37}, {5, 37}, false),
      where_of("where_broadcast", {5, 1}, {5, 7}, {7}, false),
      where_of("where_scalar_branch", {4, 6}, {}, {4, 6}, false),
      where_of("where_transposed", {6, 7}, {6, 7}, {7, 6}, true),
      where_of("where_empty", {0, 3}, {0, 3}, {3}, false),
  };
}

/// astype to `target` from every dtype; float sources hold values in (-1, 120), which every
/// target represents after truncation.
std::vector<Case> astype_cases() {
  std::vector<Case> c;
  for (Dtype target : kAll) {
    for (bool transposed : {false, true}) {
      c.push_back({std::string("astype_to_") + dtype_name(target) +
                       (transposed ? "_transposed" : "_contiguous"),
                   [](Dtype dt) {
                     return Tensors{in_range({5, 37}, 1, dt, -0.99, 120)};
                   },
                   [target, transposed](X x) {
                     return (transposed ? noncontiguous(x[0]) : x[0]).astype(target);
                   },
                   kAll, 1e-5, is_floating(target) ? std::vector<int>{0} : std::vector<int>{}});
    }
  }
  c.push_back(on("astype_broadcast_view", {{1, 37}},
                 [](X x) {
                   return broadcast_to(x[0], {5, 37}).contiguous();
                 },
                 kAll, 1e-5, {0}));
  c.push_back(on("clone_contiguous", {{5, 37}}, [](X x) { return x[0].clone(); }, kAll, 1e-5, {0}));
  return c;
}

// --- reductions ---------------------------------------------------------------------------------

/// A reduction `f` of inputs of shape `shape` (transposed first when `transposed`).
Case reduction(const std::string& name, Shape shape, std::function<Tensor(const Tensor&)> f,
               std::vector<Dtype> dtypes, bool differentiable = true, bool transposed = false) {
  return on(
      name, {shape}, [f, transposed](X x) { return f(transposed ? noncontiguous(x[0]) : x[0]); },
      std::move(dtypes), 1e-4, differentiable ? std::vector<int>{0} : std::vector<int>{});
}

/// Each fold (sum, prod, max, min, logsumexp) over one set of axes of one shape.
void folds(std::vector<Case>& c, const std::string& tag, const Shape& shape, const Axes& axes,
           bool keepdim, bool transposed = false, bool with_prod = true) {
  using T = const Tensor&;
  c.push_back(reduction(
      "sum_" + tag, shape, [=](T x) { return sum(x, axes, keepdim); }, kNumeric, true, transposed));
  if (with_prod) {
    c.push_back(reduction(
        "prod_" + tag, shape, [=](T x) { return prod(x, axes, keepdim); }, kNumeric, true,
        transposed));
  }
  c.push_back(reduction(
      "max_" + tag, shape, [=](T x) { return max(x, axes, keepdim); }, kAll, true, transposed));
  c.push_back(reduction(
      "min_" + tag, shape, [=](T x) { return min(x, axes, keepdim); }, kAll, true, transposed));
  c.push_back(reduction(
      "logsumexp_" + tag, shape, [=](T x) { return logsumexp(x, axes, keepdim); }, kFloat, true,
      transposed));
}

std::vector<Case> reduce_cases() {
  using T = const Tensor&;
  std::vector<Case> c;
  folds(c, "all", {4, 5, 6}, {}, false);
  folds(c, "last", {4, 5, 6}, {-1}, false);
  folds(c, "first", {4, 5, 6}, {0}, true);
  folds(c, "outer_and_inner", {4, 5, 6}, {0, 2}, false);
  folds(c, "middle_keepdim", {4, 5, 6}, {1}, true);
  folds(c, "transposed", {6, 9}, {1}, false, true);
  folds(c, "columns", {40, 64}, {0}, false);  // consecutive outputs adjacent: column layout
  folds(c, "size_one_axis", {4, 1, 6}, {1}, false);
  // Long reductions split across blocks (row and column layouts); products would underflow.
  folds(c, "long_rows", {3, 70000}, {1}, false, false, false);
  folds(c, "long_columns", {20000, 40}, {0}, false, false, false);
  folds(c, "everything_long", {1 << 18}, {}, false, false, false);
  // Empty slices: sums 0, products 1, logsumexp -inf, max and min an error on both devices.
  folds(c, "empty_reduced", {0, 5}, {0}, false);
  for (Case& k : c)
    k.fails = k.fails || k.name == "max_empty_reduced" || k.name == "min_empty_reduced";
  folds(c, "empty_kept", {0, 5}, {1}, false);
  for (const auto& [name, f] :
       std::vector<std::pair<std::string, std::function<Tensor(const Tensor&, int)>>>{
           {"argmax", [](T x, int a) { return argmax(x, a); }},
           {"argmin", [](T x, int a) { return argmin(x, a); }}}) {
    c.push_back(reduction(
        name + "_last", {4, 5, 6}, [f](T x) { return f(x, -1); }, kNumeric, false));
    c.push_back(reduction(
        name + "_first", {4, 5, 6}, [f](T x) { return f(x, 0); }, kNumeric, false));
    c.push_back(reduction(
        name + "_transposed", {6, 9}, [f](T x) { return f(x, 1); }, kNumeric, false, true));
    c.push_back(reduction(
        name + "_long", {2, 50000}, [f](T x) { return f(x, 1); }, kNumeric, false));
    // Few distinct values: the first of tied extremes wins.
    c.push_back({name + "_ties",
                 [](Dtype dt) {
                   return Tensors{with_ties({7, 300}, 1, dt)};
                 },
                 [f](X x) { return f(x[0], 1); }, kNumeric, 0});
  }
  c.push_back(reduction(
      "argmax_flat", {4, 5, 6}, [](T x) { return argmax(x); }, kNumeric, false));
  // Special values: NaN wins extrema and arg-extrema (the first NaN), -inf rows give -inf from
  // logsumexp, a +inf element gives +inf.
  c.push_back({"extrema_special_values",
               [](Dtype dt) {
                 return Tensors{values(
                     {1, kNan, 3, kNan, -kInf, -kInf, -kInf, -kInf, 2, kInf, 0, -1, 5, 5, -7, -7},
                     {4, 4}, dt)};
               },
               [](X x) {
                 return stack({max(x[0], {1}), min(x[0], {1}), argmax(x[0], 1).astype(x[0].dtype()),
                               argmin(x[0], 1).astype(x[0].dtype()), logsumexp(x[0], {1}),
                               sum(x[0], {1}), prod(x[0], {1})});
               },
               kFloat});
  c.push_back({"logsumexp_masked_rows",
               [](Dtype dt) {
                 return Tensors{values({-kInf, -kInf, -kInf, 0.5, -kInf, 2, 1, 2, 3}, {3, 3}, dt)};
               },
               [](X x) { return logsumexp(x[0], {1}); },
               kFloat,
               1e-4,
               {0}});
  // Integer sums and products wrap as the CPU's do.
  c.push_back({"integer_wrap",
               [](Dtype dt) {
                 return Tensors{make({3, 40}, 1, 100, 127).astype(dt)};
               },
               [](X x) {
                 return stack({sum(x[0], {1}), prod(x[0], {1})});
               },
               {Dtype::i32, Dtype::i64, Dtype::u8}});
  c.push_back(on("mean_var_norm", {{5, 7}},
                 [](X x) { return mean(x[0], {1}) + sum(var(x[0], {0})) + norm(x[0], 2.0); },
                 kFloat, 1e-4, {0}));
  return c;
}

// --- softmax ------------------------------------------------------------------------------------

std::vector<Case> softmax_cases() {
  std::vector<Case> c;
  auto both = [&c](const std::string& tag, Shape shape, int axis, bool transposed = false) {
    c.push_back(on("softmax_" + tag, {shape},
                   [=](X x) { return softmax(transposed ? noncontiguous(x[0]) : x[0], axis); },
                   kFloat, 1e-4, {0}));
    c.push_back(on("log_softmax_" + tag, {shape},
                   [=](X x) { return log_softmax(transposed ? noncontiguous(x[0]) : x[0], axis); },
                   kFloat, 1e-4, {0}));
  };
  both("last", {4, 5, 6}, -1);
  both("first", {4, 5, 6}, 0);
  both("middle", {4, 5, 6}, 1);
  both("transposed", {6, 9}, -1, true);
  both("columns", {50, 64}, 0);  // consecutive slices adjacent: column layout
  both("long", {3, 5000}, -1);
  both("size_one_axis", {4, 1}, -1);
  both("empty", {0, 5}, -1);
  both("scalar", {}, -1);
  // Fully masked (-inf) slices give 0 / -inf; partly masked ones ignore the -inf entries.
  for (int axis : {1, 0}) {
    const std::string tag = axis == 1 ? "masked_rows" : "masked_columns";
    auto masked = [](Dtype dt) {
      return Tensors{values({-kInf, -kInf, -kInf, 0.5, -kInf, 2, 1, 2, 3}, {3, 3}, dt)};
    };
    c.push_back(
        {"softmax_" + tag, masked, [axis](X x) { return softmax(x[0], axis); }, kFloat, 1e-4, {0}});
    c.push_back({"log_softmax_" + tag,
                 masked,
                 [axis](X x) { return log_softmax(x[0], axis); },
                 kFloat,
                 1e-4,
                 {0}});
  }
  return c;
}

// --- layer norm ---------------------------------------------------------------------------------

std::vector<Case> norm_cases() {
  std::vector<Case> c;
  auto ln = [&c](const std::string& tag, Shape shape, bool weight, bool bias, bool transposed,
                 double shift = 0) {
    const int64_t d = shape.back();
    c.push_back({"layer_norm_" + tag,
                 [=](Dtype dt) {
                   Tensors in{(make(shape, 1, -1, 1) * 3.0 + shift).astype(dt)};
                   if (weight) in.push_back(make({d}, 2, 0.5, 1.5, dt));
                   if (bias) in.push_back(make({d}, 3, -1, 1, dt));
                   return in;
                 },
                 [=](X x) {
                   const Tensor v = transposed ? noncontiguous(x[0]) : x[0];
                   return layer_norm(v, weight ? x[1] : Tensor(),
                                     bias ? x[weight ? 2 : 1] : Tensor(), 1e-5);
                 },
                 kFloat, 1e-4,
                 weight && bias   ? std::vector<int>{0, 1, 2}
                 : weight || bias ? std::vector<int>{0, 1}
                                  : std::vector<int>{0}});
  };
  ln("affine", {4, 5, 24}, true, true, false);
  ln("plain", {6, 24}, false, false, false);
  ln("weight_only", {6, 24}, true, false, false);
  ln("bias_only", {6, 24}, false, true, false);
  ln("transposed", {24, 6}, true, true, true);
  ln("short_rows", {300, 3}, true, true, false);
  ln("long_rows", {3, 3000}, true, true, false);
  ln("large_mean", {4, 64}, true, true, false, 1000);
  ln("empty", {0, 8}, true, true, false);
  return c;
}

// --- the parity tables --------------------------------------------------------------------------

class ParityFamilies : public ::testing::TestWithParam<Case> {};

TEST_P(ParityFamilies, MatchesTheCpu) {
  if (!cuda_is_available()) GTEST_SKIP() << kNoGpu;
  run_case(GetParam());
}

INSTANTIATE_TEST_SUITE_P(CudaParityUnary, ParityFamilies, ::testing::ValuesIn(unary_cases()),
                         case_name);
INSTANTIATE_TEST_SUITE_P(CudaParityBinary, ParityFamilies, ::testing::ValuesIn(binary_cases()),
                         case_name);
INSTANTIATE_TEST_SUITE_P(CudaParityWhere, ParityFamilies, ::testing::ValuesIn(where_cases()),
                         case_name);
INSTANTIATE_TEST_SUITE_P(CudaParityAsType, ParityFamilies, ::testing::ValuesIn(astype_cases()),
                         case_name);
INSTANTIATE_TEST_SUITE_P(CudaParityReduce, ParityFamilies, ::testing::ValuesIn(reduce_cases()),
                         case_name);
INSTANTIATE_TEST_SUITE_P(CudaParitySoftmax, ParityFamilies, ::testing::ValuesIn(softmax_cases()),
                         case_name);
INSTANTIATE_TEST_SUITE_P(CudaParityNorm, ParityFamilies, ::testing::ValuesIn(norm_cases()),
                         case_name);

// --- beyond the tables --------------------------------------------------------------------------

TEST(CudaParityAssign, WritesIntoAStridedViewInPlace) {
  if (!cuda_is_available()) GTEST_SKIP() << kNoGpu;
  // Tensor::assign runs AsType into the destination's own buffer and layout: a transposed view,
  // from a broadcast source of another dtype, then a same-dtype contiguous copy.
  auto run = [](Device device) {
    const Tensor buffer = zeros({6, 5}, Dtype::f32, device);
    const Tensor view = transpose(buffer);  // (5, 6), strides (1, 5)
    view.assign(make({6}, 1, -2, 2).to(device));
    const Tensor other = zeros({4}, Dtype::i64, device);
    other.assign(make({4}, 2, -9, 9, Dtype::i64).to(device));
    const Tensor same = zeros({3, 4}, Dtype::f64, device);
    same.assign(make({3, 4}, 3).to(device));
    return Tensors{buffer, other, same};
  };
  const Tensors want = run(Device::cpu()), got = run(Device::cuda(0));
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_TRUE(got[i].device().is_cuda());
    EXPECT_EQ(normalised_error(got[i], want[i]), 0.0) << i;
  }
}

TEST(CudaParityCoverage, NoHostFallback) {
  if (!cuda_is_available()) GTEST_SKIP() << kNoGpu;
  // An op without a kernel warns once on its first host run; none of these may.
  const Device gpu = Device::cuda(0);
  ::testing::internal::CaptureStderr();
  const Tensor x = make({6, 4}, 1).to(gpu);
  (void)where(x > 0.0, sigmoid(exp(-x) * 2.0), pow(abs(x), 1.5));
  (void)logical_not(x < 0.0 || x > 0.5);
  (void)x.astype(Dtype::i32).astype(Dtype::f32);
  (void)transpose(x).contiguous();
  (void)sum(x, {0});
  (void)prod(x, {1});
  (void)max(x);
  (void)min(x, {0});
  (void)argmax(x, 1);
  (void)argmin(x, 0);
  (void)logsumexp(x, {1});
  (void)softmax(x, 0);
  (void)log_softmax(x, 1);
  (void)grad([](const Tensor& v) { return sum(layer_norm(v, ones({4}, Dtype::f64, v.device()))); })(
      x);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(log.find("has no CUDA kernel"), std::string::npos) << log;
}

TEST(CudaParityReduce, FloatSumsAreDeterministic) {
  if (!cuda_is_available()) GTEST_SKIP() << kNoGpu;
  // No atomics: a long float32 sum gives the same bits every time.
  const Tensor x = make({1 << 20}, 4, -1, 1, Dtype::f32).to(Device::cuda(0));
  const float first = sum(x).item<float>();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(sum(x).item<float>(), first);
  EXPECT_NEAR(first, sum(x.to(Device::cpu()).astype(Dtype::f64)).item<double>(), 1e-3);
}

}  // namespace
}  // namespace basin
