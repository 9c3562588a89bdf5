// One training step of each model on a GPU equals the same step on the CPU: the loss, every
// parameter's gradient and the parameters after an AdamW update, from the same initial
// parameters and batch. Skips without a GPU.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "basin/basin.h"
#include "data/masking.h"
#include "models/train/trainer.h"
#include "models/zoo/graph_et.h"
#include "models/zoo/image_et.h"
#include "models/zoo/mil_hopfield.h"
#include "tests/backends/cuda/parity.h"
#include "tests/test_util.h"

namespace basin {
namespace {
using testing::make;
using testing::parity::kNoGpu;
using testing::parity::normalised_error;

double norm_of(const Tensor& t) {
  return std::sqrt(sum(square(t.to(Device::cpu()).astype(Dtype::f64))).item<double>());
}

using ModelFactory = std::function<std::shared_ptr<nn::Module>()>;
/// The batch loss of a model on `device` (the batch is built on the host and moved there).
using LossFn = std::function<Tensor(nn::Module&, Device)>;

/// Normalised error of each tensor of `got` against `want`, relative to the larger of its own
/// norm and a thousandth of the largest norm in `want`: a gradient that is zero in exact
/// arithmetic (the bias of a LayerNorm whose output only feeds softmax keys) holds rounding
/// noise on either device, and so does a parameter that starts at zero and gets it from Adam.
std::vector<double> errors(const Tensors& got, const Tensors& want) {
  double largest = 0;
  for (const Tensor& w : want) largest = std::max(largest, norm_of(w));
  std::vector<double> out;
  for (size_t i = 0; i < got.size(); ++i) {
    const double scale = std::max(norm_of(want[i]), 1e-3 * largest);
    out.push_back(norm_of(got[i].to(Device::cpu()) - want[i]) / std::max(scale, 1e-300));
  }
  return out;
}

/// Builds the model twice from the same seed, moves one copy to cuda:0, and compares two AdamW
/// steps on each: the loss within `tol` (normalised error), gradients and parameters after the
/// update within `tol` (errors() above).
void expect_same_step(const ModelFactory& make_model, const LossFn& loss_of, double tol) {
  manual_seed(11);
  auto cpu = make_model();
  manual_seed(11);
  auto gpu = make_model();
  gpu->to(Device::cuda(0));
  cpu->train();
  gpu->train();
  optim::AdamW opt_cpu(cpu->parameters(), 1e-2, {.weight_decay = 0.01});
  optim::AdamW opt_gpu(gpu->parameters(), 1e-2, {.weight_decay = 0.01});
  for (int step = 0; step < 2; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    opt_cpu.zero_grad();
    opt_gpu.zero_grad();
    const Tensor loss_cpu = loss_of(*cpu, Device::cpu());
    const Tensor loss_gpu = loss_of(*gpu, Device::cuda(0));
    ASSERT_TRUE(loss_gpu.device().is_cuda());
    EXPECT_LE(normalised_error(loss_gpu, loss_cpu), tol);
    loss_cpu.backward();
    loss_gpu.backward();
    const auto want = cpu->named_parameters(), got = gpu->named_parameters();
    ASSERT_EQ(want.size(), got.size());
    Tensors want_grads, got_grads;
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_TRUE(got[i].second.grad().defined()) << got[i].first;
      EXPECT_TRUE(got[i].second.grad().device().is_cuda()) << got[i].first;
      want_grads.push_back(want[i].second.grad());
      got_grads.push_back(got[i].second.grad());
    }
    const std::vector<double> grad_errors = errors(got_grads, want_grads);
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_LE(grad_errors[i], tol) << "gradient of " << got[i].first;
    }
    opt_cpu.step();
    opt_gpu.step();
    Tensors want_params, got_params;
    for (size_t i = 0; i < want.size(); ++i) {
      want_params.push_back(want[i].second);
      got_params.push_back(got[i].second);
    }
    const std::vector<double> param_errors = errors(got_params, want_params);
    for (size_t i = 0; i < want.size(); ++i) EXPECT_LE(param_errors[i], tol) << got[i].first;
  }
}

zoo::ImageETOptions image_options(Dtype dtype) {
  zoo::ImageETOptions o;
  o.channels = 3;
  o.height = 16;
  o.width = 16;
  o.patch = 4;
  o.dim = 32;
  o.steps = 4;
  o.step_size = 0.1;
  o.dtype = dtype;
  return o;
}

void image_et_step(Dtype dtype, double tol) {
  const auto factory = [dtype] {
    Config block = Config::parse("heads = 2\nhead_dim = 16\nmemories = 64\nexclude_self = true\n");
    return std::make_shared<zoo::ImageEnergyTransformer>(
        image_options(dtype), energy::make_energy_transformer_block(block, 32, dtype));
  };
  const Tensor images = make({4, 3, 16, 16}, 3, 0, 1, dtype);
  Generator gen(4);
  const Tensor mask = data::make_masks(data::parse_mask_spec("scatter:8"), 4, 4, 4, &gen);
  const auto loss = [&](nn::Module& m, Device device) {
    auto& model = dynamic_cast<zoo::ImageEnergyTransformer&>(m);
    const Tensor mk = mask.to(device);
    const auto out = model.run(images.to(device), mk);
    return zoo::masked_patch_loss(out.pred, out.patches, mk);
  };
  expect_same_step(factory, loss, tol);
}

TEST(CudaModelStep, ImageEnergyTransformerFloat32) {
  if (!cuda_is_available()) GTEST_SKIP() << kNoGpu;
  image_et_step(Dtype::f32, 1e-4);
}

TEST(CudaModelStep, ImageEnergyTransformerFloat64) {
  if (!cuda_is_available()) GTEST_SKIP() << kNoGpu;
  image_et_step(Dtype::f64, 1e-10);
}

void mil_step(Dtype dtype, double tol) {
  const auto factory = [dtype] {
    zoo::MilHopfieldOptions o;
    o.num_features = 12;
    o.embedding = {16, 8};
    o.hopfield.num_heads = 2;
    o.hopfield.hidden_size = 4;
    o.quantity = 2;
    auto model = std::make_shared<zoo::MilHopfield>(o);
    model->to(dtype);
    return model;
  };
  const Tensor bags = make({5, 7, 12}, 5, -1, 1, dtype);
  const Tensor padding = make({5, 7}, 6, 0, 1) > 0.8;  // some instances are padding
  const Tensor labels = (make({5}, 7, 0, 1) > 0.5).astype(dtype);
  const auto loss = [&](nn::Module& m, Device device) {
    auto& model = dynamic_cast<zoo::MilHopfield&>(m);
    const Tensor logits = model.forward(bags.to(device), padding.to(device));
    return nn::bce_with_logits(logits, labels.to(device));
  };
  expect_same_step(factory, loss, tol);
}

TEST(CudaModelStep, MilHopfieldPoolingFloat32) {
  if (!cuda_is_available()) GTEST_SKIP() << kNoGpu;
  mil_step(Dtype::f32, 1e-4);
}

TEST(CudaModelStep, MilHopfieldPoolingFloat64) {
  if (!cuda_is_available()) GTEST_SKIP() << kNoGpu;
  mil_step(Dtype::f64, 1e-10);
}

/// A 12-node ring with self-loops and one chord per node, in CSR order, on `device`.
energy::AttentionGraph ring_graph(Device device) {
  std::vector<int64_t> offsets{0}, src;
  const int64_t n = 12;
  for (int64_t c = 0; c < n; ++c) {
    for (int64_t key : {(c + n - 1) % n, c, (c + 1) % n, (c * 5 + 3) % n}) src.push_back(key);
    offsets.push_back(static_cast<int64_t>(src.size()));
  }
  energy::AttentionGraph g = energy::AttentionGraph::from_csr(
      from_vector(offsets, {n + 1}), from_vector(src, {static_cast<int64_t>(src.size())}));
  for (Tensor* t : {&g.src, &g.dst, &g.offsets}) {
    if (t->defined()) *t = t->to(device);
  }
  return g;
}

void graph_et_step(Dtype dtype, double tol) {
  const auto factory = [dtype] {
    zoo::GraphETOptions o;
    o.num_features = 6;
    o.dim = 16;
    o.steps = 3;
    o.step_size = 0.3;
    o.dtype = dtype;
    Config block = Config::parse("heads = 2\nhead_dim = 8\nmemories = 32\n");
    return std::make_shared<zoo::GraphEnergyTransformer>(
        o, energy::make_energy_transformer_block(block, 16, dtype));
  };
  const Tensor features = make({12, 6}, 8, -1, 1, dtype);
  const Tensor labels = from_vector(std::vector<int64_t>{0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0}, {12});
  const Tensor weight = from_vector(std::vector<double>{1.0, 3.0}, {2}).astype(dtype);
  const auto loss = [&](nn::Module& m, Device device) {
    auto& model = dynamic_cast<zoo::GraphEnergyTransformer&>(m);
    const Tensor logits = model.forward(features.to(device), ring_graph(device));
    return nn::cross_entropy(logits, labels.to(device), weight.to(device));
  };
  expect_same_step(factory, loss, tol);
}

TEST(CudaModelStep, GraphEnergyTransformerFloat32) {
  if (!cuda_is_available()) GTEST_SKIP() << kNoGpu;
  graph_et_step(Dtype::f32, 1e-4);
}

TEST(CudaModelStep, GraphEnergyTransformerFloat64) {
  if (!cuda_is_available()) GTEST_SKIP() << kNoGpu;
  graph_et_step(Dtype::f64, 1e-10);
}

// The trainer on a GPU: the image ET task from a config, as basin-train --device cuda runs it,
// ends where the same run on the CPU ends.
TEST(CudaTrainer, ImageEtRunEndsWhereTheCpuRunEnds) {
  if (!cuda_is_available()) GTEST_SKIP() << kNoGpu;
  const std::string toml = R"([model]
type = "image_et"
patch = 4
dim = 16
steps = 3
step_size = 0.1
[model.block]
heads = 2
head_dim = 8
memories = 32
[data]
type = "procedural"
size = 16
channels = 3
train_size = 64
test_size = 16
[train]
steps = 6
batch_size = 8
eval_every = 6
deterministic = true
[optim]
type = "adamw"
lr = 1e-3
)";
  testing::TempDir dir;
  train::Metrics got, want;
  for (const char* device : {"cpu", "cuda"}) {
    Config config = Config::parse(toml, "cuda_trainer.toml");
    config.set(std::string("train.device=\"") + device + "\"");
    train::TrainerOptions o;
    o.run_dir = (dir.path() / device).string();
    o.quiet = true;
    train::Trainer trainer(config, o);
    (std::string(device) == "cpu" ? want : got) = trainer.run();
  }
  ASSERT_TRUE(got.count("masked_mse"));
  EXPECT_NEAR(got.at("masked_mse"), want.at("masked_mse"), 1e-5 * want.at("masked_mse"));
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "cuda" / "checkpoint-6" / "model.safetensors"));
}

}  // namespace
}  // namespace basin
