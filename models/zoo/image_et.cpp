// The image Energy Transformer module: patches, tokens, the descent and the decoder.
#include "models/zoo/image_et.h"

#include <cmath>
#include <map>
#include <utility>

#include <fmt/format.h>

#include "core/error.h"
#include "core/grad_mode.h"
#include "core/io/npy.h"
#include "core/ops.h"

namespace basin::zoo {

Tensor patchify(const Tensor& images, int64_t patch) {
  check(images.defined() && images.ndim() == 4, "[patchify] expected images (B, C, H, W), got {}",
        images.defined() ? shape_str(images.shape()) : "undefined");
  const int64_t b = images.shape(0), c = images.shape(1), h = images.shape(2), w = images.shape(3);
  check(patch > 0 && h % patch == 0 && w % patch == 0,
        "[patchify] a {}x{} image does not divide into {}x{} patches", h, w, patch, patch);
  const int64_t gh = h / patch, gw = w / patch;
  const Tensor t = reshape(images, {b, c, gh, patch, gw, patch});
  return reshape(permute(t, {0, 2, 4, 1, 3, 5}), {b, gh * gw, c * patch * patch});
}

Tensor unpatchify(const Tensor& patches, int64_t patch, int64_t channels, int64_t height,
                  int64_t width) {
  check(patch > 0 && height % patch == 0 && width % patch == 0,
        "[unpatchify] a {}x{} image does not divide into {}x{} patches", height, width, patch,
        patch);
  const int64_t gh = height / patch, gw = width / patch;
  check(patches.defined() && patches.ndim() == 3 && patches.shape(1) == gh * gw &&
            patches.shape(2) == channels * patch * patch,
        "[unpatchify] expected patches (B, {}, {}), got {}", gh * gw, channels * patch * patch,
        patches.defined() ? shape_str(patches.shape()) : "undefined");
  const int64_t b = patches.shape(0);
  const Tensor t = reshape(patches, {b, gh, gw, channels, patch, patch});
  return reshape(permute(t, {0, 3, 1, 4, 2, 5}), {b, channels, height, width});
}

Tensor sincos_pos_embed(int64_t grid_h, int64_t grid_w, int64_t dim, Dtype dtype) {
  check(grid_h > 0 && grid_w > 0, "[sincos_pos_embed] the grid must be positive, got {}x{}", grid_h,
        grid_w);
  check(dim > 0 && dim % 4 == 0, "[sincos_pos_embed] dim must be a positive multiple of 4, got {}",
        dim);
  const int64_t quarter = dim / 4;
  std::vector<double> table(static_cast<size_t>((grid_h * grid_w + 1) * dim), 0.0);
  for (int64_t r = 0; r < grid_h; ++r) {
    for (int64_t c = 0; c < grid_w; ++c) {
      double* row = table.data() + (1 + r * grid_w + c) * dim;
      for (int64_t k = 0; k < quarter; ++k) {
        const double omega =
            std::pow(10000.0, -static_cast<double>(k) / static_cast<double>(quarter));
        row[k] = std::sin(static_cast<double>(r) * omega);
        row[quarter + k] = std::cos(static_cast<double>(r) * omega);
        row[2 * quarter + k] = std::sin(static_cast<double>(c) * omega);
        row[3 * quarter + k] = std::cos(static_cast<double>(c) * omega);
      }
    }
  }
  return from_vector(table, Shape{grid_h * grid_w + 1, dim}).astype(dtype);
}

ImageEnergyTransformer::ImageEnergyTransformer(
    ImageETOptions options, std::shared_ptr<energy::EnergyTransformerBlock> block, Generator* gen)
    : nn::Module("ImageEnergyTransformer"), options_(options), block_(std::move(block)) {
  const auto& o = options_;
  check(o.channels > 0 && o.height > 0 && o.width > 0 && o.patch > 0,
        "[ImageEnergyTransformer] image {}x{}x{} and patch {} must be positive", o.channels,
        o.height, o.width, o.patch);
  check(o.height % o.patch == 0 && o.width % o.patch == 0,
        "[ImageEnergyTransformer] a {}x{} image does not divide into {}x{} patches", o.height,
        o.width, o.patch, o.patch);
  check(o.dim > 0, "[ImageEnergyTransformer] dim must be positive, got {}", o.dim);
  check(o.steps >= 0, "[ImageEnergyTransformer] steps must be >= 0, got {}", o.steps);
  check(o.step_size > 0, "[ImageEnergyTransformer] step_size must be positive, got {}",
        o.step_size);
  check(block_ != nullptr, "[ImageEnergyTransformer] the energy block is null");
  check(block_->norm()->dim() == o.dim,
        "[ImageEnergyTransformer] the energy block has dimension {}, the model {}",
        block_->norm()->dim(), o.dim);
  if (o.learnable_step) alpha_ = register_parameter("step_size", scalar(o.step_size, o.dtype));
  if (!o.pixel_mean.empty() || !o.pixel_std.empty()) {
    // One value for every channel, or one per channel.
    auto per_channel = [&](const std::vector<double>& v, double fallback, const char* name) {
      check(v.size() <= 1 || static_cast<int64_t>(v.size()) == o.channels,
            "[ImageEnergyTransformer] pixel_{} needs 1 or {} values (one per channel), got {}",
            name, o.channels, v.size());
      if (v.size() > 1) return v;
      return std::vector<double>(static_cast<size_t>(o.channels), v.empty() ? fallback : v[0]);
    };
    const std::vector<double> m = per_channel(o.pixel_mean, 0.0, "mean");
    const std::vector<double> sd = per_channel(o.pixel_std, 1.0, "std");
    for (size_t c = 0; c < m.size(); ++c) {
      check(std::isfinite(m[c]), "[ImageEnergyTransformer] pixel_mean[{}] is {}", c, m[c]);
      check(std::isfinite(sd[c]) && sd[c] > 0,
            "[ImageEnergyTransformer] pixel_std[{}] must be positive and finite, got {}", c, sd[c]);
    }
    pixel_mean = register_buffer("pixel_mean", from_vector(m, {o.channels}).astype(o.dtype));
    pixel_std = register_buffer("pixel_std", from_vector(sd, {o.channels}).astype(o.dtype));
  }
  const int64_t p = o.patch_values(), d = o.dim;
  cls_token = register_parameter("cls_token",
                                 normal({d}, 0.0, o.token_init_std, o.dtype, Device::cpu(), gen));
  mask_token = register_parameter("mask_token",
                                  normal({d}, 0.0, o.token_init_std, o.dtype, Device::cpu(), gen));
  check(o.pos_init == "normal" || o.pos_init == "sincos",
        "[ImageEnergyTransformer] pos_init must be \"normal\" or \"sincos\", got \"{}\"",
        o.pos_init);
  pos_embed = register_parameter(
      "pos_embed", o.pos_init == "sincos" ? sincos_pos_embed(o.grid_h(), o.grid_w(), d, o.dtype)
                                          : normal({o.num_patches() + 1, d}, 0.0, o.token_init_std,
                                                   o.dtype, Device::cpu(), gen));
  encoder = register_module("encoder", std::make_shared<nn::Linear>(p, d, true, gen));
  decoder = register_module("decoder", std::make_shared<nn::Linear>(d, p, true, gen));
  register_module("et", block_);
  if (o.dtype != Dtype::f32) {
    encoder->to(o.dtype);
    decoder->to(o.dtype);
  }
}

std::string ImageEnergyTransformer::extra_repr() const {
  const auto& o = options_;
  return fmt::format("image={}x{}x{}, patch={}, tokens=1+{}, dim={}, steps={}, step_size={}{}",
                     o.channels, o.height, o.width, o.patch, o.num_patches(), o.dim, o.steps,
                     o.step_size, o.learnable_step ? " (learnable)" : "");
}

Tensor ImageEnergyTransformer::forward(const Tensor&) {
  fail(
      "[ImageEnergyTransformer] forward(x) has no mask: call run(images, mask) or "
      "complete(images, mask)");
}

Tensor ImageEnergyTransformer::step_size() const {
  return alpha_.defined() ? alpha_ : scalar(options_.step_size, options_.dtype);
}

Tensor ImageEnergyTransformer::per_value(const Tensor& per_channel, Device device) const {
  const int64_t c = options_.channels, pp = options_.patch * options_.patch;
  const Tensor v = per_channel.to(device);
  return reshape(expand(reshape(v, {c, 1}), {c, pp}).contiguous(), {c * pp});
}

Tensor ImageEnergyTransformer::embed(const Tensor& patches, const Tensor& mask) {
  const int64_t b = patches.shape(0), d = options_.dim;
  const Tensor seen = pixel_mean.defined() ? (patches - per_value(pixel_mean, patches.device())) /
                                                 per_value(pixel_std, patches.device())
                                           : patches;
  const Tensor tokens = encoder->forward(seen);       // (B, Np, D)
  const Tensor replaced = unsqueeze(mask == 1.0, 2);  // (B, Np, 1)
  const Tensor visible = where(replaced, reshape(mask_token, {1, 1, d}), tokens);
  const Tensor cls = expand(reshape(cls_token, {1, 1, d}), {b, 1, d});
  return concat({cls, visible}, 1) + pos_embed;  // (B, 1 + Np, D)
}

Tensor ImageEnergyTransformer::descend(const Tensor& x0, EnergyTrace* trace) {
  Tensor x = x0;
  // A fixed α is made on x's device (a fill there, no copy from the host).
  const Tensor alpha = alpha_.defined() ? alpha_.to(x.device()).astype(x.dtype())
                                        : scalar(options_.step_size, x.dtype(), x.device());
  auto record = [&](const Tensor& state) {
    NoGradGuard no_grad;
    const Tensor s = state.detach();
    std::vector<double> per_sample(static_cast<size_t>(s.shape(0)));
    for (int64_t b = 0; b < s.shape(0); ++b) {
      const Tensor one = slice(s, 0, b, b + 1);
      per_sample[b] = block_->energy(block_->norm()->forward(one)).item<double>();
    }
    trace->push_back(std::move(per_sample));
  };
  if (trace) trace->clear();
  for (int t = 0; t < options_.steps; ++t) {
    if (trace) record(x);
    const Tensor g = block_->norm()->forward(x);
    x = x - alpha * block_->energy_grad(g);
  }
  if (trace) record(x);
  return x;
}

Tensor ImageEnergyTransformer::decode(const Tensor& x) {
  const Tensor tokens = slice(x, 1, 1, x.shape(1));  // drop CLS
  const Tensor out = decoder->forward(block_->norm()->forward(tokens));
  if (!pixel_mean.defined()) return out;
  return out * per_value(pixel_std, out.device()) + per_value(pixel_mean, out.device());
}

ImageEnergyTransformer::Output ImageEnergyTransformer::run(const Tensor& images, const Tensor& mask,
                                                           EnergyTrace* trace) {
  const auto& o = options_;
  check(images.defined() && images.ndim() == 4 && images.shape(1) == o.channels &&
            images.shape(2) == o.height && images.shape(3) == o.width,
        "[ImageEnergyTransformer] expected images (B, {}, {}, {}), got {}", o.channels, o.height,
        o.width, images.defined() ? shape_str(images.shape()) : "undefined");
  check(mask.defined() && mask.ndim() == 2 && mask.shape(0) == images.shape(0) &&
            mask.shape(1) == o.num_patches(),
        "[ImageEnergyTransformer] expected a mask ({}, {}) (one entry per patch), got {}",
        images.shape(0), o.num_patches(), mask.defined() ? shape_str(mask.shape()) : "undefined");
  Output out;
  out.patches = patchify(images.astype(o.dtype), o.patch);
  const Tensor x = descend(embed(out.patches, mask.to(images.device())), trace);
  out.pred = decode(x);
  return out;
}

Tensor ImageEnergyTransformer::merge(const Output& out, const Tensor& mask,
                                     const Tensor& fill) const {
  const Tensor replaced = unsqueeze(mask.to(out.pred.device()) == 1.0, 2);  // (B, Np, 1)
  const Tensor merged = where(replaced, fill.defined() ? fill : out.pred, out.patches);
  const auto& o = options_;
  return unpatchify(merged, o.patch, o.channels, o.height, o.width);
}

Tensor ImageEnergyTransformer::complete(const Tensor& images, const Tensor& mask) {
  return merge(run(images, mask), mask);
}

namespace {

/// x (..., H, W) with its last two axes swapped.
Tensor transpose_last_two(const Tensor& x) {
  std::vector<int> perm(static_cast<size_t>(x.ndim()));
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int>(i);
  std::swap(perm[perm.size() - 2], perm[perm.size() - 1]);
  return permute(x, perm);
}

/// View k (0..7) of x (..., H, W): transposed when bit 2 is set, then its columns flipped (bit 0)
/// and its rows flipped (bit 1).
Tensor dihedral_view(const Tensor& x, int k) {
  const int rows = static_cast<int>(x.ndim()) - 2, cols = rows + 1;
  Tensor y = k & 4 ? transpose_last_two(x) : x;
  if (k & 1) y = flip(y, {cols});
  if (k & 2) y = flip(y, {rows});
  return y.contiguous();
}

/// The inverse of dihedral_view(·, k).
Tensor undo_dihedral_view(const Tensor& y, int k) {
  const int rows = static_cast<int>(y.ndim()) - 2, cols = rows + 1;
  Tensor x = y;
  if (k & 2) x = flip(x, {rows});
  if (k & 1) x = flip(x, {cols});
  return (k & 4 ? transpose_last_two(x) : x).contiguous();
}

}  // namespace

Tensor ImageEnergyTransformer::complete_views(const Tensor& images, const Tensor& mask, int views) {
  const auto& o = options_;
  check(views == 1 || views == 4 || views == 8,
        "[ImageEnergyTransformer] complete_views takes 1, 4 or 8 views, got {}", views);
  check(views < 8 || o.height == o.width,
        "[ImageEnergyTransformer] 8 views transpose the images, which needs them square, got "
        "{}x{}",
        o.height, o.width);
  check(mask.defined() && mask.ndim() == 2 && mask.shape(1) == o.num_patches(),
        "[ImageEnergyTransformer] expected a mask (B, {}) (one entry per patch), got {}",
        o.num_patches(), mask.defined() ? shape_str(mask.shape()) : "undefined");
  const int64_t b = mask.shape(0);
  const Tensor grid = reshape(mask, {b, o.grid_h(), o.grid_w()});
  Tensor sum;
  for (int k = 0; k < views; ++k) {
    const Tensor view_mask = reshape(dihedral_view(grid, k), {b, o.num_patches()});
    const Tensor done = undo_dihedral_view(complete(dihedral_view(images, k), view_mask), k);
    sum = sum.defined() ? sum + done : done;
  }
  return views == 1 ? sum : sum / static_cast<double>(views);
}

void load_jax_checkpoint(ImageEnergyTransformer& model, const std::string& npz_path) {
  const std::map<std::string, Tensor> ck = io::read_npz(npz_path);
  // Our name ← (their key, transposed?).
  struct Entry {
    const char* ours;
    const char* theirs;
    bool transpose;
  };
  const Entry entries[] = {
      {"et.attn.wq", "Wq", false},
      {"et.attn.wk", "Wk", false},
      {"et.hn.xi", "Xi", true},
      {"encoder.weight", "Wenc", true},
      {"encoder.bias", "Benc", false},
      {"decoder.weight", "Wdec", true},
      {"decoder.bias", "Bdec", false},
      {"cls_token", "CLS_token", false},
      {"mask_token", "MASK_token", false},
      {"pos_embed", "POS_embed", false},
      {"et.norm.gamma", "LNORM_gamma", false},
      {"et.norm.delta", "LNORM_bias", false},
  };
  std::map<std::string, Tensor> current;
  for (const auto& [name, t] : model.named_parameters()) current[name] = t;
  nn::StateDict state = model.state_dict();
  for (const Entry& e : entries) {
    auto it = ck.find(e.theirs);
    check(it != ck.end(),
          "[load_jax_checkpoint] {}: no array '{}' (the reference layout has Wq, "
          "Wk, Xi, Wenc, Benc, Wdec, Bdec, CLS_token, MASK_token, POS_embed, LNORM_gamma, "
          "LNORM_bias)",
          npz_path, e.theirs);
    check(current.count(e.ours) == 1, "[load_jax_checkpoint] the model has no parameter {}",
          e.ours);
    Tensor value = it->second;
    check(is_floating(value.dtype()), "[load_jax_checkpoint] {}: '{}' has dtype {}", npz_path,
          e.theirs, dtype_name(value.dtype()));
    if (e.transpose && value.ndim() == 2) value = transpose(value);
    const Shape& want = current[e.ours].shape();
    Shape expected = want;  // in the checkpoint's own layout
    if (e.transpose && expected.size() == 2) std::swap(expected[0], expected[1]);
    check(value.shape() == want, "[load_jax_checkpoint] {}: '{}' has shape {}, the model needs {}",
          npz_path, e.theirs, shape_str(it->second.shape()), shape_str(expected));
    state[e.ours] = value.contiguous();
  }
  model.load_state_dict(state);
}

Tensor masked_patch_loss(const Tensor& pred, const Tensor& patches, const Tensor& mask,
                         ImageLoss kind) {
  check(pred.defined() && patches.defined() && pred.shape() == patches.shape() && pred.ndim() == 3,
        "[masked_patch_loss] pred and patches must be (B, Np, P) alike, got {} and {}",
        pred.defined() ? shape_str(pred.shape()) : "undefined",
        patches.defined() ? shape_str(patches.shape()) : "undefined");
  check(mask.defined() && mask.ndim() == 2 && mask.shape(0) == pred.shape(0) &&
            mask.shape(1) == pred.shape(1),
        "[masked_patch_loss] expected a mask ({}, {}), got {}", pred.shape(0), pred.shape(1),
        mask.defined() ? shape_str(mask.shape()) : "undefined");
  const Tensor scored = unsqueeze((mask.to(pred.device()) > 0.0).astype(pred.dtype()), 2);
  const Tensor sq = square(pred - patches) * scored;
  const double values = static_cast<double>(pred.shape(2));
  if (kind == ImageLoss::rmse) return sqrt(mean(sq));
  const Tensor count = sum(scored) * values;
  return sum(sq) / maximum(count, scalar(1.0, pred.dtype(), pred.device()));
}

}  // namespace basin::zoo
