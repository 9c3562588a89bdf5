// The reverse pass: a topological walk of the recorded graph, each op's vjp in reverse order,
// cotangents accumulated with add (recorded like any op when the pass is recorded), and
// broadcasting undone in one place.
#include "autograd/grad.h"

#include <unordered_map>
#include <unordered_set>

#include "core/grad_mode.h"
#include "core/op.h"
#include "core/ops/creation.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"
#include "core/prims/movement.h"

namespace basin {
namespace {

/// The identity as a recorded view: how a transform marks a tracked argument as its own input.
class Identity final : public prims::ViewOp {
 public:
  const char* name() const override { return "Identity"; }
  void make_view(const Tensor& x, Tensor& out) const override {
    out.share_storage(x, x.strides(), x.offset());
  }
  Tensors vjp(const Tensors&, const Tensor&, const Tensor& cot, const std::vector<int>&) override {
    return {cot};
  }
};

enum class Targets { given, leaves };

/// The recorded graph between some outputs and the tensors we differentiate with respect to.
struct Trace {
  std::vector<Tensor> order;                       // post-order: inputs before their users
  std::unordered_map<TensorImpl*, bool> relevant;  // leads to a target
  std::unordered_set<TensorImpl*> targets;
  std::vector<Tensor> leaves;  // the targets found, for Targets::leaves
  bool external = false;       // reaches a tensor requiring a gradient that is not a target

  Trace(const Tensors& outputs, const Tensors& wrt, Targets mode, bool stop_at_targets) {
    for (const Tensor& t : wrt) targets.insert(t.impl());
    struct Frame {
      Tensor t;
      size_t next = 0;
    };
    std::vector<Frame> stack;
    std::unordered_set<TensorImpl*> seen;
    for (const Tensor& root : outputs) {
      if (!seen.insert(root.impl()).second) continue;
      stack.push_back({root});
      while (!stack.empty()) {
        Frame& f = stack.back();
        const bool is_target = targets.count(f.t.impl()) > 0;
        const bool descend = f.t.op() && !(stop_at_targets && is_target);
        if (descend && f.next < f.t.inputs().size()) {
          const Tensor& child = f.t.inputs()[f.next++];
          if (seen.insert(child.impl()).second) stack.push_back({child});
          continue;
        }
        finish(f.t, is_target, descend, mode);
        stack.pop_back();
      }
    }
  }

  void finish(const Tensor& t, bool is_target, bool descended, Targets mode) {
    bool r = is_target;
    if (!t.op()) {
      if (mode == Targets::leaves && t.requires_grad()) {
        r = true;
        targets.insert(t.impl());
        leaves.push_back(t);
      } else if (t.requires_grad() && !is_target) {
        external = true;
      }
    } else if (!descended) {
      external = true;  // a target with history: something upstream may want its gradient
    } else {
      for (const Tensor& in : t.inputs()) r = r || relevant[in.impl()];
    }
    relevant[t.impl()] = r;
    order.push_back(t);
  }

  /// Runs the reverse pass from `outputs` with `cotangents`; returns the cotangent of every target.
  std::unordered_map<TensorImpl*, Tensor> run(const Tensors& outputs, const Tensors& cotangents,
                                              bool stop_at_targets) const {
    std::unordered_map<TensorImpl*, Tensor> cot;
    auto accumulate = [&cot](const Tensor& x, Tensor g) {
      if (g.shape() != x.shape()) g = sum_to(g, x.shape());
      if (g.dtype() != x.dtype()) g = g.astype(x.dtype());
      auto [it, fresh] = cot.try_emplace(x.impl(), g);
      if (!fresh) it->second = it->second + g;
    };
    for (size_t i = 0; i < outputs.size(); ++i) accumulate(outputs[i], cotangents[i]);
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      const Tensor& t = *it;
      if (!t.op() || !relevant.at(t.impl())) continue;
      const bool is_target = targets.count(t.impl()) > 0;
      if (stop_at_targets && is_target) continue;
      auto found = cot.find(t.impl());
      if (found == cot.end()) continue;
      const Tensor g = found->second;
      if (!is_target) cot.erase(found);  // free intermediate cotangents as soon as they are used
      std::vector<int> argnums;
      for (size_t k = 0; k < t.inputs().size(); ++k) {
        const Tensor& in = t.inputs()[k];
        if (is_floating(in.dtype()) && relevant.at(in.impl()))
          argnums.push_back(static_cast<int>(k));
      }
      if (argnums.empty()) continue;
      const Tensors vjps = t.op()->vjp(t.inputs(), t, g, argnums);
      if (vjps.size() != argnums.size()) {
        fail("[grad] {} returned {} cotangents for {} inputs", t.op()->name(), vjps.size(),
             argnums.size());
      }
      for (size_t k = 0; k < argnums.size(); ++k) accumulate(t.inputs()[argnums[k]], vjps[k]);
    }
    return cot;
  }
};

void check_cotangents(const Tensors& outputs, const Tensors& cotangents, const char* who) {
  if (outputs.size() != cotangents.size()) {
    fail("[{}] {} outputs but {} cotangents", who, outputs.size(), cotangents.size());
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (!outputs[i].defined()) fail("[{}] output {} is undefined", who, i);
    if (!is_floating(outputs[i].dtype())) {
      fail("[{}] output {} has dtype {}; only floating outputs can be differentiated", who, i,
           dtype_name(outputs[i].dtype()));
    }
    if (cotangents[i].shape() != outputs[i].shape()) {
      fail("[{}] cotangent {} has shape {} but the output has shape {}", who, i,
           shape_str(cotangents[i].shape()), shape_str(outputs[i].shape()));
    }
  }
}

/// The argument a transform differentiates with respect to: a fresh leaf, or — when x is itself
/// tracked by an enclosing transform — a recorded identity of x, so the outer pass flows through.
Tensor track(const Tensor& x, size_t index, const char* who) {
  if (!x.defined()) fail("[{}] argument {} is undefined", who, index);
  if (!is_floating(x.dtype())) {
    fail("[{}] argument {} has dtype {}; only floating arguments can be differentiated", who, index,
         dtype_name(x.dtype()));
  }
  if (x.requires_grad()) return apply(std::make_shared<Identity>(), {x}, x.shape(), x.dtype());
  Tensor leaf = x.detach();
  leaf.set_requires_grad(true);
  return leaf;
}

}  // namespace

namespace {

/// The transforms' common core: runs f on tracked arguments, then the reverse pass with the
/// cotangents that `seed` makes from the outputs.
std::pair<Tensors, Tensors> transform(const Fn& f, const Tensors& primals,
                                      const std::function<Tensors(const Tensors&)>& seed,
                                      const Argnums& argnums, const char* who) {
  const bool outer = is_grad_enabled();
  Argnums which = argnums;
  if (which.empty()) {
    for (size_t i = 0; i < primals.size(); ++i) {
      if (primals[i].defined() && is_floating(primals[i].dtype()))
        which.push_back(static_cast<int>(i));
    }
  }
  Tensors args = primals;
  Tensors wrt;
  Tensors outputs;
  {
    GradModeGuard record(true);
    for (int i : which) {
      if (i < 0 || i >= static_cast<int>(primals.size())) {
        fail("[{}] argnum {} is out of range for {} arguments", who, i, primals.size());
      }
      args[i] = track(primals[i], static_cast<size_t>(i), who);
      wrt.push_back(args[i]);
    }
    outputs = f(args);
  }
  const Tensors cotangents = seed(outputs);
  check_cotangents(outputs, cotangents, who);
  const Trace trace(outputs, wrt, Targets::given, /*stop_at_targets=*/true);
  // Record the reverse pass only when something outside this transform may differentiate it.
  const bool create_graph = outer && trace.external;
  Tensors grads;
  {
    GradModeGuard record(create_graph);
    auto cot = trace.run(outputs, cotangents, /*stop_at_targets=*/true);
    for (const Tensor& w : wrt) {
      auto it = cot.find(w.impl());
      grads.push_back(it == cot.end() ? zeros_like(w) : it->second);
    }
  }
  if (!create_graph) {
    for (Tensor& o : outputs) o = o.detach();
  }
  return {outputs, grads};
}

}  // namespace

std::pair<Tensors, Tensors> vjp(const Fn& f, const Tensors& primals, const Tensors& cotangents,
                                const Argnums& argnums) {
  return transform(
      f, primals, [&cotangents](const Tensors&) { return cotangents; }, argnums, "vjp");
}

std::function<std::pair<Tensor, Tensors>(const Tensors&)> value_and_grad(ScalarFn f,
                                                                         Argnums argnums) {
  return [f = std::move(f), argnums = std::move(argnums)](const Tensors& primals) {
    const Fn wrapped = [&f](const Tensors& args) {
      Tensor value = f(args);
      if (!value.defined() || value.numel() != 1 || !is_floating(value.dtype())) {
        fail("[value_and_grad] the function must return a one-element floating tensor, got {}",
             value.defined() ? shape_str(value.shape()) + " " + dtype_name(value.dtype())
                             : "nothing");
      }
      return Tensors{value};
    };
    auto [outputs, grads] = transform(
        wrapped, primals, [](const Tensors& out) { return Tensors{ones_like(out[0])}; }, argnums,
        "value_and_grad");
    return std::make_pair(outputs[0], grads);
  };
}

std::function<Tensors(const Tensors&)> grad(ScalarFn f, Argnums argnums) {
  auto vg = value_and_grad(std::move(f), std::move(argnums));
  return [vg](const Tensors& primals) { return vg(primals).second; };
}

std::function<Tensor(const Tensor&)> grad(std::function<Tensor(const Tensor&)> f) {
  auto g = grad([f = std::move(f)](const Tensors& x) { return f(x[0]); }, Argnums{0});
  return [g](const Tensor& x) { return g({x})[0]; };
}

Tensors gradients(const Tensors& outputs, const Tensors& cotangents, const Tensors& wrt,
                  bool create_graph) {
  check_cotangents(outputs, cotangents, "gradients");
  const Trace trace(outputs, wrt, Targets::given, /*stop_at_targets=*/false);
  GradModeGuard record(create_graph);
  auto cot = trace.run(outputs, cotangents, /*stop_at_targets=*/false);
  Tensors grads;
  for (const Tensor& w : wrt) {
    auto it = cot.find(w.impl());
    grads.push_back(it == cot.end() ? zeros_like(w) : it->second);
  }
  return grads;
}

Tensor stop_gradient(const Tensor& x) { return x.detach(); }

void Tensor::backward(const Tensor& cotangent, bool create_graph) const {
  if (!defined()) fail("[backward] called on an undefined tensor");
  if (!requires_grad()) {
    fail("[backward] this tensor does not depend on any tensor that requires a gradient");
  }
  Tensor seed = cotangent;
  if (!seed.defined()) {
    if (numel() != 1) {
      fail(
          "[backward] a tensor of shape {} needs a cotangent; only one-element tensors have an "
          "implicit one",
          shape_str(shape()));
    }
    seed = ones_like(*this);
  }
  check_cotangents({*this}, {seed}, "backward");
  const Trace trace({*this}, {}, Targets::leaves, /*stop_at_targets=*/false);
  GradModeGuard record(create_graph);
  auto cot = trace.run({*this}, {seed}, /*stop_at_targets=*/false);
  for (const Tensor& leaf : trace.leaves) {
    auto it = cot.find(leaf.impl());
    if (it == cot.end()) continue;
    Tensor g = it->second;
    const Tensor previous = leaf.grad();
    if (previous.defined()) {
      g = previous + g;
    } else if (g.storage().use_count() > 1 || !g.is_contiguous()) {
      g = g.clone();  // each leaf owns its gradient, so in-place updates never touch another's
    }
    leaf.set_grad(g);
  }
}

}  // namespace basin
