// CUDA parity of the energy layers' fused ops (prims::EnergyAttentionGrad, EnergyAttentionValue
// and HopfieldEnergyGrad): the CUDA kernels against the CPU kernels in value, first and second
// derivatives, and against their own ops fallback on the GPU. Skips without a GPU.
#include <string>
#include <vector>

#include "core/prims/energy.h"
#include "models/energy/attention.h"
#include "models/energy/hopfield_energy.h"
#include "tests/backends/cuda/parity.h"
#include "tests/test_util.h"

namespace basin {
namespace {
using testing::make;
using namespace testing::parity;

struct AttentionCase {
  std::string name;
  int64_t batch, tokens, dim, heads, head_dim;
  bool bias = false;
  enum { kNone, kShared, kPerBatch } mask = kNone;
  bool exclude_self = false;
};

/// Inputs g, wq, wk, beta [, bq, bk] [, mask]; the mask leaves query 1 with no allowed key.
Tensors attention_inputs(const AttentionCase& a, Dtype dt) {
  Tensors in{make({a.batch, a.tokens, a.dim}, 1, -1, 1, dt),
             make({a.heads, a.head_dim, a.dim}, 2, -0.4, 0.4, dt),
             make({a.heads, a.head_dim, a.dim}, 3, -0.4, 0.4, dt),
             make({a.heads}, 4, 0.2, 1.0, dt)};
  if (a.bias) {
    in.push_back(make({a.heads, a.head_dim}, 5, -0.3, 0.3, dt));
    in.push_back(make({a.heads, a.head_dim}, 6, -0.3, 0.3, dt));
  }
  if (a.mask != AttentionCase::kNone) {
    const Shape shape = a.mask == AttentionCase::kShared ? Shape{a.tokens, a.tokens}
                                                         : Shape{a.batch, a.tokens, a.tokens};
    std::vector<double> m = make(shape, 7, -1, 1).to_vector<double>();
    std::vector<uint8_t> allowed(m.size());
    for (size_t i = 0; i < m.size(); ++i) {
      const int64_t query = static_cast<int64_t>(i) / a.tokens % a.tokens;
      // Query 1 sees no key at all: it must contribute nothing.
      allowed[i] = m[i] > -0.3 && !(a.tokens > 1 && query == 1);
    }
    in.push_back(from_vector(allowed, shape).astype(Dtype::boolean));
  }
  return in;
}

Tensor attention_grad_of(const AttentionCase& a, const Tensors& x) {
  energy::AttentionWeights w{x[1], x[2], x[3], a.bias ? x[4] : Tensor(), a.bias ? x[5] : Tensor()};
  const Tensor mask = a.mask != AttentionCase::kNone ? x.back() : Tensor();
  return energy::energy_attention_grad(x[0], w, mask, a.exclude_self);
}

Tensor attention_energy_of(const AttentionCase& a, const Tensors& x) {
  energy::AttentionWeights w{x[1], x[2], x[3], a.bias ? x[4] : Tensor(), a.bias ? x[5] : Tensor()};
  const Tensor mask = a.mask != AttentionCase::kNone ? x.back() : Tensor();
  return energy::energy_attention(x[0], w, mask, a.exclude_self);
}

std::vector<AttentionCase> attention_shapes() {
  using A = AttentionCase;
  return {
      {"plain", 2, 9, 12, 2, 8},
      {"exclude_self", 3, 17, 16, 3, 32, false, A::kNone, true},
      {"image_et_size", 2, 65, 32, 4, 32, false, A::kNone, true},
      {"bias", 2, 11, 10, 2, 5, true},
      {"shared_mask", 2, 13, 8, 2, 6, false, A::kShared},
      {"batch_mask_exclude_self", 3, 10, 8, 2, 7, true, A::kPerBatch, true},
      {"head_wider_than_a_warp", 1, 7, 12, 1, 40},
      {"head_128", 1, 5, 16, 2, 128, false, A::kNone, true},
      {"head_160_takes_the_fallback", 1, 5, 16, 1, 160},
      {"one_token", 2, 1, 6, 2, 4, false, A::kNone, true},
      {"many_tokens", 1, 300, 16, 2, 16, false, A::kNone, true},
  };
}

std::vector<Case> energy_cases() {
  std::vector<Case> cases;
  for (const AttentionCase& a : attention_shapes()) {
    std::vector<int> argnums = {0, 1, 2, 3};
    if (a.bias) argnums = {0, 1, 2, 3, 4, 5};
    // Second derivatives on the smaller shapes (they run the ops fallback twice over).
    const bool second = a.batch * a.tokens * a.tokens <= 1000;
    cases.push_back({"attention_" + a.name, [a](Dtype dt) { return attention_inputs(a, dt); },
                     [a](const Tensors& x) { return attention_grad_of(a, x); }, kFloat, 1e-4,
                     argnums, second});
    cases.push_back({"attention_energy_" + a.name,
                     [a](Dtype dt) { return attention_inputs(a, dt); },
                     [a](const Tensors& x) { return attention_energy_of(a, x); }, kFloat, 1e-4,
                     argnums, second});
  }
  for (const bool lse : {false, true}) {
    const std::string kind = lse ? "lse" : "relu2";
    auto fn = [lse](const Tensors& x) {
      return energy::hopfield_energy_grad(
          x[0], x[1], lse ? energy::HopfieldKind::lse : energy::HopfieldKind::relu2,
          lse ? x[2] : Tensor());
    };
    auto inputs = [lse](Shape g, int64_t m) {
      return [lse, g, m](Dtype dt) {
        Tensors in{make(g, 1, -1, 1, dt), make({m, g.back()}, 2, -0.5, 0.5, dt)};
        if (lse) in.push_back(full({}, 1.7, dt));
        return in;
      };
    };
    const std::vector<int> args = lse ? std::vector<int>{0, 1, 2} : std::vector<int>{0, 1};
    cases.push_back({"hopfield_" + kind, inputs({3, 7, 12}, 20), fn, kFloat, 1e-4, args});
    cases.push_back(
        {"hopfield_" + kind + "_large", inputs({4, 65, 64}, 256), fn, kFloat, 1e-4, args, false});
    cases.push_back({"hopfield_" + kind + "_no_tokens", inputs({0, 8}, 5), fn, kFloat, 1e-4, args});
  }
  return cases;
}

class ParityEnergy : public ::testing::TestWithParam<Case> {};

TEST_P(ParityEnergy, MatchesTheCpu) {
  if (!cuda_is_available()) GTEST_SKIP() << kNoGpu;
  run_case(GetParam());
}

INSTANTIATE_TEST_SUITE_P(CudaParityEnergy, ParityEnergy, ::testing::ValuesIn(energy_cases()),
                         case_name);

// The CUDA kernels against the ops fallback on the same device.
TEST(CudaParityEnergyKernels, EqualTheirFallbackOnTheGpu) {
  if (!cuda_is_available()) GTEST_SKIP() << kNoGpu;
  for (const AttentionCase& a : attention_shapes()) {
    for (Dtype dt : kFloat) {
      SCOPED_TRACE(a.name + " in " + dtype_name(dt));
      const Tensors in = to_gpu(attention_inputs(a, dt));
      const prims::EnergyAttentionGrad op(a.bias, a.mask != AttentionCase::kNone, a.exclude_self);
      const Tensor want = op.fallback(in);
      const Tensor got = attention_grad_of(a, in);
      EXPECT_LE(normalised_error(got, want), tolerance(1e-5, dt));

      // The energy itself: the row-pass kernel against its fallback.
      const prims::EnergyAttentionValue value(a.bias, a.mask != AttentionCase::kNone,
                                              a.exclude_self);
      EXPECT_LE(normalised_error(attention_energy_of(a, in), value.fallback(in)),
                tolerance(1e-5, dt))
          << "energy";

      // The per-(batch, head) part of its vjp: the kernel against its fallback.
      const int64_t hy = a.heads * a.head_dim;
      Tensors core{make({a.batch, a.tokens, 2 * hy}, 11, -1, 1, dt).to(Device::cuda(0)),
                   make({a.batch, a.tokens, 2 * hy}, 12, -1, 1, dt).to(Device::cuda(0)), in[3]};
      if (a.mask != AttentionCase::kNone) core.push_back(in.back());
      auto core_op = std::make_shared<prims::EnergyAttentionCoreVjp>(
          a.heads, a.mask != AttentionCase::kNone, a.exclude_self);
      const Tensor core_got = apply(core_op, core, {a.batch, a.tokens, 5 * hy}, dt);
      EXPECT_LE(normalised_error(core_got, core_op->fallback(core)), tolerance(1e-5, dt))
          << "core vjp";
    }
  }
}

// A large call: batch 256 of the image ET's 65 tokens runs in the kernels and agrees with the CPU.
TEST(CudaParityEnergyKernels, ImageEtBatchOf256) {
  if (!cuda_is_available()) GTEST_SKIP() << kNoGpu;
  const AttentionCase a{"big", 256, 65, 128, 4, 32, false, AttentionCase::kNone, true};
  const Tensors host = attention_inputs(a, Dtype::f32);
  EXPECT_LE(normalised_error(attention_grad_of(a, to_gpu(host)), attention_grad_of(a, host)), 1e-5);
}

}  // namespace
}  // namespace basin
