// EnergyTransformerBlock: the sum of the attention and Hopfield energies, its descent, and the
// "energy_transformer" registration.
#include "models/energy/et_block.h"

#include "core/error.h"
#include "core/ops.h"

namespace basin::energy {

EnergyTransformerBlock::EnergyTransformerBlock(int64_t dim, int64_t heads, int64_t head_dim,
                                               int64_t memories, EnergyTransformerOptions options,
                                               Generator* gen)
    : EnergyModule("EnergyTransformerBlock") {
  options.attention.dtype = options.dtype;
  options.hopfield.dtype = options.dtype;
  norm_ = register_module("norm", std::make_shared<EnergyLayerNorm>(
                                      dim, options.eps, options.regularized, options.dtype));
  attn_ = register_module(
      "attn", std::make_shared<EnergyAttention>(dim, heads, head_dim, options.attention, gen));
  hn_ =
      register_module("hn", std::make_shared<HopfieldEnergy>(dim, memories, options.hopfield, gen));
}

EnergyTransformerBlock::EnergyTransformerBlock(int64_t dim, int64_t heads, int64_t head_dim,
                                               std::shared_ptr<EnergyModule> memory,
                                               EnergyTransformerOptions options, Generator* gen)
    : EnergyModule("EnergyTransformerBlock") {
  check(memory != nullptr, "[EnergyTransformerBlock] the memory term is null");
  options.attention.dtype = options.dtype;
  norm_ = register_module("norm", std::make_shared<EnergyLayerNorm>(
                                      dim, options.eps, options.regularized, options.dtype));
  attn_ = register_module(
      "attn", std::make_shared<EnergyAttention>(dim, heads, head_dim, options.attention, gen));
  hn_ = register_module("hn", std::move(memory));
}

Tensor EnergyTransformerBlock::energy(const Tensor& g) { return attn_->energy(g) + hn_->energy(g); }

Tensor EnergyTransformerBlock::energy_grad(const Tensor& g) {
  return attn_->energy_grad(g) + hn_->energy_grad(g);
}

std::pair<Tensor, Tensor> EnergyTransformerBlock::energy_and_grad(const Tensor& g) {
  auto [ea, da] = attn_->energy_and_grad(g);
  auto [eh, dh] = hn_->energy_and_grad(g);
  return {ea + eh, da + dh};
}

Tensor EnergyTransformerBlock::total_energy(const Tensor& x) {
  return norm_->energy(x) + energy(norm_->forward(x));
}

std::shared_ptr<Descent> energy_transformer_descent(std::shared_ptr<EnergyTransformerBlock> block,
                                                    DescentOptions options, Generator* gen) {
  check(block != nullptr, "[energy_transformer_descent] the block is null");
  auto norm = block->norm();
  return std::make_shared<Descent>(std::move(block), std::move(norm), options, gen);
}

std::shared_ptr<EnergyTransformerBlock> make_energy_transformer_block(Config config, int64_t dim,
                                                                      Dtype dtype, Generator* gen) {
  const auto heads = config.get<int64_t>("heads", 12);
  const auto head_dim = config.get<int64_t>("head_dim", 64);
  EnergyTransformerOptions o;
  o.dtype = dtype;
  if (config.has("beta")) o.attention.beta = config.get<double>("beta");
  o.attention.learnable_beta = config.get<bool>("learnable_beta", false);
  o.attention.exclude_self = config.get<bool>("exclude_self", false);
  o.attention.bias = config.get<bool>("bias", false);
  o.attention.init_std = config.get<double>("attn_init_std", o.attention.init_std);
  o.eps = config.get<double>("eps", o.eps);
  o.regularized = config.get<bool>("regularized", o.regularized);
  if (config.has("memory")) {
    // Any registered energy layer as the memory term; the Hopfield keys do not apply.
    for (const char* key : {"memories", "kind", "hopfield_beta"}) {
      check(!config.has(key),
            "[energy_transformer] '{}' configures the Hopfield memory; with a [memory] table "
            "set the memory layer's own keys there instead",
            config.prefix().empty() ? key : config.prefix() + "." + key);
    }
    std::shared_ptr<EnergyModule> memory = make_energy({config.section("memory"), dim});
    if (dtype != Dtype::f32) memory->to(dtype);
    return std::make_shared<EnergyTransformerBlock>(dim, heads, head_dim, std::move(memory), o,
                                                    gen);
  }
  const auto memories = config.get<int64_t>("memories", 4 * dim);
  o.hopfield.kind = hopfield_kind_from_name(config.get_choice("kind", "relu2", {"relu2", "lse"}));
  o.hopfield.init_std = config.get<double>("hopfield_init_std", o.hopfield.init_std);
  if (o.hopfield.kind == HopfieldKind::lse) {
    o.hopfield.beta = config.get<double>("hopfield_beta", o.hopfield.beta);
  }
  return std::make_shared<EnergyTransformerBlock>(dim, heads, head_dim, memories, o, gen);
}

BASIN_REGISTER_ENERGY(
    "energy_transformer",
    "Energy Transformer block (attention + Hopfield): heads (12), head_dim (64), memories "
    "(4 * dim), kind (relu2 | lse), beta (attention, 1/sqrt(head_dim)), learnable_beta, "
    "exclude_self, bias, hopfield_beta (0.01), attn_init_std (0.002), hopfield_init_std (0.02), "
    "eps (1e-5), regularized, [memory] (any registered energy as the memory term)",
    [](const EnergyContext& context) -> std::shared_ptr<EnergyModule> {
      return make_energy_transformer_block(context.config, context.dim);
    });

}  // namespace basin::energy
