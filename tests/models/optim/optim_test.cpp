// Optimizers against PyTorch float64 runs (tests/fixtures/optim_fixture.py), schedules against
// their formulas, gradient clipping, state round trips and argument errors.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <numbers>
#include <sstream>
#include <string>

#include "tests/test_util.h"

namespace basin::optim {
namespace {
using basin::testing::all_close;

/// The tensors of optim_fixture.txt by name (float64, on the CPU).
const std::map<std::string, Tensor>& fixture() {
  static const std::map<std::string, Tensor> tensors = [] {
    const auto path =
        std::filesystem::path(__FILE__).parent_path() / "../../fixtures/optim_fixture.txt";
    std::ifstream in(path);
    if (!in) fail("[optim_test] cannot open {}", path.string());
    std::map<std::string, Tensor> out;
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream s(line);
      std::string name;
      int ndim = 0;
      s >> name >> ndim;
      Shape shape(static_cast<size_t>(ndim));
      int64_t n = 1;
      for (auto& d : shape) {
        s >> d;
        n *= d;
      }
      std::vector<double> values(static_cast<size_t>(n));
      for (double& v : values) s >> v;
      if (!s) fail("[optim_test] bad fixture line for {}", name);
      out[name] = from_vector(values, shape);
    }
    return out;
  }();
  return tensors;
}

const Tensor& fx(const std::string& name) {
  auto it = fixture().find(name);
  if (it == fixture().end()) fail("[optim_test] no '{}' in the fixture", name);
  return it->second;
}

const std::vector<std::string> kNames = {"w1", "b1", "w2", "b2"};

/// Fresh leaf copies of the fixture's initial parameters.
Tensors init_params() {
  Tensors ps;
  for (const auto& k : kNames) ps.push_back(fx("init." + k).clone().set_requires_grad());
  return ps;
}

/// The fixture's loss: 0.5 * sum((tanh(x w1 + b1) w2 + b2 - target)^2), with backward().
void loss_backward(const Tensors& p) {
  const Tensor h = tanh(matmul(fx("x"), p[0]) + p[1]);
  const Tensor y = matmul(h, p[2]) + p[3];
  const Tensor d = y - fx("target");
  (0.5 * sum(d * d)).backward();
}

void expect_run(const std::string& run, const Tensors& p) {
  for (size_t i = 0; i < kNames.size(); ++i) {
    EXPECT_TRUE(all_close(p[i], fx(run + "." + kNames[i]), 1e-10, 1e-12))
        << run << "." << kNames[i];
  }
}

void train(Optimizer& opt, int steps = 5) {
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    loss_backward(opt.params());
    opt.step();
  }
}

TEST(OptimTorch, SgdNesterovWeightDecay) {
  SGD opt(init_params(), 0.1, {.momentum = 0.9, .weight_decay = 0.01, .nesterov = true});
  train(opt);
  expect_run("sgd", opt.params());
}

TEST(OptimTorch, SgdDampening) {
  SGD opt(init_params(), 0.05, {.momentum = 0.8, .dampening = 0.3});
  train(opt);
  expect_run("sgd_damp", opt.params());
}

TEST(OptimTorch, AdamL2) {
  Adam opt(init_params(), 0.05, {.betas = {0.9, 0.99}, .eps = 1e-8, .weight_decay = 0.1});
  train(opt);
  expect_run("adam", opt.params());
}

TEST(OptimTorch, AdamAmsgrad) {
  Adam opt(init_params(), 0.05, {.amsgrad = true});
  train(opt);
  expect_run("adam_amsgrad", opt.params());
}

TEST(OptimTorch, AdamW) {
  AdamW opt(init_params(), 0.05, {.weight_decay = 0.1});
  train(opt);
  expect_run("adamw", opt.params());
}

TEST(OptimTorch, AdamWClipWarmupCosine) {
  AdamW opt(init_params(), 0.1, {.betas = {0.8, 0.95}, .eps = 1e-6, .weight_decay = 0.05});
  const Schedule schedule = Schedule::warmup_cosine(0.1, 2, 5, 0.01);
  const auto norms = fx("adamw_clip.norms").to_vector<double>();
  for (int s = 0; s < 5; ++s) {
    opt.zero_grad();
    loss_backward(opt.params());
    EXPECT_NEAR(clip_grad_norm(opt.params(), 0.5), norms[static_cast<size_t>(s)], 1e-10);
    schedule.apply(opt, s);
    opt.step();
  }
  expect_run("adamw_clip", opt.params());
}

TEST(OptimTorch, Float32AgreesWithFloat64Run) {
  Tensors p32;
  for (const auto& t : init_params())
    p32.push_back(t.detach().astype(Dtype::f32).set_requires_grad());
  AdamW opt(p32, 0.05, {.weight_decay = 0.1});
  for (int s = 0; s < 5; ++s) {
    opt.zero_grad();
    const Tensor h = tanh(matmul(fx("x").astype(Dtype::f32), p32[0]) + p32[1]);
    const Tensor d = matmul(h, p32[2]) + p32[3] - fx("target").astype(Dtype::f32);
    (0.5 * sum(d * d)).backward();
    opt.step();
  }
  for (size_t i = 0; i < kNames.size(); ++i) {
    EXPECT_EQ(p32[i].dtype(), Dtype::f32);
    EXPECT_EQ(opt.state().at(fmt::format("{}.exp_avg", i)).dtype(), Dtype::f32);
    EXPECT_TRUE(all_close(p32[i], fx("adamw." + kNames[i]), 1e-4, 1e-5)) << kNames[i];
  }
}

TEST(OptimBase, SkipsParametersWithoutGradAndZeroGrad) {
  Tensor a = full({3}, 1.0, Dtype::f64).set_requires_grad();
  Tensor b = full({2}, 1.0, Dtype::f64).set_requires_grad();
  SGD opt({a, b}, 0.5);
  sum(a * a).backward();
  opt.step();
  EXPECT_TRUE(all_close(a, full({3}, 0.0, Dtype::f64)));
  EXPECT_TRUE(all_close(b, full({2}, 1.0, Dtype::f64)));
  EXPECT_TRUE(a.requires_grad() && !a.op());  // still a leaf
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined());
  EXPECT_FALSE(b.grad().defined());
}

TEST(OptimBase, StateRoundTripContinuesIdentically) {
  // Three steps, save, two more; against a second optimizer loaded from the saved state.
  Adam a(init_params(), 0.05, {.amsgrad = true});
  train(a, 3);
  const StateDict saved = a.state();
  EXPECT_EQ(saved.size(), 4u * 4u);  // step, exp_avg, exp_avg_sq, max_exp_avg_sq per parameter
  EXPECT_EQ(saved.at("2.step").item<int64_t>(), 3);
  EXPECT_EQ(saved.at("0.exp_avg").shape(), (Shape{3, 4}));

  Tensors p2;
  for (const auto& p : a.params()) p2.push_back(p.detach().clone().set_requires_grad());
  Adam b(p2, 0.05, {.amsgrad = true});
  b.load_state(saved);
  train(a, 2);
  train(b, 2);
  for (size_t i = 0; i < 4; ++i) EXPECT_TRUE(all_close(b.params()[i], a.params()[i], 0.0, 0.0));
  expect_run("adam_amsgrad", b.params());
  // state() returns copies: the saved tensors did not move with the later steps.
  EXPECT_EQ(saved.at("0.step").item<int64_t>(), 3);
}

TEST(OptimBase, SgdMomentumStateNames) {
  SGD opt(init_params(), 0.1, {.momentum = 0.9});
  EXPECT_TRUE(opt.state().empty());
  train(opt, 1);
  const StateDict s = opt.state();
  EXPECT_TRUE(s.contains("3.momentum_buffer"));
  EXPECT_TRUE(s.contains("3.step"));
}

TEST(OptimBase, LoadStateRejectsBadNames) {
  SGD opt(init_params(), 0.1, {.momentum = 0.9});
  const Tensor step = scalar(1.0, Dtype::i64);
  EXPECT_THROW(opt.load_state({{"7.step", step}}), Error);
  EXPECT_THROW(opt.load_state({{"x.step", step}}), Error);
  EXPECT_THROW(opt.load_state({{"0.exp_avg", zeros({3, 4}, Dtype::f64)}, {"0.step", step}}), Error);
  EXPECT_THROW(opt.load_state({{"0.momentum_buffer", zeros({4}, Dtype::f64)}, {"0.step", step}}),
               Error);
  EXPECT_THROW(opt.load_state({{"0.momentum_buffer", zeros({3, 4}, Dtype::f64)}}), Error);
  EXPECT_NO_THROW(opt.load_state({{"0.momentum_buffer", zeros({3, 4})}, {"0.step", step}}));
  EXPECT_EQ(opt.state().at("0.momentum_buffer").dtype(), Dtype::f64);  // cast to the parameter's
}

TEST(OptimErrors, ConstructorsAndLr) {
  const auto msg = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(msg([] { AdamW(init_params(), -1.0); }).rfind("[AdamW] invalid learning rate", 0), 0u);
  EXPECT_EQ(msg([] {
              AdamW(init_params(), 0.1, {.betas = {1.0, 0.9}});
            }).rfind("[AdamW] invalid beta1", 0),
            0u);
  EXPECT_EQ(msg([] {
              Adam(init_params(), 0.1, {.betas = {0.9, -0.1}});
            }).rfind("[Adam] invalid beta2", 0),
            0u);
  EXPECT_EQ(msg([] { Adam(init_params(), 0.1, {.eps = -1.0}); }).rfind("[Adam] invalid eps", 0),
            0u);
  EXPECT_EQ(msg([] {
              AdamW(init_params(), 0.1, {.weight_decay = -1.0});
            }).rfind("[AdamW] invalid weight_decay", 0),
            0u);
  EXPECT_EQ(msg([] { SGD(init_params(), 0.1, {.nesterov = true}); }).rfind("[SGD] Nesterov", 0),
            0u);
  EXPECT_EQ(
      msg([] { SGD(init_params(), 0.1, {.momentum = -0.5}); }).rfind("[SGD] invalid momentum", 0),
      0u);
  EXPECT_EQ(msg([] { SGD({}, 0.1); }).rfind("[SGD] got an empty parameter list", 0), 0u);
  Tensor ints = zeros({2}, Dtype::i64);
  EXPECT_EQ(msg([&] { AdamW({ints}, 0.1); }).rfind("[AdamW] parameter 0 has dtype", 0), 0u);
  EXPECT_EQ(
      msg([] { SGD({zeros({2}, Dtype::f64)}, 0.1); }).rfind("[SGD] parameter 0 must be a leaf", 0),
      0u);
  Tensor leaf = zeros({2}, Dtype::f64).set_requires_grad();
  Tensor derived = leaf * 2.0;
  EXPECT_THROW(SGD({derived}, 0.1), Error);
  SGD ok({leaf}, 0.1);
  EXPECT_THROW(ok.set_lr(-0.1), Error);
  EXPECT_THROW(ok.set_lr(std::nan("")), Error);
  ok.set_lr(0.25);
  EXPECT_EQ(ok.lr(), 0.25);
}

TEST(OptimClip, ScalesOnlyAboveMaxNorm) {
  Tensor a = zeros({2}, Dtype::f64).set_requires_grad();
  Tensor b = zeros({1}, Dtype::f64).set_requires_grad();
  Tensor c = zeros({1}, Dtype::f64).set_requires_grad();  // no gradient: skipped
  a.set_grad(tensor<double>({3.0, 0.0}));
  b.set_grad(tensor<double>({4.0}));
  EXPECT_NEAR(clip_grad_norm({a, b, c}, 10.0), 5.0, 1e-12);
  EXPECT_TRUE(all_close(a.grad(), tensor<double>({3.0, 0.0})));
  EXPECT_NEAR(clip_grad_norm({a, b, c}, 1.0), 5.0, 1e-12);
  const double k = 1.0 / (5.0 + 1e-6);
  EXPECT_TRUE(all_close(a.grad(), tensor<double>({3.0 * k, 0.0})));
  EXPECT_TRUE(all_close(b.grad(), tensor<double>({4.0 * k})));
  EXPECT_FALSE(c.grad().defined());
}

TEST(OptimClip, OtherNormsAndNonFinite) {
  Tensor a = zeros({3}, Dtype::f32).set_requires_grad();
  a.set_grad(tensor<float>({1.0f, -2.0f, 2.0f}));
  EXPECT_NEAR(clip_grad_norm({a}, 100.0, 1.0), 5.0, 1e-6);
  EXPECT_NEAR(clip_grad_norm({a}, 100.0, 3.0), std::cbrt(17.0), 1e-5);
  EXPECT_NEAR(clip_grad_norm({a}, 1.0, INFINITY), 2.0, 1e-6);
  EXPECT_TRUE(all_close(a.grad(), tensor<double>({0.5, -1.0, 1.0}), 1e-6, 1e-6));
  a.set_grad(tensor<float>({1.0f, NAN, 0.0f}));
  EXPECT_TRUE(std::isnan(clip_grad_norm({a}, 1.0)));
  a.set_grad(tensor<float>({1.0f, INFINITY, 0.0f}));
  EXPECT_TRUE(std::isinf(clip_grad_norm({a}, 1.0)));
  EXPECT_EQ(clip_grad_norm({zeros({1}, Dtype::f64).set_requires_grad()}, 1.0), 0.0);
  EXPECT_THROW(clip_grad_norm({a}, -1.0), Error);
  EXPECT_THROW(clip_grad_norm({a}, 1.0, 0.0), Error);
  a.set_grad(tensor<float>({1.0f, -3.0f, 0.5f}));
  clip_grad_value({a}, 0.75);
  EXPECT_TRUE(all_close(a.grad(), tensor<double>({0.75, -0.75, 0.5})));
}

TEST(OptimSchedule, WarmupCosine) {
  const double pi = std::numbers::pi;
  const Schedule s = Schedule::warmup_cosine(1.0, 4, 14, 0.1);
  EXPECT_DOUBLE_EQ(s.lr(0), 0.0);
  EXPECT_DOUBLE_EQ(s.lr(1), 0.25);
  EXPECT_DOUBLE_EQ(s.lr(4), 1.0);
  EXPECT_NEAR(s.lr(7), 0.1 + 0.9 * 0.5 * (1 + std::cos(pi * 0.3)), 1e-15);
  EXPECT_NEAR(s.lr(9), 0.55, 1e-15);
  EXPECT_NEAR(s.lr(14), 0.1, 1e-15);
  EXPECT_NEAR(s.lr(100), 0.1, 1e-15);
  EXPECT_DOUBLE_EQ(Schedule::warmup_cosine(2.0, 0, 0).lr(0), 0.0);
  EXPECT_THROW(Schedule::warmup_cosine(1.0, 5, 4), Error);
  EXPECT_THROW(s.lr(-1), Error);
}

TEST(OptimSchedule, ConstantExponentialStep) {
  EXPECT_EQ(Schedule::constant(0.3).lr(1000), 0.3);
  EXPECT_NEAR(Schedule::exponential(0.5, 0.9).lr(3), 0.5 * 0.729, 1e-15);
  const Schedule st = Schedule::step(1.0, 3, 0.1);
  EXPECT_DOUBLE_EQ(st.lr(0), 1.0);
  EXPECT_DOUBLE_EQ(st.lr(2), 1.0);
  EXPECT_NEAR(st.lr(3), 0.1, 1e-15);
  EXPECT_NEAR(st.lr(8), 0.01, 1e-15);
  EXPECT_THROW(Schedule::step(1.0, 0, 0.1), Error);
  EXPECT_THROW(Schedule::exponential(1.0, 0.0), Error);
  EXPECT_THROW(Schedule::constant(-1.0), Error);
}

TEST(OptimSchedule, CosineWarmRestartsMatchesTorchFormula) {
  // PyTorch's closed form: n = floor(log_{T_mult}(t / T_0 (T_mult - 1) + 1)),
  // T_cur = t - T_0 (T_mult^n - 1) / (T_mult - 1), T_i = T_0 T_mult^n.
  const double pi = std::numbers::pi;
  const double base = 0.2;
  const double eta_min = 0.01;
  const Schedule s = Schedule::cosine_warm_restarts(base, 3, 2, eta_min);
  for (int64_t t : {0, 1, 2, 3, 5, 8, 9, 15, 20, 21, 44, 45}) {
    const double n =
        std::floor(std::log(static_cast<double>(t) / 3.0 + 1.0) / std::log(2.0) + 1e-12);
    const double t_cur = static_cast<double>(t) - 3.0 * (std::pow(2.0, n) - 1.0);
    const double t_i = 3.0 * std::pow(2.0, n);
    const double want = eta_min + (base - eta_min) * (1 + std::cos(pi * t_cur / t_i)) / 2;
    EXPECT_NEAR(s.lr(t), want, 1e-14) << "t=" << t;
  }
  // T_mult = 1: plain period T_0.
  const Schedule p = Schedule::cosine_warm_restarts(1.0, 4);
  EXPECT_DOUBLE_EQ(p.lr(0), 1.0);
  EXPECT_DOUBLE_EQ(p.lr(4), 1.0);
  EXPECT_NEAR(p.lr(6), 0.5, 1e-15);
  EXPECT_NEAR(p.lr(10), 0.5, 1e-15);
  EXPECT_THROW(Schedule::cosine_warm_restarts(1.0, 0), Error);
  EXPECT_THROW(Schedule::cosine_warm_restarts(1.0, 2, 0), Error);
}

TEST(OptimSchedule, AppliesToOptimizer) {
  SGD opt(init_params(), 1.0);
  Schedule::step(0.4, 2, 0.5).apply(opt, 5);
  EXPECT_NEAR(opt.lr(), 0.1, 1e-15);
  const Schedule custom([](int64_t s) { return 1.0 / static_cast<double>(s + 1); });
  custom.apply(opt, 3);
  EXPECT_EQ(opt.lr(), 0.25);
  EXPECT_THROW(Schedule(std::function<double(int64_t)>()), Error);
}

}  // namespace
}  // namespace basin::optim
