#include "models/energy/energy.h"

#include "autograd/grad.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/registry.h"

namespace basin::energy {

Tensor EnergyModule::energy_grad(const Tensor& g) {
  return grad([this](const Tensor& s) { return energy(s); })(g);
}

std::pair<Tensor, Tensor> EnergyModule::energy_and_grad(const Tensor& g) {
  auto [value, grads] = value_and_grad([this](const Tensors& s) { return energy(s[0]); })({g});
  return {value, grads[0]};
}

SumEnergy::SumEnergy(std::vector<std::shared_ptr<EnergyModule>> terms)
    : EnergyModule("SumEnergy"), terms_(std::move(terms)) {
  check(!terms_.empty(), "[SumEnergy] needs at least one term");
  for (size_t i = 0; i < terms_.size(); ++i) {
    check(terms_[i] != nullptr, "[SumEnergy] term {} is null", i);
    register_module("terms_" + std::to_string(i), terms_[i]);
  }
}

Tensor SumEnergy::energy(const Tensor& g) {
  Tensor total = terms_[0]->energy(g);
  for (size_t i = 1; i < terms_.size(); ++i) total = add(total, terms_[i]->energy(g));
  return total;
}

Tensor SumEnergy::energy_grad(const Tensor& g) {
  Tensor total = terms_[0]->energy_grad(g);
  for (size_t i = 1; i < terms_.size(); ++i) total = add(total, terms_[i]->energy_grad(g));
  return total;
}

std::pair<Tensor, Tensor> SumEnergy::energy_and_grad(const Tensor& g) {
  auto [e, d] = terms_[0]->energy_and_grad(g);
  for (size_t i = 1; i < terms_.size(); ++i) {
    auto [ei, di] = terms_[i]->energy_and_grad(g);
    e = add(e, ei);
    d = add(d, di);
  }
  return {e, d};
}

// --- registry ----------------------------------------------------------------------------------

namespace {

Registry<EnergyFactory>& registry() {
  static Registry<EnergyFactory> layers("register_energy");
  return layers;
}

}  // namespace

void register_energy(const std::string& name, const std::string& description,
                     EnergyFactory factory) {
  registry().add(name, description, std::move(factory));
}

std::vector<std::pair<std::string, std::string>> registered_energies() {
  return registry().entries();
}

std::shared_ptr<EnergyModule> make_energy(const EnergyContext& context) {
  Config config = context.config;
  check(config.has("type"), "[config] missing key {}.type (the energy layer; one of {})",
        config.prefix(), registry().names());
  const std::string type = config.get<std::string>("type");
  const EnergyFactory factory = registry().find(type);
  check(static_cast<bool>(factory), "[config] {}.type: unknown energy layer '{}' (registered: {})",
        config.prefix(), type, registry().names());
  check(context.dim > 0, "[make_energy] '{}': the state dimension must be positive, got {}", type,
        context.dim);
  std::shared_ptr<EnergyModule> layer = factory(context);
  check(layer != nullptr, "[make_energy] the factory of '{}' returned nothing", type);
  return layer;
}

}  // namespace basin::energy
