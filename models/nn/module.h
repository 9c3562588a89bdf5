// Module: the base of every layer and model. It stores parameters, buffers and child modules
// under PyTorch-style dotted names, and moves, saves and loads them; the maths lives in forward().
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/io/safetensors.h"
#include "core/tensor.h"

namespace basin::nn {

/// Parameters and buffers by dotted name ("layers.0.weight"), as saved in checkpoints.
using StateDict = std::map<std::string, Tensor>;
/// Named tensors in a meaningful order (registration order); the type safetensors writes.
using NamedTensors = io::NamedTensors;

/// A layer or model: parameters (leaves that require a gradient), buffers (saved state that is
/// not trained) and child modules, each registered under a name. Names compose as in PyTorch, so
/// a checkpoint's keys ("layers.0.weight") match what torch.nn gives for the same structure.
/// Modules are held by shared_ptr and are neither copyable nor movable: handles to their
/// parameters stay valid for the module's life.
class Module {
 public:
  /// `type_name` ("Linear", "MLP", ...) is used by repr() and in error messages.
  explicit Module(std::string type_name);
  virtual ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  Module(Module&&) = delete;
  Module& operator=(Module&&) = delete;

  const std::string& type_name() const { return type_name_; }

  /// Single-input forward for modules that have one (Sequential uses it); the default throws
  /// "[<type>] has no single-input forward".
  virtual Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }

  /// Every parameter with its dotted name, own parameters first (in registration order), then
  /// each child's in registration order, recursively. A tensor reachable under two names (a
  /// shared child) is listed once, under its first name, as in PyTorch.
  NamedTensors named_parameters() const;
  /// The tensors of named_parameters(), in the same order (what an optimizer takes).
  Tensors parameters() const;
  /// Every buffer with its dotted name, ordered and de-duplicated as named_parameters().
  NamedTensors named_buffers() const;
  /// The direct children in registration order.
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const {
    return children_;
  }
  /// The total number of parameter elements.
  int64_t num_parameters() const;

  /// Sets training mode (what Dropout consults) on this module and every descendant.
  void train(bool on = true);
  /// train(false).
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Moves every parameter and buffer to `device` in place: handles held elsewhere (the
  /// module's own members, an optimizer built later) see the move, as with PyTorch's set_data.
  /// Gradients of moved tensors are dropped; tensors already on `device` are left untouched.
  /// Each moved tensor gets its own buffer (tensors that shared one no longer do).
  void to(Device device);
  /// Casts every floating parameter and buffer to `dtype` in place (as PyTorch's
  /// module.to(torch.float64)), with the same handle semantics as to(Device); integer and
  /// boolean buffers are left as they are.
  void to(Dtype dtype);
  /// Drops the gradient of every parameter.
  void zero_grad();

  /// Parameters and buffers by dotted name, as contiguous CPU copies detached from the graph
  /// (safe to save, and unaffected by later training). Unlike named_parameters(), a shared
  /// tensor appears under each of its names, as in PyTorch.
  StateDict state_dict() const;
  /// Copies values from `state` into the parameters and buffers in place, unrecorded (handles
  /// stay valid). With `strict` every name must be present and no other name may appear; in any
  /// mode shapes must match exactly, while dtypes are cast and devices moved to the module's.
  /// Every check runs before anything is written, so a failed load changes nothing. Errors name
  /// the key and both shapes, or list the missing and unexpected keys, e.g.
  /// "[load_state_dict] missing keys: fc.bias; unexpected keys: fc.bais".
  void load_state_dict(const StateDict& state, bool strict = true);

  /// PyTorch-like tree print: "MLP(\n  (layers): Sequential(\n    (0): Linear(in_features=4,
  /// out_features=8, bias=true)\n ...". A module without children prints on one line.
  std::string repr() const;

 protected:
  /// Registers a leaf parameter under `name` (detached from any graph, requires_grad set, sharing
  /// `value`'s buffer) and returns its handle, to store in a member. `value` must be a defined
  /// floating tensor. Names are non-empty, contain no '.', and are unique among this module's
  /// parameters, buffers and children.
  Tensor register_parameter(const std::string& name, const Tensor& value);
  /// Registers a buffer: saved in state_dict() and moved by to(), but not a parameter. Any dtype.
  Tensor register_buffer(const std::string& name, const Tensor& value);
  /// Registers a child module and returns it. A module cannot contain itself.
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }
  /// The text between the parentheses of repr() (e.g. "in_features=4, out_features=8").
  virtual std::string extra_repr() const { return ""; }

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void check_new_name(const std::string& name, const char* what) const;
  /// Visits every (dotted name, tensor) of parameters (or buffers), without de-duplication.
  template <class F>
  void visit_tensors(bool buffers, const std::string& prefix, F&& f) const;

  std::string type_name_;
  bool training_ = true;
  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

/// Writes module.repr().
std::ostream& operator<<(std::ostream& os, const Module& module);

}  // namespace basin::nn
