// Helpers of the Energy Transformer layer tests: the PyTorch fixture and deterministic weights.
#pragma once

#include <string>

#include "models/energy/attention.h"
#include "tests/models/nn/nn_fixture_util.h"
#include "tests/test_util.h"

namespace basin::energy::testing {

using basin::testing::make;

/// A tensor of tests/fixtures/et_fixture.txt (float64), written by et_fixture.py.
inline const Tensor& fx(const std::string& name) {
  return basin::testing::nn_fixture("et_fixture.txt", name);
}

/// Deterministic float64 attention weights large enough for uneven attention (β in [0.5, 1]).
inline AttentionWeights attention_weights(int64_t heads, int64_t head_dim, int64_t dim,
                                          uint64_t seed, bool bias = false) {
  AttentionWeights w;
  w.wq = make({heads, head_dim, dim}, seed, -0.6, 0.6);
  w.wk = make({heads, head_dim, dim}, seed + 1, -0.6, 0.6);
  w.beta = make({heads}, seed + 2, 0.5, 1.0);
  if (bias) {
    w.bq = make({heads, head_dim}, seed + 3, -0.3, 0.3);
    w.bk = make({heads, head_dim}, seed + 4, -0.3, 0.3);
  }
  return w;
}

/// The weights as a flat list (wq, wk, beta[, bq, bk]), and back: what gradchecks perturb.
inline Tensors flatten(const AttentionWeights& w) {
  Tensors t{w.wq, w.wk, w.beta};
  if (w.bq.defined()) {
    t.push_back(w.bq);
    t.push_back(w.bk);
  }
  return t;
}

inline AttentionWeights unflatten(const Tensors& t, size_t first) {
  AttentionWeights w{t[first], t[first + 1], t[first + 2], Tensor(), Tensor()};
  if (t.size() >= first + 5) {
    w.bq = t[first + 3];
    w.bk = t[first + 4];
  }
  return w;
}

/// A bool mask (B, N, N) (or (N, N) with batch 0) true with probability p, query 0 of the first
/// sample left without any key.
inline Tensor random_mask(int64_t batch, int64_t n, double p, uint64_t seed) {
  Generator gen(seed);
  Tensor m = batch > 0 ? bernoulli({batch, n, n}, p, Device::cpu(), &gen)
                       : bernoulli({n, n}, p, Device::cpu(), &gen);
  auto v = m.to_vector<bool>();
  for (int64_t j = 0; j < n; ++j) v[static_cast<size_t>(j)] = false;
  std::vector<uint8_t> bytes(v.begin(), v.end());
  return from_vector(bytes, m.shape()).astype(Dtype::boolean);
}

}  // namespace basin::energy::testing
