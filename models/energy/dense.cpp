#include "models/energy/dense.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"
#include "core/grad_mode.h"
#include "core/ops.h"

namespace basin::energy {

std::string to_string(Interaction interaction) {
  switch (interaction) {
    case Interaction::polynomial:
      return "polynomial";
    case Interaction::rectified_polynomial:
      return "rectified_polynomial";
    case Interaction::exponential:
      return "exponential";
    case Interaction::log_sum_exp:
      return "log_sum_exp";
  }
  return "unknown";
}

Interaction interaction_from_string(const std::string& name) {
  for (Interaction i : {Interaction::polynomial, Interaction::rectified_polynomial,
                        Interaction::exponential, Interaction::log_sum_exp}) {
    if (to_string(i) == name) return i;
  }
  fail(
      "[DenseAssociativeMemory] unknown interaction '{}' (one of polynomial, "
      "rectified_polynomial, exponential, log_sum_exp)",
      name);
}

namespace {

bool is_exponential(Interaction i) {
  return i == Interaction::exponential || i == Interaction::log_sum_exp;
}

double ipow(double x, int n) {
  double r = 1.0;
  for (int k = 0; k < n; ++k) r *= x;
  return r;
}

// F on the host, up to a positive factor that keeps the sign of every energy difference: the
// rectified polynomial drops its 1/n (so integer overlaps give exact integers, and exact ties),
// the exponentials are exp(β(x − shift)) (no overflow).
struct HostInteraction {
  Interaction kind;
  int n;
  double beta;
  double operator()(double x, double shift) const {
    switch (kind) {
      case Interaction::polynomial:
        return ipow(x, n);
      case Interaction::rectified_polynomial:
        return x > 0 ? ipow(x, n) : 0.0;
      case Interaction::exponential:
      case Interaction::log_sum_exp:
        return std::exp(beta * (x - shift));
    }
    return 0.0;
  }
};

// d_μ = ½[F(m_μ+2) − F(m_μ−2)] and C = Σ_μ [F(m_μ) − ½F(m_μ−2) − ½F(m_μ+2)]: flipping σ_i
// changes the energy by C + σ_i Σ_μ ξ_μi d_μ (scaled by a positive factor for exponentials).
double flip_terms(const HostInteraction& f, const double* m, int64_t p, double* d) {
  double shift = 0.0;
  if (is_exponential(f.kind)) shift = *std::max_element(m, m + p);
  double c = 0.0;
  for (int64_t mu = 0; mu < p; ++mu) {
    const double lo = f(m[mu] - 2, shift), mid = f(m[mu], shift), hi = f(m[mu] + 2, shift);
    d[mu] = 0.5 * (hi - lo);
    c += mid - 0.5 * (lo + hi);
  }
  return c;
}

}  // namespace

DenseAssociativeMemory::DenseAssociativeMemory(const Tensor& patterns, DenseAMOptions options)
    : nn::Module("DenseAssociativeMemory"), options_(options) {
  detail::check_bipolar_patterns(patterns, "DenseAssociativeMemory");
  if (!is_exponential(options_.interaction)) {
    check(options_.degree >= 2 && options_.degree <= 64,
          "[DenseAssociativeMemory] degree must be in [2, 64], got {}", options_.degree);
  } else {
    check(options_.beta > 0 && std::isfinite(options_.beta),
          "[DenseAssociativeMemory] beta must be positive, got {}", options_.beta);
  }
  p_ = patterns.shape(0);
  n_ = patterns.shape(1);
  const Dtype dtype = patterns.dtype() == Dtype::f64 ? Dtype::f64 : Dtype::f32;
  memories = register_buffer("memories", patterns.detach().astype(dtype).clone());
}

std::string DenseAssociativeMemory::extra_repr() const {
  std::string f = to_string(options_.interaction);
  if (is_exponential(options_.interaction)) {
    f += fmt::format(", beta={}", options_.beta);
  } else {
    f += fmt::format(", degree={}", options_.degree);
  }
  return fmt::format("n_neurons={}, n_patterns={}, interaction={}", n_, p_, f);
}

Tensor DenseAssociativeMemory::energy(const Tensor& state) const {
  check(state.defined() && (state.ndim() == 1 || state.ndim() == 2) && state.shape(-1) == n_,
        "[DenseAssociativeMemory] expected a state of shape ({},) or (B, {}), got {}", n_, n_,
        state.defined() ? shape_str(state.shape()) : "undefined");
  const Tensor s = state.astype(Dtype::f64);
  const Tensor m = matmul(s, transpose(memories.astype(Dtype::f64)));  // (B, P) overlaps
  const double n = options_.degree, beta = options_.beta;
  switch (options_.interaction) {
    case Interaction::polynomial:
      return -sum(pow(m, n), {-1});
    case Interaction::rectified_polynomial:
      return sum(pow(relu(m), n), {-1}) * (-1.0 / n);
    case Interaction::exponential:
      return -sum(exp(m * beta), {-1});
    case Interaction::log_sum_exp:
      return logsumexp(m * beta, {-1}) * (-1.0 / beta);
  }
  return Tensor();
}

RetrievalResult DenseAssociativeMemory::retrieve(const Tensor& state, int max_sweeps,
                                                 UpdateRule rule, Generator* gen) const {
  NoGradGuard no_grad;
  const int64_t n = n_, p = p_;
  const Tensor x = memories.astype(Dtype::f64);  // (P, N)
  const Tensor xt = transpose(x);                // (N, P)
  const HostInteraction f{options_.interaction, options_.degree, options_.beta};
  auto overlaps = [&](const detail::BipolarBatch& s) {  // (B, P)
    return matmul(from_vector(s.values, Shape{s.rows, n}), xt);
  };
  std::vector<double> m;  // (B, P) overlaps of the asynchronous passes
  detail::BipolarPass pass;
  if (rule == UpdateRule::synchronous) {
    // Every neuron's energy change from the same state (up to HostInteraction's positive
    // factor), with batched tensor ops.
    pass = [&](detail::BipolarBatch& s, const std::vector<char>& active) {
      const Tensor sigma = from_vector(s.values, Shape{s.rows, n});  // (B, N)
      const Tensor overlap = overlaps(s);                            // (B, P)
      const double beta = options_.beta, degree = options_.degree;
      const Tensor shift = is_exponential(f.kind) ? max(overlap, {-1}, true) : Tensor();
      auto F = [&](const Tensor& v) -> Tensor {
        switch (f.kind) {
          case Interaction::polynomial:
            return pow(v, degree);
          case Interaction::rectified_polynomial:
            return pow(relu(v), degree);
          default:
            return exp((v - shift) * beta);
        }
      };
      const Tensor lo = F(overlap - 2.0), mid = F(overlap), hi = F(overlap + 2.0);
      const Tensor d = (hi - lo) * 0.5;                         // (B, P)
      const Tensor c = sum(mid - (lo + hi) * 0.5, {-1}, true);  // (B, 1)
      const Tensor delta = c + sigma * matmul(d, x);            // (B, N): ΔE of a flip
      const std::vector<double> next = where(delta < 0.0, -sigma, sigma).to_vector<double>();
      for (int64_t r = 0; r < s.rows; ++r) {
        if (active[r]) std::copy_n(next.data() + r * n, n, s.row(r));
      }
    };
  } else {
    const std::vector<double> xt_host = xt.contiguous().to_vector<double>();  // row i: ξ_·i
    // The overlaps are computed once and then kept up to date by the flips.
    pass = [&, xt_host](detail::BipolarBatch& s, const std::vector<char>& active) {
      if (m.empty()) m = overlaps(s).to_vector<double>();
      const auto orders = detail::sweep_orders(s.rows, n, rule, gen);
#pragma omp parallel for schedule(dynamic) if (s.rows * n * p > 1 << 16)
      for (int64_t r = 0; r < s.rows; ++r) {
        if (!active[r]) continue;
        double* row = s.row(r);
        double* mr = m.data() + r * p;
        std::vector<double> d(static_cast<size_t>(p));
        double c = flip_terms(f, mr, p, d.data());
        for (const int64_t i : orders[r]) {
          const double* xi = xt_host.data() + i * p;
          double h = 0.0;
          for (int64_t mu = 0; mu < p; ++mu) h += xi[mu] * d[mu];
          if (!(c + row[i] * h < 0.0)) continue;  // flipping would not lower the energy
          const double twice_old = 2.0 * row[i];
          row[i] = -row[i];
          for (int64_t mu = 0; mu < p; ++mu) mr[mu] -= twice_old * xi[mu];
          c = flip_terms(f, mr, p, d.data());
        }
      }
    };
  }
  return detail::retrieve_bipolar(state, n, max_sweeps, rule, pass, "DenseAssociativeMemory");
}

Tensor DenseAssociativeMemory::update(const Tensor& state) const {
  return retrieve(state, 1, UpdateRule::synchronous).state;
}

Tensor DenseAssociativeMemory::sweep(const Tensor& state, UpdateRule rule, Generator* gen) const {
  check(rule != UpdateRule::synchronous,
        "[DenseAssociativeMemory] sweep is asynchronous: use update() for a synchronous step");
  return retrieve(state, 1, rule, gen).state;
}

}  // namespace basin::energy
