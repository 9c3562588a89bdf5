// Five training steps of an nn::MLP against PyTorch (tests/fixtures/mlp_train_fixture.py, float32):
// load_state_dict from torch's names, cross entropy with label smoothing, clip_grad_norm, a
// warmup-cosine schedule and AdamW must reproduce torch's losses and final parameters.
#include "models/nn/layers.h"
#include "models/nn/loss.h"
#include "models/optim/adam.h"
#include "models/optim/clip.h"
#include "models/optim/schedule.h"
#include "tests/models/nn/nn_fixture_util.h"
#include "tests/test_util.h"

namespace basin::nn {
namespace {
using basin::testing::all_close;

const char* const kFile = "mlp_train_fixture.txt";

StateDict with_prefix(const std::string& prefix) {
  return basin::testing::nn_fixture_prefixed(kFile, prefix);
}

TEST(NnMlpTrain, FiveAdamWStepsMatchTorch) {
  const auto fx = [](const std::string& name) { return basin::testing::nn_fixture(kFile, name); };
  MLP model({6, 16, 16, 3});
  model.load_state_dict(with_prefix("init."));  // strict: torch's names are ours
  const Tensor x = fx("x").astype(Dtype::f32);
  const Tensor y = fx("y").astype(Dtype::i64);
  const auto losses = fx("losses").to_vector<double>();
  const auto norms = fx("grad_norms").to_vector<double>();
  const auto lrs = fx("lrs").to_vector<double>();

  constexpr int kSteps = 5;
  optim::AdamW opt(model.parameters(), 1e-2,
                   {.betas = {0.9, 0.999}, .eps = 1e-8, .weight_decay = 0.01});
  const optim::Schedule schedule = optim::Schedule::warmup_cosine(1e-2, 2, kSteps, 1e-3);
  for (int step = 0; step < kSteps; ++step) {
    const size_t s = static_cast<size_t>(step);
    opt.zero_grad();
    const Tensor loss = cross_entropy(model(x), y, {}, 0.1);
    EXPECT_EQ(loss.dtype(), Dtype::f32);
    loss.backward();
    EXPECT_NEAR(loss.item<double>(), losses[s], 1e-5 * losses[s]) << "step " << step;
    const double norm = optim::clip_grad_norm(model.parameters(), 0.5);
    EXPECT_NEAR(norm, norms[s], 1e-5 * norms[s]) << "step " << step;
    schedule.apply(opt, step);
    EXPECT_NEAR(opt.lr(), lrs[s], 1e-15) << "step " << step;
    opt.step();
  }
  const StateDict final_state = model.state_dict();
  const StateDict want = with_prefix("final.");
  ASSERT_EQ(final_state.size(), want.size());
  for (const auto& [name, t] : want) {
    EXPECT_EQ(final_state.at(name).dtype(), Dtype::f32) << name;
    EXPECT_TRUE(all_close(final_state.at(name), t, 1e-5, 1e-7)) << name;
  }
  // The run did train: the loss went down.
  EXPECT_LT(cross_entropy(model(x), y, {}, 0.1).item<double>(), losses[0]);
}

}  // namespace
}  // namespace basin::nn
