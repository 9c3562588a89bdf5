// Benchmarks of the op families: matmul against the raw GEMM libraries in the same program,
// softmax and logsumexp, and an energy's gradient of gradient against PyTorch.
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>

#include <array>
#include <cstdio>
#include <memory>

#include "basin/basin.h"
#include "tools/bench/bench.h"

namespace basin::bench {
namespace {

Json matmul_bench() {
  Json out = {{"bench", "matmul"}};
  for (int n : {512, 1024}) {
    const Tensor a = rand({n, n});
    const Tensor b = rand({n, n});
    Tensor c = zeros({n, n});
    const float* pa = a.data<float>();
    const float* pb = b.data<float>();
    float* pc = c.data<float>();
    const double flops = 2.0 * n * n * n;
    for (int threads : {1, 2}) {
      with_threads(threads, [&] {
        const int reps = n == 512 ? 21 : 7;
        const double t_basin = median_seconds([&] { Tensor r = matmul(a, b); }, reps);
        const double t_dnnl = median_seconds(
            [&] { dnnl_sgemm('N', 'N', n, n, n, 1.f, pa, n, pb, n, 0.f, pc, n); }, reps);
        const double t_blas = median_seconds(
            [&] {
              cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f, pa, n, pb, n,
                          0.f, pc, n);
            },
            reps);
        const double best = std::min(t_dnnl, t_blas);
        out[fmt::format("n{}_threads{}", n, threads)] = {
            {"basin_gflops", flops / t_basin / 1e9},
            {"dnnl_sgemm_gflops", flops / t_dnnl / 1e9},
            {"cblas_sgemm_gflops", flops / t_blas / 1e9},
            {"basin_vs_best", best / t_basin}};
        return 0;
      });
    }
  }
  return out;
}

Json softmax_bench() {
  const Tensor x = randn({4096, 512});
  Json out = {{"bench", "softmax"}, {"shape", "(4096, 512)"}};
  const double bytes = 2.0 * 4 * x.numel();  // read once, write once
  for (int threads : {1, 2}) {
    with_threads(threads, [&] {
      const double ts = median_seconds([&] { Tensor y = softmax(x, -1); }, 21);
      const double tl = median_seconds([&] { Tensor y = logsumexp(x, {-1}); }, 21);
      out[fmt::format("threads{}", threads)] = {{"softmax_ms", ts * 1e3},
                                                {"softmax_gbps", bytes / ts / 1e9},
                                                {"logsumexp_ms", tl * 1e3},
                                                {"logsumexp_gbps", 4.0 * x.numel() / tl / 1e9}};
      return 0;
    });
  }
  return out;
}

// E(X, x) = -sum_b logsumexp(beta X x_b): the dense associative memory energy of a batch of
// states. One step = forward, dE/dx with its graph, then d/dX of |dE/dx|^2 (grad of grad).
constexpr int kM = 512, kD = 128, kB = 64;
constexpr double kBeta = 0.5;

double energy_step_seconds() {
  Generator gen(0);
  const Tensor memories = randn({kM, kD}, Dtype::f32, Device::cpu(), &gen);
  const Tensor x = randn({kB, kD}, Dtype::f32, Device::cpu(), &gen);
  auto step = [&] {
    auto outer = grad([&](const Tensors& in) {
      auto dE = grad([&](const Tensors& s) {
        return -sum(logsumexp(matmul(s[0], transpose(in[0])) * kBeta, {-1}));
      });
      const Tensor g = dE({x})[0];  // (B, D)
      return sum(g * g);
    });
    return outer({memories})[0];
  };
  return median_seconds([&] { Tensor g = step(); }, 31, 5);
}

Json energy_bench() {
  Json out = {{"bench", "energy-grad-of-grad"}, {"memories", kM}, {"dim", kD}, {"batch", kB}};
  for (int threads : {1, 2}) {
    const double t = with_threads(threads, [] { return energy_step_seconds(); });
    out[fmt::format("threads{}", threads)] = {{"basin_ms", t * 1e3}};
  }
  // The same computation in PyTorch, run now so both figures come from the same minute.
  const char* script = "tools/bench/torch_energy.py";
  const std::string cmd =
      fmt::format("OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 {} {} {} {} {} 2>/dev/null", script, kM,
                  kD, kB, kBeta);
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  std::string text;
  std::array<char, 256> buf{};
  while (pipe && fgets(buf.data(), buf.size(), pipe.get())) text += buf.data();
  try {
    const Json torch = Json::parse(text);
    out["torch"] = torch;
    for (int threads : {1, 2}) {
      const std::string k = fmt::format("threads{}", threads);
      out[k]["torch_ms"] = torch[k]["ms"];
      out[k]["basin_over_torch"] = out[k]["basin_ms"].get<double>() / torch[k]["ms"].get<double>();
    }
  } catch (const std::exception&) {
    out["torch"] = "unavailable: run from the repository root with /usr/bin/python3 having torch";
  }
  return out;
}

const Register r1("matmul", matmul_bench);
const Register r2("softmax", softmax_bench);
const Register r3("energy", energy_bench);

}  // namespace
}  // namespace basin::bench
