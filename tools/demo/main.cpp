// basin-demo: stores random patterns in a modern Hopfield memory, retrieves one from a corrupted
// cue by descending the energy with autograd, and trains the inverse temperature beta so that
// retrieval improves — a gradient taken through the whole descent (gradients of gradients).
#include <cmath>
#include <cstdio>

#include "basin/basin.h"

namespace {
using namespace basin;

// E(x) = -1/beta * log sum_mu exp(beta <xi_mu, x>) + 1/2 |x|^2   (Ramsauer et al., 2021)
Tensor hopfield_energy(const Tensor& memories, const Tensor& x, const Tensor& beta) {
  const Tensor overlaps = sum(memories * x, {1});  // (M,)
  return -log(sum(exp(beta * overlaps))) / beta + 0.5 * sum(x * x);
}

Tensor descend(const Tensor& memories, Tensor x, const Tensor& beta, int steps, double alpha) {
  auto dE = grad([&](const Tensors& in) { return hopfield_energy(memories, in[0], beta); });
  for (int t = 0; t < steps; ++t) x = x - alpha * dE({x})[0];
  return x;
}

}  // namespace

int main() {
  const int n_memories = 16, dim = 64, steps = 8;
  const double alpha = 0.5, lr = 0.5;
  Generator gen(0);
  const Tensor memories = normal({n_memories, dim}, 0.0, 3.0 / std::sqrt(double(dim)), Dtype::f32,
                                 Device::cpu(), &gen);               // (M, D)
  const Tensor pick = reshape(eye(n_memories, 1), {n_memories, 1});  // selects memory 0
  const Tensor stored = sum(memories * pick, {0});                   // (D,)
  // The cue keeps half of the stored pattern and replaces the rest with noise.
  const Tensor keep = bernoulli({dim}, 0.5, Device::cpu(), &gen);
  const Tensor cue = where(keep, stored, normal({dim}, 0.0, 0.4, Dtype::f32, Device::cpu(), &gen));

  std::printf(
      "basin demo: retrieval from a modern Hopfield memory (%d patterns, dim %d, %d steps)\n",
      n_memories, dim, steps);
  Tensor beta = scalar(0.5);
  for (int epoch = 0; epoch <= 20; ++epoch) {
    auto [loss, g] = value_and_grad([&](const Tensors& in) {
      return mean(square(descend(memories, cue, in[0], steps, alpha) - stored));
    })({beta});
    if (epoch % 4 == 0) {
      const Tensor out = descend(memories, cue, beta, steps, alpha);
      std::printf("  epoch %2d  beta %.3f  retrieval error %.5f  energy %.3f -> %.3f\n", epoch,
                  beta.item<double>(), loss.item<double>(),
                  hopfield_energy(memories, cue, beta).item<double>(),
                  hopfield_energy(memories, out, beta).item<double>());
    }
    beta = beta - lr * g[0];
  }
  return 0;
}
