// Descent: the dynamics of an energy layer. From a state x it repeats
//
//   g = norm(x);   x ← x − α · dE/dg (+ √(2αT) · noise)
//
// for T steps (or until ‖Δx‖₂ ≤ tolerance), with α fixed or learnable, and can record the
// energy and the state at each step. Training differentiates a loss through all T steps: each
// dE/dg is recorded, so the backward pass takes second derivatives of E.
#pragma once

#include <memory>
#include <vector>

#include "core/random.h"
#include "models/energy/energy.h"

namespace basin::energy {

struct DescentOptions {
  int steps = 12;               ///< T, the maximum number of updates
  double step_size = 0.1;       ///< α
  bool learnable_step = false;  ///< α as a trained parameter ("step_size")
  double tolerance = 0.0;       ///< stop once ‖Δx‖₂ ≤ tolerance (0: always T steps)
  double temperature = 0.0;    ///< Langevin noise √(2αT)·N(0, 1) added to each update (0: none)
  bool check_descent = false;  ///< error if the energy rises between steps (debugging)
};

/// What a descent did, when asked to record it.
struct DescentTrace {
  std::vector<double> energies;  ///< E(norm(x_t)) for t = 0..steps_taken (the energy of each state)
  Tensors states;                ///< x_0 .. x_steps_taken, detached
  int steps_taken = 0;
  bool converged = false;  ///< stopped by the tolerance before T steps
};

class Descent : public nn::Module {
 public:
  /// `norm` maps the state to g (an EnergyLayerNorm, a LayerNorm, ...); null means g = x.
  /// Noise is drawn from `gen` (the default generator when null; it must outlive the runner).
  Descent(std::shared_ptr<EnergyModule> energy, std::shared_ptr<nn::Module> norm = nullptr,
          DescentOptions options = {}, Generator* gen = nullptr);

  /// The final state after the descent.
  Tensor forward(const Tensor& x) override { return run(x); }
  /// The final state; fills `trace` (energies and states per step) when given.
  Tensor run(const Tensor& x, DescentTrace* trace = nullptr);

  /// g = norm(x).
  Tensor normalise(const Tensor& x);
  /// α as a tensor: the trained parameter when learnable, else a constant.
  Tensor step_size() const;
  const DescentOptions& options() const { return options_; }
  EnergyModule& energy() { return *energy_; }

 protected:
  std::string extra_repr() const override;

 private:
  std::shared_ptr<EnergyModule> energy_;
  std::shared_ptr<nn::Module> norm_;
  DescentOptions options_;
  Generator* gen_;
  Tensor alpha_;
};

}  // namespace basin::energy
