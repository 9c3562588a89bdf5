// basin-train and basin-eval as a user runs them: exit codes, one-line errors that name the
// problem, nothing overwritten on bad input, and the MNIST MLP run end to end.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "tests/tools/cli_util.h"

namespace {
namespace fs = std::filesystem;

#ifdef BASIN_TOOLS_DIR

using Result = basin::testing::CliResult;
using basin::testing::count_lines;
using basin::testing::slurp;

class CliTest : public basin::testing::CliFixture {
 protected:
  CliTest() : CliFixture("basin-cli") {}

  // Writes a small MLP config on a synthetic-free dataset: MNIST, 200 steps.
  fs::path config(const std::string& extra = "") {
    const fs::path p = dir_ / "mlp.toml";
    std::ofstream(p) << "[model]\ntype = \"mlp\"\nhidden = [32]\n"
                     << extra
                     << "\n[data]\ntype = \"mnist\"\ntrain_size = 512\ntest_size = 256\n"
                        "[train]\nsteps = 20\nbatch_size = 32\neval_every = 10\n";
    return p;
  }
  static bool have_mnist() { return fs::exists(BASIN_SOURCE_DIR "/../shared/data/mnist"); }
};

TEST_F(CliTest, UsageErrorsExitTwoWithOneLine) {
  Result r = run("basin-train", "--no-such-flag");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;

  r = run("basin-train", "");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--config"), std::string::npos) << r.err;

  r = run("basin-train", "--config " + (dir_ / "missing.toml").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("missing.toml"), std::string::npos) << r.err;

  r = run("basin-train", "--resume " + (dir_ / "nowhere").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no such run folder"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;

  r = run("basin-eval", "--checkpoint " + (dir_ / "nowhere").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no such checkpoint"), std::string::npos) << r.err;
}

TEST_F(CliTest, BadConfigsNameTheKeyAndCreateNothing) {
  // Without the data its folder is the first error, not the misspelt key.
  if (!have_mnist()) GTEST_SKIP() << "../shared/data/mnist is absent";
  const fs::path out = dir_ / "run";
  Result r =
      run("basin-train", "--config " + config("hiden = 3").string() + " --out " + out.string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown key 'model.hiden'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("did you mean 'model.hidden'"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_FALSE(fs::exists(out));

  r = run("basin-train",
          "--config " + config().string() + " --set model.hidden=abc --out " + out.string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("model.hidden"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));

  r = run("basin-train",
          "--config " + config().string() + " --set 'optim.lr=[1,' --out " + out.string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("optim.lr"), std::string::npos) << r.err;

  r = run("basin-train", "--config " + config().string() + " --set nokey --out " + out.string());
  EXPECT_EQ(r.code, 2);

  const fs::path broken = dir_ / "broken.toml";
  std::ofstream(broken) << "[model]\ntype = \"mlp\nhidden = [32]\n";
  r = run("basin-train", "--config " + broken.string() + " --out " + out.string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("broken.toml:2:"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(CliTest, PrintConfigShowsDefaultsAndWritesNothing) {
  if (!have_mnist()) GTEST_SKIP() << "../shared/data/mnist is absent";
  const fs::path out = dir_ / "run";
  Result r = run("basin-train", "--config " + config().string() +
                                    " --seed 5 --print-config --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("seed = 5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("activation = \"relu\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("weight_decay = 0.01"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(CliTest, ResumeOfAnIncompatibleRunOverwritesNothing) {
  if (!have_mnist()) GTEST_SKIP() << "../shared/data/mnist is absent";
  const fs::path out = dir_ / "run";
  Result r = run("basin-train", "--config " + config().string() + " --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string metrics = slurp(out / "metrics.jsonl");
  const std::string model = slurp(out / "checkpoint-20" / "model.safetensors");

  // Same folder without --resume: refused.
  r = run("basin-train", "--config " + config().string() + " --out " + out.string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--resume"), std::string::npos) << r.err;

  // A different model: the checkpoint does not load.
  r = run("basin-train",
          "--resume " + out.string() + " --set 'model.hidden=[16]' --set train.steps=40");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("checkpoint-20"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_EQ(slurp(out / "metrics.jsonl"), metrics);
  EXPECT_EQ(slurp(out / "checkpoint-20" / "model.safetensors"), model);

  // Resuming properly continues to the new step count.
  r = run("basin-train", "--resume " + out.string() + " --set train.steps=30 -q");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(out / "checkpoint-30"));
}

TEST_F(CliTest, DamagedFilesAreOneLineErrors) {
  if (!have_mnist()) GTEST_SKIP() << "../shared/data/mnist is absent";
  // A truncated MNIST image file.
  const fs::path data = dir_ / "mnist";
  fs::create_directories(data);
  const fs::path src = BASIN_SOURCE_DIR "/../shared/data/mnist";
  fs::copy_file(src / "t10k-labels-idx1-ubyte.gz", data / "t10k-labels-idx1-ubyte.gz");
  const std::string images = slurp(src / "t10k-images-idx3-ubyte.gz");
  std::ofstream(data / "t10k-images-idx3-ubyte.gz", std::ios::binary)
      << images.substr(0, images.size() / 2);
  const fs::path out = dir_ / "run";
  Result r = run("basin-train", "--config " + config().string() +
                                    " --set data.root=" + data.string() + " --out " + out.string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("t10k-images-idx3-ubyte.gz"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_FALSE(fs::exists(out));

  // A checkpoint whose model file was cut short: resume and eval refuse it, nothing changes.
  r = run("basin-train", "--config " + config().string() + " -q --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const fs::path model = out / "checkpoint-20" / "model.safetensors";
  const std::string bytes = slurp(model);
  std::ofstream(model, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() - 10);
  const std::string metrics = slurp(out / "metrics.jsonl");
  r = run("basin-train", "--resume " + out.string() + " --set train.steps=30");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("model.safetensors"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_EQ(slurp(out / "metrics.jsonl"), metrics);
  EXPECT_FALSE(fs::exists(out / "checkpoint-30"));
  r = run("basin-eval", "--checkpoint " + (out / "checkpoint-20").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("model.safetensors"), std::string::npos) << r.err;
}

// The acceptance run: configs/mlp_mnist.toml reaches >= 95% test accuracy, and
// basin-eval reports the same metrics as one JSON object.
TEST_F(CliTest, MlpMnistEndToEnd) {
  if (!have_mnist()) GTEST_SKIP() << "../shared/data/mnist is absent";
  const fs::path out = dir_ / "mlp_mnist";
  Result r = run("basin-train", "--config configs/mlp_mnist.toml --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto checkpoints = std::distance(fs::directory_iterator(out), fs::directory_iterator());
  EXPECT_GE(checkpoints, 4);  // config.toml, metrics.jsonl, plots/ or not, and checkpoints
  const fs::path last = out / "checkpoint-1500";
  ASSERT_TRUE(fs::exists(last));

  r = run("basin-eval", "--checkpoint " + last.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["step"], 1500);
  EXPECT_EQ(j["split"], "test");
  EXPECT_GE(j["accuracy"].get<double>(), 0.95) << r.out;
  EXPECT_TRUE(fs::exists(last / "eval-test.json"));
  // The trainer's last evaluation line agrees with basin-eval.
  std::ifstream in(out / "metrics.jsonl");
  std::string line, last_test;
  while (std::getline(in, line))
    if (line.find("\"split\":\"test\"") != std::string::npos) last_test = line;
  EXPECT_DOUBLE_EQ(nlohmann::json::parse(last_test)["accuracy"].get<double>(),
                   j["accuracy"].get<double>());
}

// basin-capacity --quick: every model is measured, the JSON holds a figure per size, and the
// classical network stores fewer patterns than the exponential memories at the same N.
TEST_F(CliTest, CapacityQuickMeasuresEveryModel) {
  Result r = run("basin-capacity", "--quick --seeds 2 --out " + dir_.string());
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(fs::exists(dir_ / "capacity.json"));
  const nlohmann::json j = nlohmann::json::parse(slurp(dir_ / "capacity.json"));
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& m : j["models"]) by_name[m["name"].get<std::string>()] = m;
  ASSERT_GE(by_name.size(), 5u) << j.dump();
  for (const auto& [name, m] : by_name) {
    ASSERT_FALSE(m["results"].empty()) << name;
    for (const auto& row : m["results"]) {
      EXPECT_GE(row["clean"]["mean"].get<double>(), 1.0) << name;
      EXPECT_EQ(row["clean"]["per_seed"].size(), 2u) << name;
    }
  }
  // Per neuron, exponential storage beats the classical network's linear one by far.
  auto per_neuron = [&](const std::string& name) {
    const auto& row = by_name.at(name)["results"].back();
    return row["clean"]["mean"].get<double>() / row["n"].get<double>();
  };
  ASSERT_TRUE(by_name.count("classical") && by_name.count("modern")) << j.dump();
  EXPECT_GT(per_neuron("modern"), 3 * per_neuron("classical"));
  EXPECT_NE(r.out.find("classical Hopfield"), std::string::npos) << r.out;

  r = run("basin-capacity", "--quick --models classical,nonsense --out " + dir_.string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown model 'nonsense'"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
}

// basin-retrieval on the photographs: with the bottom half masked, the classical network
// recalls a mixture while the Dense AM and the modern network recall every masked bit.
TEST_F(CliTest, RetrievalOfHalfMaskedPhotos) {
  if (!fs::exists(BASIN_SOURCE_DIR "/../shared/data/skimage-photos"))
    GTEST_SKIP() << "../shared/data/skimage-photos is absent";
  const fs::path png = dir_ / "grid.png";
  Result r = run("basin-retrieval", "--size 16 --out " + png.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_GT(fs::file_size(png), 1000u);
  // "name ... <all>% <masked>%" per model.
  auto masked_error = [&](const std::string& name) {
    const size_t at = r.out.find(name);
    if (at == std::string::npos) return -1.0;
    std::istringstream line(r.out.substr(at + name.size(), r.out.find('\n', at) - at));
    std::string word;
    std::vector<double> percents;
    while (line >> word)
      if (!word.empty() && word.back() == '%') percents.push_back(std::stod(word));
    return percents.size() == 2 ? percents[1] : -1.0;
  };
  const double classical = masked_error("classical Hopfield");
  const double dense = masked_error("Dense AM");
  const double modern = masked_error("modern Hopfield beta");
  ASSERT_GE(classical, 0) << r.out;
  EXPECT_GT(classical, 10.0) << r.out;
  EXPECT_LT(dense, 1.0) << r.out;
  EXPECT_LT(modern, 1.0) << r.out;

  r = run("basin-retrieval", "--data " + (dir_ / "missing").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no such folder"), std::string::npos) << r.err;
}

// Every Energy Transformer config resolves (CIFAR-10 on two small batches the test writes).
TEST_F(CliTest, ImageEtConfigsResolve) {
  for (const char* name :
       {"et_demo", "et_mnist", "et_photos", "et_mnist_large", "et_photos_large"}) {
    if (std::string(name) != "et_demo" && !have_mnist()) continue;
    Result r = run("basin-train", std::string("--print-config --config configs/") + name + ".toml");
    EXPECT_EQ(r.code, 0) << name << ": " << r.err;
    EXPECT_NE(r.out.find("type = \"image_et\""), std::string::npos) << name;
  }
  const fs::path cifar = dir_ / "cifar";
  fs::create_directories(cifar);
  for (const char* file : {"data_batch_1.bin", "test_batch.bin"}) {
    std::string records;
    for (int i = 0; i < 4; ++i) {
      records += static_cast<char>(i % 10);
      for (int v = 0; v < 3072; ++v) records += static_cast<char>((v * 7 + i) % 256);
    }
    std::ofstream(cifar / file, std::ios::binary) << records;
  }
  Result r = run("basin-train",
                 "--print-config --config configs/et_cifar10.toml --set train.batch_size=2 --set "
                 "schedule.warmup_steps=1 --set data.root=" +
                     cifar.string());
  EXPECT_EQ(r.code, 0) << r.err;
}

// The graph configs resolve on the Amazon graph (the data is read, split and checked).
TEST_F(CliTest, GraphConfigsResolve) {
  if (!fs::exists(BASIN_SOURCE_DIR "/../shared/data/fraud-amazon-tam/Amazon.zip")) {
    GTEST_SKIP() << "../shared/data/fraud-amazon-tam is absent";
  }
  for (const char* name : {"graph_et_amazon", "graph_mlp_amazon", "graph_gcn_amazon"}) {
    Result r = run("basin-train", std::string("--print-config --config configs/") + name + ".toml");
    EXPECT_EQ(r.code, 0) << name << ": " << r.err;
  }
}

// A short image ET run on procedural images: samples, plots of the energy, and basin-eval's
// masked-patch figures beside both baselines.
TEST_F(CliTest, ImageEtTrainsAndEvaluates) {
  const fs::path out = dir_ / "et";
  Result r =
      run("basin-train",
          "--config configs/et_demo.toml --out " + out.string() +
              " --set train.steps=6 --set train.eval_every=6 --set data.train_size=64"
              " --set data.test_size=8 --set model.dim=16 --set model.block.head_dim=4"
              " --set model.block.memories=32 --set model.steps=2 --set schedule.warmup_steps=2"
              " --set model.pixel_mean=[0.5] --set model.pixel_std=[0.2,0.25,0.3] -q");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(out / "checkpoint-6" / "model.safetensors"));
  EXPECT_NE(slurp(out / "checkpoint-6" / "model.safetensors").find("pixel_std"), std::string::npos);
  EXPECT_TRUE(fs::exists(out / "samples" / "completion.png"));
  ASSERT_TRUE(fs::exists(out / "samples" / "energy.json"));
  const nlohmann::json energy = nlohmann::json::parse(slurp(out / "samples" / "energy.json"));
  EXPECT_EQ(energy["energies"].size(), 3u);  // T = 2 steps: 3 states
  r = run("basin-eval", "--checkpoint " + (out / "checkpoint-6").string());
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  for (const char* key : {"masked_mse", "psnr", "mean_fill_mse", "interp_mse", "interp_psnr"})
    EXPECT_TRUE(j.contains(key)) << key << " in " << r.out;
  // Interpolation beats the mean colour on smooth images.
  EXPECT_LT(j["interp_mse"].get<double>(), j["mean_fill_mse"].get<double>()) << r.out;
  // Averaging the 8 flipped and transposed views changes the model's figure, not the baselines'.
  r = run("basin-eval",
          "--checkpoint " + (out / "checkpoint-6").string() + " --set model.eval_tta=dihedral");
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json views = nlohmann::json::parse(r.out);
  EXPECT_NE(views["masked_mse"].get<double>(), j["masked_mse"].get<double>()) << r.out;
  EXPECT_EQ(views["interp_mse"].get<double>(), j["interp_mse"].get<double>()) << r.out;
  r = run("basin-eval",
          "--checkpoint " + (out / "checkpoint-6").string() + " --set model.eval_tta=rotations");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("model.eval_tta"), std::string::npos) << r.err;
  r = run("basin-train", "--config configs/et_demo.toml --out " + (dir_ / "bad").string() +
                             " --set model.mask=scatter:2.5");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("scatter:2.5"), std::string::npos) << r.err;
  r = run("basin-train", "--config configs/et_demo.toml --out " + (dir_ / "bad").string() +
                             " --set model.pixel_std=[0.2,0.3]");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("model.pixel_std"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("got 2"), std::string::npos) << r.err;
}

#else
TEST(CliTest, ToolsNotBuilt) { GTEST_SKIP() << "built without the tools (BASIN_BUILD_TOOLS=OFF)"; }
#endif

}  // namespace
