// basin-train's cross-validation protocol and basin-eval --export-attention as a user runs them,
// on a small synthetic MIL data set the test writes (UCI Musk CSV layout).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "tests/tools/cli_util.h"

namespace {
namespace fs = std::filesystem;
using nlohmann::json;

#ifdef BASIN_TOOLS_DIR

using Result = basin::testing::CliResult;
using basin::testing::count_lines;
using basin::testing::slurp;

class MilCliTest : public basin::testing::CliFixture {
 protected:
  MilCliTest() : CliFixture("basin-mil-cli") {}

  void SetUp() override {
    CliFixture::SetUp();
    // 24 bags of 2-5 instances, 4 features; positive bags hold one instance shifted by +3.
    std::ofstream data(dir_ / "bags.data");
    for (int b = 0; b < 24; ++b) {
      const int n = 2 + b % 4;
      for (int i = 0; i < n; ++i) {
        data << "BAG-" << b << ",c" << i;
        for (int f = 0; f < 4; ++f) {
          double v = std::sin(1.7 * b + 2.3 * i + 0.9 * f);
          if (b % 2 == 0 && i == 0 && f == 0) v += 3.0;
          data << "," << v;
        }
        data << "," << (b % 2 == 0 && i == 0 ? "1." : "0.") << "\n";
      }
    }
  }

  /// A small MIL config on the test's bags; `cv` is appended (a [cv] section or nothing).
  fs::path config(const std::string& cv = "") {
    const fs::path p = dir_ / "mil.toml";
    std::ofstream(p) << "[model]\ntype = \"mil_hopfield\"\nembedding = [8]\nheads = 2\n"
                        "head_dim = 4\n[data]\ntype = \"mil\"\nroot = \""
                     << dir_.string()
                     << "\"\nfile = \"bags.data\"\n[train]\nepochs = 3\nbatch_size = 4\n"
                        "drop_last = false\n"
                     << cv;
    return p;
  }
};

TEST_F(MilCliTest, CrossValidatesAndExportsAttention) {
  const fs::path out = dir_ / "run";
  Result r = run("basin-train", "--config " + config("[cv]\nfolds = 3\nrepeats = 2\n").string() +
                                    " --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("roc_auc"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("mean ± std"), std::string::npos) << r.err;
  const json summary = json::parse(slurp(out / "cv_summary.json"));
  EXPECT_EQ(summary.at("runs").size(), 6u);
  EXPECT_EQ(summary.at("per_repeat").at("roc_auc").size(), 2u);
  EXPECT_TRUE(fs::exists(out / "cv_summary.md"));
  EXPECT_TRUE(fs::exists(out / "repeat-1" / "fold-2" / "metrics.jsonl"));

  // The attention of one fold's checkpoint on its test bags (8 of 24): per head, one query,
  // one weight per instance, summing to one.
  const fs::path fold = out / "repeat-0" / "fold-1";
  fs::path checkpoint;
  for (const auto& e : fs::directory_iterator(fold))
    if (e.path().filename().string().starts_with("checkpoint-")) checkpoint = e.path();
  ASSERT_FALSE(checkpoint.empty());
  const fs::path att = dir_ / "attention.json";
  r = run("basin-eval",
          "--checkpoint " + checkpoint.string() + " --export-attention " + att.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const json metrics = json::parse(r.out);
  EXPECT_TRUE(metrics.contains("roc_auc")) << r.out;
  const json j = json::parse(slurp(att));
  EXPECT_EQ(j.at("split"), "test");
  EXPECT_EQ(j.at("heads"), 2);
  EXPECT_EQ(j.at("checkpoint"), checkpoint.string());
  ASSERT_EQ(j.at("bags").size(), 8u);
  for (const json& bag : j.at("bags")) {
    const auto n = bag.at("instances").get<size_t>();
    EXPECT_EQ(bag.at("instance_labels").size(), n);
    ASSERT_EQ(bag.at("attention").size(), 2u);
    for (const json& head : bag.at("attention")) {
      ASSERT_EQ(head.size(), 1u);
      ASSERT_EQ(head[0].size(), n);
      double s = 0;
      for (double w : head[0]) s += w;
      EXPECT_NEAR(s, 1.0, 1e-5);
    }
  }
  r = run("basin-eval", "--checkpoint " + checkpoint.string() + " --split all --export-attention " +
                            att.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(slurp(att)).at("bags").size(), 24u);
}

TEST_F(MilCliTest, CvAndRepeatsFlagsTurnTheProtocolOn) {
  const fs::path out = dir_ / "run";
  Result r = run("basin-train",
                 "--config " + config().string() + " --cv 2 --repeats 1 -q --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const json summary = json::parse(slurp(out / "cv_summary.json"));
  EXPECT_EQ(summary.at("protocol").at("folds"), 2);
  EXPECT_EQ(summary.at("protocol").at("repeats"), 1);
  EXPECT_EQ(summary.at("runs").size(), 2u);

  // The protocol's folder is not run into twice; --resume reads the finished folds back.
  r = run("basin-train",
          "--config " + config().string() + " --cv 2 --repeats 1 --out " + out.string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--resume"), std::string::npos) << r.err;
  r = run("basin-train", "--resume " + out.string() + " -q");
  EXPECT_EQ(r.code, 0) << r.err;

  // One fold of the protocol is a single run.
  const fs::path single = dir_ / "single";
  r = run("basin-train", "--config " + config("[cv]\nfolds = 3\n").string() +
                             " --set cv.fold=2 -q --out " + single.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(single / "metrics.jsonl"));
  EXPECT_FALSE(fs::exists(single / "cv_summary.json"));

  // --print-config shows the protocol's resolved config (no fold named).
  r = run("basin-train", "--config " + config("[cv]\nfolds = 3\n").string() + " --print-config");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("folds = 3"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("fold = "), std::string::npos) << r.out;
}

TEST_F(MilCliTest, BadConfigsExitTwoWithOneLineAndCreateNothing) {
  const fs::path out = dir_ / "run";
  const std::string cfg = "--config " + config("[cv]\nfolds = 3\n").string();
  for (const auto& [args, expect] : std::vector<std::pair<std::string, std::string>>{
           {" --set cv.folds=1", "cv.folds"},
           {" --set cv.folds=20", "stratified_kfold"},
           {" --set model.heads=0", "model.heads"},
           {" --set data.file=missing.mat", "missing.mat"},
           {" --set model.hedas=3", "model.hedas"},
           {" --set 'cv.grid=[\"optim.lr=[1e-3]\"]'", "cv.inner_folds"},
           {" --stop-at 3", "--stop-at"}}) {
    const Result r = run("basin-train", cfg + args + " --out " + out.string());
    EXPECT_EQ(r.code, 2) << args << ": " << r.err;
    EXPECT_NE(r.err.find(expect), std::string::npos) << args << ": " << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << args << ": " << r.err;
    EXPECT_FALSE(fs::exists(out)) << args;
  }
}

TEST_F(MilCliTest, ExportAttentionOfAModelWithoutAttentionIsAnError) {
  // A single run (no [cv]: a stratified hold-out of data.test_fraction).
  const fs::path out = dir_ / "run";
  Result r = run("basin-train", "--config " + config().string() + " -q --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  fs::path checkpoint;
  for (const auto& e : fs::directory_iterator(out))
    if (e.path().filename().string().starts_with("checkpoint-")) checkpoint = e.path();
  ASSERT_FALSE(checkpoint.empty());
  // Turn the checkpoint's model into one without attention: an unknown split is refused first.
  r = run("basin-eval", "--checkpoint " + checkpoint.string() +
                            " --split nope --export-attention " + (dir_ / "a.json").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--split nope"), std::string::npos) << r.err;

  const std::string mnist = BASIN_SOURCE_DIR "/../shared/data/mnist";
  if (!fs::exists(mnist)) GTEST_SKIP() << "../shared/data/mnist is absent (the MLP part)";
  const fs::path mlp_cfg = dir_ / "mlp.toml";
  std::ofstream(mlp_cfg)
      << "[model]\ntype = \"mlp\"\nhidden = [8]\n[data]\ntype = \"mnist\"\n"
         "train_size = 64\ntest_size = 32\n[train]\nsteps = 2\nbatch_size = 32\n";
  const fs::path mlp = dir_ / "mlp";
  r = run("basin-train", "--config " + mlp_cfg.string() + " -q --out " + mlp.string());
  ASSERT_EQ(r.code, 0) << r.err;
  r = run("basin-eval", "--checkpoint " + (mlp / "checkpoint-2").string() + " --export-attention " +
                            (dir_ / "a.json").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no attention"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 2) << r.err;  // "evaluating ..." and the error
  EXPECT_FALSE(fs::exists(dir_ / "a.json"));
}

#else

TEST(MilCliTest, ToolsNotBuilt) {
  GTEST_SKIP() << "built without the tools (BASIN_BUILD_TOOLS=OFF)";
}

#endif

}  // namespace
