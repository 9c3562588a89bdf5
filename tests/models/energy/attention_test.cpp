// EnergyAttention: dense and graph energies against the PyTorch fixture; the fused closed-form
// gradient against autograd and against its fallback in value, gradient and second derivative;
// finite differences; masks and exclude_self; graphs; the module, the registry and errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/prims/energy.h"
#include "models/energy/attention.h"
#include "tests/models/energy/et_test_util.h"

namespace basin::energy {
namespace {

using basin::testing::all_close;
using basin::testing::make;
using basin::testing::throws_error;
using testing::attention_weights;
using testing::flatten;
using testing::fx;
using testing::random_mask;
using testing::unflatten;

AttentionWeights fixture_weights(bool bias) {
  return {fx("attn.wq"), fx("attn.wk"), fx("attn.beta"), bias ? fx("attn.bq") : Tensor(),
          bias ? fx("attn.bk") : Tensor()};
}

AttentionWeights as_dtype(const AttentionWeights& w, Dtype dtype) {
  auto as = [dtype](const Tensor& t) { return t.defined() ? t.astype(dtype) : t; };
  return {as(w.wq), as(w.wk), as(w.beta), as(w.bq), as(w.bk)};
}

/// dE/dg by autograd of the energy.
Tensor autograd_grad(const Tensor& g, const AttentionWeights& w, const Tensor& mask, bool excl) {
  return grad([&](const Tensor& t) { return energy_attention(t, w, mask, excl); })(g);
}

Tensor off_diagonal(int64_t n) { return logical_not(eye(n, -1, Dtype::boolean)); }

/// An f64 module holding the weights `w`.
std::shared_ptr<EnergyAttention> module_with(const AttentionWeights& w, bool excl) {
  AttentionOptions o;
  o.exclude_self = excl;
  o.bias = w.bq.defined();
  o.dtype = Dtype::f64;
  auto attn = std::make_shared<EnergyAttention>(w.wq.shape(2), w.wq.shape(0), w.wq.shape(1), o);
  attn->wq.assign(w.wq);
  attn->wk.assign(w.wk);
  attn->beta.assign(w.beta);
  if (o.bias) {
    attn->bq.assign(w.bq);
    attn->bk.assign(w.bk);
  }
  return attn;
}

/// The vjp of (inputs, v) ↦ vjp(f, inputs, v) against cotangents drawn from `seed` on: the
/// second-order derivatives of f, one per input and one for v.
Tensors second_order_vjp(const Fn& f, const Tensors& inputs, const Tensor& v, uint64_t seed) {
  const Fn back = [&f, n = inputs.size()](const Tensors& in) {
    return vjp(f, Tensors(in.begin(), in.begin() + static_cast<long>(n)), {in[n]}).second;
  };
  Tensors all = inputs;
  all.push_back(v);
  Tensors cot;
  for (const Tensor& t : inputs) cot.push_back(make(t.shape(), seed++));
  return vjp(back, all, cot).second;
}

struct FixtureCase {
  const char* suffix;
  bool bias, masked, exclude_self;
};

TEST(EnergyAttention, MatchesTheFixture) {
  const Tensor g = fx("ln.g");  // (2, 5, 8)
  const Tensor fixture_mask = fx("attn.mask") > 0.5;
  for (const FixtureCase& c :
       {FixtureCase{"", false, false, false}, FixtureCase{"_self_excluded", false, false, true},
        FixtureCase{"_masked", false, true, false}, FixtureCase{"_bias", true, false, false},
        FixtureCase{"_masked_self_excluded", false, true, true}}) {
    const std::string energy_name = std::string("attn.energy") + c.suffix;
    const std::string grad_name = std::string("attn.grad") + c.suffix;
    const AttentionWeights w = fixture_weights(c.bias);
    const Tensor mask = c.masked ? fixture_mask : Tensor();
    EXPECT_TRUE(
        all_close(energy_attention(g, w, mask, c.exclude_self), fx(energy_name), 1e-12, 1e-12))
        << c.suffix;
    EXPECT_TRUE(
        all_close(energy_attention_grad(g, w, mask, c.exclude_self), fx(grad_name), 1e-11, 1e-12))
        << c.suffix;
    EXPECT_TRUE(all_close(autograd_grad(g, w, mask, c.exclude_self), fx(grad_name), 1e-11, 1e-12))
        << c.suffix;

    auto attn = module_with(w, c.exclude_self);
    attn->set_mask(mask);
    EXPECT_EQ(attn->mask().defined(), c.masked);
    EXPECT_TRUE(all_close(attn->energy(g), fx(energy_name), 1e-12, 1e-12)) << c.suffix;
    EXPECT_TRUE(all_close(attn->energy_grad(g), fx(grad_name), 1e-11, 1e-12)) << c.suffix;
    auto [e, d] = attn->energy_and_grad(g);
    EXPECT_TRUE(all_close(e, fx(energy_name), 1e-12, 1e-12)) << c.suffix;
    EXPECT_TRUE(all_close(d, fx(grad_name), 1e-11, 1e-12)) << c.suffix;

    // float32 weights and state.
    const AttentionWeights w32 = as_dtype(w, Dtype::f32);
    const Tensor g32 = g.astype(Dtype::f32);
    const Tensor d32 = energy_attention_grad(g32, w32, mask, c.exclude_self);
    EXPECT_EQ(d32.dtype(), Dtype::f32);
    EXPECT_TRUE(all_close(d32, fx(grad_name), 1e-4, 1e-5)) << c.suffix;
    EXPECT_TRUE(
        all_close(energy_attention(g32, w32, mask, c.exclude_self), fx(energy_name), 1e-5, 1e-5))
        << c.suffix;
  }
}

/// The mask variants the closed-form tests run through: none, one for all samples, per sample.
Tensor mask_variant(int kind, const Shape& g_shape, uint64_t seed) {
  const int64_t n = g_shape[g_shape.size() - 2];
  if (kind == 0) return Tensor();
  if (kind == 1 || g_shape.size() == 2) return random_mask(0, n, 0.6, seed);
  return random_mask(g_shape[0], n, 0.6, seed);
}

TEST(EnergyAttention, ClosedFormEqualsAutogradAndItsFallback) {
  uint64_t seed = 100;
  for (const Shape& shape : {Shape{5, 6}, Shape{3, 5, 6}, Shape{1, 1, 6}}) {
    for (bool bias : {false, true}) {
      for (int mask_kind = 0; mask_kind < 3; ++mask_kind) {
        for (bool excl : {false, true}) {
          ++seed;
          const std::string what = shape_str(shape) + " bias " + std::to_string(bias) + " mask " +
                                   std::to_string(mask_kind) + " exclude_self " +
                                   std::to_string(excl);
          const Tensor g = make(shape, seed, -1.5, 1.5);
          const AttentionWeights w = attention_weights(3, 4, 6, seed, bias);
          const Tensor mask = mask_variant(mask_kind, shape, seed);
          const Tensor want = autograd_grad(g, w, mask, excl);
          const Tensor got = energy_attention_grad(g, w, mask, excl);
          EXPECT_TRUE(all_close(got, want, 1e-11, 1e-12)) << what;

          // The op's own fallback on the same inputs.
          const Tensor g3 = g.ndim() == 2 ? unsqueeze(g, 0) : g;
          Tensors in{g3, w.wq, w.wk, w.beta};
          if (bias) {
            in.push_back(w.bq);
            in.push_back(w.bk);
          }
          if (mask.defined()) in.push_back(mask);
          const Tensor fallback =
              prims::EnergyAttentionGrad(bias, mask.defined(), excl).fallback(in);
          EXPECT_TRUE(all_close(reshape(fallback, g.shape()), want, 1e-11, 1e-12)) << what;

          // float32: the kernel against the float64 result.
          const Tensor got32 =
              energy_attention_grad(g.astype(Dtype::f32), as_dtype(w, Dtype::f32), mask, excl);
          EXPECT_TRUE(all_close(got32, want, 1e-4, 1e-5)) << what << " float32";
        }
      }
    }
  }
}

TEST(EnergyAttention, LargerInputsUseEveryThread) {
  // Enough (batch, head) blocks and tokens for the kernel to run in parallel, non-contiguous g.
  const Tensor g = basin::testing::noncontiguous(make({3, 33, 32}, 7, -1.5, 1.5));
  const AttentionWeights w = attention_weights(4, 8, 32, 8, true);
  const Tensor mask = random_mask(3, 33, 0.7, 9);
  for (bool excl : {false, true}) {
    const Tensor want = autograd_grad(g, w, mask, excl);
    EXPECT_TRUE(all_close(energy_attention_grad(g, w, mask, excl), want, 1e-11, 1e-12));
    const Tensor got32 =
        energy_attention_grad(g.astype(Dtype::f32), as_dtype(w, Dtype::f32), mask, excl);
    EXPECT_TRUE(all_close(got32, want, 1e-3, 1e-4));
  }
}

TEST(EnergyAttention, CoreVjpKernelEqualsItsFallback) {
  // The CPU kernel of the vjp's per-(batch, head) core against the op's own fallback: no mask,
  // one mask for the batch, one per item, exclude_self; f64 and f32; enough pairs to run on
  // every thread.
  const int64_t heads = 3, y = 4;
  for (const Shape& bn : {Shape{2, 5}, Shape{4, 33}}) {
    const int64_t b = bn[0], n = bn[1];
    const Tensor qk = make({b, n, 2 * heads * y}, 60, -1.5, 1.5);
    const Tensor cot = make({b, n, 2 * heads * y}, 61);
    const Tensor beta = make({heads}, 62, 0.2, 1.0);
    for (int mask_kind = 0; mask_kind < 3; ++mask_kind) {
      const Tensor mask = mask_variant(mask_kind, Shape{b, n, 1}, 63);
      for (bool excl : {false, true}) {
        const std::string what = shape_str(bn) + " mask " + std::to_string(mask_kind) +
                                 " exclude_self " + std::to_string(excl);
        auto op = std::make_shared<prims::EnergyAttentionCoreVjp>(heads, mask.defined(), excl);
        Tensors in{qk, cot, beta};
        if (mask.defined()) in.push_back(mask);
        const Tensor want = op->fallback(in);
        EXPECT_TRUE(all_close(apply(op, in, want.shape(), Dtype::f64), want, 1e-12, 1e-13)) << what;
        Tensors in32{qk.astype(Dtype::f32), cot.astype(Dtype::f32), beta.astype(Dtype::f32)};
        if (mask.defined()) in32.push_back(mask);
        EXPECT_TRUE(all_close(apply(op, in32, want.shape(), Dtype::f32), want, 1e-4, 1e-5))
            << what << " float32";
      }
    }
  }
}

TEST(EnergyAttention, FusedGradientHasTheDerivativesOfAutograd) {
  // vjp and second-order vjp of the fused dE/dg, in g and every weight, against those of
  // autograd's dE/dg.
  for (bool bias : {false, true}) {
    const Tensor g = make({2, 4, 5}, 20, -1.5, 1.5);
    const AttentionWeights w = attention_weights(2, 3, 5, 21, bias);
    const Tensor mask = random_mask(2, 4, 0.7, 22);
    Tensors inputs{g};
    for (const Tensor& t : flatten(w)) inputs.push_back(t);
    const Fn fused = [&](const Tensors& in) {
      return Tensors{energy_attention_grad(in[0], unflatten(in, 1), mask, true)};
    };
    const Fn autod = [&](const Tensors& in) {
      return Tensors{autograd_grad(in[0], unflatten(in, 1), mask, true)};
    };
    const Tensor v = make(g.shape(), 23);
    const auto gf = vjp(fused, inputs, {v}).second, ga = vjp(autod, inputs, {v}).second;
    ASSERT_EQ(gf.size(), inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      EXPECT_TRUE(all_close(gf[i], ga[i], 1e-10, 1e-12)) << "bias " << bias << " input " << i;
    }
    const auto hf = second_order_vjp(fused, inputs, v, 30);
    const auto ha = second_order_vjp(autod, inputs, v, 30);
    ASSERT_EQ(hf.size(), inputs.size() + 1);
    for (size_t i = 0; i < hf.size(); ++i) {
      EXPECT_TRUE(all_close(hf[i], ha[i], 1e-9, 1e-11)) << "bias " << bias << " input " << i;
    }
  }
}

TEST(EnergyAttention, EnergyDerivatives) {
  for (bool bias : {false, true}) {
    const Tensor g = make({2, 4, 5}, 40, -1.5, 1.5);
    const Tensor mask = random_mask(2, 4, 0.7, 41);
    Tensors inputs{g};
    for (const Tensor& t : flatten(attention_weights(2, 3, 5, 42, bias))) inputs.push_back(t);
    for (bool excl : {false, true}) {
      basin::testing::expect_derivatives(
          [&](const Tensors& in) {
            return Tensors{energy_attention(in[0], unflatten(in, 1), mask, excl)};
          },
          inputs);
    }
    // No mask, unbatched.
    Tensors single{make({4, 5}, 43, -1.5, 1.5)};
    for (size_t i = 1; i < inputs.size(); ++i) single.push_back(inputs[i]);
    basin::testing::expect_derivatives(
        [](const Tensors& in) { return Tensors{energy_attention(in[0], unflatten(in, 1))}; },
        single);
  }
}

TEST(EnergyAttention, FusedGradientDerivatives) {
  // gradcheck and gradgradcheck of the fused dE/dg: the energy's second and third derivatives.
  for (bool bias : {false, true}) {
    const Tensor mask = random_mask(2, 4, 0.7, 51);
    Tensors inputs{make({2, 4, 5}, 50, -1.5, 1.5)};
    for (const Tensor& t : flatten(attention_weights(2, 3, 5, 52, bias))) inputs.push_back(t);
    for (bool excl : {false, true}) {
      basin::testing::expect_derivatives(
          [&](const Tensors& in) {
            return Tensors{energy_attention_grad(in[0], unflatten(in, 1), mask, excl)};
          },
          inputs);
    }
  }
}

TEST(EnergyAttention, MasksAndExcludeSelf) {
  const Tensor g = make({2, 5, 6}, 60, -1.5, 1.5);
  const AttentionWeights w = attention_weights(3, 4, 6, 61);
  const Tensor all_keys = ones({5, 5}, Dtype::boolean);
  // A mask that allows every key changes nothing; the off-diagonal mask is exclude_self.
  EXPECT_TRUE(all_close(energy_attention(g, w, all_keys), energy_attention(g, w), 1e-12, 1e-12));
  EXPECT_TRUE(all_close(energy_attention(g, w, off_diagonal(5)),
                        energy_attention(g, w, Tensor(), true), 1e-12, 1e-12));
  EXPECT_TRUE(all_close(energy_attention_grad(g, w, off_diagonal(5)),
                        energy_attention_grad(g, w, Tensor(), true), 1e-12, 1e-12));
  // A batch mask acts per sample.
  const Tensor mask = random_mask(2, 5, 0.5, 62);
  Tensor per_sample = zeros({});
  Tensors grads;
  for (int64_t b = 0; b < 2; ++b) {
    const Tensor gb = narrow(g, 0, b, 1).contiguous();
    const Tensor mb = reshape(narrow(mask, 0, b, 1).contiguous(), {5, 5});
    per_sample = per_sample + energy_attention(reshape(gb, {5, 6}), w, mb, true);
    grads.push_back(energy_attention_grad(reshape(gb, {5, 6}), w, mb, true));
  }
  EXPECT_TRUE(all_close(energy_attention(g, w, mask, true), per_sample, 1e-12, 1e-12));
  EXPECT_TRUE(all_close(energy_attention_grad(g, w, mask, true), stack(grads), 1e-12, 1e-12));
  // A query without keys contributes nothing: masking out every key of query 0 equals dropping
  // that query's row from the sum (queries and keys of the others unchanged).
  const Tensor none_for_0 = logical_and(all_keys, reshape(arange(5) > 0, {5, 1}));
  const Tensor g0 = reshape(narrow(g, 0, 0, 1).contiguous(), {5, 6});
  const auto [q, k] = std::pair{matmul(unsqueeze(g0, 0), transpose(w.wq)),
                                matmul(unsqueeze(g0, 0), transpose(w.wk))};
  const Tensor scores = matmul(q, transpose(k)) * reshape(w.beta, {3, 1, 1});  // (H, C, B)
  const Tensor lse = logsumexp(narrow(scores, 1, 1, 4), {-1});                 // queries 1..4
  EXPECT_TRUE(all_close(energy_attention(g0, w, none_for_0),
                        neg(sum(lse / reshape(w.beta, {3, 1}))), 1e-12, 1e-12));
  // One token attending only to itself has no key at all with exclude_self.
  const Tensor lone = make({1, 6}, 63);
  EXPECT_EQ(energy_attention(lone, w, Tensor(), true).item<double>(), 0.0);
  EXPECT_EQ(max(abs(energy_attention_grad(lone, w, Tensor(), true))).item<double>(), 0.0);
  // No key at all: the gradient is zero, and finite (not NaN) to second order.
  const Tensor nothing = zeros({5, 5}, Dtype::boolean);
  EXPECT_EQ(energy_attention(g0, w, nothing).item<double>(), 0.0);
  const Tensor hv =
      vjp([&](const Tensors& in) { return Tensors{energy_attention_grad(in[0], w, nothing)}; },
          {g0}, {ones_like(g0)})
          .second[0];
  EXPECT_EQ(max(abs(hv)).item<double>(), 0.0);
}

// --- graphs ------------------------------------------------------------------------------------

TEST(EnergyAttention, GraphMatchesTheFixture) {
  const Tensor g = reshape(narrow(fx("ln.g"), 0, 0, 1).contiguous(), {5, 8});
  const Tensor src = fx("graph.src").astype(Dtype::i64), dst = fx("graph.dst").astype(Dtype::i64);
  const AttentionWeights w = fixture_weights(false);
  const AttentionGraph graph = AttentionGraph::from_edges(src, dst);
  EXPECT_TRUE(all_close(energy_attention_graph(g, w, graph), fx("graph.energy"), 1e-12, 1e-12));
  EXPECT_TRUE(all_close(energy_attention_graph_grad(g, w, graph), fx("graph.grad"), 1e-11, 1e-12));
  // The same edges as int32 and in CSR order (grouped by query node).
  const Tensor offsets = from_vector(std::vector<int32_t>{0, 1, 5, 7, 7, 9}, {6});
  const Tensor csr_src = from_vector(std::vector<int32_t>{1, 0, 2, 4, 1, 0, 3, 4, 2}, {9});
  const AttentionGraph csr = AttentionGraph::from_csr(offsets, csr_src);
  EXPECT_TRUE(all_close(energy_attention_graph(g, w, csr), fx("graph.energy"), 1e-12, 1e-12));
  EXPECT_TRUE(all_close(energy_attention_graph_grad(g, w, csr), fx("graph.grad"), 1e-11, 1e-12));
  // Through the module: an explicit edge list, then a graph set for energy(g).
  auto attn = module_with(w, false);
  EXPECT_TRUE(all_close(attn->energy_graph(g, src, dst), fx("graph.energy"), 1e-12, 1e-12));
  EXPECT_TRUE(all_close(attn->energy_graph_grad(g, graph), fx("graph.grad"), 1e-11, 1e-12));
  attn->set_graph(csr);
  ASSERT_TRUE(attn->graph().has_value());
  EXPECT_EQ(attn->graph()->num_edges(), 9);
  EXPECT_TRUE(all_close(attn->energy(g), fx("graph.energy"), 1e-12, 1e-12));
  EXPECT_TRUE(all_close(attn->energy_grad(g), fx("graph.grad"), 1e-11, 1e-12));
  attn->set_graph(std::nullopt);
  EXPECT_FALSE(attn->graph().has_value());
  EXPECT_TRUE(all_close(attn->energy(fx("ln.g")), fx("attn.energy"), 1e-12, 1e-12));
}

TEST(EnergyAttention, GraphOnACompleteGraphEqualsDense) {
  const Tensor g = make({6, 5}, 70, -1.5, 1.5);
  for (bool bias : {false, true}) {
    const AttentionWeights w = attention_weights(2, 3, 5, 71, bias);
    for (bool excl : {false, true}) {
      // exclude_self on a graph drops its self-loops; a complete graph without them is the same.
      for (bool loops : {true, false}) {
        const bool dense_excl = excl || !loops;
        const AttentionGraph graph = AttentionGraph::complete(6, loops);
        EXPECT_TRUE(all_close(energy_attention_graph(g, w, graph, excl),
                              energy_attention(g, w, Tensor(), dense_excl), 1e-12, 1e-12))
            << bias << excl << loops;
        EXPECT_TRUE(all_close(energy_attention_graph_grad(g, w, graph, excl),
                              energy_attention_grad(g, w, Tensor(), dense_excl), 1e-11, 1e-12))
            << bias << excl << loops;
        // The same edges unsorted (ids rather than offsets).
        Generator gen(72);
        const Tensor perm = randperm(graph.num_edges(), Device::cpu(), &gen);
        const AttentionGraph shuffled = AttentionGraph::from_edges(
            index_select(graph.src, 0, perm), index_select(graph.dst, 0, perm));
        EXPECT_TRUE(all_close(energy_attention_graph(g, w, shuffled, excl),
                              energy_attention(g, w, Tensor(), dense_excl), 1e-12, 1e-12));
      }
    }
  }
}

TEST(EnergyAttention, GraphGradientEqualsAutogradAndDerivatives) {
  const Tensor g = make({5, 4}, 80, -1.5, 1.5);
  // Node 3 has no in-edge; node 4 only a self-loop (empty with exclude_self).
  const Tensor src = tensor<int64_t>({0, 2, 4, 1, 1, 0, 3, 4, 2, 1});
  const Tensor dst = tensor<int64_t>({1, 1, 1, 0, 1, 2, 2, 4, 0, 2});
  const AttentionGraph graph = AttentionGraph::from_edges(src, dst);
  for (bool bias : {false, true}) {
    Tensors inputs{g};
    for (const Tensor& t : flatten(attention_weights(2, 3, 4, 81, bias))) inputs.push_back(t);
    for (bool excl : {false, true}) {
      const AttentionWeights w = unflatten(inputs, 1);
      const Tensor want =
          grad([&](const Tensor& t) { return energy_attention_graph(t, w, graph, excl); })(g);
      EXPECT_TRUE(all_close(energy_attention_graph_grad(g, w, graph, excl), want, 1e-11, 1e-12));
      basin::testing::expect_derivatives(
          [&](const Tensors& in) {
            return Tensors{energy_attention_graph(in[0], unflatten(in, 1), graph, excl)};
          },
          inputs);
      basin::testing::expect_derivatives(
          [&](const Tensors& in) {
            return Tensors{energy_attention_graph_grad(in[0], unflatten(in, 1), graph, excl)};
          },
          inputs);
    }
  }
}

/// A random CSR graph of n nodes: node c gets up to max_degree distinct keys (possibly none), a
/// self-loop among them half of the time.
AttentionGraph random_csr(int64_t n, int64_t max_degree, uint64_t seed, Dtype index = Dtype::i64) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> offsets{0}, src;
  for (int64_t c = 0; c < n; ++c) {
    const auto degree = static_cast<int64_t>(rng() % static_cast<uint64_t>(max_degree + 1));
    std::vector<int64_t> keys;
    for (int64_t i = 0; i < degree; ++i) keys.push_back(static_cast<int64_t>(rng() % n));
    if (rng() % 2) keys.push_back(c);
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    src.insert(src.end(), keys.begin(), keys.end());
    offsets.push_back(static_cast<int64_t>(src.size()));
  }
  const auto e = static_cast<int64_t>(src.size());
  return AttentionGraph::from_csr(from_vector(offsets, {n + 1}).astype(index),
                                  from_vector(src, {e}).astype(index));
}

TEST(EnergyAttention, GraphFusedCoreEqualsTheEdgeOpsWithTheirDerivatives) {
  // A CSR graph runs the fused core; the same edges as an edge list run the edge ops.
  const Tensor g = make({6, 4}, 90, -1.5, 1.5);
  for (Dtype index : {Dtype::i64, Dtype::i32}) {
    const AttentionGraph csr = random_csr(6, 4, 91, index);
    const AttentionGraph edges = AttentionGraph::from_edges(csr.src, csr.dst);
    for (bool bias : {false, true}) {
      Tensors inputs{g};
      for (const Tensor& t : flatten(attention_weights(2, 3, 4, 92, bias))) inputs.push_back(t);
      for (bool excl : {false, true}) {
        const std::string what = std::string(dtype_name(index)) + " bias " + std::to_string(bias) +
                                 " exclude_self " + std::to_string(excl);
        const AttentionWeights w = unflatten(inputs, 1);
        const Tensor want = energy_attention_graph_grad(g, w, edges, excl);
        EXPECT_TRUE(all_close(energy_attention_graph_grad(g, w, csr, excl), want, 1e-12, 1e-13))
            << what;
        const Tensor got32 =
            energy_attention_graph_grad(g.astype(Dtype::f32), as_dtype(w, Dtype::f32), csr, excl);
        EXPECT_TRUE(all_close(got32, want, 1e-4, 1e-5)) << what << " float32";
        // First- and second-order vjps of the closed form against autograd of the edge ops.
        const Fn fused = [&](const Tensors& in) {
          return Tensors{energy_attention_graph_grad(in[0], unflatten(in, 1), csr, excl)};
        };
        const Fn ops = [&](const Tensors& in) {
          return Tensors{energy_attention_graph_grad(in[0], unflatten(in, 1), edges, excl)};
        };
        const Tensor v = make(g.shape(), 93);
        const auto gf = vjp(fused, inputs, {v}).second, go = vjp(ops, inputs, {v}).second;
        ASSERT_EQ(gf.size(), inputs.size());
        for (size_t i = 0; i < inputs.size(); ++i) {
          EXPECT_TRUE(all_close(gf[i], go[i], 1e-11, 1e-12)) << what << " input " << i;
        }
        const auto hf = second_order_vjp(fused, inputs, v, 94);
        const auto ho = second_order_vjp(ops, inputs, v, 94);
        ASSERT_EQ(hf.size(), inputs.size() + 1);
        for (size_t i = 0; i < hf.size(); ++i) {
          EXPECT_TRUE(all_close(hf[i], ho[i], 1e-10, 1e-11)) << what << " input " << i;
        }
        if (index == Dtype::i64) basin::testing::expect_derivatives(fused, inputs);
      }
    }
  }
}

TEST(EnergyAttention, GraphCoreKernelsEqualTheirFallbacks) {
  // Enough nodes and edges for the kernels to run on every thread; empty rows and self-loops.
  const int64_t n = 300, heads = 4, y = 8;
  const AttentionGraph graph = random_csr(n, 12, 95);
  const Tensor qk = make({n, 2 * heads * y}, 96, -1.5, 1.5);
  const Tensor cot = make({n, 2 * heads * y}, 97);
  const Tensor beta = make({heads}, 98, 0.2, 1.0);
  for (bool excl : {false, true}) {
    auto core = std::make_shared<prims::EnergyAttentionGraphCore>(heads, excl);
    const Tensors in{qk, beta, graph.offsets, graph.src};
    const Tensor want = core->fallback(in);
    EXPECT_TRUE(all_close(apply(core, in, want.shape(), Dtype::f64), want, 1e-12, 1e-13));
    const Tensors in32{qk.astype(Dtype::f32), beta.astype(Dtype::f32), graph.offsets, graph.src};
    EXPECT_TRUE(all_close(apply(core, in32, want.shape(), Dtype::f32), want, 1e-4, 1e-5));
    auto back = std::make_shared<prims::EnergyAttentionGraphCoreVjp>(heads, excl);
    const Tensors vin{qk, cot, beta, graph.offsets, graph.src};
    const Tensor want_vjp = back->fallback(vin);
    EXPECT_TRUE(all_close(apply(back, vin, want_vjp.shape(), Dtype::f64), want_vjp, 1e-11, 1e-12));
  }
  // A malformed CSR index is named, not read out of bounds.
  const Tensor bad_src = tensor<int64_t>({0, 7});
  EXPECT_TRUE(throws_error(
      [&] {
        apply(std::make_shared<prims::EnergyAttentionGraphCore>(1, false),
              {make({3, 2}, 1), make({1}, 2), tensor<int64_t>({0, 1, 2, 2}), bad_src}, {3, 2},
              Dtype::f64);
      },
      {"EnergyAttentionGraphCore", "node 7"}));
  // An offset past the edges in the middle of the index, with the last one right.
  EXPECT_TRUE(throws_error(
      [&] {
        apply(std::make_shared<prims::EnergyAttentionGraphCore>(1, false),
              {make({3, 2}, 1), make({1}, 2), tensor<int64_t>({0, 5, 1, 2}), bad_src}, {3, 2},
              Dtype::f64);
      },
      {"EnergyAttentionGraphCore", "must not decrease nor pass the 2 edges"}));
}

// --- the module --------------------------------------------------------------------------------

TEST(EnergyAttention, ParametersBuffersAndInitialisation) {
  Generator gen(3);
  EnergyAttention attn(64, 4, 16, {}, &gen);
  auto params = attn.named_parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].first, "wq");
  EXPECT_EQ(params[1].first, "wk");
  EXPECT_EQ(attn.wq.shape(), (Shape{4, 16, 64}));
  EXPECT_EQ(attn.wq.dtype(), Dtype::f32);
  auto buffers = attn.named_buffers();
  ASSERT_EQ(buffers.size(), 1u);
  EXPECT_EQ(buffers[0].first, "beta");
  EXPECT_TRUE(all_close(attn.beta, full({4}, 0.25), 1e-7, 0));
  // N(0, 0.002²): the sample standard deviation of 4096 draws is within a few percent.
  EXPECT_NEAR(std(attn.wq).item<double>(), 0.002, 2e-4);
  EXPECT_NEAR(mean(attn.wk).item<double>(), 0.0, 2e-4);
  EXPECT_FALSE(all_close(attn.wq, attn.wk, 0, 1e-6));
  EXPECT_EQ(attn.repr(), "EnergyAttention(dim=64, heads=4, head_dim=16, beta=0.25)");

  AttentionOptions o;
  o.beta = 0.7;
  o.learnable_beta = true;
  o.bias = true;
  o.exclude_self = true;
  EnergyAttention learn(6, 2, 3, o);
  params = learn.named_parameters();
  ASSERT_EQ(params.size(), 5u);
  EXPECT_EQ(params[2].first, "beta");
  EXPECT_EQ(params[3].first, "bq");
  EXPECT_EQ(params[4].first, "bk");
  EXPECT_EQ(learn.bq.shape(), (Shape{2, 3}));
  EXPECT_TRUE(learn.named_buffers().empty());
  EXPECT_EQ(learn.repr(),
            "EnergyAttention(dim=6, heads=2, head_dim=3, beta=0.7, learnable_beta=true, "
            "exclude_self=true, bias=true)");
}

TEST(EnergyAttention, GradientsReachEveryParameterThroughTheClosedForm) {
  // Training differentiates a loss through dE/dg: the fused op's vjp must reach W_Q, W_K, β and
  // the biases, as autograd's second derivatives would.
  AttentionOptions o;
  o.learnable_beta = true;
  o.bias = true;
  o.init_std = 0.3;
  o.dtype = Dtype::f64;
  Generator gen(5);
  EnergyAttention attn(5, 2, 3, o, &gen);
  attn.bq.assign(make({2, 3}, 6));
  attn.bk.assign(make({2, 3}, 7));
  const Tensor g = make({2, 4, 5}, 8, -1.5, 1.5), v = make({2, 4, 5}, 9);
  sum(attn.energy_grad(g) * v).backward();
  const Tensors fused{attn.wq.grad(), attn.wk.grad(), attn.beta.grad(), attn.bq.grad(),
                      attn.bk.grad()};
  attn.zero_grad();
  sum(autograd_grad(g, attn.weights(), Tensor(), false) * v).backward();
  const Tensors want{attn.wq.grad(), attn.wk.grad(), attn.beta.grad(), attn.bq.grad(),
                     attn.bk.grad()};
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_TRUE(fused[i].defined()) << i;
    EXPECT_TRUE(all_close(fused[i], want[i], 1e-10, 1e-12)) << i;
  }
}

TEST(EnergyAttention, Registry) {
  EnergyContext context{Config::parse("type = \"attention\"\nheads = 3\nhead_dim = 2\n"
                                      "beta = 0.5\nexclude_self = true\nlearnable_beta = true\n"),
                        7};
  auto layer = make_energy(context);
  auto* attn = dynamic_cast<EnergyAttention*>(layer.get());
  ASSERT_NE(attn, nullptr);
  EXPECT_EQ(attn->dim(), 7);
  EXPECT_EQ(attn->heads(), 3);
  EXPECT_EQ(attn->head_dim(), 2);
  EXPECT_TRUE(attn->options().exclude_self);
  EXPECT_TRUE(all_close(attn->beta, full({3}, 0.5), 0, 0));
  EXPECT_EQ(attn->named_parameters().size(), 3u);
  context.config.check_all_used();
  // Defaults: the paper's 12 heads of 64 dimensions, β = 1/8.
  auto plain = make_energy({Config::parse("type = \"attention\""), 16});
  auto* p = dynamic_cast<EnergyAttention*>(plain.get());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->heads(), 12);
  EXPECT_EQ(p->head_dim(), 64);
  EXPECT_TRUE(all_close(p->beta, full({12}, 0.125), 0, 0));
  EXPECT_TRUE(throws_error(
      [] {
        EnergyContext c{Config::parse("type = \"attention\"\nheds = 2"), 4};
        make_energy(c);
        c.config.check_all_used();
      },
      {"heds"}));
}

TEST(EnergyAttention, Errors) {
  EnergyAttention attn(6, 2, 3);
  const Tensor g = zeros({2, 4, 6});
  EXPECT_TRUE(throws_error([&] { attn.energy(zeros({6})); }, {"[EnergyAttention]", "(6,)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        attn.energy(zeros({1, 2, 4, 6}));
      },
      {"[EnergyAttention]", "(batch, tokens, dim)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        attn.energy_grad(zeros({4, 5}));
      },
      {"[EnergyAttention]", "5 features", "expect 6"}));
  EXPECT_TRUE(throws_error(
      [&] {
        attn.energy(g, ones({4, 5}, Dtype::boolean));
      },
      {"[EnergyAttention]", "mask", "(4, 5)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        attn.energy_grad(g, ones({3, 4, 4}, Dtype::boolean));
      },
      {"[EnergyAttention]", "mask", "(3, 4, 4)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        attn.energy(zeros({4, 6}), ones({2, 4, 4}, Dtype::boolean));
      },
      {"[EnergyAttention]", "mask"}));
  EXPECT_TRUE(throws_error(
      [&] {
        attn.energy(g, ones({4, 4}));
      },
      {"[EnergyAttention]", "bool", "float32"}));
  EXPECT_TRUE(throws_error(
      [&] {
        attn.set_mask(ones({4, 4}, Dtype::i64));
      },
      {"[EnergyAttention]", "bool"}));
  EXPECT_TRUE(throws_error(
      [&] {
        attn.set_mask(ones({4, 3}, Dtype::boolean));
      },
      {"[EnergyAttention]", "(4, 3)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        attn.energy(zeros({4, 6}, Dtype::i32));
      },
      {"[EnergyAttention]", "floating"}));
  // Weights of the wrong shapes through the functional forms.
  AttentionWeights w = attn.weights();
  w.beta = ones({3});
  EXPECT_TRUE(throws_error([&] { energy_attention(g, w); }, {"[EnergyAttention]", "beta", "(3,)"}));
  w = attn.weights();
  w.wk = zeros({2, 3, 5});
  EXPECT_TRUE(throws_error([&] { energy_attention_grad(g, w); }, {"[EnergyAttention]", "wk"}));
  w = attn.weights();
  w.bq = zeros({2, 3});
  EXPECT_TRUE(throws_error([&] { energy_attention(g, w); }, {"[EnergyAttention]", "bq and bk"}));
  // Graphs.
  const AttentionGraph graph = AttentionGraph::complete(4);
  EXPECT_TRUE(throws_error([&] { attn.energy_graph(g, graph); },
                           {"[EnergyAttention]", "(N, D)", "(2, 4, 6)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        attn.energy_graph(zeros({5, 6}), graph);
      },
      {"[EnergyAttention]", "offsets", "5 nodes"}));
  EXPECT_TRUE(throws_error(
      [&] {
        attn.energy_graph(zeros({4, 6}), tensor<int64_t>({0, 1}), tensor<int64_t>({1}));
      },
      {"[AttentionGraph]", "(2,)", "(1,)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        attn.energy_graph(zeros({4, 6}), tensor<float>({0, 1}), tensor<float>({1, 0}));
      },
      {"[AttentionGraph]", "int32 or int64"}));
  EXPECT_TRUE(throws_error(
      [&] {
        attn.energy_graph(zeros({4, 6}), AttentionGraph{});
      },
      {"[EnergyAttention]", "src and dst"}));
  EXPECT_TRUE(throws_error([&] { attn.set_graph(AttentionGraph{}); },
                           {"[EnergyAttention]", "src and dst"}));
  // Out-of-range node ids are caught by the segment ops / gathers.
  EXPECT_THROW(attn.energy_graph(zeros({4, 6}), tensor<int64_t>({0, 7}), tensor<int64_t>({1, 0})),
               Error);
  // Construction.
  EXPECT_TRUE(throws_error([] { EnergyAttention(6, 0, 3); }, {"[EnergyAttention]", "heads"}));
  AttentionOptions o;
  o.beta = -1.0;
  EXPECT_TRUE(throws_error([&] { EnergyAttention(6, 2, 3, o); }, {"[EnergyAttention]", "beta"}));
}

}  // namespace
}  // namespace basin::energy
