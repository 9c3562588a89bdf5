// Function transforms (grad, value_and_grad, vjp) and the reverse pass behind them and behind
// Tensor::backward. Gradients of gradients work to any order: the reverse pass is recorded
// whenever something outside the transform may still differentiate its result.
#pragma once

#include <functional>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace basin {

using Argnums = std::vector<int>;
/// A function of several tensors returning several tensors.
using Fn = std::function<Tensors(const Tensors&)>;
/// A function of several tensors returning one scalar (one-element) tensor.
using ScalarFn = std::function<Tensor(const Tensors&)>;

/// Outputs of f at `primals`, and the cotangents of the primals in `argnums` (all when empty)
/// given the outputs' `cotangents`.
std::pair<Tensors, Tensors> vjp(const Fn& f, const Tensors& primals, const Tensors& cotangents,
                                const Argnums& argnums = {});

/// A function computing (f(x), df/dx[argnums]); f must return a one-element floating tensor.
std::function<std::pair<Tensor, Tensors>(const Tensors&)> value_and_grad(ScalarFn f,
                                                                         Argnums argnums = {0});
/// A function computing df/dx[argnums].
std::function<Tensors(const Tensors&)> grad(ScalarFn f, Argnums argnums = {0});
/// Single-argument form: grad([](const Tensor& x) { return sum(exp(x)); })(x).
std::function<Tensor(const Tensor&)> grad(std::function<Tensor(const Tensor&)> f);

/// d(outputs)/d(wrt) contracted with `cotangents`, by one reverse pass over the recorded graph.
/// With create_graph the pass is recorded, so its results can be differentiated again. Inputs
/// that do not influence the outputs get zeros.
Tensors gradients(const Tensors& outputs, const Tensors& cotangents, const Tensors& wrt,
                  bool create_graph = false);

/// The same buffer with no history: gradients do not flow through it.
Tensor stop_gradient(const Tensor& x);

}  // namespace basin
