// Config: typed reads with defaults, --set overrides, unknown-key reports, TOML/JSON output.
#include "core/config.h"

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"

namespace basin {
namespace {

using Strings = std::vector<std::string>;

/// The message of the basin::Error that fn throws ("" when it throws none).
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

constexpr const char* kExample = R"(
name = "et"
seed = 7
[model]
hidden = 64
activation = "gelu"
dims = [1, 2, 3]
[optim]
lr = 3e-4
betas = [0.9, 0.999]
warmup = 10
decay = true
tags = ["a", "b"]
)";

TEST(Config, ParseAndGetEveryType) {
  Config c = Config::parse(kExample);
  EXPECT_EQ(c.get<std::string>("name"), "et");
  EXPECT_EQ(c.get<int64_t>("seed"), 7);
  EXPECT_EQ(c.get<int>("model.hidden"), 64);
  EXPECT_EQ(c.get<std::vector<int64_t>>("model.dims"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(c.get<double>("optim.lr"), 3e-4);
  EXPECT_EQ(c.get<double>("optim.warmup"), 10.0);  // an integer is a number
  EXPECT_EQ(c.get<std::vector<double>>("optim.betas"), (std::vector<double>{0.9, 0.999}));
  EXPECT_TRUE(c.get<bool>("optim.decay"));
  EXPECT_EQ(c.get<Strings>("optim.tags"), (Strings{"a", "b"}));
  EXPECT_EQ(c.get<std::string>("model.activation"), "gelu");
  EXPECT_EQ(c.unused_keys(), Strings{});
  EXPECT_NO_THROW(c.check_all_used());
}

TEST(Config, IntegerArraysAreNumberArrays) {
  Config c = Config::parse("w = [1, 2.5]");
  EXPECT_EQ(c.get<std::vector<double>>("w"), (std::vector<double>{1.0, 2.5}));
}

TEST(Config, DefaultsAreInsertedAndShown) {
  Config c;
  EXPECT_TRUE(c.empty());
  EXPECT_EQ(c.get("model.hidden", 32), 32);
  EXPECT_EQ(c.get("model.activation", "relu"), "relu");
  EXPECT_EQ(c.get("optim.lr", 1e-3), 1e-3);
  EXPECT_EQ(c.get("optim.steps", int64_t{100}), 100);
  EXPECT_EQ(c.get("optim.nesterov", false), false);
  EXPECT_EQ(c.get("model.dims", std::vector<int64_t>{4, 5}), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(c.get("optim.betas", std::vector<double>{0.9, 0.99}), (std::vector<double>{0.9, 0.99}));
  EXPECT_EQ(c.get("data.splits", Strings{"train", "test"}), (Strings{"train", "test"}));
  EXPECT_FALSE(c.empty());
  EXPECT_TRUE(c.has("model.hidden"));
  EXPECT_EQ(c.to_toml(),
            "[data]\n"
            "splits = [ \"train\", \"test\" ]\n"
            "\n"
            "[model]\n"
            "activation = \"relu\"\n"
            "dims = [ 4, 5 ]\n"
            "hidden = 32\n"
            "\n"
            "[optim]\n"
            "betas = [ 0.9, 0.99 ]\n"
            "lr = 0.001\n"
            "nesterov = false\n"
            "steps = 100\n");
  // A value present in the config wins over the fallback.
  Config d = Config::parse("[model]\nhidden = 8");
  EXPECT_EQ(d.get("model.hidden", 32), 8);
  EXPECT_EQ(d.get<int>("model.hidden"), 8);
}

TEST(Config, RoundTripThroughToml) {
  Config c = Config::parse(kExample);
  c.get("model.depth", 12);
  c.get("optim.eps", 1e-8);
  c.get("data.root", "/tmp/x y \"q\" \\ é");
  c.set("model.nested={a = 1, b = {c = [1, 2]}}");
  c.section("empty");
  const std::string text = c.to_toml();
  Config back = Config::parse(text);
  EXPECT_EQ(back.to_toml(), text);
  EXPECT_EQ(back.to_json(), c.to_json());
  EXPECT_EQ(back.get<double>("optim.lr"), 3e-4);
  EXPECT_EQ(back.get<double>("optim.eps"), 1e-8);
  EXPECT_EQ(back.get<std::string>("data.root"), "/tmp/x y \"q\" \\ é");
  EXPECT_EQ(back.get<std::vector<int64_t>>("model.nested.b.c"), (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(back.has("empty"));
  EXPECT_TRUE(back.section("empty").empty());
  // Floats print in their shortest exact form.
  EXPECT_NE(text.find("lr = 3e-04\n"), std::string::npos) << text;
}

TEST(Config, ToJson) {
  Config c = Config::parse("a = 1\n[m]\nx = \"s\"\ny = [1.5, 2]\nz = true");
  EXPECT_EQ(c.to_json(),
            "{\n"
            "    \"a\" : 1,\n"
            "    \"m\" : {\n"
            "        \"x\" : \"s\",\n"
            "        \"y\" : [\n"
            "            1.5,\n"
            "            2\n"
            "        ],\n"
            "        \"z\" : true\n"
            "    }\n"
            "}\n");
  EXPECT_EQ(Config().to_json(), "{}\n");
  EXPECT_EQ(Config().to_toml(), "");
}

TEST(Config, DottedKeysAndSectionsShareState) {
  Config root = Config::parse("[model.encoder]\nwidth = 16\n[optim]\nlr = 0.1");
  EXPECT_EQ(root.prefix(), "");
  Config model = root.section("model");
  EXPECT_EQ(model.prefix(), "model");
  Config encoder = model.section("encoder");
  EXPECT_EQ(encoder.prefix(), "model.encoder");
  EXPECT_EQ(root.section("model.encoder").prefix(), "model.encoder");
  EXPECT_EQ(encoder.get<int>("width"), 16);
  EXPECT_EQ(model.get<int>("encoder.width"), 16);
  EXPECT_TRUE(model.has("encoder.width"));
  EXPECT_FALSE(model.has("width"));
  EXPECT_FALSE(root.has("model.encoder.width.deeper"));
  EXPECT_FALSE(root.has("nothing.here"));
  // A default written through a section is visible from the root and from copies.
  model.get("decoder.width", 8);
  Config copy = root;
  EXPECT_EQ(copy.get<int>("model.decoder.width"), 8);
  // A section that did not exist is created and shows up in the output.
  Config data = root.section("data");
  EXPECT_TRUE(data.empty());
  EXPECT_TRUE(root.has("data"));
  EXPECT_NE(root.to_toml().find("[data]"), std::string::npos);
  // Unused keys are reported from the section down, with full names.
  EXPECT_EQ(root.section("optim").unused_keys(), Strings{"optim.lr"});
  EXPECT_EQ(model.unused_keys(), Strings{});
  EXPECT_NO_THROW(model.check_all_used());
  EXPECT_EQ(root.unused_keys(), Strings{"optim.lr"});
  EXPECT_EQ(error_of([&] { root.section("model.encoder.width"); }),
            "[config] model.encoder.width: expected a table, got an integer (16)");
  EXPECT_EQ(error_of([&] { root.get<int>("optim.lr.x"); }),
            "[config] optim.lr: expected a table, got a float (0.1)");
  EXPECT_EQ(error_of([&] { root.get<int>("model..x"); }), "[config] invalid key 'model..x'");
}

TEST(Config, SetParsesTomlLiterals) {
  Config c = Config::parse("[optim]\nlr = 0.1\n[model]\nhidden = 4");
  c.set("optim.lr=3e-4");
  c.set("model.hidden = 12");
  c.set("model.bias=true");
  c.set("model.activation=\"tanh\"");
  c.set("model.dims=[1, 2]");
  c.set("model.head={width = 3, kind = 'mlp'}");
  c.set("model.betas=[0.9, 0.999]");
  EXPECT_EQ(c.get<double>("optim.lr"), 3e-4);
  EXPECT_EQ(c.get<int>("model.hidden"), 12);
  EXPECT_TRUE(c.get<bool>("model.bias"));
  EXPECT_EQ(c.get<std::string>("model.activation"), "tanh");
  EXPECT_EQ(c.get<std::vector<int64_t>>("model.dims"), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(c.get<int>("model.head.width"), 3);
  EXPECT_EQ(c.get<std::string>("model.head.kind"), "mlp");
  EXPECT_EQ(c.get<std::vector<double>>("model.betas"), (std::vector<double>{0.9, 0.999}));
  // An inline table becomes an ordinary section in the output.
  EXPECT_NE(c.to_toml().find("[model.head]"), std::string::npos) << c.to_toml();
}

TEST(Config, SetTakesPlainWordsAndPathsAsStrings) {
  Config c;
  c.set("data.root=../shared/data/mnist");
  c.set("model.activation=relu");
  c.set("device=cuda:0");
  c.set("data.file=train_v2.bin");
  c.set_value("data.name", "mnist-small");
  EXPECT_EQ(c.get<std::string>("data.root"), "../shared/data/mnist");
  EXPECT_EQ(c.get<std::string>("model.activation"), "relu");
  EXPECT_EQ(c.get<std::string>("device"), "cuda:0");
  EXPECT_EQ(c.get<std::string>("data.file"), "train_v2.bin");
  EXPECT_EQ(c.get<std::string>("data.name"), "mnist-small");
  EXPECT_EQ(error_of([&] { c.set("data.root=a b"); }),
            "[config] --set data.root: cannot parse value 'a b'");
  EXPECT_EQ(error_of([&] { c.set("data.root="); }),
            "[config] --set data.root: cannot parse value ''");
  EXPECT_EQ(error_of([&] { c.set("x=[1, 2"); }), "[config] --set x: cannot parse value '[1, 2'");
  // A value that would smuggle in a second key is refused.
  EXPECT_EQ(error_of([&] { c.set_value("x", "1\ny = 2"); }),
            "[config] --set x: cannot parse value '1\ny = 2'");
  EXPECT_EQ(error_of([&] { c.set("model.hidden"); }),
            "[config] --set 'model.hidden': expected key=value");
  EXPECT_FALSE(c.has("x"));
}

TEST(Config, SetCreatesNestedKeysAndReplacesValues) {
  Config c = Config::parse("[model]\nhidden = 4\ndims = [1]");
  c.set("a.b.c=5");
  EXPECT_EQ(c.get<int>("a.b.c"), 5);
  c.set("model.hidden=\"wide\"");  // a value may change type; reads check it
  EXPECT_EQ(c.get<std::string>("model.hidden"), "wide");
  c.set("model.dims=3");
  EXPECT_EQ(c.get<int>("model.dims"), 3);
  c.set("a.b={d = 1}");  // a table replaces a table whole
  EXPECT_FALSE(c.has("a.b.c"));
  EXPECT_EQ(c.get<int>("a.b.d"), 1);
  // Through a section, keys are relative to it.
  Config model = c.section("model");
  model.set_value("depth", "6");
  EXPECT_EQ(c.get<int>("model.depth"), 6);
}

TEST(Config, SetRefusesToSwapTablesAndValues) {
  Config c = Config::parse("[model]\nhidden = 4");
  EXPECT_EQ(error_of([&] { c.set("model=3"); }),
            "[config] --set model: cannot replace a table by an integer (3)");
  EXPECT_EQ(error_of([&] { c.set("model.hidden={x = 1}"); }),
            "[config] --set model.hidden: cannot replace an integer (4) by a table");
  EXPECT_EQ(error_of([&] { c.set("model.hidden.x=1"); }),
            "[config] model.hidden: expected a table, got an integer (4)");
  EXPECT_EQ(c.get<int>("model.hidden"), 4);
}

TEST(Config, TypeErrors) {
  Config c = Config::parse(
      "[model]\nhidden = \"abc\"\nlr = \"x\"\nflag = 1\nname = 2.5\ndims = 3\n"
      "mixed = [1, \"two\"]\nsub = {a = 1}\nlong = \"" +
      std::string(100, 'z') + "\"");
  EXPECT_EQ(error_of([&] { c.get<int>("model.hidden"); }),
            "[config] model.hidden: expected an integer, got a string (\"abc\")");
  EXPECT_EQ(error_of([&] { c.get<int64_t>("model.hidden", 3); }),
            "[config] model.hidden: expected an integer, got a string (\"abc\")");
  EXPECT_EQ(error_of([&] { c.get<double>("model.lr"); }),
            "[config] model.lr: expected a number, got a string (\"x\")");
  EXPECT_EQ(error_of([&] { c.get<bool>("model.flag"); }),
            "[config] model.flag: expected a boolean, got an integer (1)");
  EXPECT_EQ(error_of([&] { c.get<std::string>("model.name"); }),
            "[config] model.name: expected a string, got a float (2.5)");
  EXPECT_EQ(error_of([&] { c.get<std::vector<int64_t>>("model.dims"); }),
            "[config] model.dims: expected an array, got an integer (3)");
  EXPECT_EQ(error_of([&] { c.get<std::vector<int64_t>>("model.mixed"); }),
            "[config] model.mixed[1]: expected an integer, got a string (\"two\")");
  EXPECT_EQ(error_of([&] { c.get<Strings>("model.mixed"); }),
            "[config] model.mixed[0]: expected a string, got an integer (1)");
  EXPECT_EQ(error_of([&] { c.get<int>("model.sub"); }),
            "[config] model.sub: expected an integer, got a table");
  EXPECT_EQ(
      error_of([&] { c.get<int>("model.long"); }),
      "[config] model.long: expected an integer, got a string (\"" + std::string(56, 'z') + "...)");
  // A failed read does not count as a use.
  EXPECT_EQ(c.unused_keys().size(), 8u);
}

TEST(Config, IntRange) {
  Config c = Config::parse("big = 3000000000\nsmall = -2147483649\nedge = -2147483648");
  EXPECT_EQ(error_of([&] { c.get<int>("big"); }),
            "[config] big: expected an integer in [-2147483648, 2147483647], got 3000000000");
  EXPECT_EQ(error_of([&] { c.get<int>("small", 0); }),
            "[config] small: expected an integer in [-2147483648, 2147483647], got -2147483649");
  EXPECT_EQ(c.get<int>("edge"), -2147483648);
  EXPECT_EQ(c.get<int64_t>("big"), 3000000000);
}

TEST(Config, MissingRequiredKey) {
  Config c = Config::parse("[model]\nhidden = 1");
  EXPECT_EQ(error_of([&] { c.get<int>("model.depth"); }), "[config] missing key model.depth");
  EXPECT_EQ(error_of([&] { c.section("model").get<double>("lr"); }),
            "[config] missing key model.lr");
  EXPECT_EQ(error_of([&] { c.get<std::string>("data.root"); }), "[config] missing key data.root");
  EXPECT_FALSE(c.has("data"));  // a failed required read creates nothing
}

TEST(Config, Choices) {
  const Strings acts{"relu", "gelu", "tanh"};
  Config c = Config::parse("[model]\nactivation = \"rleu\"\nnorm = \"layer\"");
  EXPECT_EQ(error_of([&] { c.get_choice("model.activation", "relu", acts); }),
            "[config] model.activation: 'rleu' is not one of relu, gelu, tanh");
  EXPECT_EQ(c.section("model").get_choice("norm", "none", {"none", "layer", "rms"}), "layer");
  EXPECT_EQ(c.get_choice("model.out", "gelu", acts), "gelu");
  EXPECT_TRUE(c.has("model.out"));
}

TEST(Config, UnknownKeyWithSuggestion) {
  Config c = Config::parse("[model]\nhiden = 3\n[optim]\nrl = 0.1\n");
  c.get("model.hidden", 64);
  c.get("optim.lr", 1e-3);
  EXPECT_EQ(c.unused_keys(), (Strings{"model.hiden", "optim.rl"}));
  EXPECT_EQ(error_of([&] { c.check_all_used(); }),
            "[config] unknown key 'model.hiden' (did you mean 'model.hidden'?); 1 more unknown "
            "key: optim.rl");
  EXPECT_EQ(error_of([&] { c.section("optim").check_all_used(); }),
            "[config] unknown key 'optim.rl' (did you mean 'optim.lr'?)");
}

TEST(Config, UnknownTableWithSuggestion) {
  // A whole table with a misspelt name: the suggestion fixes the table's name.
  Config c = Config::parse("[modle]\nhidden = 3\nwidth = 2\n");
  c.get("model.hidden", 64);
  c.get("data.root", "x");
  EXPECT_EQ(error_of([&] { c.check_all_used(); }),
            "[config] unknown key 'modle.hidden' (did you mean 'model.hidden'?); 1 more unknown "
            "key: modle.width");
}

TEST(Config, UnknownKeyWithoutSuggestion) {
  Config c = Config::parse("[model]\nzzz = 1\nhidden = 2\nbeta = 1.0\n[extra]\n");
  Config model = c.section("model");
  model.get<int>("hidden");
  model.get<double>("beta");
  model.get("activation", "relu");
  EXPECT_EQ(c.unused_keys(), (Strings{"extra", "model.zzz"}));
  EXPECT_EQ(error_of([&] { model.check_all_used(); }),
            "[config] unknown key 'model.zzz' (known keys in model: activation, beta, hidden)");
  EXPECT_EQ(error_of([&] { c.check_all_used(); }),
            "[config] unknown key 'extra' (known keys at the top level: model); 1 more unknown "
            "key: model.zzz");
  // Nothing read at that level: no listing.
  EXPECT_EQ(error_of([] { Config::parse("a = 1").check_all_used(); }), "[config] unknown key 'a'");
  // Short names need a closer match: 'lr' is not taken for 'wd'.
  Config o = Config::parse("lr = 1");
  o.get("wd", 0.0);
  EXPECT_EQ(error_of([&] { o.check_all_used(); }),
            "[config] unknown key 'lr' (known keys at the top level: wd)");
}

TEST(Config, ManyUnknownKeysAreCountedAndListedUpToTen) {
  std::string text;
  for (char k = 'a'; k <= 'l'; ++k) text += std::string(1, k) + "1 = 0\n";
  EXPECT_EQ(error_of([&] { Config::parse(text).check_all_used(); }),
            "[config] unknown key 'a1'; 11 more unknown keys: b1, c1, d1, e1, f1, g1, h1, i1, j1, "
            "k1, ...");
}

TEST(Config, VisitedEmptyTablesAreUsed) {
  Config c = Config::parse("[a]\n[b]\n[c.d]\n");
  EXPECT_EQ(c.unused_keys(), (Strings{"a", "b", "c.d"}));
  c.section("a");
  c.section("c").section("d");
  EXPECT_EQ(c.unused_keys(), Strings{"b"});
  EXPECT_FALSE(c.has("x"));  // has() neither creates nor marks
  EXPECT_TRUE(c.has("b"));
  EXPECT_EQ(c.unused_keys(), Strings{"b"});
}

TEST(Config, SyntaxErrorNamesLineAndColumn) {
  EXPECT_EQ(error_of([] { Config::parse("a = 1\nb = \n", "exp.toml"); }),
            "[config] exp.toml:2:5: Error while parsing key-value pair: expected value, saw '\\n'");
  EXPECT_EQ(error_of([] { Config::parse("a = 1\na = 2\n"); }),
            "[config] <string>:2:5: Error while parsing key-value pair: cannot redefine existing "
            "integer 'a'");
}

TEST(Config, LoadFile) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("basin_config_test_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "run.toml").string();
  {
    std::ofstream out(path);
    out << "[model]\nhidden = 5\n";
  }
  Config c = Config::load(path);
  EXPECT_EQ(c.get<int>("model.hidden"), 5);
  {
    std::ofstream out(path);
    out << "[model\n";
  }
  EXPECT_EQ(error_of([&] { Config::load(path); }).rfind("[config] " + path + ":1:", 0), 0u);
  const std::string missing = (dir / "missing.toml").string();
  EXPECT_EQ(error_of([&] { Config::load(missing); }),
            "[config] cannot read " + missing + ": No such file or directory");
  EXPECT_EQ(error_of([&] { Config::load(dir.string()); }),
            "[config] cannot read " + dir.string() + ": Is a directory");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace basin
