// Optimizer base: parameter checks, the step loop under NoGradGuard, and named state round trips.
#include "models/optim/optimizer.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>

#include "core/error.h"
#include "core/grad_mode.h"
#include "core/ops.h"

namespace basin::optim {

Optimizer::Optimizer(Tensors params, double lr, std::string name)
    : params_(std::move(params)), lr_(lr), name_(std::move(name)) {
  if (params_.empty()) fail("[{}] got an empty parameter list", name_);
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    if (!p.defined()) fail("[{}] parameter {} is undefined", name_, i);
    if (!is_floating(p.dtype())) {
      fail("[{}] parameter {} has dtype {}; only floating parameters can be optimized", name_, i,
           dtype_name(p.dtype()));
    }
    if (!p.requires_grad() || p.op()) {
      fail("[{}] parameter {} must be a leaf with requires_grad set", name_, i);
    }
  }
  set_lr(lr);
  buffers_.resize(params_.size());
  steps_.assign(params_.size(), 0);
}

void Optimizer::set_lr(double lr) {
  if (!(lr >= 0.0) || !std::isfinite(lr)) fail("[{}] invalid learning rate {}", name_, lr);
  lr_ = lr;
}

void Optimizer::step() {
  // The update itself must never become part of a graph: it runs between backward passes.
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    ++steps_[i];
    update(i, p, g.detach());
  }
}

void Optimizer::zero_grad() {
  for (const Tensor& p : params_) p.zero_grad();
}

Tensor Optimizer::buffer(size_t index, const std::string& key) const {
  const auto& m = buffers_[index];
  auto it = m.find(key);
  return it == m.end() ? Tensor() : it->second;
}

void Optimizer::set_buffer(size_t index, const std::string& key, const Tensor& value) {
  buffers_[index][key] = value;
}

StateDict Optimizer::state() const {
  StateDict out;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (steps_[i] == 0) continue;
    out[fmt::format("{}.step", i)] = scalar(static_cast<double>(steps_[i]), Dtype::i64);
    for (const auto& [key, t] : buffers_[i]) out[fmt::format("{}.{}", i, key)] = t.clone();
  }
  return out;
}

void Optimizer::load_state(const StateDict& state) {
  std::vector<std::map<std::string, Tensor>> buffers(params_.size());
  std::vector<int64_t> steps(params_.size(), 0);
  const std::vector<std::string> keys = state_keys();
  for (const auto& [name, t] : state) {
    const size_t dot = name.find('.');
    size_t index = 0;
    const char* end = name.data() + (dot == std::string::npos ? name.size() : dot);
    const auto [ptr, ec] = std::from_chars(name.data(), end, index);
    if (dot == std::string::npos || ec != std::errc() || ptr != end || index >= params_.size()) {
      fail("[{}] state name '{}' does not name one of the {} parameters", name_, name,
           params_.size());
    }
    const std::string key = name.substr(dot + 1);
    if (!t.defined()) fail("[{}] state '{}' is undefined", name_, name);
    if (key == "step") {
      if (t.numel() != 1) fail("[{}] state '{}' must be a scalar", name_, name);
      const double s = t.item<double>();
      if (!(s >= 0.0) || s != std::floor(s))
        fail("[{}] state '{}' has a bad step count {}", name_, name, s);
      steps[index] = static_cast<int64_t>(s);
      continue;
    }
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
      fail("[{}] unknown state key '{}' in '{}'", name_, key, name);
    }
    const Tensor& p = params_[index];
    if (t.shape() != p.shape()) {
      fail("[{}] state '{}' has shape {}, its parameter {}", name_, name, shape_str(t.shape()),
           shape_str(p.shape()));
    }
    // A fresh buffer on the parameter's device and dtype, so later in-place updates never touch
    // the caller's tensors.
    Tensor copy = zeros(p.shape(), p.dtype(), p.device());
    copy.assign(t.to(p.device()));
    buffers[index][key] = copy;
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!buffers[i].empty() && steps[i] == 0) {
      fail("[{}] state for parameter {} has buffers but no '{}.step'", name_, i, i);
    }
  }
  buffers_ = std::move(buffers);
  steps_ = std::move(steps);
}

}  // namespace basin::optim
