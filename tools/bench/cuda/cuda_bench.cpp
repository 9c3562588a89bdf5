// GPU benchmarks (CUDA builds only): matmul through basin against cuBLAS called directly on the
// same buffers, and an elementwise op against the device's copy bandwidth.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cmath>

#include "basin/basin.h"
#include "core/prims/energy.h"
#include "models/energy/attention.h"
#include "tools/bench/bench.h"

namespace basin::bench {
namespace {

double gpu_seconds(const std::function<void()>& fn, int reps) {
  cudaDeviceSynchronize();
  return median_seconds(
      [&] {
        fn();
        cudaDeviceSynchronize();
      },
      reps, 3);
}

Json matmul_cuda() {
  if (!cuda_is_available()) return {{"bench", "matmul-cuda"}, {"skipped", "no CUDA device"}};
  const Device gpu = Device::cuda(0);
  const int n = 4096;
  const Tensor a = rand({n, n}).to(gpu);
  const Tensor b = rand({n, n}).to(gpu);
  Tensor c = zeros({n, n}, Dtype::f32, gpu);
  cublasHandle_t handle;
  cublasCreate(&handle);
  const float one = 1.f, zero = 0.f;
  const auto* pa = static_cast<const float*>(a.raw_data());
  const auto* pb = static_cast<const float*>(b.raw_data());
  auto* pc = static_cast<float*>(c.raw_data());
  const double flops = 2.0 * n * n * n;
  // Row-major C = A B is column-major C^T = B^T A^T: pass B first.
  const double t_cublas = gpu_seconds(
      [&] {
        cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, pb, n, pa, n, &zero, pc, n);
      },
      20);
  const double t_basin = gpu_seconds([&] { Tensor r = matmul(a, b); }, 20);
  set_cuda_allow_tf32(true);
  const double t_basin_tf32 = gpu_seconds([&] { Tensor r = matmul(a, b); }, 20);
  set_cuda_allow_tf32(false);
  cublasDestroy(handle);
  return {{"bench", "matmul-cuda"},
          {"n", n},
          {"basin_tflops", flops / t_basin / 1e12},
          {"cublas_sgemm_tflops", flops / t_cublas / 1e12},
          {"basin_vs_cublas", t_cublas / t_basin},
          {"basin_tf32_tflops", flops / t_basin_tf32 / 1e12}};
}

Json elementwise_cuda() {
  if (!cuda_is_available()) return {{"bench", "elementwise-cuda"}, {"skipped", "no CUDA device"}};
  const Device gpu = Device::cuda(0);
  const int64_t n = int64_t{1} << 28;  // 1 GiB of floats
  const Tensor a = rand({n}).to(gpu);
  const Tensor b = rand({n}).to(gpu);
  Tensor c = zeros({n}, Dtype::f32, gpu);
  const double t_copy = gpu_seconds(
      [&] { cudaMemcpy(c.raw_data(), a.raw_data(), 4 * n, cudaMemcpyDeviceToDevice); }, 20);
  const double t_add = gpu_seconds([&] { Tensor r = a + b; }, 20);
  const double t_exp = gpu_seconds([&] { Tensor r = exp(a); }, 20);
  const double copy_gbps = 8.0 * n / t_copy / 1e9;
  return {{"bench", "elementwise-cuda"},
          {"elements", n},
          {"copy_gbps", copy_gbps},
          {"add_gbps", 12.0 * n / t_add / 1e9},
          {"exp_gbps", 8.0 * n / t_exp / 1e9},
          {"add_vs_copy", 12.0 * n / t_add / 1e9 / copy_gbps}};
}

/// The attention energy's gradient dE/dg at the image ET's batch-256 size (65 tokens, D = 128,
/// 4 heads × 32, B ≠ C): the fused kernels against the same maths in unfused ops (the FusedOp's
/// fallback: projections, scores, masked softmax, both products, back-projections).
Json energy_attention_grad_cuda() {
  if (!cuda_is_available()) {
    return {{"bench", "energy-attention-grad-cuda"}, {"skipped", "no CUDA device"}};
  }
  const Device gpu = Device::cuda(0);
  const int64_t b = 256, n = 65, d = 128, h = 4, y = 32;
  const Tensor g = rand({b, n, d}).to(gpu);
  const energy::AttentionWeights w{(rand({h, y, d}) * 0.1).to(gpu), (rand({h, y, d}) * 0.1).to(gpu),
                                   full({h}, 1.0 / std::sqrt(double(y)), Dtype::f32, gpu), Tensor(),
                                   Tensor()};
  const prims::EnergyAttentionGrad op(false, false, true);
  const Tensors in{g, w.wq, w.wk, w.beta};
  const double t_fused =
      gpu_seconds([&] { Tensor r = energy::energy_attention_grad(g, w, Tensor(), true); }, 50);
  const double t_ops = gpu_seconds([&] { Tensor r = op.fallback(in); }, 50);
  const double err = max(abs(energy::energy_attention_grad(g, w, Tensor(), true) - op.fallback(in)))
                         .item<double>() /
                     max(abs(op.fallback(in))).item<double>();
  return {{"bench", "energy-attention-grad-cuda"},
          {"size", "batch 256, 65 tokens, D=128, 4x32 heads, exclude self"},
          {"fused_ms", t_fused * 1e3},
          {"ops_ms", t_ops * 1e3},
          {"fused_vs_ops", t_fused / t_ops},
          {"max_rel_diff", err}};
}

const Register r1("matmul-cuda", matmul_cuda);
const Register r3("energy-attention-grad-cuda", energy_attention_grad_cuda);
const Register r2("elementwise-cuda", elementwise_cuda);

}  // namespace
}  // namespace basin::bench
