// The basic layers: construction checks, PyTorch's initialisation and the forwards (each a few
// public ops).
#include "models/nn/layers.h"

#include <cmath>
#include <utility>

#include "core/error.h"
#include "core/ops.h"
#include "models/nn/init.h"

namespace basin::nn {
namespace {

void check_input(const Tensor& x, const std::string& who) {
  if (!x.defined()) fail("[{}] got an undefined input", who);
  if (x.ndim() == 0) fail("[{}] needs an input with at least one dimension, got shape ()", who);
}

struct ActivationInfo {
  const char* name;
  const char* torch_class;  // how repr() prints it
  Tensor (*fn)(const Tensor&);
};

const ActivationInfo kActivations[] = {
    {"relu", "ReLU", [](const Tensor& x) { return relu(x); }},
    {"gelu", "GELU", [](const Tensor& x) { return gelu(x); }},
    {"gelu_tanh", "GELU", [](const Tensor& x) { return gelu(x, true); }},
    {"tanh", "Tanh", [](const Tensor& x) { return tanh(x); }},
    {"sigmoid", "Sigmoid", [](const Tensor& x) { return sigmoid(x); }},
    {"silu", "SiLU", [](const Tensor& x) { return silu(x); }},
    {"identity", "Identity", [](const Tensor& x) { return x; }},
};

const ActivationInfo& find_activation(const std::string& name, const char* who) {
  for (const auto& a : kActivations) {
    if (name == a.name) return a;
  }
  std::string options;
  for (const auto& a : kActivations) options += std::string(options.empty() ? "" : ", ") + a.name;
  fail("[{}] unknown activation '{}'; use one of {}", who, name, options);
}

}  // namespace

// --- Linear --------------------------------------------------------------------------------------
Linear::Linear(int64_t in_features, int64_t out_features, bool bias, Generator* gen)
    : Module("Linear"), in_features_(in_features), out_features_(out_features) {
  if (in_features <= 0 || out_features <= 0) {
    fail("[Linear] in_features and out_features must be positive, got {} and {}", in_features,
         out_features);
  }
  weight = register_parameter("weight", zeros({out_features, in_features}));
  kaiming_uniform_(weight, std::sqrt(5.0), "fan_in", "leaky_relu", gen);
  if (bias) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
    this->bias = register_parameter("bias", zeros({out_features}));
    uniform_(this->bias, -bound, bound, gen);
  }
}

Tensor Linear::forward(const Tensor& x) {
  check_input(x, "Linear");
  if (x.shape(-1) != in_features_) {
    fail("[Linear] input last dimension {} does not match in_features {}", x.shape(-1),
         in_features_);
  }
  // Leading dimensions are folded into one so that the product is a single GEMM.
  const Tensor x2 = x.ndim() > 2 ? reshape(x, {-1, in_features_}) : x;
  Tensor y = matmul(x2, transpose(weight, 0, 1));  // (N, out)
  if (bias.defined()) y = y + bias;
  if (x.ndim() <= 2) return y;
  Shape shape = x.shape();
  shape.back() = out_features_;
  return reshape(y, shape);
}

std::string Linear::extra_repr() const {
  return fmt::format("in_features={}, out_features={}, bias={}", in_features_, out_features_,
                     bias.defined());
}

// --- Embedding -----------------------------------------------------------------------------------
Embedding::Embedding(int64_t num_embeddings, int64_t embedding_dim, Generator* gen)
    : Module("Embedding"), num_embeddings_(num_embeddings), embedding_dim_(embedding_dim) {
  if (num_embeddings <= 0 || embedding_dim <= 0) {
    fail("[Embedding] num_embeddings and embedding_dim must be positive, got {} and {}",
         num_embeddings, embedding_dim);
  }
  weight = register_parameter("weight", zeros({num_embeddings, embedding_dim}));
  normal_(weight, 0.0, 1.0, gen);
}

Tensor Embedding::forward(const Tensor& ids) {
  if (!ids.defined()) fail("[Embedding] got undefined ids");
  if (ids.dtype() != Dtype::i32 && ids.dtype() != Dtype::i64) {
    fail("[Embedding] ids must be int32 or int64, got {}", dtype_name(ids.dtype()));
  }
  return embedding(weight, ids);
}

std::string Embedding::extra_repr() const {
  return fmt::format("{}, {}", num_embeddings_, embedding_dim_);
}

// --- LayerNorm -----------------------------------------------------------------------------------
LayerNorm::LayerNorm(int64_t dim, double eps, bool elementwise_affine)
    : Module("LayerNorm"), dim_(dim), eps_(eps) {
  if (dim <= 0) fail("[LayerNorm] dim must be positive, got {}", dim);
  if (!(eps >= 0.0)) fail("[LayerNorm] eps must be non-negative, got {}", eps);
  if (elementwise_affine) {
    weight = register_parameter("weight", ones({dim}));
    bias = register_parameter("bias", zeros({dim}));
  }
}

Tensor LayerNorm::forward(const Tensor& x) {
  check_input(x, "LayerNorm");
  if (x.shape(-1) != dim_) {
    fail("[LayerNorm] input last dimension {} does not match dim {}", x.shape(-1), dim_);
  }
  return layer_norm(x, weight, bias, eps_);
}

std::string LayerNorm::extra_repr() const {
  return fmt::format("({},), eps={}, elementwise_affine={}", dim_, eps_, weight.defined());
}

// --- Dropout -------------------------------------------------------------------------------------
Dropout::Dropout(double p, Generator* gen) : Module("Dropout"), p_(p), gen_(gen) {
  if (!(p >= 0.0 && p <= 1.0)) fail("[Dropout] probability must be in [0, 1], got {}", p);
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p_, is_training(), gen_); }

std::string Dropout::extra_repr() const { return fmt::format("p={}", p_); }

// --- activations ---------------------------------------------------------------------------------
Tensor activation(const std::string& name, const Tensor& x) {
  if (!x.defined()) fail("[activation] got an undefined input");
  return find_activation(name, "activation").fn(x);
}

Activation::Activation(std::string name)
    : Module(find_activation(name, "Activation").torch_class),
      name_(std::move(name)),
      fn_(find_activation(name_, "Activation").fn) {}

Tensor Activation::forward(const Tensor& x) {
  if (!x.defined()) fail("[{}] got an undefined input", type_name());
  return fn_(x);
}

std::string Activation::extra_repr() const {
  if (name_ == "gelu") return "approximate='none'";
  if (name_ == "gelu_tanh") return "approximate='tanh'";
  return "";
}

// --- Sequential ----------------------------------------------------------------------------------
Sequential::Sequential(std::vector<std::shared_ptr<Module>> modules) : Module("Sequential") {
  for (auto& m : modules) push_back(std::move(m));
}

void Sequential::push_back(std::shared_ptr<Module> module) {
  if (!module) fail("[Sequential] cannot add a null module at position {}", modules_.size());
  register_module(std::to_string(modules_.size()), module);
  modules_.push_back(std::move(module));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (const auto& m : modules_) y = m->forward(y);
  return y;
}

const std::shared_ptr<Module>& Sequential::operator[](size_t index) const {
  if (index >= modules_.size()) {
    fail("[Sequential] index {} is out of range for {} modules", index, modules_.size());
  }
  return modules_[index];
}

// --- MLP -----------------------------------------------------------------------------------------
MLP::MLP(std::vector<int64_t> widths, std::string activation, double dropout, bool bias,
         Generator* gen)
    : Module("MLP"), widths_(std::move(widths)) {
  if (widths_.size() < 2) {
    fail("[MLP] needs at least two widths (input and output), got {}", widths_.size());
  }
  for (int64_t w : widths_) {
    if (w <= 0) fail("[MLP] widths must be positive, got {}", w);
  }
  find_activation(activation, "MLP");
  if (!(dropout >= 0.0 && dropout <= 1.0)) {
    fail("[MLP] dropout must be in [0, 1], got {}", dropout);
  }
  layers_ = register_module("layers", std::make_shared<Sequential>());
  for (size_t i = 0; i + 1 < widths_.size(); ++i) {
    auto linear = std::make_shared<Linear>(widths_[i], widths_[i + 1], bias, gen);
    linears_.push_back(linear);
    layers_->push_back(linear);
    if (i + 2 == widths_.size()) break;  // no activation after the output layer
    layers_->push_back(std::make_shared<Activation>(activation));
    if (dropout > 0.0) layers_->push_back(std::make_shared<Dropout>(dropout, gen));
  }
}

Tensor MLP::forward(const Tensor& x) {
  check_input(x, "MLP");
  if (x.shape(-1) != widths_.front()) {
    fail("[MLP] input last dimension {} does not match the input width {}", x.shape(-1),
         widths_.front());
  }
  return layers_->forward(x);
}

}  // namespace basin::nn
