#include "models/energy/classical.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <fmt/format.h>

#include "core/error.h"
#include "core/grad_mode.h"
#include "core/ops.h"

namespace basin::energy {

std::string to_string(RetrievalStatus status) {
  switch (status) {
    case RetrievalStatus::fixed_point:
      return "fixed_point";
    case RetrievalStatus::two_cycle:
      return "two_cycle";
    case RetrievalStatus::max_steps:
      return "max_steps";
  }
  return "unknown";
}

namespace detail {

namespace {

void check_values_bipolar(const std::vector<double>& values, const char* who, const char* what) {
  for (size_t k = 0; k < values.size(); ++k) {
    check(values[k] == 1.0 || values[k] == -1.0, "[{}] {} must be bipolar (±1); element {} is {}",
          who, what, k, values[k]);
  }
}

}  // namespace

void check_bipolar_patterns(const Tensor& patterns, const char* who) {
  check(patterns.defined(), "[{}] the patterns are undefined", who);
  check(patterns.ndim() == 2 && patterns.shape(0) > 0 && patterns.shape(1) > 0,
        "[{}] patterns must be (P, N) with P, N >= 1, got {}", who, shape_str(patterns.shape()));
  check(patterns.dtype() != Dtype::boolean, "[{}] patterns must be numeric ±1, got bool", who);
  check_values_bipolar(patterns.to_vector<double>(), who, "patterns");
}

BipolarBatch bipolar_batch(const Tensor& cue, int64_t n, const char* who) {
  check(cue.defined(), "[{}] the state is undefined", who);
  check((cue.ndim() == 1 && cue.shape(0) == n) || (cue.ndim() == 2 && cue.shape(1) == n),
        "[{}] expected a state of shape ({},) or (B, {}), got {}", who, n, n,
        shape_str(cue.shape()));
  check(cue.dtype() != Dtype::boolean, "[{}] states must be numeric ±1, got bool", who);
  BipolarBatch batch;
  batch.values = cue.to_vector<double>();
  batch.cols = n;
  batch.rows = cue.ndim() == 1 ? 1 : cue.shape(0);
  check_values_bipolar(batch.values, who, "states");
  return batch;
}

Tensor to_tensor(const BipolarBatch& batch, const Tensor& like) {
  return reshape(from_vector(batch.values, Shape{batch.rows, batch.cols}), like.shape())
      .astype(like.dtype());
}

std::vector<std::vector<int64_t>> sweep_orders(int64_t rows, int64_t cols, UpdateRule rule,
                                               Generator* gen) {
  std::vector<int64_t> identity(static_cast<size_t>(cols));
  std::iota(identity.begin(), identity.end(), int64_t{0});
  std::vector<std::vector<int64_t>> orders(static_cast<size_t>(rows), identity);
  if (rule != UpdateRule::random || rows == 0 || cols == 0) return orders;
  NoGradGuard no_grad;
  // Fisher–Yates, one uniform draw per position.
  const std::vector<double> u =
      rand({rows, cols}, Dtype::f64, Device::cpu(), gen ? gen : &default_generator())
          .to_vector<double>();
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<int64_t>& order = orders[r];
    for (int64_t j = cols - 1; j > 0; --j) {
      const auto k =
          std::min(j, static_cast<int64_t>(u[r * cols + j] * static_cast<double>(j + 1)));
      std::swap(order[j], order[k]);
    }
  }
  return orders;
}

RetrievalResult retrieve_bipolar(const Tensor& cue, int64_t n, int max_sweeps, UpdateRule rule,
                                 const BipolarPass& pass, const char* who) {
  check(max_sweeps >= 0, "[{}] max_sweeps must be >= 0, got {}", who, max_sweeps);
  BipolarBatch current = bipolar_batch(cue, n, who);
  const int64_t rows = current.rows;
  const bool synchronous = rule == UpdateRule::synchronous;
  RetrievalResult result;
  result.statuses.assign(static_cast<size_t>(rows), RetrievalStatus::max_steps);
  result.sample_sweeps.assign(static_cast<size_t>(rows), 0);
  std::vector<char> active(static_cast<size_t>(rows), 1);
  int64_t n_active = rows;
  BipolarBatch previous, before_previous;
  auto same = [n](const double* a, const double* b) { return std::equal(a, a + n, b); };
  for (int t = 1; t <= max_sweeps && n_active > 0; ++t) {
    if (synchronous) before_previous = std::move(previous);
    previous = current;
    pass(current, active);
    result.sweeps = t;
    for (int64_t r = 0; r < rows; ++r) {
      if (!active[r]) continue;
      result.sample_sweeps[r] = t;
      RetrievalStatus& status = result.statuses[r];
      if (same(current.row(r), previous.row(r))) {
        status = RetrievalStatus::fixed_point;
      } else if (synchronous && t >= 2 && same(current.row(r), before_previous.row(r))) {
        status = RetrievalStatus::two_cycle;
      } else {
        continue;
      }
      active[r] = 0;
      --n_active;
    }
  }
  const bool all_fixed = std::all_of(result.statuses.begin(), result.statuses.end(),
                                     [](auto s) { return s == RetrievalStatus::fixed_point; });
  result.status = all_fixed       ? RetrievalStatus::fixed_point
                  : n_active == 0 ? RetrievalStatus::two_cycle
                                  : RetrievalStatus::max_steps;
  result.state = to_tensor(current, cue);
  return result;
}

}  // namespace detail

// --- ClassicalHopfield ---------------------------------------------------------------------------

ClassicalHopfield::ClassicalHopfield(const Tensor& patterns, ClassicalHopfieldOptions options,
                                     const Tensor& bias_)
    : nn::Module("ClassicalHopfield"), options_(options) {
  detail::check_bipolar_patterns(patterns, "ClassicalHopfield");
  p_ = patterns.shape(0);
  n_ = patterns.shape(1);
  const Dtype dtype = patterns.dtype() == Dtype::f64 ? Dtype::f64 : Dtype::f32;
  NoGradGuard no_grad;
  const Tensor x = patterns.detach().astype(Dtype::f64);  // (P, N)
  Tensor w = matmul(transpose(x), x);                     // (N, N), Σ_μ ξ_μ ξ_μᵀ
  if (options_.scale_by_n) w = w / static_cast<double>(n_);
  if (options_.zero_diagonal) w = w * (1.0 - eye(n_, -1, Dtype::f64));
  weight = register_buffer("weight", w.astype(dtype));
  Tensor b = zeros({n_}, dtype);
  if (bias_.defined()) {
    check(bias_.ndim() == 1 && bias_.shape(0) == n_,
          "[ClassicalHopfield] bias must be ({},), got {}", n_, shape_str(bias_.shape()));
    b = bias_.detach().astype(dtype).clone();
  }
  bias = register_buffer("bias", b);
}

std::string ClassicalHopfield::extra_repr() const {
  return fmt::format("n_neurons={}, n_patterns={}, zero_diagonal={}, scale_by_n={}", n_, p_,
                     options_.zero_diagonal, options_.scale_by_n);
}

Tensor ClassicalHopfield::energy(const Tensor& state) const {
  check(state.defined() && (state.ndim() == 1 || state.ndim() == 2) && state.shape(-1) == n_,
        "[ClassicalHopfield] expected a state of shape ({},) or (B, {}), got {}", n_, n_,
        state.defined() ? shape_str(state.shape()) : "undefined");
  const Tensor s = is_floating(state.dtype()) ? state : state.astype(weight.dtype());
  return sum(matmul(s, weight) * s, {-1}) * -0.5 + matmul(s, bias);
}

namespace {

// σ_i ← sgn(h_i), keeping σ_i where h_i is 0 to within its rounding error `tie`.
inline double sign_or_keep(double field, double tie, double current) {
  return field > tie ? 1.0 : field < -tie ? -1.0 : current;
}

}  // namespace

RetrievalResult ClassicalHopfield::retrieve(const Tensor& state, int max_sweeps, UpdateRule rule,
                                            Generator* gen) const {
  NoGradGuard no_grad;
  const int64_t n = n_;
  const Tensor w64 = weight.astype(Dtype::f64);  // (N, N), symmetric
  const Tensor b64 = bias.astype(Dtype::f64);    // (N,)
  const std::vector<double> w = w64.to_vector<double>();
  // A field that is 0 in exact arithmetic (a tie) comes out as a rounding error of the weights
  // (1/N is inexact) and of the sums: at most ~ε Σ_j |W_ij| + |b_i|, far below the smallest
  // nonzero Hebbian field, 1/N.
  std::vector<double> tie(static_cast<size_t>(n));
  {
    const double eps = 64 * (weight.dtype() == Dtype::f64 ? std::numeric_limits<double>::epsilon()
                                                          : std::numeric_limits<float>::epsilon());
    const std::vector<double> b = b64.to_vector<double>();
    for (int64_t i = 0; i < n; ++i) {
      double total = std::fabs(b[i]);
      for (int64_t j = 0; j < n; ++j) total += std::fabs(w[i * n + j]);
      tie[i] = eps * total;
    }
  }
  auto fields = [&](const detail::BipolarBatch& s) {  // h = σ W − b for every row, (B, N)
    return sub(matmul(from_vector(s.values, Shape{s.rows, n}), w64), b64).to_vector<double>();
  };
  std::vector<double> h;  // (B, N) fields of the asynchronous passes
  detail::BipolarPass pass;
  if (rule == UpdateRule::synchronous) {
    pass = [&](detail::BipolarBatch& s, const std::vector<char>& active) {
      const std::vector<double> field = fields(s);
      for (int64_t r = 0; r < s.rows; ++r) {
        if (!active[r]) continue;
        double* row = s.row(r);
        for (int64_t i = 0; i < n; ++i) row[i] = sign_or_keep(field[r * n + i], tie[i], row[i]);
      }
    };
  } else {
    // The fields are computed once and then kept up to date: each flip moves every field by
    // W_:i δ, O(N) per flip, and only the passes change the states.
    pass = [&](detail::BipolarBatch& s, const std::vector<char>& active) {
      if (h.empty()) h = fields(s);
      const auto orders = detail::sweep_orders(s.rows, n, rule, gen);
#pragma omp parallel for schedule(dynamic) if (s.rows * n * n > 1 << 16)
      for (int64_t r = 0; r < s.rows; ++r) {
        if (!active[r]) continue;
        double* row = s.row(r);
        double* hr = h.data() + r * n;
        for (const int64_t i : orders[r]) {
          const double next = sign_or_keep(hr[i], tie[i], row[i]);
          if (next == row[i]) continue;
          const double delta = next - row[i];
          row[i] = next;
          const double* wi = w.data() + i * n;
          for (int64_t j = 0; j < n; ++j) hr[j] += wi[j] * delta;
        }
      }
    };
  }
  return detail::retrieve_bipolar(state, n, max_sweeps, rule, pass, "ClassicalHopfield");
}

Tensor ClassicalHopfield::update(const Tensor& state) const {
  return retrieve(state, 1, UpdateRule::synchronous).state;
}

Tensor ClassicalHopfield::sweep(const Tensor& state, UpdateRule rule, Generator* gen) const {
  check(rule != UpdateRule::synchronous,
        "[ClassicalHopfield] sweep is asynchronous: use update() for a synchronous step");
  return retrieve(state, 1, rule, gen).state;
}

}  // namespace basin::energy
