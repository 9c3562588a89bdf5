// Shared by the CUDA parity suites (test-backend-ops style): a table row (Case) names an op
// applied to deterministic host inputs; run_case runs it on the CPU and on cuda:0 and compares
// the values, the first derivatives (vjp with a random cotangent) and the second derivatives (a
// vjp of that vjp) by normalised error. A case that fails on the CPU must fail on the GPU with
// the same message.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "tests/test_util.h"

namespace basin::testing::parity {

/// Why a parity test is skipped on a machine without a GPU.
inline const char* const kNoGpu = "no CUDA device or driver on this machine";

/// Relative L2 error of `got` against `want` (any devices, compared as float64 on the host):
/// ||got - want|| / ||want||, or ||got - want|| when want is all zeros. NaNs must sit at the same
/// places and infinities match exactly; a mismatch of those, of shape or of dtype gives +inf.
inline double normalised_error(const Tensor& got, const Tensor& want) {
  if (got.shape() != want.shape() || got.dtype() != want.dtype()) {
    return std::numeric_limits<double>::infinity();
  }
  const std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  double diff = 0, norm = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(g[i]) || std::isnan(w[i])) {
      if (std::isnan(g[i]) != std::isnan(w[i])) return std::numeric_limits<double>::infinity();
      continue;
    }
    if (std::isinf(g[i]) || std::isinf(w[i])) {
      if (g[i] != w[i]) return std::numeric_limits<double>::infinity();
      continue;
    }
    diff += (g[i] - w[i]) * (g[i] - w[i]);
    norm += w[i] * w[i];
  }
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

/// One row of a parity table, run once per dtype in `dtypes`.
struct Case {
  std::string name;
  /// The inputs on the host for the case's dtype (inputs such as indices or masks keep theirs).
  std::function<Tensors(Dtype)> inputs;
  /// The op under test; lay the inputs out (transpose, slice, ...) here, so that both devices
  /// see the same layout.
  std::function<Tensor(const Tensors&)> fn;
  std::vector<Dtype> dtypes;
  /// Normalised error allowed for float32; float64 gets a millionth of it, integers none.
  double tol = 1e-5;
  /// Inputs differentiated (floating dtypes only); empty: forward only.
  std::vector<int> argnums = {};
  /// Also compare second derivatives.
  bool second = true;
  /// Whether the case must raise an error (on both devices, with the same message).
  bool fails = false;
};

/// The case, marked as one that must raise an error.
inline Case failing(Case c) {
  c.fails = true;
  return c;
}

/// Names a case in gtest's messages.
inline void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

/// gtest's name of a parameterised case: the case's name.
inline std::string case_name(const ::testing::TestParamInfo<Case>& info) { return info.param.name; }

inline const std::vector<Dtype> kFloat = {Dtype::f32, Dtype::f64};
inline const std::vector<Dtype> kNumeric = {Dtype::f32, Dtype::f64, Dtype::i32, Dtype::i64,
                                            Dtype::u8};
inline const std::vector<Dtype> kAll = {Dtype::f32, Dtype::f64, Dtype::i32,
                                        Dtype::i64, Dtype::u8,  Dtype::boolean};

/// The error allowed for `dtype` given the float32 bound.
inline double tolerance(double tol32, Dtype dtype) {
  if (dtype == Dtype::f32) return tol32;
  if (dtype == Dtype::f64) return tol32 * 1e-6;
  return 0;
}

/// Deterministic data of `dtype`: uniform in [-1, 1) for floats, small integers otherwise.
inline Tensor sample_data(const Shape& shape, uint64_t seed, Dtype dtype) {
  if (is_floating(dtype)) return make(shape, seed, -1, 1, dtype);
  if (dtype == Dtype::boolean) return make(shape, seed) > 0.0;
  if (dtype == Dtype::u8) return make(shape, seed, 0, 200).astype(dtype);
  return make(shape, seed, -50, 50).astype(dtype);
}

/// Indices in [0, hi) of the given index dtype.
inline Tensor indices(const Shape& shape, int64_t hi, uint64_t seed, Dtype dtype = Dtype::i64) {
  return make(shape, seed, 0, static_cast<double>(hi)).astype(dtype);
}

/// Each tensor moved to cuda:0.
inline Tensors to_gpu(const Tensors& ts) {
  Tensors out;
  for (const Tensor& t : ts) out.push_back(t.to(Device::cuda(0)));
  return out;
}

/// Compares two lists of results (derivatives) by normalised error, naming `what` on failure.
inline void expect_close(const Tensors& got, const Tensors& want, double tol,
                         const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(got[i].device().is_cuda()) << what << " " << i << " left the GPU";
    EXPECT_LE(normalised_error(got[i], want[i]), tol) << what << " " << i;
  }
}

/// First derivatives of the case at `in` (vjp with cotangent `cot`) and, when `cot2` is given,
/// its second derivatives: the vjp of (inputs, cot) -> first derivatives with cotangents `cot2`.
inline std::pair<Tensors, Tensors> derivatives(const Case& c, const Tensors& in, const Tensor& cot,
                                               const Tensors& cot2) {
  const Fn f = [&c](const Tensors& x) { return Tensors{c.fn(x)}; };
  Tensors first = vjp(f, in, {cot}, c.argnums).second;
  Tensors second;
  if (!cot2.empty()) {
    const size_t n = in.size();
    const Fn g = [&f, &c, n](const Tensors& x) {
      return vjp(f, Tensors(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(n)), {x[n]},
                 c.argnums)
          .second;
    };
    Tensors primals = in;
    primals.push_back(cot);
    std::vector<int> argnums = c.argnums;
    argnums.push_back(static_cast<int>(n));
    second = vjp(g, primals, cot2, argnums).second;
  }
  return {first, second};
}

/// Runs the case on the CPU and on cuda:0 for each of its dtypes and compares (see the file's
/// comment). Call it from a test that has checked cuda_is_available().
inline void run_case(const Case& c) {
  for (Dtype dtype : c.dtypes) {
    SCOPED_TRACE(c.name + " in " + dtype_name(dtype));
    const Tensors host = c.inputs(dtype);
    const Tensors gpu = to_gpu(host);
    Tensor want, got;
    std::string want_error, got_error;
    try {
      want = c.fn(host);
    } catch (const Error& e) {
      want_error = e.what();
    }
    try {
      got = c.fn(gpu);
    } catch (const Error& e) {
      got_error = e.what();
    }
    ASSERT_EQ(got_error, want_error);
    ASSERT_EQ(!want_error.empty(), c.fails) << "error: " << want_error;
    if (c.fails) continue;
    EXPECT_TRUE(got.device().is_cuda());
    const double tol = tolerance(c.tol, dtype);
    EXPECT_LE(normalised_error(got, want), tol) << "forward";
    if (c.argnums.empty() || !is_floating(dtype)) continue;

    const Tensor cot = make(want.shape(), 101, -1, 1, want.dtype());
    Tensors cot2;
    if (c.second) {
      uint64_t seed = 202;
      for (int i : c.argnums) cot2.push_back(make(host[i].shape(), seed++, -1, 1, dtype));
    }
    const auto [first_want, second_want] = derivatives(c, host, cot, cot2);
    const auto [first_got, second_got] = derivatives(c, gpu, cot.to(Device::cuda(0)), to_gpu(cot2));
    expect_close(first_got, first_want, tol, "first derivative");
    expect_close(second_got, second_want, tol, "second derivative");
  }
}

/// A case on inputs of the given shapes (sample_data() of the case's dtype, seeds 1, 2, ...).
inline Case on(const std::string& name, std::vector<Shape> shapes,
               std::function<Tensor(const Tensors&)> fn, std::vector<Dtype> dtypes, double tol,
               std::vector<int> argnums, bool second = true) {
  return {name,
          [shapes](Dtype dt) {
            Tensors ts;
            uint64_t seed = 1;
            for (const Shape& s : shapes) ts.push_back(sample_data(s, seed++, dt));
            return ts;
          },
          std::move(fn),
          std::move(dtypes),
          tol,
          std::move(argnums),
          second};
}

}  // namespace basin::testing::parity
