// Module: dotted names of nested modules, state dicts (safetensors round trip, strict loading and
// its errors), train/eval, device moves that keep handles, repr and registration errors.
#include <filesystem>
#include <sstream>

#include "models/nn/layers.h"
#include "models/nn/module.h"
#include "models/optim/sgd.h"
#include "tests/test_util.h"

namespace basin::nn {
namespace {
using basin::testing::all_close;
using basin::testing::throws_error;

std::vector<std::string> names(const NamedTensors& named) {
  std::vector<std::string> out;
  for (const auto& [n, _] : named) out.push_back(n);
  return out;
}

/// A module with a parameter, a buffer and a child, to nest inside others. The child is registered
/// first, yet the parameter is listed first: a module's own tensors precede its children's, as in
/// PyTorch.
class Block : public Module {
 public:
  explicit Block(Generator* gen) : Module("Block") {
    fc = register_module("fc", std::make_shared<Linear>(3, 2, true, gen));
    running = register_buffer("running", zeros({2}, Dtype::i64));
    gain = register_parameter("gain", ones({2}));
  }
  Tensor forward(const Tensor& x) override { return (*fc)(x)*gain; }
  std::shared_ptr<Linear> fc;
  Tensor running, gain;
};

/// Own parameter first, then two children.
class Net : public Module {
 public:
  explicit Net(uint64_t seed) : Module("Net"), gen_(seed) {
    scale = register_parameter("scale", full({1}, 2.0));
    encoder = register_module("encoder", std::make_shared<Block>(&gen_));
    head = register_module("head", std::make_shared<Linear>(2, 4, true, &gen_));
  }
  Tensor forward(const Tensor& x) override { return (*head)((*encoder)(x)) * scale; }
  Tensor scale;
  std::shared_ptr<Block> encoder;
  std::shared_ptr<Linear> head;

 private:
  Generator gen_;
};

/// A module whose registration calls are driven by the test.
class Bare : public Module {
 public:
  Bare() : Module("Bare") {}
  using Module::register_buffer;
  using Module::register_module;
  using Module::register_parameter;
};

TEST(Module, DottedNamesInRegistrationOrder) {
  Net net(0);
  EXPECT_EQ(names(net.named_parameters()),
            (std::vector<std::string>{"scale", "encoder.gain", "encoder.fc.weight",
                                      "encoder.fc.bias", "head.weight", "head.bias"}));
  EXPECT_EQ(names(net.named_buffers()), (std::vector<std::string>{"encoder.running"}));
  const auto children = net.named_children();
  ASSERT_EQ(children.size(), 2u);
  EXPECT_EQ(children[0].first, "encoder");
  EXPECT_EQ(children[0].second.get(), net.encoder.get());
  EXPECT_EQ(children[1].first, "head");
  EXPECT_EQ(net.num_parameters(), 1 + 6 + 2 + 2 + 8 + 4);
  const Tensors ps = net.parameters();
  ASSERT_EQ(ps.size(), 6u);
  EXPECT_EQ(ps[2].impl(), net.encoder->fc->weight.impl());  // the very handles, not copies
  for (const Tensor& p : ps) {
    EXPECT_TRUE(p.requires_grad());
    EXPECT_TRUE(p.is_leaf());
  }
  EXPECT_EQ(net.type_name(), "Net");
}

TEST(Module, MlpNamesMatchTorchSequential) {
  // torch.nn.Sequential(Linear, ReLU, Linear) stored as `layers` gives exactly these names.
  MLP mlp({4, 8, 3});
  EXPECT_EQ(names(mlp.named_parameters()),
            (std::vector<std::string>{"layers.0.weight", "layers.0.bias", "layers.2.weight",
                                      "layers.2.bias"}));
  MLP deep({4, 8, 8, 3}, "gelu", 0.1,
           false);  // Linear, GELU, Dropout, Linear, GELU, Dropout, Linear
  EXPECT_EQ(names(deep.named_parameters()),
            (std::vector<std::string>{"layers.0.weight", "layers.3.weight", "layers.6.weight"}));
  const StateDict sd = mlp.state_dict();
  EXPECT_EQ(sd.size(), 4u);
  EXPECT_EQ(sd.at("layers.2.weight").shape(), (Shape{3, 8}));
}

TEST(Module, SharedChildIsOneParameterButTwoStateNames) {
  Bare m;
  auto shared = std::make_shared<Linear>(2, 2);
  m.register_module("a", shared);
  m.register_module("b", shared);
  EXPECT_EQ(names(m.named_parameters()), (std::vector<std::string>{"a.weight", "a.bias"}));
  EXPECT_EQ(m.num_parameters(), 6);
  const StateDict sd = m.state_dict();
  EXPECT_EQ(sd.size(), 4u);
  EXPECT_TRUE(sd.contains("b.weight"));
  EXPECT_NO_THROW(m.load_state_dict(sd));
}

TEST(Module, RegisteredParameterIsADetachedLeafSharingTheBuffer) {
  Bare m;
  Tensor base = zeros({3}).set_requires_grad();
  Tensor derived = base * 2.0;  // recorded
  Tensor p = m.register_parameter("p", derived);
  EXPECT_TRUE(p.is_leaf());
  EXPECT_TRUE(p.requires_grad());
  EXPECT_EQ(p.storage(), derived.storage());
  Tensor b = m.register_buffer("b", derived);
  EXPECT_FALSE(b.requires_grad());
  EXPECT_EQ(m.named_buffers()[0].second.impl(), b.impl());
}

TEST(Module, StateDictHoldsDetachedCpuCopies) {
  Net net(1);
  const StateDict sd = net.state_dict();
  EXPECT_EQ(sd.size(), 7u);  // six parameters and one buffer
  for (const auto& [name, t] : sd) {
    EXPECT_TRUE(t.is_contiguous()) << name;
    EXPECT_TRUE(t.device().is_cpu()) << name;
    EXPECT_FALSE(t.requires_grad()) << name;
  }
  EXPECT_EQ(sd.at("encoder.running").dtype(), Dtype::i64);
  const Tensor before = sd.at("head.weight").clone();
  net.head->weight.assign(zeros({4, 2}));
  EXPECT_TRUE(all_close(sd.at("head.weight"), before, 0, 0));  // unaffected by later changes
  EXPECT_NE(sd.at("head.weight").storage(), net.head->weight.storage());
}

TEST(Module, StateDictRoundTripThroughSafetensors) {
  Net a(1), b(2);
  a.encoder->running.assign(tensor<int64_t>({7, 9}));
  const Tensor x = basin::testing::make({5, 3}, 3, -1, 1, Dtype::f32);
  EXPECT_FALSE(all_close(a(x), b(x), 1e-3, 0));  // different seeds, different models
  const std::string path =
      (std::filesystem::path(::testing::TempDir()) / "nn_module_roundtrip.safetensors").string();
  io::save_safetensors(path, a.state_dict());
  const Tensor b_weight = b.head->weight;
  b.load_state_dict(io::load_safetensors(path).tensors);
  std::filesystem::remove(path);
  EXPECT_TRUE(all_close(b(x), a(x), 0, 0));
  EXPECT_EQ(b.head->weight.impl(), b_weight.impl());  // loaded in place
  EXPECT_EQ(b.encoder->running.to_vector<int64_t>(), (std::vector<int64_t>{7, 9}));
}

TEST(Module, LoadStateDictCastsInPlaceAndOptimizersSeeIt) {
  Net net(3);
  optim::SGD opt(net.parameters(), 0.1);  // built before the load: holds the same handles
  StateDict sd;
  for (const auto& [name, t] : net.state_dict()) sd[name] = full(t.shape(), 0.5, Dtype::f64);
  net.load_state_dict(sd);
  EXPECT_EQ(net.head->weight.dtype(), Dtype::f32);
  EXPECT_EQ(net.encoder->running.dtype(), Dtype::i64);
  EXPECT_TRUE(all_close(opt.params()[4], full({4, 2}, 0.5), 0, 0));
  EXPECT_TRUE(net.head->weight.requires_grad());
  EXPECT_TRUE(net.head->weight.is_leaf());
}

TEST(Module, LoadStateDictStrictErrors) {
  Bare m;
  auto fc = m.register_module("fc", std::make_shared<Linear>(4, 2));
  StateDict good = m.state_dict();
  const Tensor weight_before = fc->weight.clone();

  StateDict typo = good;
  typo.erase("fc.bias");
  typo["fc.bais"] = zeros({2});
  try {
    m.load_state_dict(typo);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "[load_state_dict] missing keys: fc.bias; unexpected keys: fc.bais");
  }
  StateDict missing = good;
  missing.erase("fc.weight");
  missing.erase("fc.bias");
  EXPECT_TRUE(throws_error([&] { m.load_state_dict(missing); },
                           {"[load_state_dict] missing keys: fc.bias, fc.weight"}));
  StateDict extra = good;
  extra["other"] = zeros({1});
  EXPECT_TRUE(throws_error([&] { m.load_state_dict(extra); },
                           {"[load_state_dict] unexpected keys: other"}));
  StateDict wrong = good;
  wrong["fc.weight"] = zeros({2, 5});
  wrong["fc.bias"] = full({2}, 3.0);
  EXPECT_TRUE(throws_error([&] { m.load_state_dict(wrong); },
                           {"[load_state_dict] size mismatch for fc.weight", "(2, 5)", "(2, 4)"}));
  // Checks run before any write: the valid bias of the failed load was not copied either.
  EXPECT_FALSE(all_close(fc->bias, full({2}, 3.0)));
  EXPECT_TRUE(all_close(fc->weight, weight_before, 0, 0));
  // Non-strict: missing and unexpected names are fine, shapes still are not.
  StateDict partial{{"fc.bias", full({2}, 1.5)}, {"unrelated", zeros({3})}};
  m.load_state_dict(partial, false);
  EXPECT_TRUE(all_close(fc->bias, full({2}, 1.5), 0, 0));
  EXPECT_TRUE(all_close(fc->weight, weight_before, 0, 0));
  EXPECT_THROW(m.load_state_dict(wrong, false), Error);
  EXPECT_TRUE(throws_error(
      [&] {
        m.load_state_dict({{"fc.bias", Tensor()}}, false);
      },
      {"[load_state_dict]", "fc.bias", "undefined"}));
}

TEST(Module, TrainEvalPropagates) {
  Generator gen(4);
  MLP mlp({6, 32, 2}, "relu", 0.5, true, &gen);
  EXPECT_TRUE(mlp.is_training());
  const Tensor x = basin::testing::make({16, 6}, 5, -1, 1, Dtype::f32);
  EXPECT_FALSE(all_close(mlp(x), mlp(x), 0, 0));  // a fresh dropout mask each call
  mlp.eval();
  EXPECT_FALSE(mlp.is_training());
  EXPECT_FALSE(mlp.layers().is_training());
  EXPECT_FALSE(mlp.layers()[2]->is_training());
  const uint64_t offset = gen.offset();
  EXPECT_TRUE(all_close(mlp(x), mlp(x), 0, 0));
  EXPECT_EQ(gen.offset(), offset);  // no mask drawn in eval mode
  // In eval mode the MLP is its layers without dropout.
  const auto& l = mlp.linears();
  EXPECT_TRUE(all_close(mlp(x), (*l[1])(relu((*l[0])(x))), 1e-6, 1e-7));
  mlp.train();
  EXPECT_TRUE(mlp.layers()[2]->is_training());
}

TEST(Module, ToDtypeCastsFloatingTensorsInPlace) {
  Net net(5);
  const Tensor w = net.head->weight;
  const Tensor values = w.clone();
  const Tensor x = basin::testing::make({2, 3}, 6, -1, 1, Dtype::f32);
  const Tensor y32 = net(x);
  sum(y32).backward();
  net.to(Dtype::f64);
  EXPECT_EQ(net.head->weight.impl(), w.impl());  // the same handle, now f64
  EXPECT_EQ(w.dtype(), Dtype::f64);
  EXPECT_FALSE(w.grad().defined());
  EXPECT_TRUE(all_close(w.astype(Dtype::f32), values, 0, 0));
  EXPECT_EQ(net.encoder->running.dtype(), Dtype::i64);  // integer buffers keep their dtype
  for (const auto& [name, t] : net.named_parameters()) EXPECT_EQ(t.dtype(), Dtype::f64) << name;
  const Tensor y64 = net(x.astype(Dtype::f64));
  EXPECT_EQ(y64.dtype(), Dtype::f64);
  EXPECT_TRUE(all_close(y64.astype(Dtype::f32), y32, 1e-6, 1e-6));
  EXPECT_THROW(net.to(Dtype::i64), Error);
}

TEST(Module, ToKeepsHandlesAndMovesInPlace) {
  Net net(5);
  optim::SGD opt(net.parameters(), 0.1);
  const Tensor w = net.head->weight;
  const Tensor values = w.clone();
  const Tensor x = basin::testing::make({2, 3}, 6, -1, 1, Dtype::f32);
  sum(net(x)).backward();
  net.to(Device::cpu());  // already there: nothing changes, gradients stay
  EXPECT_EQ(net.head->weight.impl(), w.impl());
  EXPECT_TRUE(all_close(net.head->weight, values, 0, 0));
  EXPECT_TRUE(w.grad().defined());
  if (!cuda_is_available()) {
    EXPECT_THROW(net.to(Device::cuda()), Error);
    EXPECT_TRUE(net.head->weight.device().is_cpu());
    return;
  }
  net.to(Device::cuda());
  for (const auto& [name, t] : net.state_dict()) EXPECT_TRUE(t.device().is_cpu()) << name;
  EXPECT_TRUE(w.device().is_cuda());  // the old handle moved with the module
  EXPECT_TRUE(opt.params()[4].device().is_cuda());
  EXPECT_TRUE(net.encoder->running.device().is_cuda());
  EXPECT_FALSE(w.grad().defined());
  EXPECT_TRUE(all_close(w, values, 0, 0));
  net.to(Device::cpu());
  EXPECT_TRUE(all_close(net(x), net(x), 0, 0));
}

TEST(Module, ZeroGradDropsEveryGradient) {
  Net net(6);
  sum(net(basin::testing::make({2, 3}, 7, -1, 1, Dtype::f32))).backward();
  for (const auto& [name, p] : net.named_parameters()) EXPECT_TRUE(p.grad().defined()) << name;
  net.zero_grad();
  for (const auto& [name, p] : net.named_parameters()) EXPECT_FALSE(p.grad().defined()) << name;
}

TEST(Module, ReprTree) {
  MLP mlp({4, 8, 3}, "relu", 0.25);
  EXPECT_EQ(mlp.repr(),
            "MLP(\n"
            "  (layers): Sequential(\n"
            "    (0): Linear(in_features=4, out_features=8, bias=true)\n"
            "    (1): ReLU()\n"
            "    (2): Dropout(p=0.25)\n"
            "    (3): Linear(in_features=8, out_features=3, bias=true)\n"
            "  )\n"
            ")");
  Net net(0);
  std::ostringstream os;
  os << net;
  EXPECT_EQ(os.str(),
            "Net(\n"
            "  (encoder): Block(\n"
            "    (fc): Linear(in_features=3, out_features=2, bias=true)\n"
            "  )\n"
            "  (head): Linear(in_features=2, out_features=4, bias=true)\n"
            ")");
  EXPECT_EQ(Bare().repr(), "Bare()");
  EXPECT_EQ(Sequential().repr(), "Sequential()");
}

TEST(Module, RegistrationErrors) {
  Bare m;
  m.register_parameter("w", zeros({2}));
  EXPECT_TRUE(throws_error([&] { m.register_parameter("w", zeros({2})); },
                           {"[register_parameter] Bare already has", "'w'"}));
  EXPECT_TRUE(throws_error([&] { m.register_buffer("w", zeros({2})); },
                           {"[register_buffer] Bare already has", "'w'"}));
  EXPECT_TRUE(throws_error([&] { m.register_module("w", std::make_shared<Bare>()); },
                           {"[register_module] Bare already has", "'w'"}));
  m.register_module("child", std::make_shared<Bare>());
  EXPECT_THROW(m.register_parameter("child", zeros({1})), Error);
  EXPECT_TRUE(throws_error([&] { m.register_parameter("", zeros({1})); }, {"name is empty"}));
  EXPECT_TRUE(throws_error([&] { m.register_buffer("a.b", zeros({1})); }, {"contains '.'"}));
  EXPECT_TRUE(throws_error([&] { m.register_parameter("u", Tensor()); }, {"'u' is undefined"}));
  EXPECT_TRUE(throws_error([&] { m.register_parameter("i", zeros({1}, Dtype::i64)); },
                           {"[register_parameter]", "int64", "floating"}));
  EXPECT_TRUE(throws_error([&] { m.register_module("n", std::shared_ptr<Bare>()); },
                           {"[register_module]", "'n' is null"}));
  auto outer = std::make_shared<Bare>();
  auto inner = std::make_shared<Bare>();
  outer->register_module("inner", inner);
  EXPECT_TRUE(throws_error([&] { inner->register_module("loop", outer); }, {"cycle"}));
  EXPECT_EQ(names(m.named_parameters()),
            (std::vector<std::string>{"w"}));  // failures added nothing
}

TEST(Module, DefaultForwardThrows) {
  Bare m;
  EXPECT_TRUE(throws_error([&] { m(zeros({1})); }, {"[Bare] has no single-input forward"}));
  Sequential seq({std::make_shared<Bare>()});
  EXPECT_TRUE(throws_error([&] { seq(zeros({1})); }, {"[Bare] has no single-input forward"}));
}

}  // namespace
}  // namespace basin::nn
