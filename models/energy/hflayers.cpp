// Hopfield, HopfieldPooling and HopfieldLayer: hflayers' association (projections, iterated softmax
// updates with the eps stop, masks, dropout, output projection) written with public ops, so every
// result is differentiable to any order.
#include "models/energy/hflayers.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <utility>

#include "core/error.h"
#include "core/grad_mode.h"
#include "core/ops.h"
#include "models/nn/init.h"

namespace basin::energy {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::string opt_str(const std::optional<int64_t>& v) { return v ? std::to_string(*v) : "None"; }

/// x Wᵀ + b over the last dimension (b may be undefined).
Tensor project(const Tensor& x, const Tensor& w, const Tensor& b) {
  Tensor y = matmul(x, transpose(w, 0, 1));
  return b.defined() ? y + b : y;
}

/// (B, n, H·d) -> (B, H, n, d): head h owns features h·d ... h·d + d − 1, as in hflayers.
Tensor split_heads(const Tensor& x, int64_t heads) {
  return permute(reshape(x, {x.shape(0), x.shape(1), heads, x.shape(2) / heads}), {0, 2, 1, 3});
}

/// A static pattern (B, n, d), the same for every head: (B, H, n, d).
Tensor every_head(const Tensor& x, int64_t heads) {
  return expand(unsqueeze(x, 1), {x.shape(0), heads, x.shape(1), x.shape(2)});
}

/// bool masks as they are; uint8 masks (hflayers accepts them, deprecated) as x != 0.
Tensor as_bool(const Tensor& m) { return m.dtype() == Dtype::boolean ? m : m != 0.0; }

Tensor normal_weight(const Shape& shape, Generator* gen) {
  Tensor t = zeros(shape);
  nn::normal_(t, 0.0, 0.02, gen);
  return t;
}

void check_pattern(const Tensor& x, const char* what, int64_t depth, const std::string& who) {
  if (!x.defined()) fail("[{}] got undefined {}", who, what);
  const std::string want = depth > 0 ? std::to_string(depth) : "features";
  if (x.ndim() != 3) {
    fail("[{}] {} must be (batch, length, {}), got shape {}", who, what, want,
         shape_str(x.shape()));
  }
  if (!is_floating(x.dtype())) {
    fail("[{}] {} must be float32 or float64, got {}", who, what, dtype_name(x.dtype()));
  }
  if (depth > 0 && x.shape(2) != depth) {
    fail("[{}] {} must be (batch, length, {}), got shape {}", who, what, depth,
         shape_str(x.shape()));
  }
}

}  // namespace

// --- HopfieldCore ------------------------------------------------------------------------------
HopfieldCore::HopfieldCore(const HopfieldOptions& o, int64_t head_dim, int64_t pattern_dim,
                           int64_t kdim, int64_t vdim, Generator* gen)
    : nn::Module("HopfieldCore") {
  const int64_t heads = o.num_heads;
  const bool qs = o.state_pattern_as_static, ks = o.stored_pattern_as_static,
             vs = o.pattern_projection_as_static;
  const int64_t non_static = !qs + !ks + !vs;
  const int64_t embed = o.input_size.value_or(0);
  const int64_t hopfield_dim = heads * head_dim, virtual_pattern_dim = heads * pattern_dim;
  // hflayers' _qkv_same_embed_dim: one stacked weight when every depth is the input's.
  packed_ = kdim == embed && vdim == embed && !o.pattern_size && !o.pattern_projection_as_connected;

  if (o.normalize_hopfield_space_affine) {
    p_norm_weight = register_parameter("p_norm_weight", ones({head_dim}));
    p_norm_bias = register_parameter("p_norm_bias", zeros({head_dim}));
  }
  if (!packed_) {
    if (!qs) {
      q_proj_weight =
          register_parameter("q_proj_weight", normal_weight({hopfield_dim, embed}, gen));
    }
    if (!ks) {
      k_proj_weight = register_parameter("k_proj_weight", normal_weight({hopfield_dim, kdim}, gen));
    }
    if (!vs) {
      const int64_t in = o.pattern_projection_as_connected && !ks ? hopfield_dim : vdim;
      v_proj_weight =
          register_parameter("v_proj_weight", normal_weight({virtual_pattern_dim, in}, gen));
    }
  } else if (non_static > 0) {
    const int64_t rows = (!qs + !ks) * hopfield_dim + !vs * virtual_pattern_dim;
    in_proj_weight = register_parameter("in_proj_weight", normal_weight({rows, embed}, gen));
  }
  if (o.input_bias && non_static > 0) {
    // The value part is always there, even for a static projection (as in hflayers).
    in_proj_bias = register_parameter("in_proj_bias",
                                      zeros({(!qs + !ks) * hopfield_dim + virtual_pattern_dim}));
  }
  if (!o.disable_out_projection) {
    const int64_t out = o.output_size.value_or(embed);
    out_proj = register_module(
        "out_proj", std::make_shared<nn::Linear>(virtual_pattern_dim, out, o.input_bias, gen));
    nn::normal_(out_proj->weight, 0.0, 0.02, gen);
    if (out_proj->bias.defined()) nn::zeros_(out_proj->bias);
  }
  if (o.concat_bias_pattern) {
    bias_k = register_parameter("bias_k", normal_weight({1, 1, hopfield_dim}, gen));
    bias_v = register_parameter("bias_v", normal_weight({1, 1, virtual_pattern_dim}, gen));
  }
}

// --- Hopfield ------------------------------------------------------------------------------------
/// The projected patterns of one call, ready for the updates.
struct Hopfield::Association {
  Tensor q;         // (B, H, L, head_dim): projected state patterns ξ⁰, before β
  Tensor k;         // (B, H, S', head_dim): projected stored patterns (+ bias and zero rows)
  Tensor v;         // (B, H, S', pattern): projected pattern projection; undefined if not asked
  Tensor beta;      // (1, H, 1, 1)
  Tensor masked;    // bool, broadcasts to (B, H, L, S'): true -> −∞; undefined when none
  Tensor additive;  // floating, broadcasts to (B, H, L, S'); undefined when none
};

Hopfield::Hopfield(HopfieldOptions options, Generator* gen)
    : Hopfield(std::move(options), gen, "Hopfield") {}

Hopfield::Hopfield(HopfieldOptions options, Generator* gen, std::string who)
    : nn::Module("Hopfield"), options_(std::move(options)), who_(std::move(who)), gen_(gen) {
  const HopfieldOptions& o = options_;
  const char* w = who_.c_str();
  const int64_t heads = o.num_heads;
  const bool qs = o.state_pattern_as_static, ks = o.stored_pattern_as_static,
             vs = o.pattern_projection_as_static, connected = o.pattern_projection_as_connected;

  if (!o.batch_first) {
    fail(
        "[{}] batch_first = false is not supported: inputs are (batch, length, features); "
        "transpose them",
        w);
  }
  if (heads < 1) fail("[{}] num_heads must be positive, got {}", w, heads);
  for (const auto& [value, name] :
       {std::pair{o.input_size, "input_size"}, std::pair{o.hidden_size, "hidden_size"},
        std::pair{o.output_size, "output_size"}, std::pair{o.pattern_size, "pattern_size"},
        std::pair{o.stored_pattern_size, "stored_pattern_size"},
        std::pair{o.pattern_projection_size, "pattern_projection_size"}}) {
    if (value && *value <= 0) fail("[{}] {} must be positive, got {}", w, name, *value);
  }
  if (o.update_steps_max < -1) {
    fail("[{}] update_steps_max must be >= 0, or -1 for unlimited, got {}", w, o.update_steps_max);
  }
  if (!(o.update_steps_eps > 0.0)) {
    fail("[{}] update_steps_eps must be positive, got {}", w, o.update_steps_eps);
  }
  if (!(o.dropout >= 0.0 && o.dropout <= 1.0)) {
    fail("[{}] dropout must lie in [0, 1], got {}", w, o.dropout);
  }
  for (const auto& [on, affine, name] :
       {std::tuple{o.normalize_stored_pattern, o.normalize_stored_pattern_affine, "stored_pattern"},
        std::tuple{o.normalize_state_pattern, o.normalize_state_pattern_affine, "state_pattern"},
        std::tuple{o.normalize_pattern_projection, o.normalize_pattern_projection_affine,
                   "pattern_projection"},
        std::tuple{o.normalize_hopfield_space, o.normalize_hopfield_space_affine,
                   "hopfield_space"}}) {
    if (affine && !on) {
      fail(
          "[{}] normalize_{}_affine needs normalize_{} (affine normalisation without "
          "normalisation has no effect)",
          w, name, name);
    }
  }
  if (o.concat_bias_pattern && (ks || vs)) {
    fail(
        "[{}] concat_bias_pattern cannot add bias rows to static stored patterns or pattern "
        "projections",
        w);
  }

  // Depths (hflayers: HopfieldCore.__init__). Static execution has no projection at all, and
  // takes its depths from the inputs.
  static_execution_ =
      qs && ks && vs && !connected && !o.normalize_hopfield_space && o.disable_out_projection;
  int64_t kdim = 0, vdim = 0;
  if (!static_execution_) {
    if (!o.input_size) {
      fail(
          "[{}] input_size is required unless the layer runs in static execution (stored, state "
          "and projection static, no Hopfield-space normalisation, output projection disabled)",
          w);
    }
    const int64_t embed = *o.input_size;
    if (o.hidden_size) {
      head_dim_ = *o.hidden_size;
    } else {
      if (embed % heads != 0) {
        fail("[{}] input_size {} is not divisible by num_heads {}; set hidden_size", w, embed,
             heads);
      }
      head_dim_ = embed / heads;
    }
    pattern_dim_ = o.pattern_size.value_or(head_dim_);
    kdim = o.stored_pattern_size.value_or(embed);
    vdim = o.pattern_projection_size.value_or(embed);
    if (connected && kdim != vdim) {
      fail(
          "[{}] pattern_projection_as_connected needs stored_pattern_size == "
          "pattern_projection_size, got {} and {}",
          w, kdim, vdim);
    }
    if (connected && pattern_dim_ != head_dim_) {
      fail("[{}] pattern_projection_as_connected needs pattern_size == hidden_size, got {} and {}",
           w, pattern_dim_, head_dim_);
    }
    state_dim_ = qs ? head_dim_ : embed;
    stored_dim_ = ks ? head_dim_ : kdim;
    if (connected && !ks) {
      projection_dim_ = vdim;
    } else if (vs) {
      projection_dim_ = o.disable_out_projection ? 0 : pattern_dim_;
    } else {
      projection_dim_ = vdim;
    }
  }

  // The input LayerNorms, whose depth must agree with what the association expects.
  auto make_norm = [&](bool on, bool affine, double eps, std::optional<int64_t> dim,
                       int64_t& expected, const char* name) -> std::shared_ptr<nn::LayerNorm> {
    if (!on) return nullptr;
    if (!dim) fail("[{}] normalize_{} needs input_size (or its own size) to be set", w, name);
    if (expected > 0 && expected != *dim) {
      fail(
          "[{}] normalize_{} normalises {} features, but the {} must have {} (static patterns "
          "have hidden_size features)",
          w, name, *dim, name, expected);
    }
    expected = *dim;
    return std::make_shared<nn::LayerNorm>(*dim, eps, affine);
  };
  norm_stored_ = make_norm(
      o.normalize_stored_pattern, o.normalize_stored_pattern_affine, o.normalize_stored_pattern_eps,
      o.stored_pattern_size ? o.stored_pattern_size : o.input_size, stored_dim_, "stored_pattern");
  norm_state_ = make_norm(o.normalize_state_pattern, o.normalize_state_pattern_affine,
                          o.normalize_state_pattern_eps, o.input_size, state_dim_, "state_pattern");
  norm_projection_ =
      make_norm(o.normalize_pattern_projection, o.normalize_pattern_projection_affine,
                o.normalize_pattern_projection_eps,
                o.pattern_projection_size ? o.pattern_projection_size : o.input_size,
                projection_dim_, "pattern_projection");

  // β per head.
  if (!(o.scaling.empty() || o.scaling.size() == 1 ||
        static_cast<int64_t>(o.scaling.size()) == heads)) {
    fail("[{}] scaling needs no value, one value or one per head ({}), got {}", w, heads,
         o.scaling.size());
  }
  for (double b : o.scaling) {
    if (!(b > 0.0) || !std::isfinite(b)) {
      fail("[{}] scaling must be positive and finite, got {}", w, b);
    }
  }
  const double default_beta = static_execution_ ? 1.0 : 1.0 / std::sqrt(double(head_dim_));
  beta_.assign(static_cast<size_t>(heads), o.scaling.empty() ? default_beta : o.scaling[0]);
  if (o.scaling.size() > 1) beta_ = o.scaling;
  if (o.learnable_scaling) {
    beta_param_ = register_parameter("scaling", from_vector(beta_, {heads}).astype(Dtype::f32));
  }

  if (o.association_activation) {
    try {
      activation_ = std::make_shared<nn::Activation>(*o.association_activation);
    } catch (const Error& e) {
      fail("[{}] association_activation: {}", w, e.what());
    }
  }

  core_ = register_module("association_core", std::make_shared<HopfieldCore>(
                                                  o, head_dim_, pattern_dim_, kdim, vdim, gen));
  if (norm_stored_) register_module("norm_stored_pattern", norm_stored_);
  if (norm_state_) register_module("norm_state_pattern", norm_state_);
  if (norm_projection_) register_module("norm_pattern_projection", norm_projection_);
}

Hopfield::Association Hopfield::associate(const Tensor& stored, const Tensor& state,
                                          const Tensor& projection,
                                          const Tensor& stored_padding_mask,
                                          const Tensor& association_mask) const {
  const HopfieldOptions& o = options_;
  const std::string& w = who_;
  check_pattern(stored, "stored patterns", stored_dim_, w);
  check_pattern(state, "state patterns", state_dim_, w);
  if (projection.defined()) check_pattern(projection, "pattern projections", projection_dim_, w);
  const int64_t batch = state.shape(0), len = state.shape(1), src = stored.shape(1);
  const int64_t heads = o.num_heads;
  if (stored.shape(0) != batch) {
    fail("[{}] stored patterns {} and state patterns {} have different batch sizes", w,
         shape_str(stored.shape()), shape_str(state.shape()));
  }
  if (projection.defined() && (projection.shape(0) != batch || projection.shape(1) != src)) {
    fail("[{}] pattern projections {} must match the stored patterns {} in batch and length", w,
         shape_str(projection.shape()), shape_str(stored.shape()));
  }
  if (static_execution_ && state.shape(2) != stored.shape(2)) {
    fail("[{}] static state patterns {} and stored patterns {} need the same depth", w,
         shape_str(state.shape()), shape_str(stored.shape()));
  }

  const Tensor y = norm_stored_ ? norm_stored_->forward(stored) : stored;
  const Tensor r = norm_state_ ? norm_state_->forward(state) : state;
  Tensor value;
  if (projection.defined()) {
    value = norm_projection_ ? norm_projection_->forward(projection) : projection;
  }

  // The projection weights and biases, sliced from the stacked tensors in hflayers' order
  // (q, k, v rows of the non-static ones; the bias always ends with the value part).
  const HopfieldCore& c = *core_;
  const bool qs = o.state_pattern_as_static, ks = o.stored_pattern_as_static,
             vs = o.pattern_projection_as_static, connected = o.pattern_projection_as_connected;
  const int64_t hd = static_execution_ ? state.shape(2) : head_dim_;
  Tensor wq = c.q_proj_weight, wk = c.k_proj_weight, wv = c.v_proj_weight, bq, bk, bv;
  int64_t w_off = 0, b_off = 0;
  auto take = [&](int64_t rows, Tensor& weight, Tensor& bias) {
    if (c.packed()) weight = narrow(c.in_proj_weight, 0, w_off, rows);
    if (c.in_proj_bias.defined()) bias = narrow(c.in_proj_bias, 0, b_off, rows);
    w_off += rows;
    b_off += rows;
  };
  if (!qs) take(heads * hd, wq, bq);
  if (!ks) take(heads * hd, wk, bk);
  if (!vs) take(heads * pattern_dim_, wv, bv);

  Association a;
  a.q = qs ? every_head(r, heads) : split_heads(project(r, wq, bq), heads);  // (B, H, L, hd)
  a.k = ks ? every_head(y, heads) : split_heads(project(y, wk, bk), heads);  // (B, H, S, hd)
  if (value.defined()) {
    // Connected: the projection goes through W_K (and its bias) first, paper Eq. 32.
    if (connected && !ks) value = project(value, wk, bk);  // (B, S, H·hd)
    if (!vs) {
      a.v = split_heads(project(value, wv, bv), heads);
    } else if (connected && !ks) {
      a.v = split_heads(value, heads);
    } else {
      a.v = every_head(value, heads);
    }  // (B, H, S, pattern)
  }
  if (o.normalize_hopfield_space) {
    const double eps = o.normalize_hopfield_space_eps;
    a.q = layer_norm(a.q, c.p_norm_weight, c.p_norm_bias, eps);
    a.k = layer_norm(a.k, c.p_norm_weight, c.p_norm_bias, eps);
  }

  int64_t extra = 0;  // rows appended to the stored patterns
  if (o.concat_bias_pattern) {
    a.k = concat({a.k, expand(reshape(c.bias_k, {1, heads, 1, hd}), {batch, heads, 1, hd})}, 2);
    if (a.v.defined()) {
      const int64_t pd = a.v.shape(3);
      a.v = concat({a.v, expand(reshape(c.bias_v, {1, heads, 1, pd}), {batch, heads, 1, pd})}, 2);
    }
    ++extra;
  }
  if (o.add_zero_association) {
    a.k = concat({a.k, zeros({batch, heads, 1, hd}, a.k.dtype(), a.k.device())}, 2);
    if (a.v.defined()) {
      a.v = concat({a.v, zeros({batch, heads, 1, a.v.shape(3)}, a.v.dtype(), a.v.device())}, 2);
    }
    ++extra;
  }
  const int64_t total = src + extra;

  if (stored_padding_mask.defined()) {
    const Tensor& m = stored_padding_mask;
    if (m.dtype() != Dtype::boolean && m.dtype() != Dtype::u8) {
      fail("[{}] stored_padding_mask must be bool (true = padding), got {}", w,
           dtype_name(m.dtype()));
    }
    if (m.shape() != Shape{batch, src}) {
      fail("[{}] stored_padding_mask must be (batch, stored length) = ({}, {}), got {}", w, batch,
           src, shape_str(m.shape()));
    }
    a.masked = reshape(basin::pad(as_bool(m), {{0, 0}, {0, extra}}, 0.0), {batch, 1, 1, total});
  }
  if (association_mask.defined()) {
    Tensor m = association_mask;
    const Shape s = m.shape();
    const bool last_ok = m.ndim() >= 2 && s[s.size() - 2] == len && s.back() == src;
    if (m.ndim() == 2 && last_ok) {
      m = reshape(m, {1, 1, len, src});
    } else if (m.ndim() == 3 && last_ok && s[0] == batch * heads) {
      m = reshape(m, {batch, heads, len, src});
    } else if (!(m.ndim() == 4 && last_ok && (s[0] == 1 || s[0] == batch) &&
                 (s[1] == 1 || s[1] == heads))) {
      fail(
          "[{}] association_mask must be (L, S), (batch·heads, L, S) or (batch, heads, L, S) "
          "with L = {}, S = {}, batch = {}, heads = {}; got {}",
          w, len, src, batch, heads, shape_str(s));
    }
    m = basin::pad(m, {{0, 0}, {0, 0}, {0, 0}, {0, extra}}, 0.0);
    if (m.dtype() == Dtype::boolean || m.dtype() == Dtype::u8) {
      m = as_bool(m);
      a.masked = a.masked.defined() ? logical_or(a.masked, m) : m;
    } else if (is_floating(m.dtype())) {
      a.additive = m;
    } else {
      fail("[{}] association_mask must be bool or floating, got {}", w, dtype_name(m.dtype()));
    }
  }

  a.beta = beta_param_.defined()
               ? reshape(beta_param_, {1, heads, 1, 1})
               : from_vector(beta_, {1, heads, 1, 1}, a.q.device()).astype(a.q.dtype());
  return a;
}

Tensor Hopfield::iterate(const Association& a) const {
  auto logits = [&a](const Tensor& xi) {  // β ξ Kᵀ + masks: (B, H, L, S')
    Tensor z = matmul(xi * a.beta, transpose(a.k, -2, -1));
    if (a.additive.defined()) z = z + a.additive;
    if (a.masked.defined()) z = masked_fill(z, a.masked, -kInf);
    return z;
  };
  Tensor p = softmax(logits(a.q), -1);
  const int64_t heads = options_.num_heads, steps_max = options_.update_steps_max;
  // After update t (counted from 0) a head goes on while t < update_steps_max (or without limit)
  // and its association matrix moved by more than eps (max over the batch of the Frobenius norm).
  std::vector<uint8_t> active(static_cast<size_t>(heads), steps_max != 0 ? 1 : 0);
  auto any_active = [&] {
    return std::any_of(active.begin(), active.end(), [](uint8_t x) { return x; });
  };
  for (int64_t t = 1; any_active(); ++t) {
    Tensor next = softmax(logits(matmul(p, a.k)), -1);
    if (!std::all_of(active.begin(), active.end(), [](uint8_t x) { return x; })) {
      const Tensor keep = from_vector(active, {1, heads, 1, 1}, next.device()) != 0.0;
      next = where(keep, next, p);  // stopped heads keep their association matrix
    }
    std::vector<double> change;
    {
      NoGradGuard no_grad;
      change = max(sqrt(sum(square(next - p), {2, 3})), {0}).to_vector<double>();  // (H)
    }
    for (int64_t h = 0; h < heads; ++h) {
      active[h] =
          active[h] && (steps_max < 0 || t < steps_max) && change[h] > options_.update_steps_eps;
    }
    p = next;
  }
  return p;
}

Tensor Hopfield::heads_output(const Tensor& p, const Association& a) {
  const Tensor weights =
      options_.dropout > 0.0 ? dropout(p, options_.dropout, is_training(), gen_) : p;
  return matmul(weights, a.v);  // (B, H, L, pattern)
}

Tensor Hopfield::finish(const Tensor& retrieved) const {
  const int64_t batch = retrieved.shape(0), len = retrieved.shape(2);
  Tensor out = reshape(permute(retrieved, {0, 2, 1, 3}), {batch, len, -1});  // (B, L, H·pattern)
  if (core_->out_proj) out = core_->out_proj->forward(out);
  if (activation_) out = activation_->forward(out);
  return out;
}

Tensor Hopfield::forward(const Tensor& input) { return forward(input, input, input); }

Tensor Hopfield::forward(const Tensor& stored, const Tensor& state, const Tensor& projection,
                         const Tensor& stored_padding_mask, const Tensor& association_mask) {
  return finish(retrieve(stored, state, projection, stored_padding_mask, association_mask));
}

Tensor Hopfield::association_matrix(const Tensor& stored, const Tensor& state,
                                    const Tensor& stored_padding_mask,
                                    const Tensor& association_mask) {
  return iterate(associate(stored, state, Tensor(), stored_padding_mask, association_mask));
}

Tensor Hopfield::retrieve(const Tensor& stored, const Tensor& state, const Tensor& projection,
                          const Tensor& stored_padding_mask, const Tensor& association_mask) {
  if (!projection.defined()) fail("[{}] got undefined pattern projections", who_);
  const Association a = associate(stored, state, projection, stored_padding_mask, association_mask);
  return heads_output(iterate(a), a);
}

Tensor Hopfield::energy(const Tensor& stored, const Tensor& state,
                        const Tensor& stored_padding_mask, const Tensor& association_mask) {
  const Association a = associate(stored, state, Tensor(), stored_padding_mask, association_mask);
  Tensor z = matmul(a.q * a.beta, transpose(a.k, -2, -1));  // (B, H, L, S')
  if (a.additive.defined()) z = z + a.additive;
  const Tensor beta = squeeze(a.beta, {3});                // (1, H, 1)
  const Tensor k2 = unsqueeze(sum(square(a.k), {-1}), 2);  // (B, H, 1, S'): ‖k_s‖²
  Tensor lse, count, max_k2;                               // each (B, H, L) or broadcasting
  if (a.masked.defined()) {
    const Tensor valid = broadcast_to(logical_not(a.masked), z.shape());
    lse = logsumexp(z, valid, Axes{-1});
    count = sum(valid, {-1}).astype(z.dtype());
    max_k2 = max(where(valid, k2, 0.0), {-1});
  } else {
    lse = logsumexp(z, {-1});
    count = full_like(lse, static_cast<double>(z.shape(-1)));
    max_k2 = max(k2, {-1});
  }
  const Tensor e = (log(count) - lse) / beta + sum(square(a.q), {-1}) * 0.5 + max_k2 * 0.5;
  return sum(e, {1, 2});
}

int64_t Hopfield::output_size() const {
  const HopfieldOptions& o = options_;
  if (!o.disable_out_projection) return o.output_size.value_or(o.input_size.value_or(0));
  const bool static_values = o.pattern_projection_as_static &&
                             !(o.pattern_projection_as_connected && !o.stored_pattern_as_static);
  if (static_values) return o.num_heads * projection_dim_;
  return o.num_heads * pattern_dim_;
}

Tensor Hopfield::scaling() const {
  if (beta_param_.defined()) return beta_param_.detach().astype(Dtype::f64);
  return from_vector(beta_, {options_.num_heads});
}

std::string Hopfield::extra_repr() const {
  const HopfieldOptions& o = options_;
  std::string s = fmt::format(
      "input_size={}, hidden_size={}, output_size={}, pattern_size={}, num_heads={}, "
      "update_steps_max={}",
      opt_str(o.input_size), head_dim_, output_size(), pattern_dim_, o.num_heads,
      o.update_steps_max);
  if (o.learnable_scaling) s += ", learnable_scaling=true";
  if (static_execution_) s += ", static_execution=true";
  if (o.dropout > 0.0) s += fmt::format(", dropout={}", o.dropout);
  return s;
}

// --- HopfieldPooling -----------------------------------------------------------------------------
HopfieldPooling::HopfieldPooling(HopfieldOptions options, int64_t quantity, bool trainable,
                                 Generator* gen)
    : nn::Module("HopfieldPooling"), quantity_(quantity) {
  if (quantity <= 0) fail("[HopfieldPooling] quantity must be positive, got {}", quantity);
  if (!options.input_size) fail("[HopfieldPooling] input_size is required");
  const int64_t input_size = *options.input_size;
  hopfield_ = register_module("hopfield", std::shared_ptr<Hopfield>(new Hopfield(
                                              std::move(options), gen, "HopfieldPooling")));
  // The state patterns have the depth the association expects (hidden_size when static).
  const int64_t depth = hopfield_->state_dim_ > 0 ? hopfield_->state_dim_ : input_size;
  const Tensor w = normal_weight({1, quantity, depth}, gen);
  pooling_weights =
      trainable ? register_parameter("pooling_weights", w) : register_buffer("pooling_weights", w);
}

Tensor HopfieldPooling::state(const Tensor& stored) const {
  if (!stored.defined() || stored.ndim() != 3) {
    fail("[HopfieldPooling] input must be (batch, instances, features), got {}",
         stored.defined() ? shape_str(stored.shape()) : std::string("an undefined tensor"));
  }
  // The learned patterns take the input's floating dtype, so float64 inputs compute in float64.
  const Tensor w =
      is_floating(stored.dtype()) ? pooling_weights.astype(stored.dtype()) : pooling_weights;
  return expand(w, {stored.shape(0), quantity_, pooling_weights.shape(2)});
}

Tensor HopfieldPooling::forward(const Tensor& input) { return forward(input, Tensor(), Tensor()); }

Tensor HopfieldPooling::forward(const Tensor& input, const Tensor& stored_padding_mask,
                                const Tensor& association_mask) {
  return forward(input, input, stored_padding_mask, association_mask);
}

Tensor HopfieldPooling::forward(const Tensor& stored, const Tensor& projection,
                                const Tensor& stored_padding_mask, const Tensor& association_mask) {
  const Tensor out =
      hopfield_->forward(stored, state(stored), projection, stored_padding_mask, association_mask);
  return reshape(out, {out.shape(0), -1});  // (B, quantity·output_size)
}

Tensor HopfieldPooling::association_matrix(const Tensor& input, const Tensor& stored_padding_mask,
                                           const Tensor& association_mask) {
  return hopfield_->association_matrix(input, state(input), stored_padding_mask, association_mask);
}

Tensor HopfieldPooling::retrieve(const Tensor& input, const Tensor& stored_padding_mask,
                                 const Tensor& association_mask) {
  return hopfield_->retrieve(input, state(input), input, stored_padding_mask, association_mask);
}

Tensor HopfieldPooling::energy(const Tensor& input, const Tensor& stored_padding_mask,
                               const Tensor& association_mask) {
  return hopfield_->energy(input, state(input), stored_padding_mask, association_mask);
}

// --- HopfieldLayer -------------------------------------------------------------------------------
HopfieldLayer::HopfieldLayer(HopfieldOptions options, int64_t quantity,
                             bool lookup_weights_as_separated, bool lookup_targets_as_trainable,
                             bool trainable, Generator* gen)
    : nn::Module("HopfieldLayer"), quantity_(quantity) {
  if (quantity <= 0) fail("[HopfieldLayer] quantity must be positive, got {}", quantity);
  if (!options.input_size) fail("[HopfieldLayer] input_size is required");
  const int64_t input_size = *options.input_size;
  const std::optional<int64_t> projection_size = options.pattern_projection_size;
  hopfield_ = register_module("hopfield", std::shared_ptr<Hopfield>(new Hopfield(
                                              std::move(options), gen, "HopfieldLayer")));
  const Hopfield& h = *hopfield_;
  const int64_t depth = h.stored_dim_ > 0 ? h.stored_dim_ : input_size;
  const Tensor lookup = normal_weight({1, quantity, depth}, gen);
  lookup_weights = trainable ? register_parameter("lookup_weights", lookup)
                             : register_buffer("lookup_weights", lookup);
  const int64_t target_depth =
      lookup_weights_as_separated ? projection_size.value_or(depth) : depth;
  if (h.projection_dim_ > 0 && target_depth != h.projection_dim_) {
    fail(
        "[HopfieldLayer] the {} ({} features) are the pattern projection, which needs {}; set "
        "pattern_projection_size{}",
        lookup_weights_as_separated ? "target weights" : "lookup weights", target_depth,
        h.projection_dim_, lookup_weights_as_separated ? "" : " or lookup_weights_as_separated");
  }
  if (lookup_weights_as_separated) {
    const Tensor targets = normal_weight({1, quantity, target_depth}, gen);
    target_weights = lookup_targets_as_trainable ? register_parameter("target_weights", targets)
                                                 : register_buffer("target_weights", targets);
  }
}

namespace {

/// Learned patterns (1, quantity, d) for every sample of `input`, in its floating dtype.
Tensor for_batch(const Tensor& weights, const Tensor& input) {
  const Tensor w = is_floating(input.dtype()) ? weights.astype(input.dtype()) : weights;
  return expand(w, {input.shape(0), weights.shape(1), weights.shape(2)});
}

void check_layer_input(const Tensor& input) {
  if (!input.defined() || input.ndim() != 3) {
    fail("[HopfieldLayer] input must be (batch, length, features), got {}",
         input.defined() ? shape_str(input.shape()) : std::string("an undefined tensor"));
  }
}

}  // namespace

Tensor HopfieldLayer::stored(const Tensor& input) const {
  check_layer_input(input);
  return for_batch(lookup_weights, input);
}

Tensor HopfieldLayer::targets(const Tensor& input) const {
  return target_weights.defined() ? for_batch(target_weights, input) : stored(input);
}

Tensor HopfieldLayer::forward(const Tensor& input) { return forward(input, Tensor(), Tensor()); }

Tensor HopfieldLayer::forward(const Tensor& input, const Tensor& stored_padding_mask,
                              const Tensor& association_mask) {
  return hopfield_->forward(stored(input), input, targets(input), stored_padding_mask,
                            association_mask);
}

Tensor HopfieldLayer::association_matrix(const Tensor& input, const Tensor& stored_padding_mask,
                                         const Tensor& association_mask) {
  return hopfield_->association_matrix(stored(input), input, stored_padding_mask, association_mask);
}

Tensor HopfieldLayer::retrieve(const Tensor& input, const Tensor& stored_padding_mask,
                               const Tensor& association_mask) {
  return hopfield_->retrieve(stored(input), input, targets(input), stored_padding_mask,
                             association_mask);
}

Tensor HopfieldLayer::energy(const Tensor& input, const Tensor& stored_padding_mask,
                             const Tensor& association_mask) {
  return hopfield_->energy(stored(input), input, stored_padding_mask, association_mask);
}

}  // namespace basin::energy
