// Helpers shared by the tests: deterministic inputs, naive references, closeness checks, and
// temporary directories and files.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "basin/basin.h"

namespace basin::testing {

/// Deterministic values uniform in [lo, hi) (float64 unless told otherwise).
inline Tensor make(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0,
                   Dtype dtype = Dtype::f64) {
  Generator gen(seed);
  return uniform(shape, lo, hi, Dtype::f64, Device::cpu(), &gen).astype(dtype);
}

/// The same values as x laid out non-contiguously (a transposed copy, transposed back).
inline Tensor noncontiguous(const Tensor& x) {
  if (x.ndim() < 2) return x;
  Tensor t = transpose(x, 0, x.ndim() - 1).contiguous();
  Tensor v = transpose(t, 0, x.ndim() - 1);
  EXPECT_FALSE(v.is_contiguous() && x.numel() > 1 && x.shape(0) > 1 && x.shape(-1) > 1);
  return v;
}

/// Elementwise closeness with NaN == NaN and equal infinities.
inline ::testing::AssertionResult all_close(const Tensor& got, const Tensor& want,
                                            double rtol = 1e-10, double atol = 1e-12) {
  if (got.shape() != want.shape()) {
    return ::testing::AssertionFailure()
           << "shapes differ: " << shape_str(got.shape()) << " vs " << shape_str(want.shape());
  }
  const auto g = got.to_vector<double>();
  const auto w = want.to_vector<double>();
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(g[i]) && std::isnan(w[i])) continue;
    if (std::isinf(g[i]) && g[i] == w[i]) continue;
    if (!(std::abs(g[i] - w[i]) <= atol + rtol * std::abs(w[i]))) {
      return ::testing::AssertionFailure()
             << "element " << i << ": got " << g[i] << ", want " << w[i];
    }
  }
  return ::testing::AssertionSuccess();
}

/// Reference: f applied to every element, on the host.
inline Tensor naive_unary(const Tensor& x, const std::function<double(double)>& f) {
  auto v = x.to_vector<double>();
  for (double& e : v) e = f(e);
  return from_vector(v, x.shape());
}

/// Reference: f over two operands broadcast by explicit index arithmetic.
inline Tensor naive_binary(const Tensor& a, const Tensor& b,
                           const std::function<double(double, double)>& f) {
  const Shape out = broadcast_shapes(a.shape(), b.shape(), "naive_binary");
  const auto av = a.to_vector<double>();
  const auto bv = b.to_vector<double>();
  auto index_into = [&out](const Shape& s, int64_t flat) {
    int64_t idx = 0, stride = 1;
    for (size_t d = out.size(); d-- > 0;) {
      const int64_t coord = flat % out[d];
      flat /= out[d];
      const int64_t sd = static_cast<int64_t>(d) - static_cast<int64_t>(out.size() - s.size());
      if (sd >= 0) {
        if (s[sd] != 1) idx += coord * stride;
        stride *= s[sd];
      }
    }
    return idx;
  };
  std::vector<double> r(static_cast<size_t>(numel(out)));
  for (int64_t i = 0; i < numel(out); ++i) {
    r[i] = f(av[index_into(a.shape(), i)], bv[index_into(b.shape(), i)]);
  }
  return from_vector(r, out);
}

/// Runs `fn` and checks it throws basin::Error whose message contains every piece.
inline ::testing::AssertionResult throws_error(const std::function<void()>& fn,
                                               const std::vector<std::string>& pieces) {
  try {
    fn();
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : pieces) {
      if (msg.find(p) == std::string::npos) {
        return ::testing::AssertionFailure() << "message '" << msg << "' lacks '" << p << "'";
      }
    }
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-basin exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

/// Checks first and second derivatives of f at `inputs` by finite differences.
inline void expect_derivatives(const Fn& f, const Tensors& inputs, bool second = true,
                               GradcheckOptions options = {}) {
  const GradcheckResult first = gradcheck(f, inputs, options);
  EXPECT_TRUE(first.ok) << first.message;
  if (second) {
    const GradcheckResult again = gradgradcheck(f, inputs, options);
    EXPECT_TRUE(again.ok) << again.message;
  }
}

/// A fresh directory for one test, "basin_<pid>_<suite>_<test>" in the system's temporary
/// directory, removed afterwards.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() / ("basin_" + std::to_string(::getpid()) + "_" +
                                                      info->test_suite_name() + "_" + info->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  /// The path of `name` inside the directory.
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  /// The directory.
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// The whole content of the file at `path` (empty when it cannot be read).
inline std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

/// Writes `bytes` to `path`, replacing what was there.
inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace basin::testing
