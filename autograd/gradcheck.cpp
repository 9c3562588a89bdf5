// Finite-difference gradient checks.
#include "autograd/gradcheck.h"

#include <cmath>

#include "core/grad_mode.h"
#include "core/ops/creation.h"

namespace basin {
namespace {

// splitmix64: a tiny deterministic source of probe values in [-1, 1).
struct Probe {
  uint64_t state;
  double next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-52 - 1.0;
  }
};

Tensor random_like(const Tensor& t, Probe& probe) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (double& x : v) x = probe.next();
  return from_vector(v, t.shape()).to(t.device());
}

double contract(const Tensors& outputs, const Tensors& cotangents) {
  double s = 0;
  for (size_t k = 0; k < outputs.size(); ++k) {
    const auto o = outputs[k].to_vector<double>();
    const auto v = cotangents[k].to_vector<double>();
    for (size_t i = 0; i < o.size(); ++i) s += o[i] * v[i];
  }
  return s;
}

}  // namespace

GradcheckResult gradcheck(const Fn& f, const Tensors& inputs, const GradcheckOptions& options) {
  Argnums argnums;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined() || !is_floating(inputs[i].dtype())) continue;
    if (inputs[i].dtype() != Dtype::f64) {
      fail("[gradcheck] input {} has dtype {}; finite differences need float64", i,
           dtype_name(inputs[i].dtype()));
    }
    argnums.push_back(static_cast<int>(i));
  }
  Probe probe{options.seed};
  Tensors outputs;
  {
    NoGradGuard no_grad;
    outputs = f(inputs);
  }
  for (int p = 0; p < options.probes; ++p) {
    Tensors cot;
    for (const Tensor& o : outputs) cot.push_back(random_like(o, probe).astype(o.dtype()));
    Tensors analytic;
    {
      NoGradGuard no_grad;
      analytic = vjp(f, inputs, cot, argnums).second;
    }
    for (size_t a = 0; a < argnums.size(); ++a) {
      const int i = argnums[a];
      const auto got = analytic[a].to_vector<double>();
      Tensor x = inputs[i].to(Device::cpu()).clone();
      double* xp = x.data<double>();
      for (int64_t j = 0; j < x.numel(); ++j) {
        const double saved = xp[j];
        Tensors args = inputs;
        double plus, minus;
        {
          NoGradGuard no_grad;
          xp[j] = saved + options.eps;
          args[i] = x.to(inputs[i].device()).clone();
          plus = contract(f(args), cot);
          xp[j] = saved - options.eps;
          args[i] = x.to(inputs[i].device()).clone();
          minus = contract(f(args), cot);
          xp[j] = saved;
        }
        const double numeric = (plus - minus) / (2 * options.eps);
        const double err = std::abs(got[static_cast<size_t>(j)] - numeric);
        if (!(err <= options.atol + options.rtol * std::abs(numeric))) {
          return {false,
                  fmt::format("[gradcheck] input {} element {} (probe {}): analytic {:.10g}, "
                              "numeric {:.10g}, difference {:.3g}",
                              i, j, p, got[static_cast<size_t>(j)], numeric, err)};
        }
      }
    }
  }
  return {};
}

GradcheckResult gradgradcheck(const Fn& f, const Tensors& inputs, const GradcheckOptions& options) {
  Tensors outputs;
  {
    NoGradGuard no_grad;
    outputs = f(inputs);
  }
  const size_t n_in = inputs.size();
  Probe probe{options.seed ^ 0xA5A5A5A5ull};
  Tensors extended = inputs;
  for (const Tensor& o : outputs) extended.push_back(random_like(o, probe).astype(o.dtype()));
  // g(x, v) = v^T df/dx: its gradient holds the second derivatives of f.
  const Fn g = [&f, n_in](const Tensors& xv) {
    const Tensors x(xv.begin(), xv.begin() + static_cast<long>(n_in));
    const Tensors v(xv.begin() + static_cast<long>(n_in), xv.end());
    return vjp(f, x, v).second;
  };
  GradcheckResult r = gradcheck(g, extended, options);
  if (!r.ok) r.message = "[gradgradcheck] " + r.message;
  return r;
}

}  // namespace basin
