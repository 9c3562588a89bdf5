// EnergyModule: a layer stated as a scalar energy of its input state, E(g), and nothing else.
// Its update direction dE/dg comes from autograd; a layer may add a closed-form gradient (a
// FusedOp whose fallback is the autograd path), tested equal to it.
//
// Energy layers are registered under a name so that a TOML config can build one:
//
//   BASIN_REGISTER_ENERGY("hopfield_relu", "ReLU² Hopfield energy", [](const EnergyContext& ctx) {
//     return std::make_shared<HopfieldEnergy>(ctx.dim, ...);
//   });
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/config.h"
#include "core/tensor.h"
#include "models/nn/module.h"

namespace basin::energy {

class EnergyModule : public nn::Module {
 public:
  using nn::Module::Module;

  /// E(g): one scalar, the sum over the batch of each sample's energy. Differentiable in g and in
  /// the parameters, to any order.
  virtual Tensor energy(const Tensor& g) = 0;

  /// dE/dg, of g's shape. By default autograd of energy(); the result is recorded (so a loss can
  /// be differentiated through it) whenever the enclosing computation is. Layers with a closed
  /// form override this with a FusedOp whose fallback is that same autograd path.
  virtual Tensor energy_grad(const Tensor& g);

  /// Both at once (the default evaluates energy() once and differentiates it).
  virtual std::pair<Tensor, Tensor> energy_and_grad(const Tensor& g);

  /// Energy layers have no single-input forward of their own: forward(g) is energy(g).
  Tensor forward(const Tensor& g) override { return energy(g); }
};

/// The sum of several energies over the same state: E = Σ_i E_i(g), dE/dg = Σ_i dE_i/dg (each
/// term's own energy_grad, so closed forms are used where terms have them). Children are
/// registered as "terms.0", "terms.1", ...
class SumEnergy : public EnergyModule {
 public:
  explicit SumEnergy(std::vector<std::shared_ptr<EnergyModule>> terms);
  Tensor energy(const Tensor& g) override;
  Tensor energy_grad(const Tensor& g) override;
  std::pair<Tensor, Tensor> energy_and_grad(const Tensor& g) override;
  const std::vector<std::shared_ptr<EnergyModule>>& terms() const { return terms_; }

 private:
  std::vector<std::shared_ptr<EnergyModule>> terms_;
};

// --- registry ----------------------------------------------------------------------------------

/// What an energy factory is given: its config table (a layer reads its own keys; keys nobody
/// reads are reported as unknown) and the token dimension of the state it acts on.
struct EnergyContext {
  Config config;
  int64_t dim = 0;
};

using EnergyFactory = std::function<std::shared_ptr<EnergyModule>(const EnergyContext&)>;

/// Registers an energy layer under `name` (an error if taken).
void register_energy(const std::string& name, const std::string& description,
                     EnergyFactory factory);
/// Builds the layer named by the context config's `type`; an unknown name lists the registered.
std::shared_ptr<EnergyModule> make_energy(const EnergyContext& context);
/// Registered names and descriptions, sorted by name.
std::vector<std::pair<std::string, std::string>> registered_energies();

namespace detail {
struct EnergyRegistration {
  EnergyRegistration(const char* name, const char* description, EnergyFactory factory) {
    register_energy(name, description, std::move(factory));
  }
};
}  // namespace detail

}  // namespace basin::energy

#define BASIN_ENERGY_CONCAT_(a, b) a##b
#define BASIN_ENERGY_CONCAT(a, b) BASIN_ENERGY_CONCAT_(a, b)
/// Registers an energy layer at load time: BASIN_REGISTER_ENERGY("name", "description", factory).
#define BASIN_REGISTER_ENERGY(name, description, ...)                           \
  static const ::basin::energy::detail::EnergyRegistration BASIN_ENERGY_CONCAT( \
      basin_energy_registration_, __LINE__)(name, description, __VA_ARGS__)
