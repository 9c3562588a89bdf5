// The worked example of docs/energy-layers.md: the guide shows models/energy/gaussian_memory.cpp
// verbatim, and the layer it shows is built from a config, checked against its formula to second
// derivatives, descended, and trained inside an Energy Transformer block.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "autograd/gradcheck.h"
#include "basin/basin.h"
#include "models/energy/descent.h"
#include "models/energy/et_block.h"
#include "tests/test_util.h"

namespace basin::energy {
namespace {

using testing::all_close;
using testing::make;
using testing::throws_error;

const std::filesystem::path kSourceDir =
    std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().parent_path();

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::shared_ptr<EnergyModule> build(const std::string& toml, int64_t dim, Config* keep = nullptr) {
  Config config = Config::parse(toml);
  auto layer = make_energy(EnergyContext{config, dim});
  if (keep != nullptr) *keep = config;
  return layer;
}

Tensor parameter(const nn::Module& m, const std::string& name) {
  for (const auto& [n, t] : m.named_parameters())
    if (n == name) return t;
  ADD_FAILURE() << "no parameter " << name;
  return {};
}

/// E and dE/dg straight from the formulas, in double loops. g (B, D), xi (M, D).
std::pair<double, std::vector<double>> by_hand(const std::vector<double>& g,
                                               const std::vector<double>& xi, int64_t B, int64_t M,
                                               int64_t D, double beta) {
  double e = 0;
  std::vector<double> grad(g.size(), 0.0);
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> s(M);
    double top = -INFINITY;
    for (int64_t m = 0; m < M; ++m) {
      double d2 = 0;
      for (int64_t d = 0; d < D; ++d) d2 += std::pow(g[b * D + d] - xi[m * D + d], 2);
      s[m] = -0.5 * beta * d2;
      top = std::max(top, s[m]);
    }
    double z = 0;
    for (double v : s) z += std::exp(v - top);
    e += -(top + std::log(z)) / beta;
    for (int64_t m = 0; m < M; ++m) {
      const double p = std::exp(s[m] - top) / z;
      for (int64_t d = 0; d < D; ++d) grad[b * D + d] += p * (g[b * D + d] - xi[m * D + d]);
    }
  }
  return {e, grad};
}

TEST(EnergyLayersGuide, ShowsTheExampleFileVerbatim) {
  const std::string guide = read_text(kSourceDir / "docs" / "energy-layers.md");
  const std::string source = read_text(kSourceDir / "models" / "energy" / "gaussian_memory.cpp");
  const std::string marker = "<!-- the whole of models/energy/gaussian_memory.cpp -->\n```cpp\n";
  const size_t start = guide.find(marker);
  ASSERT_NE(start, std::string::npos) << "the guide lost its marker: " << marker;
  const size_t begin = start + marker.size();
  const size_t end = guide.find("```\n", begin);
  ASSERT_NE(end, std::string::npos);
  EXPECT_EQ(guide.substr(begin, end - begin), source)
      << "docs/energy-layers.md no longer shows models/energy/gaussian_memory.cpp as it is";
}

TEST(GaussianMemory, BuiltFromAConfigItMatchesItsFormula) {
  Config config;
  auto layer = build("type = 'gaussian_memory'\nmemories = 5\nbeta = 0.75\n", 4, &config);
  config.check_all_used();
  EXPECT_EQ(layer->type_name(), "GaussianMemory");
  layer->to(Dtype::f64);
  const Tensor xi = parameter(*layer, "xi");
  EXPECT_EQ(xi.shape(), (Shape{5, 4}));
  EXPECT_EQ(layer->named_parameters().size(), 1u);  // β is a buffer unless learnable

  const Tensor g = make({3, 4}, 11, -2, 2);
  const auto [e, grad] = by_hand(g.to_vector<double>(), xi.to_vector<double>(), 3, 5, 4, 0.75);
  EXPECT_NEAR(layer->energy(g).item<double>(), e, 1e-12);
  EXPECT_TRUE(all_close(layer->energy_grad(g), from_vector(grad, Shape{3, 4}), 1e-12, 1e-12));
  // Batched tokens (B, N, D) are summed over both.
  const Tensor g3 = make({2, 3, 4}, 12);
  EXPECT_NEAR(layer->energy(g3).item<double>(), layer->energy(reshape(g3, {6, 4})).item<double>(),
              1e-12);
}

TEST(GaussianMemory, DerivativesToSecondOrder) {
  auto layer = build("type = 'gaussian_memory'\nmemories = 6\nbeta = 0.5\n", 3);
  layer->to(Dtype::f64);
  const Fn f = [&](const Tensors& in) -> Tensors { return {layer->energy(in[0])}; };
  testing::expect_derivatives(f, {make({4, 3}, 21)});
  // dE/dg itself, differentiated again (what training through a descent needs).
  const Fn df = [&](const Tensors& in) -> Tensors { return {layer->energy_grad(in[0])}; };
  testing::expect_derivatives(df, {make({2, 3}, 22)}, false);
  // The memories' gradient: dE/dξ_μ = Σ_B p_Bμ (ξ_μ − g_B), p = softmax_μ(−β/2 ‖g_B − ξ_μ‖²).
  const Tensor g = make({4, 3}, 23);
  const Tensor xi = parameter(*layer, "xi");
  layer->zero_grad();
  layer->energy(g).backward();
  const Tensor d2 = sum(square(unsqueeze(g, 1) - unsqueeze(xi.detach(), 0)), {-1});  // (B, M)
  const Tensor p = softmax(d2 * -0.25, -1);
  const Tensor want = unsqueeze(sum(p, {0}), 1) * xi.detach() - matmul(transpose(p), g);
  EXPECT_TRUE(all_close(xi.grad(), want, 1e-12, 1e-12));
}

TEST(GaussianMemory, DescentLowersTheEnergy) {
  manual_seed(5);  // the memories' draw, whatever ran before in this process
  auto layer = build("type = 'gaussian_memory'\nmemories = 8\nbeta = 2.0\n", 4);
  layer->to(Dtype::f64);
  DescentOptions o;
  o.steps = 100;
  o.step_size = 0.1;
  o.check_descent = true;
  Descent descent(layer, nullptr, o);
  DescentTrace trace;
  const Tensor x0 = make({6, 4}, 31, -2, 2);
  const Tensor x = descent.run(x0, &trace);
  ASSERT_EQ(trace.energies.size(), 101u);
  for (size_t t = 1; t < trace.energies.size(); ++t)
    EXPECT_LE(trace.energies[t], trace.energies[t - 1] + 1e-12) << "step " << t;
  // The tokens settle: the energy's gradient shrinks by at least ten times.
  const double start = max(abs(layer->energy_grad(x0))).item<double>();
  const double end = max(abs(layer->energy_grad(x))).item<double>();
  EXPECT_LT(end, 0.1 * start) << "from " << start << " to " << end;
}

TEST(GaussianMemory, TakesTheHopfieldPlaceInAnEnergyTransformerBlock) {
  Config config = Config::parse(
      "heads = 2\nhead_dim = 4\n[memory]\ntype = 'gaussian_memory'\nmemories = 7\n"
      "learnable_beta = true\n");
  auto block = make_energy_transformer_block(config, 8);
  config.check_all_used();
  EXPECT_EQ(block->memory()->type_name(), "GaussianMemory");
  EXPECT_EQ(block->hopfield(), nullptr);
  std::vector<std::string> names;
  for (const auto& [name, _] : block->named_parameters()) names.push_back(name);
  EXPECT_NE(std::find(names.begin(), names.end(), "hn.xi"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "hn.beta"), names.end());

  // Trained through three descent steps: the memories and β receive gradients.
  DescentOptions o;
  o.steps = 3;
  auto descent = energy_transformer_descent(block, o);
  const Tensor x = make({2, 5, 8}, 41, -1, 1, Dtype::f32);
  sum(square(descent->run(x))).backward();
  for (const char* name : {"hn.xi", "hn.beta", "attn.wq"}) {
    const Tensor grad = parameter(*block, name).grad();
    ASSERT_TRUE(grad.defined()) << name;
    EXPECT_GT(max(abs(grad)).item<double>(), 0.0) << name;
  }
}

TEST(GaussianMemory, ErrorsNameTheProblem) {
  EXPECT_TRUE(throws_error([] { build("type = 'gaussian_memory'\nbeta = -1.0\n", 4); },
                           {"[GaussianMemory]", "beta", "-1"}));
  auto layer = build("type = 'gaussian_memory'\n", 4);
  EXPECT_TRUE(throws_error(
      [&] {
        layer->energy(zeros({2, 3}));
      },
      {"[GaussianMemory]", "(..., 4)", "(2, 3)"}));
  Config config;
  build("type = 'gaussian_memory'\nbetta = 1.0\n", 4, &config);
  EXPECT_TRUE(throws_error([&] { config.check_all_used(); }, {"betta", "beta"}));
  Config mixed = Config::parse("memories = 4\n[memory]\ntype = 'gaussian_memory'\n");
  EXPECT_TRUE(
      throws_error([&] { make_energy_transformer_block(mixed, 8); }, {"memories", "[memory]"}));
}

}  // namespace
}  // namespace basin::energy
