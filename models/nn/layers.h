// The basic layers: Linear, Embedding, LayerNorm, Dropout, activations, Sequential and MLP, each a
// small Module with PyTorch's parameter names, shapes and default initialisation.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/random.h"
#include "models/nn/module.h"

namespace basin::nn {

/// y = x W^T + b over the last dimension: x (..., in_features) -> (..., out_features), any number
/// of leading dimensions. weight (out_features, in_features) and bias (out_features) start as in
/// torch.nn.Linear: U(-1/sqrt(in_features), 1/sqrt(in_features)) (kaiming_uniform_ with
/// a = sqrt(5) for the weight), drawn from `gen` (the default generator when null).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }

  Tensor weight;  // (out_features, in_features)
  Tensor bias;    // (out_features); undefined without bias

 protected:
  std::string extra_repr() const override;

 private:
  int64_t in_features_, out_features_;
};

/// A lookup table: integer ids of any shape -> their rows of weight (num_embeddings,
/// embedding_dim), giving ids.shape + (embedding_dim,). The weight starts N(0, 1), as in
/// torch.nn.Embedding.
class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim, Generator* gen = nullptr);
  /// `ids` are int32/int64 in [0, num_embeddings).
  Tensor forward(const Tensor& ids) override;
  int64_t num_embeddings() const { return num_embeddings_; }
  int64_t embedding_dim() const { return embedding_dim_; }

  Tensor weight;  // (num_embeddings, embedding_dim)

 protected:
  std::string extra_repr() const override;

 private:
  int64_t num_embeddings_, embedding_dim_;
};

/// Layer normalisation over the last dimension (size `dim`): (x - mean) / sqrt(var + eps), then
/// times weight and plus bias when elementwise_affine (weight starts at ones, bias at zeros).
class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5, bool elementwise_affine = true);
  Tensor forward(const Tensor& x) override;
  int64_t dim() const { return dim_; }
  double eps() const { return eps_; }

  Tensor weight;  // (dim); undefined without elementwise_affine
  Tensor bias;    // (dim); undefined without elementwise_affine

 protected:
  std::string extra_repr() const override;

 private:
  int64_t dim_;
  double eps_;
};

/// While training, zeroes each element with probability p and scales the rest by 1 / (1 - p);
/// the identity in eval mode. Masks come from `gen` (the default generator when null), which must
/// outlive the module.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  double p() const { return p_; }

 protected:
  std::string extra_repr() const override;

 private:
  double p_;
  Generator* gen_;
};

/// The activation functions by name: "relu", "gelu" (exact, x Phi(x), PyTorch's default),
/// "gelu_tanh" (the tanh approximation), "tanh", "sigmoid", "silu" and "identity". Any other
/// name is an error listing these.
Tensor activation(const std::string& name, const Tensor& x);

/// An activation function as a module (for Sequential), printed under PyTorch's class name
/// ("ReLU()", "GELU(approximate='tanh')", ...). The name is checked when the module is built.
class Activation : public Module {
 public:
  explicit Activation(std::string name);
  Tensor forward(const Tensor& x) override;
  const std::string& name() const { return name_; }

 protected:
  std::string extra_repr() const override;

 private:
  std::string name_;
  Tensor (*fn_)(const Tensor&);
};

/// Modules applied in turn, registered as children "0", "1", ...; with no module it is the
/// identity. Every module needs a single-input forward.
class Sequential : public Module {
 public:
  explicit Sequential(std::vector<std::shared_ptr<Module>> modules = {});
  /// Appends a module as child "<size()>".
  void push_back(std::shared_ptr<Module> module);
  Tensor forward(const Tensor& x) override;
  size_t size() const { return modules_.size(); }
  /// The module at `index`; an index past the end is an error.
  const std::shared_ptr<Module>& operator[](size_t index) const;

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

/// A multilayer perceptron over the last dimension: widths {in, hidden..., out} give Linear
/// layers between consecutive widths, each but the last followed by the activation and, when
/// dropout > 0, a Dropout. They live in a Sequential child "layers", so parameter names are
/// torch.nn.Sequential's: "layers.0.weight", "layers.0.bias", "layers.2.weight", ... (with
/// dropout, "layers.3.weight" for the second Linear). Linear weights draw from `gen` in order,
/// and the Dropout layers keep using it (so it must outlive the MLP when dropout > 0).
class MLP : public Module {
 public:
  explicit MLP(std::vector<int64_t> widths, std::string activation = "relu", double dropout = 0.0,
               bool bias = true, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  const std::vector<int64_t>& widths() const { return widths_; }
  /// The Sequential holding every layer.
  Sequential& layers() { return *layers_; }
  /// The Linear layers in order (also reachable through layers()).
  const std::vector<std::shared_ptr<Linear>>& linears() const { return linears_; }

 private:
  std::vector<int64_t> widths_;
  std::shared_ptr<Sequential> layers_;
  std::vector<std::shared_ptr<Linear>> linears_;
};

}  // namespace basin::nn
