// Benchmarks of the core: elementwise bandwidth against memcpy, and per-op dispatch overhead.
#include <cstring>

#include "basin/basin.h"
#include "tools/bench/bench.h"

namespace basin::bench {
namespace {

Json elementwise() {
  const int64_t n = 16 << 20;  // 16M floats
  const Tensor a = rand({n});
  const Tensor b = rand({n});
  std::vector<float> src(static_cast<size_t>(n), 1.f), dst(static_cast<size_t>(n));
  Json out = {{"bench", "elementwise"}, {"elements", n}};
  for (int threads : {1, 2}) {
    with_threads(threads, [&] {
      // memcpy moves 2 * 4n bytes (read + write); add/mul move 3 * 4n, exp 2 * 4n.
      const double t_copy = median_seconds([&] { std::memcpy(dst.data(), src.data(), 4 * n); }, 9);
      const double gb_copy = 8.0 * n / t_copy / 1e9;
      const double t_add = median_seconds([&] { Tensor c = a + b; }, 9);
      const double t_mul = median_seconds([&] { Tensor c = a * b; }, 9);
      const double t_exp = median_seconds([&] { Tensor c = exp(a); }, 9);
      const std::string k = "threads" + std::to_string(threads);
      out[k] = {{"memcpy_gbps", gb_copy},
                {"add_gbps", 12.0 * n / t_add / 1e9},
                {"mul_gbps", 12.0 * n / t_mul / 1e9},
                {"exp_gbps", 8.0 * n / t_exp / 1e9},
                {"add_vs_memcpy", 12.0 * n / t_add / 1e9 / gb_copy},
                {"mul_vs_memcpy", 12.0 * n / t_mul / 1e9 / gb_copy},
                {"exp_vs_memcpy", 8.0 * n / t_exp / 1e9 / gb_copy}};
      return 0;
    });
  }
  out["peak_rss_mib"] = peak_rss_mib();
  return out;
}

Json dispatch() {
  const Tensor a = ones({1});
  const Tensor b = ones({1});
  Tensor w = ones({1});
  w.set_requires_grad();
  const int reps = 200000;
  auto per_op_ns = [&](const Tensor& x) {
    return 1e9 *
           median_seconds(
               [&] {
                 for (int i = 0; i < reps; ++i) {
                   Tensor c = x + b;
                 }
               },
               5) /
           reps;
  };
  const double plain = per_op_ns(a);
  const double recorded = per_op_ns(w);
  return {{"bench", "dispatch"}, {"add_ns_no_grad", plain}, {"add_ns_recording", recorded}};
}

const Register r1("elementwise", elementwise);
const Register r2("dispatch", dispatch);

}  // namespace
}  // namespace basin::bench
