// model.type = "image_et": masked image completion with the image Energy Transformer.
//
//   [model]
//   type = "image_et"
//   patch = 4                  # patch side; the image size and channels come from the data
//   dim = 128                  # D, the token dimension
//   steps = 12                 # T, descent steps
//   step_size = 0.1            # α
//   learnable_step = false
//   mask = "scatter:0.5"       # training masks (data/masking.h: scatter, block, multi_scatter,
//                              # mixture)
//   eval_mask = "scatter:0.5"  # evaluation masks: fixed per held-out image (seed eval_seed)
//   eval_seed = 1234
//   eval_tta = "none"          # or "flips" / "dihedral": evaluation averages the completions of
//                              # the 4 flipped or 8 flipped-and-transposed views of each image
//   loss = "mse"               # mse over the scored patches, or the paper's rmse
//   token_init_std = 0.002     # initial std of the CLS, MASK and positional tokens
//   pos_init = "normal"        # or "sincos": positions start from MAE's 2-D sine-cosine table
//   pixel_mean = []            # the encoder sees (pixel − mean) / std: 1 value or 1 per channel
//   pixel_std = []             # (empty: as given); predictions and losses stay in pixel units
//   init_from = ""             # a reference JAX checkpoint (.npz) to start from
//   [model.block]              # the Energy Transformer block (models/energy/et_block.h):
//   heads = 4                  # heads, head_dim, memories, kind, beta, exclude_self, ...
//   head_dim = 32              # and an optional [model.block.memory] table
//
// Evaluation reports, on the patches the model never saw (mask value 1), the mean squared error
// and PSNR of the completed images in pixel units ([0, 1]), beside two baselines on the same
// masks: each image's mean visible colour, and harmonic interpolation from the visible pixels.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/grad_mode.h"
#include "core/ops.h"
#include "data/catalog.h"
#include "data/file_io.h"
#include "data/image.h"
#include "data/masking.h"
#include "models/train/plots.h"
#include "models/train/task.h"
#include "models/zoo/image_et.h"

namespace basin::zoo {
namespace {

namespace fs = std::filesystem;

/// Fills the masked pixels of one image (C, H, W) by its visible pixels' mean colour per
/// channel; `hidden` (H, W) marks the pixels to fill.
void mean_fill(float* image, const uint8_t* hidden, int64_t c, int64_t h, int64_t w) {
  for (int64_t ch = 0; ch < c; ++ch) {
    float* plane = image + ch * h * w;
    double total = 0;
    int64_t seen = 0;
    for (int64_t i = 0; i < h * w; ++i) {
      if (!hidden[i]) {
        total += plane[i];
        ++seen;
      }
    }
    const float fill = seen > 0 ? static_cast<float>(total / static_cast<double>(seen)) : 0.5f;
    for (int64_t i = 0; i < h * w; ++i)
      if (hidden[i]) plane[i] = fill;
  }
}

/// Harmonic interpolation: the hidden pixels solve Laplace's equation with the visible pixels
/// as boundary values (each hidden pixel the mean of its 4 neighbours inside the image), by
/// successive over-relaxation from the mean fill.
void harmonic_fill(float* image, const uint8_t* hidden, int64_t c, int64_t h, int64_t w) {
  mean_fill(image, hidden, c, h, w);
  constexpr double kOmega = 1.85;
  for (int64_t ch = 0; ch < c; ++ch) {
    float* p = image + ch * h * w;
    for (int iter = 0; iter < 2000; ++iter) {
      double largest = 0;
      for (int64_t y = 0; y < h; ++y) {
        for (int64_t x = 0; x < w; ++x) {
          const int64_t i = y * w + x;
          if (!hidden[i]) continue;
          double s = 0;
          int n = 0;
          if (y > 0) s += p[i - w], ++n;
          if (y + 1 < h) s += p[i + w], ++n;
          if (x > 0) s += p[i - 1], ++n;
          if (x + 1 < w) s += p[i + 1], ++n;
          const double delta = s / n - p[i];
          p[i] = static_cast<float>(p[i] + kOmega * delta);
          largest = std::max(largest, std::fabs(delta));
        }
      }
      if (largest < 1e-6) break;
    }
  }
}

double psnr(double mse) { return mse > 0 ? 10.0 * std::log10(1.0 / mse) : INFINITY; }

class ImageEtTask : public train::Task {
 public:
  explicit ImageEtTask(const train::TaskContext& ctx) : device_(ctx.device) {
    Config config = ctx.config;
    Config model = config.section("model");
    data_ = data::labelled_images(config.section("data"), ctx.seed);
    if (data_.image_shape.size() == 2) {  // gray images (H, W) get their channel axis
      auto add_channel = [](data::Example e) {
        Tensor& image = e.at("image");
        image = unsqueeze(image, 0);
        return e;
      };
      data_.train = data::map(data_.train, add_channel);
      data_.test = data::map(data_.test, add_channel);
      data_.image_shape.insert(data_.image_shape.begin(), 1);
    }
    const Shape& shape = data_.image_shape;
    check(shape.size() == 3, "[image_et] the data's images must be (C, H, W), got {}",
          shape_str(shape));
    ImageETOptions o;
    o.channels = shape[0];
    o.height = shape[1];
    o.width = shape[2];
    o.patch = model.get<int64_t>("patch", 4);
    check(o.patch > 0 && o.height % o.patch == 0 && o.width % o.patch == 0,
          "[config] model.patch: {}x{} images do not divide into {}x{} patches", o.height, o.width,
          o.patch, o.patch);
    o.dim = model.get<int64_t>("dim", 128);
    check(o.dim > 0, "[config] model.dim: must be positive, got {}", o.dim);
    o.steps = static_cast<int>(model.get<int64_t>("steps", 12));
    check(o.steps >= 0, "[config] model.steps: must be >= 0, got {}", o.steps);
    o.step_size = model.get<double>("step_size", 0.1);
    check(o.step_size > 0, "[config] model.step_size: must be positive, got {}", o.step_size);
    o.learnable_step = model.get<bool>("learnable_step", false);
    o.token_init_std = model.get<double>("token_init_std", 0.002);
    o.pos_init = model.get_choice("pos_init", "normal", {"normal", "sincos"});
    check(o.pos_init == "normal" || o.dim % 4 == 0,
          "[config] model.pos_init: \"sincos\" needs dim a multiple of 4, got {}", o.dim);
    o.pixel_mean = model.get<std::vector<double>>("pixel_mean", {});
    o.pixel_std = model.get<std::vector<double>>("pixel_std", {});
    for (const auto& [key, values] :
         {std::pair{"pixel_mean", &o.pixel_mean}, std::pair{"pixel_std", &o.pixel_std}}) {
      check(values->size() <= 1 || static_cast<int64_t>(values->size()) == o.channels,
            "[config] model.{}: needs 1 value or {} (one per channel), got {}", key, o.channels,
            values->size());
    }
    for (const double sd : o.pixel_std) {
      check(std::isfinite(sd) && sd > 0, "[config] model.pixel_std: must be positive, got {}", sd);
    }
    train_mask_ = data::parse_mask_spec(model.get<std::string>("mask", "scatter:0.5"));
    eval_mask_ = data::parse_mask_spec(model.get<std::string>("eval_mask", "scatter:0.5"));
    eval_seed_ = static_cast<uint64_t>(model.get<int64_t>("eval_seed", 1234));
    loss_ = model.get_choice("loss", "mse", {"mse", "rmse"}) == "rmse" ? ImageLoss::rmse
                                                                       : ImageLoss::mse;
    samples_ = model.get<int64_t>("samples", 8);
    const std::string tta = model.get_choice("eval_tta", "none", {"none", "flips", "dihedral"});
    tta_views_ = tta == "dihedral" ? 8 : tta == "flips" ? 4 : 1;
    check(tta_views_ < 8 || o.height == o.width,
          "[config] model.eval_tta: \"dihedral\" transposes the images, which needs them square, "
          "got {}x{}",
          o.height, o.width);
    // Block defaults at the benchmark size (4 heads × 32, M = 4D).
    Config block = model.section("block");
    block.get<int64_t>("heads", 4);
    block.get<int64_t>("head_dim", 32);
    auto et = energy::make_energy_transformer_block(block, o.dim);
    net_ = std::make_shared<ImageEnergyTransformer>(o, std::move(et));
    // Weights of the reference JAX code (its image_core.py .npz layout), to fine-tune or evaluate.
    const std::string init = model.get<std::string>("init_from", "");
    if (!init.empty()) load_jax_checkpoint(*net_, init);
    net_->to(device_);
    // The evaluation masks are fixed per held-out image, the same for every evaluation.
    const int64_t n_test = data_.test->size();
    Tensors masks;
    masks.reserve(static_cast<size_t>(n_test));
    for (int64_t i = 0; i < n_test; ++i) {
      masks.push_back(data::make_mask(eval_mask_, o.grid_h(), o.grid_w(), eval_seed_,
                                      static_cast<uint64_t>(i)));
    }
    check(n_test > 0, "[image_et] the test split is empty");
    test_masks_ = stack(masks, 0);
  }

  nn::Module& model() override { return *net_; }
  data::DatasetPtr<data::Example> train_data() override { return data_.train; }
  void set_epoch(int64_t epoch) override { data_.set_epoch(epoch); }

  Tensor loss(const data::Example& batch, train::Metrics& logs) override {
    const Tensor& images = batch.at("image");
    const auto& o = net_->options();
    const Tensor mask =
        data::make_masks(train_mask_, images.shape(0), o.grid_h(), o.grid_w()).to(images.device());
    const auto out = net_->run(images, mask);
    const Tensor value = masked_patch_loss(out.pred, out.patches, mask, loss_);
    if (loss_ == ImageLoss::rmse) {
      NoGradGuard no_grad;
      logs["masked_mse"] = masked_patch_loss(out.pred, out.patches, mask).item<double>();
    }
    return value;
  }

  train::Metrics evaluate(const std::string& split) override {
    check(split == "test", "[image_et] unknown split '{}' (this model has: test)", split);
    const auto& o = net_->options();
    const int64_t n = data_.test->size(), hw = o.height * o.width;
    double model_sq = 0, mean_sq = 0, interp_sq = 0, loss_sum = 0;
    int64_t hidden_values = 0, batches = 0;
    constexpr int64_t kBatch = 64;
    for (int64_t start = 0; start < n; start += kBatch) {
      const int64_t stop = std::min(n, start + kBatch);
      Tensors items;
      for (int64_t i = start; i < stop; ++i) items.push_back(data_.test->get(i).at("image"));
      const Tensor images = stack(items, 0).astype(Dtype::f32);  // (b, C, H, W) on the CPU
      const Tensor mask = slice(test_masks_, 0, start, stop);
      const auto out = net_->run(images.to(device_), mask.to(device_));
      loss_sum += masked_patch_loss(out.pred, out.patches, mask.to(device_), loss_).item<double>();
      ++batches;
      // Completed images: the model's patches where it saw the MASK token, the rest as given.
      const Tensor completed =
          (tta_views_ > 1 ? net_->complete_views(images.to(device_), mask.to(device_), tta_views_)
                          : net_->merge(out, mask))
              .to(Device::cpu());
      // Which pixels are hidden: 1 in the replaced patches, 0 elsewhere.
      const Tensor hidden_pixels =
          net_->merge({ones_like(out.pred), zeros_like(out.patches)}, mask).to(Device::cpu());
      const std::vector<float> truth = images.contiguous().to_vector<float>();
      const std::vector<float> got = completed.astype(Dtype::f32).contiguous().to_vector<float>();
      const std::vector<float> hidden = hidden_pixels.contiguous().to_vector<float>();
      std::vector<float> mean_img = truth, interp_img = truth;
      for (int64_t b = 0; b < stop - start; ++b) {
        const int64_t base = b * o.channels * hw;
        std::vector<uint8_t> hide(static_cast<size_t>(hw));
        for (int64_t i = 0; i < hw; ++i) hide[i] = hidden[base + i] > 0.5f;
        mean_fill(mean_img.data() + base, hide.data(), o.channels, o.height, o.width);
        harmonic_fill(interp_img.data() + base, hide.data(), o.channels, o.height, o.width);
      }
      for (size_t i = 0; i < truth.size(); ++i) {
        if (hidden[i] < 0.5f) continue;
        const double t = truth[i];
        model_sq += (got[i] - t) * (got[i] - t);
        mean_sq += (mean_img[i] - t) * (mean_img[i] - t);
        interp_sq += (interp_img[i] - t) * (interp_img[i] - t);
        ++hidden_values;
      }
    }
    check(hidden_values > 0, "[image_et] the evaluation masks hide no patch ({})",
          data::to_string(eval_mask_));
    const auto count = static_cast<double>(hidden_values);
    train::Metrics m;
    m["loss"] = loss_sum / static_cast<double>(batches);
    m["masked_mse"] = model_sq / count;
    m["psnr"] = psnr(model_sq / count);
    m["mean_fill_mse"] = mean_sq / count;
    m["mean_fill_psnr"] = psnr(mean_sq / count);
    m["interp_mse"] = interp_sq / count;
    m["interp_psnr"] = psnr(interp_sq / count);
    return m;
  }

  std::string primary_metric() const override { return "masked_mse"; }
  bool higher_is_better() const override { return false; }

  /// samples/completion.png (rows: original, masked, completed) and samples/energy.png with
  /// samples/energy.json (each sample's energy at every descent step).
  void write_samples(const std::string& dir) override {
    const auto& o = net_->options();
    const int64_t k = std::min<int64_t>(samples_, data_.test->size());
    if (k <= 0) return;
    fs::create_directories(dir);
    Tensors items;
    for (int64_t i = 0; i < k; ++i) items.push_back(data_.test->get(i).at("image"));
    const Tensor images = stack(items, 0).astype(Dtype::f32);
    const Tensor mask = slice(test_masks_, 0, 0, k);
    EnergyTrace trace;
    NoGradGuard no_grad;
    const auto out = net_->run(images.to(device_), mask.to(device_), &trace);
    const Tensor completed = net_->merge(out, mask).to(Device::cpu());
    const Tensor shown = net_->merge(out, mask, full_like(out.patches, 0.5)).to(Device::cpu());
    write_grid((fs::path(dir) / "completion.png").string(), {images, shown, completed});

    nlohmann::json j;
    j["steps"] = o.steps;
    j["energies"] = trace;  // [step][sample]
    data::detail::write_file_atomic((fs::path(dir) / "energy.json").string(), j.dump(1) + "\n",
                                    "image_et");
    if (train::gnuplot_available()) {
      const std::string png = (fs::path(dir) / "energy.png").string();
      std::string script = fmt::format(
          "set terminal pngcairo size 800,500 noenhanced\nset output '{}'\n"
          "set title 'energy along the descent'\nset xlabel 'step t'\nset ylabel 'E(LN(x_t))'\n"
          "set grid\nset key outside right top\nplot ",
          png);
      std::string data;
      const size_t shown_samples = std::min<size_t>(4, trace.empty() ? 0 : trace[0].size());
      for (size_t s = 0; s < shown_samples; ++s) {
        script +=
            fmt::format("{}'-' using 1:2 with linespoints lw 2 title 'image {}'", s ? ", " : "", s);
        for (size_t t = 0; t < trace.size(); ++t)
          data += fmt::format("{} {:.9g}\n", t, trace[t][s]);
        data += "e\n";
      }
      train::run_gnuplot(script + "\n" + data, png);
    }
  }

 private:
  /// Rows of images (each (k, C, H, W) in [0, 1]) side by side with a 2-pixel white margin.
  void write_grid(const std::string& path, const Tensors& rows) {
    const auto& o = net_->options();
    const int64_t k = rows[0].shape(0), m = 2, zoom = o.height < 64 ? 3 : 1;
    const int64_t cell_h = o.height * zoom + m, cell_w = o.width * zoom + m;
    const int64_t height = static_cast<int64_t>(rows.size()) * cell_h + m, width = k * cell_w + m;
    std::vector<float> canvas(static_cast<size_t>(o.channels * height * width), 1.0f);
    for (size_t r = 0; r < rows.size(); ++r) {
      const std::vector<float> v = rows[r].astype(Dtype::f32).contiguous().to_vector<float>();
      for (int64_t i = 0; i < k; ++i) {
        for (int64_t c = 0; c < o.channels; ++c) {
          for (int64_t y = 0; y < o.height * zoom; ++y) {
            for (int64_t x = 0; x < o.width * zoom; ++x) {
              const float value =
                  v[((i * o.channels + c) * o.height + y / zoom) * o.width + x / zoom];
              const int64_t cy = m + static_cast<int64_t>(r) * cell_h + y, cx = m + i * cell_w + x;
              canvas[(c * height + cy) * width + cx] = std::clamp(value, 0.0f, 1.0f);
            }
          }
        }
      }
    }
    data::write_png(path, from_vector(canvas, Shape{o.channels, height, width}));
  }

  Device device_;
  data::LabelledData data_;
  std::shared_ptr<ImageEnergyTransformer> net_;
  data::MaskSpec train_mask_, eval_mask_;
  uint64_t eval_seed_ = 0;
  ImageLoss loss_ = ImageLoss::mse;
  int64_t samples_ = 8;
  int tta_views_ = 1;  ///< model.eval_tta: 1 (none), 4 (flips) or 8 (dihedral)
  Tensor test_masks_;
};

BASIN_REGISTER_TASK("image_et",
                    "image Energy Transformer: masked image completion (data.type: procedural, "
                    "mnist, photos, cifar10, ...)",
                    [](const train::TaskContext& ctx) {
                      return std::make_unique<ImageEtTask>(ctx);
                    });

}  // namespace
}  // namespace basin::zoo
