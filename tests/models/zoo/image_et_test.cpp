// The image Energy Transformer: patches, one training step against PyTorch (float32, both
// attention variants), derivatives in float64, the reference JAX checkpoint layout, the losses,
// completions averaged over flipped and transposed views, a short run on procedural images that
// lowers the loss, and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "basin/basin.h"
#include "data/masking.h"
#include "data/procedural.h"
#include "models/zoo/image_et.h"
#include "tests/models/nn/nn_fixture_util.h"
#include "tests/test_util.h"

namespace basin::zoo {
namespace {

using basin::testing::all_close;
using basin::testing::make;
using basin::testing::throws_error;

const Tensor& fx(const std::string& name) {
  return basin::testing::nn_fixture("image_et_fixture.txt", name);
}

ImageETOptions small_options(Dtype dtype = Dtype::f32) {
  ImageETOptions o;
  o.channels = 3;
  o.height = 8;
  o.width = 12;
  o.patch = 4;
  o.dim = 16;
  o.steps = 3;
  o.step_size = 0.1;
  o.dtype = dtype;
  return o;
}

std::shared_ptr<ImageEnergyTransformer> small_model(bool exclude_self, Dtype dtype = Dtype::f32) {
  Config block =
      Config::parse(fmt::format("heads = 2\nhead_dim = 4\nmemories = 24\n"
                                "exclude_self = {}\n",
                                exclude_self));
  return std::make_shared<ImageEnergyTransformer>(
      small_options(dtype), energy::make_energy_transformer_block(block, 16, dtype));
}

/// Relative error max|a − b| / max|b|.
double rel_error(const Tensor& a, const Tensor& b) {
  const double scale = std::max(max(abs(b.astype(Dtype::f64))).item<double>(), 1e-30);
  return max(abs(a.astype(Dtype::f64) - b.astype(Dtype::f64))).item<double>() / scale;
}

TEST(ImageEt, PatchifyAndUnpatchifyAreInverse) {
  const Tensor images = make({2, 3, 8, 12}, 1);
  const Tensor p = patchify(images, 4);
  EXPECT_EQ(p.shape(), (Shape{2, 6, 48}));
  // Patch (r, c) = 1 * 3 + 2 holds rows 4..7, columns 8..11; values ordered (channel, row, col).
  const std::vector<double> pv = p.to_vector<double>(), iv = images.to_vector<double>();
  EXPECT_DOUBLE_EQ(pv[(1 * 6 + 5) * 48 + 16 + 4 * 2 + 3], iv[((1 * 3 + 1) * 8 + 6) * 12 + 11]);
  EXPECT_TRUE(all_close(unpatchify(p, 4, 3, 8, 12), images, 0, 0));
  EXPECT_TRUE(throws_error([&] { patchify(images, 5); }, {"[patchify]", "8x12", "5x5"}));
  EXPECT_TRUE(throws_error([&] { unpatchify(p, 4, 3, 8, 8); }, {"[unpatchify]"}));
}

/// One training step equals PyTorch: loss (both forms), predictions and every gradient.
void check_training_step(const std::string& prefix, bool exclude_self) {
  auto model = small_model(exclude_self);
  nn::StateDict state;
  for (const auto& [name, _] : model->named_parameters())
    state[name] = fx(prefix + "param." + name).astype(Dtype::f32);
  model->load_state_dict(state, /*strict=*/false);
  const Tensor images = fx(prefix + "images").astype(Dtype::f32);
  const Tensor mask = fx(prefix + "mask").astype(Dtype::i64);
  const auto out = model->run(images, mask);
  EXPECT_LE(rel_error(out.pred, fx(prefix + "pred")), 1e-5) << prefix;
  const Tensor loss = masked_patch_loss(out.pred, out.patches, mask);
  EXPECT_LE(rel_error(loss, fx(prefix + "loss_mse")), 1e-5) << prefix;
  EXPECT_LE(rel_error(masked_patch_loss(out.pred, out.patches, mask, ImageLoss::rmse),
                      fx(prefix + "loss_rmse")),
            1e-5)
      << prefix;
  loss.backward();
  int checked = 0;
  for (const auto& [name, param] : model->named_parameters()) {
    ASSERT_TRUE(param.grad().defined()) << prefix << name;
    EXPECT_LE(rel_error(param.grad(), fx(prefix + "grad." + name)), 1e-4) << prefix << name;
    ++checked;
  }
  EXPECT_EQ(checked, 12);
}

TEST(ImageEt, TrainingStepMatchesPyTorch) { check_training_step("all.", false); }
TEST(ImageEt, TrainingStepMatchesPyTorchWithoutSelfAttention) {
  check_training_step("noself.", true);
}

TEST(ImageEt, DerivativesThroughTheDescentInFloat64) {
  auto model = small_model(false, Dtype::f64);
  const Tensor images = make({1, 3, 8, 12}, 5, 0, 1);
  const Tensor mask = from_vector<int64_t>({1, 0, 2, 1, 0, 0}, Shape{1, 6});
  // The loss as a function of the MASK token and the positional embedding.
  const Fn f = [&](const Tensors& in) -> Tensors {
    model->mask_token = in[0];
    model->pos_embed = in[1];
    const auto out = model->run(images, mask);
    return {masked_patch_loss(out.pred, out.patches, mask)};
  };
  GradcheckOptions o;
  o.atol = 1e-7;
  EXPECT_TRUE(gradcheck(f, {make({16}, 6, -0.5, 0.5), make({7, 16}, 7, -0.5, 0.5)}, o));
}

TEST(ImageEt, PixelNormalisationEqualsFoldingItIntoTheEncoderAndDecoder) {
  // With pixel mean m and std s per channel, encoder(W, b) on (p − m) / s and decoder(V, c) mapped
  // back by · s + m equal a plain model with encoder (W / s, b − W (m / s)) and decoder
  // (s V, s c + m), s and m repeated over each patch's values.
  manual_seed(11);
  Config block = Config::parse("heads = 2\nhead_dim = 4\nmemories = 24\n");
  ImageETOptions o = small_options(Dtype::f64);
  o.pixel_mean = {0.4, 0.5, 0.3};
  o.pixel_std = {0.2, 0.25};  // neither 1 nor 3 values: an error
  EXPECT_TRUE(throws_error(
      [&] {
        ImageEnergyTransformer(o, energy::make_energy_transformer_block(block, 16, Dtype::f64));
      },
      {"pixel_std", "1 or 3", "got 2"}));
  o.pixel_std = {0.2, 0.25, 0.5};
  ImageEnergyTransformer normalised(o,
                                    energy::make_energy_transformer_block(block, 16, Dtype::f64));
  ImageEnergyTransformer plain(small_options(Dtype::f64),
                               energy::make_energy_transformer_block(block, 16, Dtype::f64));
  nn::StateDict state = normalised.state_dict();
  ASSERT_EQ(state.count("pixel_mean"), 1u);
  EXPECT_TRUE(
      all_close(state.at("pixel_std"), from_vector<double>({0.2, 0.25, 0.5}, Shape{3}), 0, 0));
  state.erase("pixel_mean");
  state.erase("pixel_std");
  std::vector<double> m, s;  // per patch value: channel-major, 16 values a channel
  for (int c = 0; c < 3; ++c) {
    for (int k = 0; k < 16; ++k) {
      m.push_back(o.pixel_mean[c]);
      s.push_back(o.pixel_std[c]);
    }
  }
  const Tensor mv = from_vector(m, Shape{48}), sv = from_vector(s, Shape{48});
  const Tensor w = state.at("encoder.weight"),
               v = state.at("decoder.weight");  // (16, 48), (48, 16)
  state["encoder.weight"] = w / sv;
  state["encoder.bias"] = state.at("encoder.bias") - sum(w * (mv / sv), {1});
  state["decoder.weight"] = v * unsqueeze(sv, 1);
  state["decoder.bias"] = state.at("decoder.bias") * sv + mv;
  plain.load_state_dict(state);

  const Tensor images = make({2, 3, 8, 12}, 12, 0, 1).astype(Dtype::f64);
  const Tensor mask = from_vector<int64_t>({1, 0, 2, 1, 0, 0, 0, 1, 1, 0, 2, 0}, Shape{2, 6});
  const auto a = normalised.run(images, mask), b = plain.run(images, mask);
  EXPECT_TRUE(all_close(a.patches, b.patches, 0, 0));
  EXPECT_TRUE(all_close(a.pred, b.pred, 1e-12, 1e-12));
  // The normalisation matters: without it the same weights predict something else.
  nn::StateDict same = normalised.state_dict();
  same.erase("pixel_mean");
  same.erase("pixel_std");
  plain.load_state_dict(same);
  EXPECT_FALSE(all_close(plain.run(images, mask).pred, a.pred, 1e-3, 1e-3));

  // And the gradient through it: the loss as a function of the encoder's weight.
  const Fn f = [&](const Tensors& in) -> Tensors {
    normalised.encoder->weight = in[0];
    const auto out = normalised.run(images, mask);
    return {masked_patch_loss(out.pred, out.patches, mask)};
  };
  GradcheckOptions g;
  g.atol = 1e-7;
  EXPECT_TRUE(gradcheck(f, {make({16, 48}, 13, -0.3, 0.3)}, g));
}

TEST(ImageEt, LoadsTheReferenceJaxCheckpointLayout) {
  ImageETOptions o = small_options();
  Config block = Config::parse("heads = 2\nhead_dim = 4\nmemories = 24\n");
  ImageEnergyTransformer model(o, energy::make_energy_transformer_block(block, 16));
  const std::string npz =
      (std::filesystem::path(__FILE__).parent_path() / "../../fixtures/image_et_jax.npz").string();
  load_jax_checkpoint(model, npz);
  const Tensor pred =
      model.run(fx("jax.image").astype(Dtype::f32), fx("jax.mask").astype(Dtype::i64)).pred;
  EXPECT_LE(rel_error(pred, fx("jax.pred")), 1e-5);

  // A model of another size: the error names the array and both shapes, and nothing changes.
  ImageETOptions wide = o;
  wide.dim = 8;
  ImageEnergyTransformer other(wide, energy::make_energy_transformer_block(block, 8));
  const Tensor before = other.pos_embed.clone();
  EXPECT_TRUE(
      throws_error([&] { load_jax_checkpoint(other, npz); }, {"'Wq'", "(2, 4, 16)", "(2, 4, 8)"}));
  EXPECT_TRUE(all_close(other.pos_embed, before, 0, 0));
  EXPECT_TRUE(throws_error([&] { load_jax_checkpoint(model, npz + ".missing"); }, {".missing"}));
}

TEST(ImageEt, SincosPositionsFollowMaesTable) {
  const Tensor t = sincos_pos_embed(2, 3, 8, Dtype::f64);
  ASSERT_EQ(t.shape(), (Shape{7, 8}));
  const std::vector<double> v = t.to_vector<double>();
  for (int j = 0; j < 8; ++j) EXPECT_EQ(v[j], 0.0) << "the CLS row";
  // Patch (r, c) = (1, 2) is token 1 + 1 * 3 + 2 = 6; quarter 2, so ω = (1, 1/100).
  const double* row = v.data() + 6 * 8;
  const double expect[8] = {std::sin(1.0), std::sin(0.01), std::cos(1.0), std::cos(0.01),
                            std::sin(2.0), std::sin(0.02), std::cos(2.0), std::cos(0.02)};
  for (int j = 0; j < 8; ++j) EXPECT_NEAR(row[j], expect[j], 1e-15) << j;

  ImageETOptions o = small_options();
  o.pos_init = "sincos";
  Config block = Config::parse("heads = 2\nhead_dim = 4\n");
  ImageEnergyTransformer model(o, energy::make_energy_transformer_block(block, 16));
  EXPECT_TRUE(all_close(model.pos_embed, sincos_pos_embed(2, 3, 16), 0.0, 0.0));
  EXPECT_TRUE(model.pos_embed.requires_grad()) << "the table only initialises a parameter";

  EXPECT_TRUE(throws_error([] { sincos_pos_embed(2, 2, 6); }, {"multiple of 4", "6"}));
  o.pos_init = "random";
  EXPECT_TRUE(throws_error(
      [&] { ImageEnergyTransformer(o, energy::make_energy_transformer_block(block, 16)); },
      {"pos_init", "random"}));
}

TEST(ImageEt, TheDescentLowersTheEnergyOfEachImage) {
  manual_seed(3);
  auto model = small_model(false);
  const Tensor images = rand({3, 3, 8, 12});
  const Tensor mask = data::make_masks(data::parse_mask_spec("scatter:3"), 3, 2, 3);
  EnergyTrace trace;
  NoGradGuard no_grad;
  model->run(images, mask, &trace);
  ASSERT_EQ(trace.size(), 4u);
  for (size_t t = 1; t < trace.size(); ++t)
    for (size_t b = 0; b < 3; ++b) EXPECT_LE(trace[t][b], trace[t - 1][b] + 1e-4) << t << "," << b;
}

// The averaged completion of 4 or 8 views commutes with the flips (and transposes) of its group,
// which the single view does not; the visible pixels stay as given.
TEST(ImageEt, CompletingFlippedAndTransposedViewsIsEquivariant) {
  manual_seed(5);
  ImageETOptions o = small_options();
  o.width = 12;
  o.height = 12;
  Config block = Config::parse("heads = 2\nhead_dim = 4\nmemories = 24\n");
  auto model =
      std::make_shared<ImageEnergyTransformer>(o, energy::make_energy_transformer_block(block, 16));
  const int64_t b = 2;
  const Tensor images = rand({b, 3, 12, 12});
  const Tensor mask = data::make_masks(data::parse_mask_spec("scatter:4"), b, 3, 3);
  NoGradGuard no_grad;
  // Transforms of the images (b, 3, 12, 12) and, alike, of the masks' 3 × 3 patch grids.
  auto image_of = [](const Tensor& x, const std::string& g) {
    return (g == "cols"   ? flip(x, {3})
            : g == "rows" ? flip(x, {2})
                          : permute(x, {0, 1, 3, 2}))
        .contiguous();
  };
  auto mask_of = [&](const Tensor& m, const std::string& g) {
    const Tensor grid = reshape(m, {b, 1, 3, 3});
    return reshape(image_of(grid, g), {b, 9});
  };
  const Tensor single = model->complete(images, mask);
  EXPECT_TRUE(all_close(model->complete_views(images, mask, 1), single, 0, 0));
  for (const int views : {4, 8}) {
    const Tensor averaged = model->complete_views(images, mask, views);
    ASSERT_EQ(averaged.shape(), images.shape());
    // The views change the completion, and only in the replaced patches.
    EXPECT_GT(max(abs(averaged - single)).item<double>(), 1e-4) << views;
    const Tensor hidden =
        model->merge({ones_like(patchify(images, 4)), zeros_like(patchify(images, 4))}, mask);
    EXPECT_TRUE(all_close(averaged * (1.0 - hidden), images * (1.0 - hidden), 1e-6, 1e-6)) << views;
    std::vector<std::string> group = {"cols", "rows"};
    if (views == 8) group.push_back("transpose");
    for (const std::string& g : group) {
      EXPECT_LT(rel_error(model->complete_views(image_of(images, g), mask_of(mask, g), views),
                          image_of(averaged, g)),
                1e-5)
          << views << " views, " << g;
      // One view alone does not commute with the transform.
      EXPECT_GT(
          rel_error(model->complete(image_of(images, g), mask_of(mask, g)), image_of(single, g)),
          1e-3)
          << g;
    }
  }
  EXPECT_TRUE(throws_error([&] { model->complete_views(images, mask, 3); }, {"1, 4 or 8 views"}));
  auto wide = small_model(false);  // 8 × 12 images: flips only
  const Tensor wide_images = rand({b, 3, 8, 12});
  const Tensor wide_mask = data::make_masks(data::parse_mask_spec("scatter:3"), b, 2, 3);
  EXPECT_EQ(wide->complete_views(wide_images, wide_mask, 4).shape(), wide_images.shape());
  EXPECT_TRUE(throws_error([&] { wide->complete_views(wide_images, wide_mask, 8); },
                           {"needs them square"}));
}

TEST(ImageEt, AShortRunOnProceduralImagesLowersTheLoss) {
  manual_seed(0);
  ImageETOptions o;
  o.channels = 3;
  o.height = o.width = 16;
  o.patch = 4;
  o.dim = 32;
  o.steps = 4;
  Config block = Config::parse("heads = 2\nhead_dim = 8\nmemories = 64\n");
  ImageEnergyTransformer model(o, energy::make_energy_transformer_block(block, 32));
  optim::Adam adam(model.parameters(), 3e-3);
  auto images = data::procedural_images({.size = 16, .channels = 3, .count = 64, .seed = 1});
  Tensors all;
  for (int64_t i = 0; i < 64; ++i) all.push_back(images->get(i).at("image"));
  const Tensor batch = stack(all, 0);
  const Tensor mask = data::make_masks(data::parse_mask_spec("scatter:8"), 64, 4, 4);
  double first = 0, last = 0;
  for (int step = 0; step < 60; ++step) {
    const auto out = model.run(batch, mask);
    const Tensor loss = masked_patch_loss(out.pred, out.patches, mask);
    if (step == 0) first = loss.item<double>();
    last = loss.item<double>();
    adam.zero_grad();
    loss.backward();
    adam.step();
  }
  EXPECT_LT(last, 0.5 * first) << "from " << first;
}

TEST(ImageEt, ErrorsNameTheProblem) {
  auto model = small_model(false);
  const Tensor mask = zeros({2, 6}, Dtype::i64);
  EXPECT_TRUE(throws_error(
      [&] {
        model->run(zeros({2, 3, 8, 8}), mask);
      },
      {"[ImageEnergyTransformer]", "(B, 3, 8, 12)", "(2, 3, 8, 8)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        model->run(zeros({2, 3, 8, 12}), zeros({2, 5}, Dtype::i64));
      },
      {"mask", "(2, 6)", "(2, 5)"}));
  EXPECT_TRUE(throws_error([&] { model->forward(zeros({1})); }, {"run(images, mask)"}));
  Config block = Config::parse("heads = 2\nhead_dim = 4\n");
  EXPECT_TRUE(throws_error(
      [&] {
        ImageEnergyTransformer(small_options(), energy::make_energy_transformer_block(block, 8));
      },
      {"dimension 8", "16"}));
  ImageETOptions odd = small_options();
  odd.patch = 5;
  EXPECT_TRUE(throws_error(
      [&] { ImageEnergyTransformer(odd, energy::make_energy_transformer_block(block, 16)); },
      {"8x12", "5x5"}));
}

}  // namespace
}  // namespace basin::zoo
