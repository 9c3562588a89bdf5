// GaussianMemory: an energy layer in one file, the worked example of docs/energy-layers.md.
//
// M learnable memories ξ_μ ∈ R^D attract each token g_B through a Gaussian kernel:
//
//   E(g) = −(1/β) Σ_B log Σ_μ exp(−β/2 ‖g_B − ξ_μ‖²)
//
// so −dE/dg_B = Σ_μ softmax_μ(−β/2 ‖g_B − ξ_μ‖²) (ξ_μ − g_B) pulls g_B towards a soft average of
// its nearest memories (the energy of "diffusion as associative memory", amtutorial 02). Use it
// in a config as
//
//   [model.block.memory]
//   type = "gaussian_memory"
//   memories = 256
//   beta = 0.5
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"
#include "core/ops.h"
#include "core/random.h"
#include "models/energy/energy.h"

namespace basin::energy {
namespace {

class GaussianMemory : public EnergyModule {
 public:
  GaussianMemory(int64_t dim, int64_t memories, double beta, bool learnable_beta, double init_std)
      : EnergyModule("GaussianMemory") {
    check(dim > 0 && memories > 0, "[GaussianMemory] dim and memories must be positive, got {}, {}",
          dim, memories);
    check(beta > 0 && std::isfinite(beta), "[GaussianMemory] beta must be positive, got {}", beta);
    xi = register_parameter("xi", normal({memories, dim}, 0.0, init_std));
    const Tensor b = scalar(beta);
    beta_ = learnable_beta ? register_parameter("beta", b) : register_buffer("beta", b);
  }

  // The energy is all a layer must state: dE/dg and its derivatives come from autograd.
  Tensor energy(const Tensor& g) override {
    check(g.ndim() >= 1 && g.shape(-1) == xi.shape(1),
          "[GaussianMemory] expected tokens of shape (..., {}), got {}", xi.shape(1),
          shape_str(g.shape()));
    // ‖g − ξ‖² = ‖g‖² − 2 g·ξ + ‖ξ‖², with one matmul instead of a (..., M, D) difference.
    const Tensor d2 = sum(square(g), {-1}, true) - matmul(g, transpose(xi)) * 2.0 +
                      sum(square(xi), {-1});  // (..., M)
    return sum(logsumexp(d2 * beta_ * -0.5, {-1})) * -1.0 / beta_;
  }

  Tensor xi;  // (M, D)

 protected:
  std::string extra_repr() const override {
    return fmt::format("dim={}, memories={}, beta={}", xi.shape(1), xi.shape(0),
                       beta_.item<double>());
  }

 private:
  Tensor beta_;
};

BASIN_REGISTER_ENERGY("gaussian_memory",
                      "Gaussian-kernel memory: memories (4 * dim), beta (1.0), learnable_beta "
                      "(false), init_std (1.0)",
                      [](const EnergyContext& context) -> std::shared_ptr<EnergyModule> {
                        Config config = context.config;
                        return std::make_shared<GaussianMemory>(
                            context.dim, config.get<int64_t>("memories", 4 * context.dim),
                            config.get<double>("beta", 1.0),
                            config.get<bool>("learnable_beta", false),
                            config.get<double>("init_std", 1.0));
                      });

}  // namespace
}  // namespace basin::energy
