// Training-step benchmarks of the models at the reference sizes of ../shared/bench (the same work
// as its PyTorch scripts): one JSON line each with ms_per_step (median after warm-up),
// peak_rss_mib and the achieved matmul GFLOP/s (FLOPs counted by the kernels).
#include <omp.h>

#include "basin/basin.h"
#include "data/masking.h"
#include "models/zoo/image_et.h"
#include "tools/bench/bench.h"

namespace basin::bench {
namespace {

/// The image ET at the reference size (et_image.py): batch 32 (or `batch`), 32×32×3 images,
/// patch 4 → 64 patches + CLS, D = 128, 4 heads × 32, M = 512 ReLU² memories, T = 12, α = 0.1,
/// attention over B ≠ C, exactly half the patches masked, MSE over them, Adam lr 1e-4. The
/// images live on `device`; the masks are drawn on the host and copied there, as in training.
Json et_image_step(const std::string& name, int64_t batch, Device device) {
  if (device.is_cuda() && !cuda_is_available())
    return {{"bench", name}, {"skipped", "no CUDA device"}};
  constexpr int64_t kSize = 32, kPatch = 4, kDim = 128;
  manual_seed(0);
  zoo::ImageETOptions o;
  o.channels = 3;
  o.height = o.width = kSize;
  o.patch = kPatch;
  o.dim = kDim;
  o.steps = 12;
  o.step_size = 0.1;
  Config block = Config::parse("heads = 4\nhead_dim = 32\nmemories = 512\nexclude_self = true\n");
  auto model = std::make_shared<zoo::ImageEnergyTransformer>(
      o, energy::make_energy_transformer_block(block, kDim));
  model->to(device);
  optim::Adam adam(model->parameters(), 1e-4);
  // Smooth random images: 8×8 noise upsampled (content does not change the timing).
  Generator gen(1);
  const Tensor coarse = rand({512, 3, 8, 8}, Dtype::f32, Device::cpu(), &gen);
  const Tensor pool =
      reshape(expand(reshape(coarse, {512, 3, 8, 1, 8, 1}), {512, 3, 8, 4, 8, 4}), {512, 3, 32, 32})
          .to(device);
  const data::MaskSpec half = data::parse_mask_spec("scatter:32");
  Generator mask_gen(2);
  int64_t cursor = 0;
  auto step = [&] {
    const Tensor images = slice(pool, 0, cursor, cursor + batch).contiguous();
    cursor = (cursor + batch) % 512;
    const Tensor mask = data::make_masks(half, batch, 8, 8, &mask_gen).to(device);
    const auto out = model->run(images, mask);
    const Tensor loss = zoo::masked_patch_loss(out.pred, out.patches, mask);
    adam.zero_grad();
    loss.backward();
    adam.step();
    return loss.item<double>();
  };
  const StepTiming t = time_steps(step, 20, 3);
  return {{"bench", name},
          {"device", device.str()},
          {"batch", batch},
          {"ms_per_step", t.ms_median},
          {"ms_min", t.ms_min},
          {"peak_rss_mib", peak_rss_mib()},
          {"gflops", t.matmul_gflop / (t.ms_median / 1e3)},
          {"matmul_gflop_per_step", t.matmul_gflop},
          {"threads", omp_get_max_threads()},
          {"loss", t.last_loss},
          {"size",
           "32x32x3, patch 4 (64+1 tokens), D=128, 4x32 heads, M=512, T=12, "
           "alpha=0.1, 50% masked, Adam"}};
}

const Register r1("et-image-step",
                  [] { return et_image_step("et-image-step", 32, Device::cpu()); });
// The image ET issue's GPU sizes (docs/gpu.md): batch 32 and 256 on cuda:0.
const Register r2("et-image-step-cuda-b32",
                  [] { return et_image_step("et-image-step-cuda-b32", 32, Device::cuda(0)); });
const Register r3("et-image-step-cuda-b256",
                  [] { return et_image_step("et-image-step-cuda-b256", 256, Device::cuda(0)); });

}  // namespace
}  // namespace basin::bench
