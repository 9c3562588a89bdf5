// Autograd: transforms, backward(), gradients of gradients to third order, grad of a function
// that calls grad, FusedOp against its fallback, and a memory check over many steps.
#include <unistd.h>
#include <fstream>

#include "tests/test_util.h"

namespace basin {
namespace {
using testing::all_close;
using testing::make;

TEST(Grad, ExpIsItsOwnDerivativeToThirdOrder) {
  const Tensor x = make({5}, 1);
  auto f = [](const Tensor& v) { return sum(exp(v)); };
  auto d1 = grad(f);
  auto d2 = grad([&](const Tensor& v) { return sum(d1(v)); });
  auto d3 = grad([&](const Tensor& v) { return sum(d2(v)); });
  EXPECT_TRUE(all_close(d1(x), exp(x)));
  EXPECT_TRUE(all_close(d2(x), exp(x)));
  EXPECT_TRUE(all_close(d3(x), exp(x)));
}

TEST(Grad, TanhThirdDerivative) {
  const Tensor x = make({6}, 2);
  auto d1 = grad([](const Tensor& v) { return sum(tanh(v)); });
  auto d2 = grad([&](const Tensor& v) { return sum(d1(v)); });
  auto d3 = grad([&](const Tensor& v) { return sum(d2(v)); });
  const Tensor t = tanh(x);
  // d/dx tanh = 1 - t^2; d2 = -2 t (1 - t^2); d3 = (1 - t^2)(6 t^2 - 2)
  EXPECT_TRUE(all_close(d1(x), 1.0 - t * t));
  EXPECT_TRUE(all_close(d2(x), -2.0 * t * (1.0 - t * t)));
  EXPECT_TRUE(all_close(d3(x), (1.0 - t * t) * (6.0 * t * t - 2.0)));
}

TEST(Grad, GradOfAFunctionThatCallsGrad) {
  // h(w) = sum(dE/dx at x0) with E(x) = sum(w * x^3): dE/dx = 3 w x^2, so dh/dw = 3 x0^2.
  const Tensor x0 = make({4}, 3);
  const Tensor w = make({4}, 4);
  auto h = [&x0](const Tensor& wv) {
    auto dE = grad([&wv](const Tensor& x) { return sum(wv * x * x * x); });
    return sum(dE(x0));
  };
  EXPECT_TRUE(all_close(grad(h)(w), 3.0 * x0 * x0));
  testing::expect_derivatives([&](const Tensors& in) { return Tensors{h(in[0])}; }, {w});
}

TEST(Grad, ValueAndGradWithArgnums) {
  const Tensor a = make({3}, 5);
  const Tensor b = make({3}, 6);
  auto [value, grads] =
      value_and_grad([](const Tensors& in) { return sum(in[0] * in[1] * in[1]); }, {1})({a, b});
  EXPECT_NEAR(value.item<double>(), sum(a * b * b).item<double>(), 1e-12);
  ASSERT_EQ(grads.size(), 1u);
  EXPECT_TRUE(all_close(grads[0], 2.0 * a * b));
  EXPECT_FALSE(value.requires_grad());
}

TEST(Grad, VjpWithCotangentsAndUnusedInputs) {
  const Tensor x = make({2, 3}, 7);
  const Tensor unused = make({4}, 8);
  const Tensor v = make({2, 3}, 9);
  auto [out, g] = vjp([](const Tensors& in) { return Tensors{sin(in[0])}; }, {x, unused}, {v});
  EXPECT_TRUE(all_close(out[0], sin(x)));
  EXPECT_TRUE(all_close(g[0], v * cos(x)));
  EXPECT_TRUE(all_close(g[1], zeros({4}, Dtype::f64)));
}

TEST(Grad, BackwardAccumulatesIntoLeaves) {
  Tensor w = make({3}, 10);
  w.set_requires_grad();
  const Tensor x = make({3}, 11);
  Tensor loss = sum(w * x + w * w);
  loss.backward();
  EXPECT_TRUE(all_close(w.grad(), x + 2.0 * w));
  sum(w * x).backward();  // accumulates
  EXPECT_TRUE(all_close(w.grad(), 2.0 * x + 2.0 * w));
  w.zero_grad();
  EXPECT_FALSE(w.grad().defined());
}

TEST(Grad, BackwardThroughAnInnerGradTrainsLikeValueAndGrad) {
  // The energy-model pattern: a forward that calls grad, trained with backward().
  Tensor w = make({4}, 12);
  w.set_requires_grad();
  const Tensor x = make({4}, 13);
  auto energy_grad = grad([&w](const Tensor& g) { return sum(w * g * g * g); });
  const Tensor y = x - 0.1 * energy_grad(x);  // one descent step
  sum(y * y).backward();
  // Reference through value_and_grad.
  auto ref = grad([&x](const Tensors& in) {
    auto eg = grad([&in](const Tensor& g) { return sum(in[0] * g * g * g); });
    const Tensor yy = x - 0.1 * eg(x);
    return sum(yy * yy);
  })({w.detach()});
  EXPECT_TRUE(all_close(w.grad(), ref[0]));
}

TEST(Grad, NoGradGuardRecordsNothing) {
  Tensor w = make({3}, 14);
  w.set_requires_grad();
  NoGradGuard guard;
  const Tensor y = w * 2.0;
  EXPECT_FALSE(y.requires_grad());
  EXPECT_FALSE(is_grad_enabled());
}

TEST(Grad, InferenceGradDoesNotKeepAGraph) {
  const Tensor x = make({3}, 15);
  const Tensor g = grad([](const Tensor& v) { return sum(v * v); })(x);
  EXPECT_FALSE(g.requires_grad());
  EXPECT_TRUE(g.is_leaf());
}

TEST(Grad, StopGradientBlocksFlow) {
  const Tensor x = make({3}, 16);
  const Tensor g = grad([](const Tensor& v) { return sum(v * stop_gradient(v)); })(x);
  EXPECT_TRUE(all_close(g, x));
}

TEST(Grad, GradientsOfIntermediates) {
  Tensor w = make({3}, 17);
  w.set_requires_grad();
  const Tensor h = w * w;
  const Tensor y = sum(exp(h));
  const Tensors g = gradients({y}, {ones_like(y)}, {h, w});
  EXPECT_TRUE(all_close(g[0], exp(h)));
  EXPECT_TRUE(all_close(g[1], exp(h) * 2.0 * w));
}

TEST(Grad, Errors) {
  EXPECT_TRUE(testing::throws_error(
      [] { grad([](const Tensor& v) { return v * 2.0; })(zeros({3}, Dtype::f64)); },
      {"[value_and_grad]", "one-element"}));
  EXPECT_TRUE(testing::throws_error(
      [] { grad([](const Tensor& v) { return sum(v); })(zeros({3}, Dtype::i64)); }, {"int64"}));
  EXPECT_TRUE(testing::throws_error([] { zeros({3}).backward(); }, {"[backward]"}));
  Tensor w = zeros({3});
  w.set_requires_grad();
  EXPECT_TRUE(testing::throws_error([&] { (w * 2.0).backward(); }, {"[backward]", "(3,)"}));
  EXPECT_TRUE(testing::throws_error([] { zeros({3}, Dtype::i32).set_requires_grad(); }, {"int32"}));
}

// A fused op for the test: softplus(a * b) with a "kernel" that computes it in one host loop.
class FusedSoftplusMul final : public FusedOp {
 public:
  const char* name() const override { return "FusedSoftplusMul"; }
  Tensor fallback(const Tensors& in) const override { return softplus(in[0] * in[1]); }
  void eval_cpu(const Tensors& in, Tensor& out) override {
    out.allocate();
    const Tensor a = in[0].contiguous(), b = in[1].contiguous();
    const double* pa = a.data<double>();
    const double* pb = b.data<double>();
    double* y = out.data<double>();
    for (int64_t i = 0; i < out.numel(); ++i) y[i] = std::log1p(std::exp(pa[i] * pb[i]));
  }
};

Tensor fused_softplus_mul(const Tensor& a, const Tensor& b) {
  return apply(std::make_shared<FusedSoftplusMul>(), {a, b}, a.shape(), a.dtype());
}

TEST(FusedOp, EqualsItsFallbackInValueGradientAndSecondDerivative) {
  const Tensor a = make({3, 4}, 18);
  const Tensor b = make({3, 4}, 19);
  EXPECT_TRUE(all_close(fused_softplus_mul(a, b), softplus(a * b)));
  const Fn fused = [](const Tensors& in) { return Tensors{fused_softplus_mul(in[0], in[1])}; };
  const Fn plain = [](const Tensors& in) { return Tensors{softplus(in[0] * in[1])}; };
  const Tensor v = make({3, 4}, 20);
  const auto gf = vjp(fused, {a, b}, {v}).second;
  const auto gp = vjp(plain, {a, b}, {v}).second;
  EXPECT_TRUE(all_close(gf[0], gp[0]));
  EXPECT_TRUE(all_close(gf[1], gp[1]));
  testing::expect_derivatives(fused, {a, b});
}

size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

TEST(Memory, TenThousandStepsDoNotGrow) {
  Tensor w = make({16, 8}, 21, -1, 1, Dtype::f32);
  w.set_requires_grad();
  const Tensor x = make({16, 8}, 22, -1, 1, Dtype::f32);
  auto step = [&] {
    Tensor loss = sum(tanh(w * x) * exp(w) + square(w));
    loss.backward();
    NoGradGuard no_grad;
    w.assign(w - 1e-4 * w.grad());
    w.zero_grad();
  };
  for (int i = 0; i < 500; ++i) step();  // warm the allocator cache
  const size_t before = resident_bytes();
  const size_t in_use_before = allocator_stats(Device::cpu()).bytes_in_use;
  for (int i = 0; i < 10000; ++i) step();
  const size_t after = resident_bytes();
#ifndef __SANITIZE_ADDRESS__  // AddressSanitizer keeps freed memory in quarantine: RSS says nothing
  EXPECT_LT(after, before + (size_t{16} << 20))
      << "resident memory grew from " << before << " to " << after;
#else
  (void)before;
  (void)after;
#endif
  EXPECT_EQ(allocator_stats(Device::cpu()).bytes_in_use, in_use_before);
}

TEST(Memory, DeepGraphIsFreedWithoutRecursion) {
  Tensor w = scalar(0.5, Dtype::f64);
  w.set_requires_grad();
  Tensor y = w;
  for (int i = 0; i < 200000; ++i) y = y * 1.0;
  y.backward();
  EXPECT_DOUBLE_EQ(w.grad().item<double>(), 1.0);
  y = Tensor();  // destroying a 200k-deep chain must not overflow the stack
}

}  // namespace
}  // namespace basin
