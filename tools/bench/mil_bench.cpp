// basin-bench mil-step: one training step of the MIL Hopfield-pooling classifier at the size of
// ../shared/bench/torch_ref/mil_hopfield.py (16 bags × 50 instances × 230 features, MLP
// 230–256–128, 4 heads × 32, one learned query, β = 1/sqrt(32), BCE, Adam lr 1e-3).
#include <omp.h>

#include "basin/basin.h"
#include "models/zoo/mil_hopfield.h"
#include "tools/bench/bench.h"

namespace basin::bench {
namespace {

Json mil_step() {
  constexpr int64_t kBags = 16, kInstances = 50, kFeatures = 230, kPool = 512;
  manual_seed(0);
  zoo::MilHopfieldOptions o;
  o.num_features = kFeatures;
  o.embedding = {256, 128};
  o.hopfield.num_heads = 4;
  o.hopfield.hidden_size = 32;
  o.quantity = 1;
  zoo::MilHopfield model(o);
  optim::Adam adam(model.parameters(), 1e-3);

  // A pool of bags as in the PyTorch script: N(0, 1) features, half the bags positive with a few
  // shifted instances; each step draws 16 of them.
  Generator gen(1);
  Tensor pool = normal({kPool, kInstances, kFeatures}, 0, 1, Dtype::f32, Device::cpu(), &gen);
  const Tensor positive = rand({kPool}, Dtype::f32, Device::cpu(), &gen) < 0.5;
  const Tensor labels = positive.astype(Dtype::f32);
  {
    const auto lab = labels.to_vector<float>();
    float* x = pool.data<float>();
    for (int64_t b = 0; b < kPool; ++b)
      if (lab[b] > 0.5f)
        for (int64_t i = 0; i < 5; ++i)
          for (int64_t f = 0; f < 10; ++f) x[(b * kInstances + i) * kFeatures + f] += 1.0f;
  }
  int64_t cursor = 0;
  auto step = [&] {
    const Tensor bags = slice(pool, 0, cursor, cursor + kBags).contiguous();
    const Tensor y = slice(labels, 0, cursor, cursor + kBags).contiguous();
    cursor = (cursor + kBags) % kPool;
    const Tensor loss = nn::bce_with_logits(model.forward(bags), y);
    adam.zero_grad();
    loss.backward();
    adam.step();
    return loss.item<double>();
  };
  constexpr int kSteps = 50;
  const StepTiming t = time_steps(step, kSteps, 5);
  return {{"bench", "mil-step"},
          {"ms_per_step", t.ms_median},
          {"ms_min", t.ms_min},
          {"peak_rss_mib", peak_rss_mib()},
          {"matmul_gflop_per_step", t.matmul_gflop},
          {"gflops", t.matmul_gflop / (t.ms_median / 1e3)},
          {"threads", omp_get_max_threads()},
          {"steps", kSteps},
          {"loss", t.last_loss},
          {"size",
           "16 bags x 50 instances x 230 features, MLP 230-256-128, HopfieldPooling 4x32 heads, "
           "1 query, beta=1/sqrt(32), BCE, Adam lr=1e-3"}};
}

const Register r("mil-step", mil_step);

}  // namespace
}  // namespace basin::bench
