// Module: registration, recursive traversal under dotted names, device moves in place, state
// dicts and the tree print.
#include "models/nn/module.h"

#include <ostream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/grad_mode.h"
#include "core/ops.h"

namespace basin::nn {
namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

/// Indents every line after the first by two spaces (PyTorch's _addindent).
std::string indent(const std::string& text) {
  std::string out;
  for (char c : text) {
    out += c;
    if (c == '\n') out += "  ";
  }
  return out;
}

/// Rebinds `t`'s node to a copy of its values on `device`, so every handle sees the move.
void move_in_place(const Tensor& t, Device device) {
  if (t.device() == device) return;
  const Tensor moved = t.detach().to(device);  // contiguous, its own buffer
  TensorImpl& node = *t.impl();
  node.storage = moved.storage();
  node.strides = moved.strides();
  node.offset = moved.offset();
  node.device = device;
  node.grad = nullptr;
}

/// Rebinds a floating `t`'s node to a copy of its values in `dtype`; other dtypes (indices,
/// masks) are left as they are.
void cast_in_place(const Tensor& t, Dtype dtype) {
  if (t.dtype() == dtype || !is_floating(t.dtype())) return;
  const Tensor cast = t.detach().astype(dtype).contiguous();
  TensorImpl& node = *t.impl();
  node.storage = cast.storage();
  node.strides = cast.strides();
  node.offset = cast.offset();
  node.dtype = dtype;
  node.grad = nullptr;
}

/// The tensors `visit` reports, each once (under its first name).
template <class Visit>
NamedTensors unique_tensors(Visit&& visit) {
  NamedTensors out;
  std::set<const TensorImpl*> seen;
  visit([&](const std::string& name, const Tensor& t) {
    if (seen.insert(t.impl()).second) out.emplace_back(name, t);
  });
  return out;
}

}  // namespace

Module::Module(std::string type_name) : type_name_(std::move(type_name)) {}

Module::~Module() = default;

Tensor Module::forward(const Tensor&) { fail("[{}] has no single-input forward", type_name_); }

void Module::check_new_name(const std::string& name, const char* what) const {
  if (name.empty()) fail("[{}] {}: the name is empty", what, type_name_);
  if (name.find('.') != std::string::npos) {
    fail("[{}] {}: name '{}' contains '.'", what, type_name_, name);
  }
  auto taken = [&](const auto& list) {
    for (const auto& [n, _] : list) {
      if (n == name) return true;
    }
    return false;
  };
  if (taken(params_) || taken(buffers_) || taken(children_)) {
    fail("[{}] {} already has a parameter, buffer or child named '{}'", what, type_name_, name);
  }
}

Tensor Module::register_parameter(const std::string& name, const Tensor& value) {
  check_new_name(name, "register_parameter");
  if (!value.defined()) fail("[register_parameter] {}: '{}' is undefined", type_name_, name);
  if (!is_floating(value.dtype())) {
    fail("[register_parameter] {}: '{}' has dtype {}; parameters must be floating", type_name_,
         name, dtype_name(value.dtype()));
  }
  Tensor p = value.detach();
  p.set_requires_grad(true);
  params_.emplace_back(name, p);
  return p;
}

Tensor Module::register_buffer(const std::string& name, const Tensor& value) {
  check_new_name(name, "register_buffer");
  if (!value.defined()) fail("[register_buffer] {}: '{}' is undefined", type_name_, name);
  Tensor b = value.detach();
  buffers_.emplace_back(name, b);
  return b;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name, "register_module");
  if (!module) fail("[register_module] {}: child '{}' is null", type_name_, name);
  // A cycle would make every traversal recurse forever: refuse a child that contains this module.
  std::vector<const Module*> stack{module.get()};
  while (!stack.empty()) {
    const Module* m = stack.back();
    stack.pop_back();
    if (m == this) {
      fail("[register_module] {}: child '{}' contains this module (a cycle)", type_name_, name);
    }
    for (const auto& [_, c] : m->children_) stack.push_back(c.get());
  }
  children_.emplace_back(name, std::move(module));
}

template <class F>
void Module::visit_tensors(bool buffers, const std::string& prefix, F&& f) const {
  for (const auto& [name, t] : buffers ? buffers_ : params_) f(prefix + name, t);
  for (const auto& [name, child] : children_) child->visit_tensors(buffers, prefix + name + ".", f);
}

NamedTensors Module::named_parameters() const {
  return unique_tensors([&](auto&& f) { visit_tensors(false, "", f); });
}

Tensors Module::parameters() const {
  Tensors out;
  for (auto& [_, t] : named_parameters()) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers() const {
  return unique_tensors([&](auto&& f) { visit_tensors(true, "", f); });
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& [_, t] : named_parameters()) n += t.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [_, child] : children_) child->train(on);
}

void Module::to(Device device) {
  NoGradGuard no_grad;
  for (const auto& [_, t] : named_parameters()) move_in_place(t, device);
  for (const auto& [_, t] : named_buffers()) move_in_place(t, device);
}

void Module::to(Dtype dtype) {
  check(is_floating(dtype), "[{}] to(): parameters can be cast to a floating dtype, not {}",
        type_name_, dtype_name(dtype));
  NoGradGuard no_grad;
  for (const auto& [_, t] : named_parameters()) cast_in_place(t, dtype);
  for (const auto& [_, t] : named_buffers()) cast_in_place(t, dtype);
}

void Module::zero_grad() {
  for (const auto& [_, t] : named_parameters()) t.zero_grad();
}

StateDict Module::state_dict() const {
  NoGradGuard no_grad;
  StateDict out;
  auto save = [&](const std::string& name, const Tensor& t) {
    const Tensor d = t.detach();
    out[name] = d.device().is_cpu() ? d.clone() : d.to(Device::cpu());
  };
  visit_tensors(false, "", save);
  visit_tensors(true, "", save);
  return out;
}

void Module::load_state_dict(const StateDict& state, bool strict) {
  StateDict targets;
  auto collect = [&](const std::string& name, const Tensor& t) { targets[name] = t; };
  visit_tensors(false, "", collect);
  visit_tensors(true, "", collect);

  if (strict) {
    std::vector<std::string> missing, unexpected;
    for (const auto& [name, _] : targets) {
      if (!state.contains(name)) missing.push_back(name);
    }
    for (const auto& [name, _] : state) {
      if (!targets.contains(name)) unexpected.push_back(name);
    }
    if (!missing.empty() || !unexpected.empty()) {
      std::string msg = "[load_state_dict]";
      if (!missing.empty()) msg += " missing keys: " + join(missing);
      if (!missing.empty() && !unexpected.empty()) msg += ";";
      if (!unexpected.empty()) msg += " unexpected keys: " + join(unexpected);
      throw Error(msg);
    }
  }
  for (const auto& [name, target] : targets) {
    auto it = state.find(name);
    if (it == state.end()) continue;
    const Tensor& src = it->second;
    if (!src.defined()) fail("[load_state_dict] the value for {} is undefined", name);
    if (src.shape() != target.shape()) {
      fail("[load_state_dict] size mismatch for {}: the state has shape {}, the model {}", name,
           shape_str(src.shape()), shape_str(target.shape()));
    }
  }
  NoGradGuard no_grad;
  for (const auto& [name, target] : targets) {
    auto it = state.find(name);
    if (it != state.end()) target.assign(it->second.detach().to(target.device()));
  }
}

std::string Module::repr() const {
  std::vector<std::string> lines;
  const std::string extra = extra_repr();
  if (!extra.empty()) {
    std::istringstream in(extra);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  const size_t extra_lines = lines.size();
  for (const auto& [name, child] : children_) {
    lines.push_back("(" + name + "): " + indent(child->repr()));
  }
  std::string out = type_name_ + "(";
  if (extra_lines == 1 && children_.empty()) {
    out += lines[0];
  } else if (!lines.empty()) {
    out += "\n";
    for (const auto& line : lines) out += "  " + line + "\n";
  }
  return out + ")";
}

std::ostream& operator<<(std::ostream& os, const Module& module) { return os << module.repr(); }

}  // namespace basin::nn
