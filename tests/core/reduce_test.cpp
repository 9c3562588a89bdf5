// Reductions: forward against a naive host reference (every axis set, keepdim, negative axes,
// scalars, size-0 and size-1 dims, non-contiguous inputs, the driver's parallel layouts), first
// and second derivatives against finite differences (one table), logsumexp with masks and
// infinities, arg-reductions, and error messages.
#include <omp.h>

#include <cmath>
#include <limits>
#include <numeric>

#include <fmt/ranges.h>

#include "backends/cpu/reduce_kernel.h"
#include "tests/test_util.h"

namespace basin {
namespace {
using testing::all_close;
using testing::make;
using testing::throws_error;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// --- naive reference -----------------------------------------------------------------------------

/// Output shape of reducing `shape` over `axes` (normalised here; empty = all).
Shape ref_shape(const Shape& shape, const Axes& axes, bool keepdim) {
  const auto ax = normalize_axes(axes, static_cast<int64_t>(shape.size()), "ref");
  Shape out;
  for (int d = 0; d < static_cast<int>(shape.size()); ++d) {
    const bool red = std::find(ax.begin(), ax.end(), d) != ax.end();
    if (!red) out.push_back(shape[d]);
    if (red && keepdim) out.push_back(1);
  }
  return out;
}

/// Reference reduction: f applied to each output's slice, gathered by index arithmetic in
/// row-major order (so a slice's elements are in the order a flat index counts them).
Tensor naive_reduce(const Tensor& x, const Axes& axes, bool keepdim,
                    const std::function<double(const std::vector<double>&)>& f) {
  const Shape& shape = x.shape();
  const auto ax = normalize_axes(axes, x.ndim(), "ref");
  std::vector<bool> red(shape.size(), false);
  for (int a : ax) red[static_cast<size_t>(a)] = true;
  Shape kept;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (!red[d]) kept.push_back(shape[d]);
  }
  std::vector<std::vector<double>> slices(static_cast<size_t>(numel(kept)));
  const auto v = x.to_vector<double>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t rem = i, o = 0, stride = 1;
    for (size_t d = shape.size(); d-- > 0;) {
      const int64_t c = rem % shape[d];
      rem /= shape[d];
      if (!red[d]) {
        o += c * stride;
        stride *= shape[d];
      }
    }
    slices[static_cast<size_t>(o)].push_back(v[static_cast<size_t>(i)]);
  }
  std::vector<double> out;
  for (const auto& s : slices) out.push_back(f(s));
  return from_vector(out, ref_shape(shape, axes, keepdim));
}

double ref_sum(const std::vector<double>& s) {
  long double acc = 0;
  for (double v : s) acc += v;
  return static_cast<double>(acc);
}
double ref_mean(const std::vector<double>& s) { return ref_sum(s) / static_cast<double>(s.size()); }
double ref_var(const std::vector<double>& s, double correction) {
  const double m = ref_mean(s);
  double acc = 0;
  for (double v : s) acc += (v - m) * (v - m);
  return acc / std::max(static_cast<double>(s.size()) - correction, 0.0);
}
double ref_max(const std::vector<double>& s) {
  double m = -kInf;
  for (double v : s) m = std::isnan(v) || v > m ? v : m;
  return m;
}
double ref_min(const std::vector<double>& s) {
  double m = kInf;
  for (double v : s) m = std::isnan(v) || v < m ? v : m;
  return m;
}
double ref_lse(const std::vector<double>& s) {
  const double m = ref_max(s);
  if (!std::isfinite(m)) return m;
  double acc = 0;
  for (double v : s) acc += std::exp(v - m);
  return m + std::log(acc);
}

// --- the table -----------------------------------------------------------------------------------

struct ReduceCase {
  const char* name;
  std::function<Tensor(const Tensor&, const Axes&, bool)> op;
  std::function<double(const std::vector<double>&)> ref;
  double lo, hi;         // input domain
  bool empty_ok = true;  // an empty slice has a value (else: an error)
  bool smooth = true;    // second derivative checked
};

std::vector<ReduceCase> reduce_cases() {
  return {
      {"sum", [](const Tensor& x, const Axes& a, bool k) { return sum(x, a, k); }, ref_sum, -2, 2},
      {"mean", [](const Tensor& x, const Axes& a, bool k) { return mean(x, a, k); }, ref_mean, -2,
       2},
      {"var", [](const Tensor& x, const Axes& a, bool k) { return var(x, a, k); },
       [](const std::vector<double>& s) { return ref_var(s, 0); }, -2, 2},
      {"var_unbiased", [](const Tensor& x, const Axes& a, bool k) { return var(x, a, k, 1.0); },
       [](const std::vector<double>& s) { return ref_var(s, 1); }, -2, 2},
      {"std", [](const Tensor& x, const Axes& a, bool k) { return basin::std(x, a, k); },
       [](const std::vector<double>& s) { return std::sqrt(ref_var(s, 0)); }, -2, 2},
      {"std_unbiased",
       [](const Tensor& x, const Axes& a, bool k) { return basin::std(x, a, k, 1); },
       [](const std::vector<double>& s) { return std::sqrt(ref_var(s, 1)); }, -2, 2},
      {"prod", [](const Tensor& x, const Axes& a, bool k) { return prod(x, a, k); },
       [](const std::vector<double>& s) {
         return std::accumulate(s.begin(), s.end(), 1.0, std::multiplies<>());
       },
       0.5, 1.5},
      {"max", [](const Tensor& x, const Axes& a, bool k) { return max(x, a, k); }, ref_max, -2, 2,
       false},
      {"min", [](const Tensor& x, const Axes& a, bool k) { return min(x, a, k); }, ref_min, -2, 2,
       false},
      {"logsumexp", [](const Tensor& x, const Axes& a, bool k) { return logsumexp(x, a, k); },
       ref_lse, -3, 3},
      {"norm1", [](const Tensor& x, const Axes& a, bool k) { return norm(x, 1, a, k); },
       [](const std::vector<double>& s) {
         double acc = 0;
         for (double v : s) acc += std::abs(v);
         return acc;
       },
       0.2, 2},
      {"norm2", [](const Tensor& x, const Axes& a, bool k) { return norm(x, 2, a, k); },
       [](const std::vector<double>& s) {
         double acc = 0;
         for (double v : s) acc += v * v;
         return std::sqrt(acc);
       },
       -2, 2},
      {"norm_inf", [](const Tensor& x, const Axes& a, bool k) { return norm(x, kInf, a, k); },
       [](const std::vector<double>& s) {
         double m = 0;
         for (double v : s) m = std::max(m, std::abs(v));
         return m;
       },
       -2, 2, false},
  };
}

struct AxisCase {
  Shape shape;
  Axes axes;
};

const std::vector<AxisCase> kAxisCases = {
    {{}, {}},
    {{1}, {}},
    {{1}, {0}},
    {{7}, {0}},
    {{7}, {-1}},
    {{3, 4}, {}},
    {{3, 4}, {0}},
    {{3, 4}, {1}},
    {{3, 4}, {-1}},
    {{3, 4}, {-2, -1}},
    {{2, 3, 4}, {0}},
    {{2, 3, 4}, {1}},
    {{2, 3, 4}, {2}},
    {{2, 3, 4}, {0, 2}},
    {{2, 3, 4}, {-1, 0}},
    {{2, 3, 4}, {1, 2}},
    {{2, 3, 4}, {}},
    {{1, 4, 1}, {0}},
    {{1, 4, 1}, {1}},
    {{1, 4, 1}, {0, 2}},
    {{5, 1, 3}, {1}},
    {{2, 0, 3}, {1}},
    {{2, 0, 3}, {0, 2}},
    {{2, 0, 3}, {}},
    {{2, 0, 3}, {0}},
    {{3, 2, 2, 5}, {1, 3}},
    {{3, 2, 2, 5}, {0, 2}},
};

std::string describe(const AxisCase& c, bool keepdim) {
  return fmt::format("shape {} axes ({}) keepdim {}", shape_str(c.shape), fmt::join(c.axes, ", "),
                     keepdim);
}

class ReduceOps : public ::testing::TestWithParam<ReduceCase> {};

TEST_P(ReduceOps, ForwardMatchesReference) {
  const ReduceCase& c = GetParam();
  for (const AxisCase& ac : kAxisCases) {
    for (bool keepdim : {false, true}) {
      const Tensor x = make(ac.shape, 11, c.lo, c.hi);
      const auto ax = normalize_axes(ac.axes, x.ndim(), "test");
      int64_t n_red = 1;
      for (int a : ax) n_red *= ac.shape[a];
      if (n_red == 0 && !c.empty_ok) {
        EXPECT_TRUE(throws_error([&] { c.op(x, ac.axes, keepdim); }, {"empty"}))
            << c.name << " " << describe(ac, keepdim);
        continue;
      }
      const Tensor want = naive_reduce(x, ac.axes, keepdim, c.ref);
      EXPECT_TRUE(all_close(c.op(x, ac.axes, keepdim), want, 1e-12, 1e-12))
          << c.name << " " << describe(ac, keepdim);
      EXPECT_TRUE(all_close(c.op(testing::noncontiguous(x), ac.axes, keepdim), want, 1e-12, 1e-12))
          << c.name << " non-contiguous " << describe(ac, keepdim);
      const Tensor x32 = x.astype(Dtype::f32);
      const Tensor y32 = c.op(x32, ac.axes, keepdim);
      EXPECT_EQ(y32.dtype(), Dtype::f32);
      EXPECT_TRUE(all_close(y32, naive_reduce(x32, ac.axes, keepdim, c.ref), 2e-6, 2e-6))
          << c.name << " float32 " << describe(ac, keepdim);
    }
  }
}

TEST_P(ReduceOps, Derivatives) {
  const ReduceCase& c = GetParam();
  for (const AxisCase& ac : std::vector<AxisCase>{
           {{3, 4}, {1}}, {{3, 4}, {0}}, {{3, 4}, {}}, {{2, 3, 2}, {0, 2}}, {{4}, {-1}}}) {
    for (bool keepdim : {false, true}) {
      const Tensor x = make(ac.shape, 12, c.lo, c.hi);
      const Fn f = [&](const Tensors& in) { return Tensors{c.op(in[0], ac.axes, keepdim)}; };
      SCOPED_TRACE(fmt::format("{} {}", c.name, describe(ac, keepdim)));
      testing::expect_derivatives(f, {x}, c.smooth);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Reduce, ReduceOps, ::testing::ValuesIn(reduce_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

// --- the driver's layouts at sizes where it splits work ------------------------------------------

/// Runs `body` with the OpenMP thread count set to n, restoring it afterwards, so the driver's
/// chunked paths are taken however many cores the machine has.
void with_threads(int n, const std::function<void()>& body) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(n);
  body();
  omp_set_num_threads(saved);
}

TEST(Reduce, LargeFloat32SumsAreAccurate) {
  // Values with a large common offset: naive float accumulation loses ~1e-3 relative here.
  const Tensor x64 = make({1000, 1000}, 21, 0.0, 2.0) + 10.0;
  const Tensor x = x64.astype(Dtype::f32);
  const Tensor exact = x.astype(Dtype::f64);
  for (int threads : {1, 3, 16}) {
    with_threads(threads, [&] {
      SCOPED_TRACE(threads);
      EXPECT_TRUE(all_close(sum(x), naive_reduce(exact, {}, false, ref_sum), 1e-5, 0));
      EXPECT_TRUE(all_close(sum(x, {1}), naive_reduce(exact, {1}, false, ref_sum), 1e-5, 0));
      EXPECT_TRUE(all_close(sum(x, {0}), naive_reduce(exact, {0}, false, ref_sum), 1e-5, 0));
      EXPECT_TRUE(all_close(sum(reshape(x, {1000000})),
                            naive_reduce(reshape(exact, {1000000}), {}, false, ref_sum), 1e-5, 0));
      EXPECT_TRUE(all_close(mean(transpose(x, 0, 1), {0}),
                            naive_reduce(exact, {1}, false, ref_mean), 1e-5, 0));
    });
  }
}

TEST(Reduce, ParallelLayoutsMatchReference) {
  // Row, column and full layouts, with few and many outputs, contiguous and transposed, at sizes
  // above the parallel threshold; thread counts that do and do not divide the work, so that the
  // reduced sub-space is split into chunks (some ending mid-run, some in partial column blocks).
  struct Big {
    Shape shape;
    Axes axes;
  };
  const std::vector<Big> cases = {
      {{200000}, {}},       {{64, 4000}, {1}}, {{4000, 64}, {0}},      {{3, 50000}, {1}},
      {{50000, 3}, {0}},    {{50000, 3}, {1}}, {{40, 50, 60}, {0, 2}}, {{40, 50, 60}, {1}},
      {{2, 30000, 5}, {1}}, {{300, 700}, {}},  {{7, 9000}, {0}},       {{301, 2, 70}, {0, 2}},
      {{20000, 300}, {0}}};
  for (const Big& b : cases) {
    const Tensor x = make(b.shape, 22, -1, 1);
    const Tensor x32 = x.astype(Dtype::f32);
    const Tensor want_sum = naive_reduce(x, b.axes, false, ref_sum);
    const Tensor want_max = naive_reduce(x, b.axes, false, ref_max);
    const Tensor want_min = naive_reduce(x, b.axes, true, ref_min);
    const Tensor want_lse = naive_reduce(x, b.axes, false, ref_lse);
    const Tensor want_lse32 = naive_reduce(x32, b.axes, false, ref_lse);
    for (int threads : {1, 7}) {
      with_threads(threads, [&] {
        for (const Tensor& in : {x, testing::noncontiguous(x)}) {
          SCOPED_TRACE(fmt::format("{} axes ({}) threads {} contiguous {}", shape_str(b.shape),
                                   fmt::join(b.axes, ", "), threads, in.is_contiguous()));
          EXPECT_TRUE(all_close(sum(in, b.axes), want_sum, 1e-11, 1e-11));
          EXPECT_TRUE(all_close(max(in, b.axes), want_max));
          EXPECT_TRUE(all_close(min(in, b.axes, true), want_min));
          EXPECT_TRUE(all_close(logsumexp(in, b.axes), want_lse, 1e-11));
          EXPECT_TRUE(all_close(logsumexp(in.astype(Dtype::f32), b.axes), want_lse32, 2e-6, 2e-6));
        }
      });
    }
  }
}

/// x rounded down to whole numbers: few distinct values, so arg-reductions meet ties.
Tensor floor_div_ties(const Tensor& x) {
  auto v = x.to_vector<double>();
  for (double& e : v) e = std::floor(e);
  return from_vector(v, x.shape());
}

TEST(Reduce, BroadcastInputs) {
  // Zero strides, kept and reduced, small and above the parallel threshold.
  for (const Shape& small : {Shape{3, 1}, Shape{1, 4}, Shape{300, 1}, Shape{1, 300}}) {
    const Tensor x = make(small, 23);
    const Shape big = {small[0] == 1 ? 200 : small[0], small[1] == 1 ? 200 : small[1]};
    const Tensor b = broadcast_to(x, big);
    const Tensor dense = b.contiguous();
    for (const Axes& axes : {Axes{}, Axes{0}, Axes{1}}) {
      SCOPED_TRACE(fmt::format("{} axes ({})", shape_str(small), fmt::join(axes, ", ")));
      EXPECT_TRUE(all_close(sum(b, axes), sum(dense, axes), 1e-13, 1e-13));
      EXPECT_TRUE(all_close(max(b, axes), max(dense, axes)));
      EXPECT_TRUE(all_close(logsumexp(b, axes), logsumexp(dense, axes), 1e-13));
      EXPECT_TRUE(all_close(argmin(b, axes.empty() ? std::optional<int>() : axes[0]),
                            argmin(dense, axes.empty() ? std::optional<int>() : axes[0])));
    }
  }
}

TEST(Reduce, ArgReductionsAreNotRecorded) {
  Tensor x = make({3, 4}, 24);
  x.set_requires_grad(true);
  const Tensor i = argmax(x, 1);
  EXPECT_EQ(i.dtype(), Dtype::i64);
  EXPECT_FALSE(i.requires_grad());
  EXPECT_EQ(i.op(), nullptr);
}

TEST(Reduce, FastExpIsAccurate) {
  // The vectorisable float exp behind logsumexp and softmax, against std::exp in double, over
  // the whole range (subnormal results and the overflow edge included).
  double worst = 0;
  for (double x = -110; x <= 89; x += 0.0137) {
    const float xf = static_cast<float>(x);
    const double want = std::exp(static_cast<double>(xf));
    const double got = cpu::exp_fast(xf);
    if (want > std::numeric_limits<float>::max()) {
      EXPECT_EQ(got, kInf) << xf;
    } else if (want >= std::numeric_limits<float>::min()) {
      worst = std::max(worst, std::abs(got - want) / want);
    } else {
      // Subnormal: absolute error within a couple of the smallest subnormal steps.
      EXPECT_LE(std::abs(got - want), 3 * std::numeric_limits<float>::denorm_min()) << xf;
    }
  }
  EXPECT_LT(worst, 2.5e-7);
  EXPECT_EQ(cpu::exp_fast(0.0f), 1.0f);
  EXPECT_EQ(cpu::exp_fast(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(cpu::exp_fast(std::numeric_limits<float>::infinity()),
            std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(cpu::exp_fast(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_GT(cpu::exp_fast(88.72f), 3.3e38f);
  EXPECT_LT(cpu::exp_fast(88.72f), std::numeric_limits<float>::infinity());
}

TEST(Reduce, IntegerAndBoolDtypes) {
  const Tensor i = tensor({{1, -2, 3}, {4, 5, -6}});
  EXPECT_EQ(sum(i).dtype(), Dtype::i32);
  EXPECT_EQ(sum(i, {0}).to_vector<int>(), (std::vector<int>{5, 3, -3}));
  EXPECT_EQ(prod(i, {1}).to_vector<int>(), (std::vector<int>{-6, -120}));
  EXPECT_EQ(max(i, {1}).to_vector<int>(), (std::vector<int>{3, 5}));
  EXPECT_EQ(min(i).item<int>(), -6);
  EXPECT_EQ(argmax(i, 1).to_vector<int64_t>(), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(argmin(i).item<int64_t>(), 5);
  const Tensor big = full({100000}, 3, Dtype::i64);
  EXPECT_EQ(sum(big).item<int64_t>(), 300000);
  const Tensor u = tensor<uint8_t>({200, 7, 255});
  EXPECT_EQ(max(u).item<int>(), 255);
  EXPECT_EQ(min(u).item<int>(), 7);
  const Tensor b = tensor<double>({1, 0, 1}) > 0.5;
  EXPECT_EQ(sum(b).dtype(), Dtype::i64);
  EXPECT_EQ(sum(b).item<int64_t>(), 2);
  EXPECT_EQ(max(b).dtype(), Dtype::boolean);
  EXPECT_TRUE(max(b).item<bool>());
  EXPECT_FALSE(min(b).item<bool>());
  EXPECT_EQ(argmin(b).item<int64_t>(), 1);
}

TEST(Reduce, EmptyReductions) {
  const Tensor e = zeros({2, 0, 3}, Dtype::f64);
  EXPECT_TRUE(all_close(sum(e, {1}), zeros({2, 3}, Dtype::f64)));
  EXPECT_TRUE(all_close(prod(e, {1}), ones({2, 3}, Dtype::f64)));
  EXPECT_TRUE(all_close(logsumexp(e, {1}), full({2, 3}, -kInf, Dtype::f64)));
  EXPECT_TRUE(std::isnan(mean(e).item<double>()));
  EXPECT_EQ(sum(e, {0, 2}).shape(), (Shape{0}));
  EXPECT_EQ(max(e, {0, 2}, true).shape(), (Shape{1, 0, 1}));
  EXPECT_EQ(sum(zeros({0}, Dtype::i32)).item<int>(), 0);
}

TEST(Reduce, NanPropagates) {
  const Tensor x = tensor<double>({{1, kNaN, 3}, {4, 5, 6}});
  const auto m = max(x, {1}).to_vector<double>();
  EXPECT_TRUE(std::isnan(m[0]));
  EXPECT_EQ(m[1], 6);
  EXPECT_TRUE(std::isnan(min(x).item<double>()));
  EXPECT_TRUE(std::isnan(sum(x).item<double>()));
  EXPECT_TRUE(std::isnan(logsumexp(x, {1}).to_vector<double>()[0]));
  EXPECT_EQ(argmax(x, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(argmin(x).item<int64_t>(), 1);
}

TEST(Reduce, MaxOfInfinitiesIsInfinite) {
  const Tensor x = tensor<double>({{-kInf, -kInf}, {kInf, 1}});
  EXPECT_EQ(max(x, {1}).to_vector<double>(), (std::vector<double>{-kInf, kInf}));
  EXPECT_EQ(min(x, {1}).to_vector<double>(), (std::vector<double>{-kInf, 1}));
  EXPECT_EQ(argmax(x, 1).to_vector<int64_t>(), (std::vector<int64_t>{0, 0}));
}

TEST(Reduce, MaxSharesGradientAmongTies) {
  const Tensor x = tensor<double>({{1, 3, 3, 0}, {2, 2, 2, 2}});
  const Tensor g = grad([](const Tensor& t) { return sum(max(t, {1})); })(x);
  EXPECT_TRUE(all_close(g, tensor<double>({{0, 0.5, 0.5, 0}, {0.25, 0.25, 0.25, 0.25}})));
  const Tensor h = grad([](const Tensor& t) { return min(t); })(x);
  EXPECT_TRUE(all_close(h, tensor<double>({{0, 0, 0, 1}, {0, 0, 0, 0}})));
}

TEST(Reduce, ProdGradientWithZeros) {
  const Tensor x = tensor<double>({{2, 0, 3, 1.5}, {0, 0, 1.5, 2}, {1, 2, 3, 0.5}, {0.5, 2, 0, 3}});
  const Tensor g = grad([](const Tensor& t) { return sum(prod(t, {1})); })(x);
  EXPECT_TRUE(
      all_close(g, tensor<double>({{0, 9, 0, 0}, {0, 0, 0, 0}, {3, 1.5, 1, 6}, {0, 0, 3, 0}})));
  const Fn f = [](const Tensors& in) { return Tensors{prod(in[0], {1})}; };
  const Fn fa = [](const Tensors& in) { return Tensors{prod(in[0])}; };
  // First derivatives everywhere; second derivatives with at most one zero per slice.
  EXPECT_TRUE(gradcheck(f, {x}).ok);
  const Tensor one_zero = tensor<double>({{2, 0, 3, 1.5}, {0.7, 1.2, 1.5, 2}, {0.5, 2, 0, 3}});
  testing::expect_derivatives(f, {one_zero});
  testing::expect_derivatives(fa, {tensor<double>({0.5, 2, 0, 3})});
}

TEST(Reduce, NormAndStdGradientsAtZeroAreZero) {
  const Tensor z = zeros({2, 3}, Dtype::f64);
  const Tensor g2 = grad([](const Tensor& t) { return sum(norm(t, 2, {1})); })(z);
  EXPECT_TRUE(all_close(g2, z));
  const Tensor gs =
      grad([](const Tensor& t) { return sum(basin::std(t, {1})); })(full({2, 3}, 1.5, Dtype::f64));
  EXPECT_TRUE(all_close(gs, z));
  // Second derivative at zero: finite (taken as 0).
  const Tensor h = grad([](const Tensor& t) {
    return sum(grad([](const Tensor& u) { return sum(norm(u, 2, {1})); })(t));
  })(z);
  EXPECT_TRUE(all_close(h, z));
  EXPECT_NEAR(norm(tensor<double>({3, -4})).item<double>(), 5.0, 1e-15);
  EXPECT_NEAR(norm(tensor<double>({3, -4}), 1).item<double>(), 7.0, 1e-15);
  EXPECT_NEAR(norm(tensor<double>({3, -4}), kInf).item<double>(), 4.0, 1e-15);
}

// --- logsumexp -----------------------------------------------------------------------------------

TEST(LogSumExp, StableForLargeValues) {
  const Tensor x = tensor<double>({{1000, 1000}, {-1000, -1000}});
  EXPECT_TRUE(
      all_close(logsumexp(x, {1}), tensor<double>({1000 + std::log(2.0), -1000 + std::log(2.0)})));
  // Braced axis lists pick the unmasked form.
  EXPECT_TRUE(
      all_close(logsumexp(x, {0}), tensor<double>({1000 + std::log(1 + std::exp(-2000.0)), 1000})));
  EXPECT_EQ(logsumexp(x, {}, true).shape(), (Shape{1, 1}));
  const Tensor x32 = tensor<float>({88.f, 89.f, 90.f});
  EXPECT_NEAR(logsumexp(x32).item<double>(), 90 + std::log(1 + std::exp(-1) + std::exp(-2)), 1e-4);
}

TEST(LogSumExp, InfiniteSlices) {
  const Tensor x = tensor<double>({{-kInf, -kInf, -kInf}, {kInf, 1, 2}, {-kInf, 0, std::log(3.0)}});
  EXPECT_EQ(logsumexp(x, {1}).to_vector<double>(),
            (std::vector<double>{-kInf, kInf, std::log(4.0)}));
  // The all -inf row has a zero gradient, not NaN, and so does its second derivative.
  const Tensor rows = tensor<double>({{-kInf, -kInf}, {0.5, -kInf}});
  const Tensor g = grad([](const Tensor& t) {
    return sum(logsumexp(t, {1}) * tensor<double>({1, 2}));
  })(rows);
  EXPECT_TRUE(all_close(g, tensor<double>({{0, 0}, {2, 0}})));
  const Tensor h = grad([](const Tensor& t) {
    const Tensor gt = grad([](const Tensor& u) { return sum(logsumexp(u, {1})); })(t);
    return sum(gt * gt);
  })(rows);
  for (double v : h.to_vector<double>()) EXPECT_TRUE(std::isfinite(v)) << h;
}

TEST(LogSumExp, MaskedMatchesSelectedElements) {
  const Tensor x = make({3, 5}, 31, -2, 2);
  const Tensor mask = make({3, 5}, 32, 0, 1) > 0.4;
  const auto xv = x.to_vector<double>();
  const auto mv = mask.to_vector<int>();
  std::vector<double> want;
  for (int r = 0; r < 3; ++r) {
    std::vector<double> sel;
    for (int c = 0; c < 5; ++c) {
      if (mv[r * 5 + c]) sel.push_back(xv[r * 5 + c]);
    }
    want.push_back(ref_lse(sel));
  }
  EXPECT_TRUE(all_close(logsumexp(x, mask, {1}), from_vector(want, {3})));
  EXPECT_TRUE(all_close(logsumexp(x, mask, {1}, true), from_vector(want, {3, 1})));
  // A broadcast mask (columns), and the gradient: zero on excluded elements.
  const Tensor cols = tensor<double>({1, 0, 1, 1, 0}) > 0.5;
  const Tensor g = grad([&](const Tensor& t) { return sum(logsumexp(t, cols, {1})); })(x);
  const auto gv = g.to_vector<double>();
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(gv[r * 5 + 1], 0.0);
    EXPECT_EQ(gv[r * 5 + 4], 0.0);
    EXPECT_NEAR(gv[r * 5 + 0] + gv[r * 5 + 2] + gv[r * 5 + 3], 1.0, 1e-12);
  }
  const Fn f = [](const Tensors& in) { return Tensors{logsumexp(in[0], in[1], {1})}; };
  testing::expect_derivatives(f, {x, reshape(cols, {1, 5})});
  const Tensor first = tensor<double>({1, 0, 0, 0, 0}) > 0.5;  // no row fully masked
  testing::expect_derivatives(f, {x, mask || first});
}

TEST(LogSumExp, FullyMaskedRowsGiveMinusInfinityAndZeroGradient) {
  const Tensor x = make({3, 4}, 34, -2, 2);
  const Tensor mask = tensor<double>({{1, 0, 1, 0}, {0, 0, 0, 0}, {1, 1, 1, 1}}) > 0.5;
  const auto v = logsumexp(x, mask, {1}).to_vector<double>();
  EXPECT_EQ(v[1], -kInf);
  EXPECT_TRUE(std::isfinite(v[0]) && std::isfinite(v[2]));
  // The cotangent of the -inf row reaches no element: its gradient is 0, not NaN, and so is
  // the second derivative.
  const Fn f = [&](const Tensors& in) { return Tensors{logsumexp(in[0], mask, {1})}; };
  const Tensor g = vjp(f, {x}, {ones({3}, Dtype::f64)}).second[0];
  const auto gv = g.to_vector<double>();
  for (int c = 0; c < 4; ++c) EXPECT_EQ(gv[4 + c], 0.0);
  for (double e : gv) EXPECT_TRUE(std::isfinite(e));
  const Tensor h = grad([&](const Tensor& t) {
    const Tensor gt = vjp(f, {t}, {ones({3}, Dtype::f64)}).second[0];
    return sum(gt * gt);
  })(x);
  for (double e : h.to_vector<double>()) EXPECT_TRUE(std::isfinite(e)) << h;
  // All -inf in x itself (no mask) behaves the same.
  const Tensor ninf = full({2, 3}, -kInf, Dtype::f64);
  const Fn lse = [](const Tensors& in) { return Tensors{logsumexp(in[0], {1})}; };
  const Tensor gi = vjp(lse, {ninf}, {ones({2}, Dtype::f64)}).second[0];
  EXPECT_TRUE(all_close(gi, zeros({2, 3}, Dtype::f64)));
}

// --- arg-reductions ------------------------------------------------------------------------------

/// Reference argmax/argmin of a slice: the first extreme, NaN counting as the extreme.
double ref_arg(const std::vector<double>& s, bool largest) {
  size_t best = 0;
  for (size_t i = 1; i < s.size(); ++i) {
    if (std::isnan(s[best])) break;
    if (std::isnan(s[i]) || (largest ? s[i] > s[best] : s[i] < s[best])) best = i;
  }
  return static_cast<double>(best);
}

TEST(ReduceArg, MatchesReferenceAlongEveryAxis) {
  const std::vector<Shape> shapes = {{7}, {3, 4}, {2, 3, 4}, {1, 5, 1}, {4, 1}, {0, 3}};
  for (const Shape& shape : shapes) {
    // Few distinct values, so ties are common.
    const Tensor x = floor_div_ties(make(shape, 41, 0, 4));
    for (const Tensor& in :
         {x, testing::noncontiguous(x), x.astype(Dtype::f32), x.astype(Dtype::i32)}) {
      for (int axis = -static_cast<int>(shape.size()); axis < static_cast<int>(shape.size());
           ++axis) {
        const int a = axis < 0 ? axis + static_cast<int>(shape.size()) : axis;
        if (shape[a] == 0) continue;
        for (bool keepdim : {false, true}) {
          SCOPED_TRACE(fmt::format("{} axis {} keepdim {} {}", shape_str(shape), axis, keepdim,
                                   dtype_name(in.dtype())));
          const Tensor am = argmax(in, axis, keepdim);
          EXPECT_EQ(am.dtype(), Dtype::i64);
          EXPECT_TRUE(all_close(am, naive_reduce(x, {axis}, keepdim,
                                                 [](const auto& s) { return ref_arg(s, true); })));
          EXPECT_TRUE(all_close(
              argmin(in, axis, keepdim),
              naive_reduce(x, {axis}, keepdim, [](const auto& s) { return ref_arg(s, false); })));
        }
      }
      if (x.numel() == 0) continue;
      const auto flat = x.to_vector<double>();
      EXPECT_EQ(argmax(in).item<double>(), ref_arg(flat, true)) << shape_str(shape);
      EXPECT_EQ(argmin(in).item<double>(), ref_arg(flat, false)) << shape_str(shape);
      EXPECT_EQ(argmax(in, std::nullopt, true).shape(), Shape(shape.size(), 1));
    }
  }
  EXPECT_EQ(argmax(scalar(3.0)).item<int64_t>(), 0);
}

TEST(ReduceArg, LargeInputsKeepTheFirstOccurrence) {
  for (int threads : {1, 2, 7}) {
    with_threads(threads, [&] {
      SCOPED_TRACE(threads);
      EXPECT_EQ(argmax(ones({300000}, Dtype::f32)).item<int64_t>(), 0);
      EXPECT_EQ(argmin(ones({300000}, Dtype::f32)).item<int64_t>(), 0);
      std::vector<float> v(300000, 0.f);
      v[123456] = 5.f;
      v[234567] = 5.f;
      v[200000] = -1.f;
      const Tensor x = from_vector(v, {300000});
      EXPECT_EQ(argmax(x).item<int64_t>(), 123456);
      EXPECT_EQ(argmin(x).item<int64_t>(), 200000);
      const Tensor cols = reshape(x, {3000, 100});
      const Tensor big = floor_div_ties(make({3000, 100}, 42, 0, 3));
      for (int axis : {0, 1}) {
        EXPECT_TRUE(all_close(
            argmax(big, axis),
            naive_reduce(big, {axis}, false, [](const auto& s) { return ref_arg(s, true); })));
        EXPECT_TRUE(all_close(
            argmin(cols, axis),
            naive_reduce(cols, {axis}, false, [](const auto& s) { return ref_arg(s, false); })));
      }
    });
  }
}

// --- errors --------------------------------------------------------------------------------------

TEST(Reduce, Errors) {
  const Tensor x = zeros({2, 3}, Dtype::f64);
  EXPECT_TRUE(throws_error([&] { sum(x, {2}); }, {"[sum]", "axis 2"}));
  EXPECT_TRUE(throws_error([&] { max(x, {-3}); }, {"[max]", "axis -3"}));
  EXPECT_TRUE(throws_error([&] { logsumexp(x, {5}); }, {"[logsumexp]", "axis 5"}));
  EXPECT_TRUE(throws_error([&] { var(x, {0, -2}); }, {"[var]", "repeated axis"}));
  EXPECT_TRUE(throws_error([&] { prod(x, {1, 1}); }, {"[prod]", "repeated axis"}));
  EXPECT_TRUE(throws_error([&] { max(zeros({2, 0})); }, {"[max]", "empty", "(2, 0)"}));
  EXPECT_TRUE(throws_error([&] { min(zeros({2, 0}), {1}); }, {"[min]", "empty", "(2, 0)", "(1)"}));
  EXPECT_TRUE(throws_error([&] { norm(zeros({0}), kInf); }, {"[norm]", "empty", "(0,)"}));
  EXPECT_TRUE(throws_error([&] { argmax(zeros({0, 3})); }, {"[argmax]", "empty", "(0, 3)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        argmin(zeros({0, 3}), 0);
      },
      {"[argmin]", "empty", "axis 0", "(0, 3)"}));
  EXPECT_TRUE(throws_error([&] { argmax(x, 2); }, {"[argmax]", "axis 2"}));
  EXPECT_TRUE(throws_error([&] { mean(zeros({2}, Dtype::i32)); }, {"[mean]", "int32"}));
  EXPECT_TRUE(throws_error([&] { var(zeros({2}, Dtype::i32)); }, {"[var]", "int32"}));
  EXPECT_TRUE(throws_error([&] { logsumexp(zeros({2}, Dtype::i64)); }, {"[logsumexp]", "int64"}));
  EXPECT_TRUE(throws_error([&] { norm(x, 3); }, {"[norm]", "p must be", "3"}));
  EXPECT_TRUE(throws_error([&] { logsumexp(x, x, {1}); }, {"[logsumexp]", "mask", "float64"}));
  EXPECT_TRUE(throws_error(
      [&] {
        logsumexp(x, zeros({3, 3}, Dtype::boolean));
      },
      {"[logsumexp]", "(3, 3)", "(2, 3)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        logsumexp(x, zeros({2, 1, 3}, Dtype::boolean));
      },
      {"[logsumexp]", "(2, 1, 3)", "(2, 3)"}));
  EXPECT_TRUE(throws_error([&] { sum(Tensor()); }, {"[sum]", "undefined"}));
}

}  // namespace
}  // namespace basin
