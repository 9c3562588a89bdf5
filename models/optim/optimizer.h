// Optimizer: the base of the first-order optimizers (SGD, Adam, AdamW): parameters, learning rate,
// per-parameter state exposed as named tensors for checkpoints.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace basin::optim {

/// State tensors by name, "<parameter index>.<key>" (e.g. "0.exp_avg", "3.step").
using StateDict = std::map<std::string, Tensor>;

/// Updates a fixed list of parameters in place from their accumulated gradients.
/// Parameters are leaves with requires_grad and a floating dtype; those without a gradient at
/// step() time are skipped (their state and step count are left untouched), as in PyTorch.
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// One update of every parameter that has a gradient, in place and unrecorded.
  void step();
  /// Drops every parameter's gradient (the next backward() starts from nothing).
  void zero_grad();

  /// The learning rate the next step() uses.
  double lr() const { return lr_; }
  /// Sets the learning rate (schedules call this before each step); must be >= 0.
  void set_lr(double lr);
  /// The parameters, in the order given at construction (the indices of the state names).
  const Tensors& params() const { return params_; }
  /// The optimizer's name as used in error messages ("SGD", "Adam", "AdamW").
  const std::string& name() const { return name_; }

  /// Every state tensor by name: "<i>.<key>" for the buffers of parameter i and "<i>.step"
  /// (an i64 scalar) for its step count. Only parameters updated at least once appear.
  /// The tensors are copies: saving them does not alias the live state.
  StateDict state() const;
  /// Replaces the state with `state` (as returned by state()): names must refer to existing
  /// parameters and keys this optimizer knows, buffers must have their parameter's shape. The
  /// tensors are copied to the parameter's dtype and device.
  void load_state(const StateDict& state);

 protected:
  /// Checks the parameters (non-empty list of floating leaves with requires_grad) and lr.
  Optimizer(Tensors params, double lr, std::string name);

  /// Updates parameter `index` from `grad`; called by step() under NoGradGuard with the step
  /// count of that parameter already incremented (1 on its first update).
  virtual void update(size_t index, const Tensor& param, const Tensor& grad) = 0;
  /// The buffer keys this optimizer may hold per parameter (checked by load_state).
  virtual std::vector<std::string> state_keys() const = 0;

  /// Buffer `key` of parameter `index`; undefined until set.
  Tensor buffer(size_t index, const std::string& key) const;
  /// Stores buffer `key` of parameter `index` (the optimizer owns it and updates it in place).
  void set_buffer(size_t index, const std::string& key, const Tensor& value);
  /// The number of updates parameter `index` has had, counting the current one.
  int64_t step_count(size_t index) const { return steps_[index]; }

 private:
  Tensors params_;
  double lr_;
  std::string name_;
  std::vector<std::map<std::string, Tensor>> buffers_;
  std::vector<int64_t> steps_;
};

}  // namespace basin::optim
