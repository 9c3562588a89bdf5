// The MIL Hopfield-pooling bag classifier: one training step against PyTorch
// (tests/fixtures/mil/mil_hopfield_fixture.py), a short run that separates an easy synthetic MIL
// task, the cross-validation driver on a tiny data set, and config errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "basin/basin.h"
#include "models/train/cross_validation.h"
#include "models/zoo/mil_hopfield.h"
#include "tests/models/nn/nn_fixture_util.h"
#include "tests/test_util.h"

namespace basin::zoo {
namespace {
namespace fs = std::filesystem;
using basin::testing::all_close;
using nlohmann::json;

const char* const kFixture = "mil/mil_hopfield_fixture.txt";

const Tensor& fx(const std::string& name) { return basin::testing::nn_fixture(kFixture, name); }

nn::StateDict with_prefix(const std::string& prefix) {
  return basin::testing::nn_fixture_prefixed(kFixture, prefix);
}

/// The fixture's model: 6 features, embedding [10, 8], 2 heads × 3, β = (0.5, 2), 2 queries.
std::shared_ptr<MilHopfield> fixture_model(Dtype dtype) {
  MilHopfieldOptions o;
  o.num_features = 6;
  o.embedding = {10, 8};
  o.hopfield.num_heads = 2;
  o.hopfield.hidden_size = 3;
  o.hopfield.scaling = {0.5, 2.0};
  o.quantity = 2;
  auto model = std::make_shared<MilHopfield>(o);
  model->load_state_dict(with_prefix("init."));  // strict: PyTorch's names are ours
  model->to(dtype);
  return model;
}

void one_step_matches_torch(Dtype dtype, double rtol, double atol) {
  auto model = fixture_model(dtype);
  model->train();
  const Tensor x = fx("x").astype(dtype);
  const Tensor padding = fx("padding") != 0.0;
  const Tensor y = fx("y").astype(dtype);
  optim::AdamW opt(model->parameters(), 1e-2,
                   {.betas = {0.9, 0.999}, .eps = 1e-8, .weight_decay = 0.01});
  opt.zero_grad();
  const Tensor logits = model->forward(x, padding);
  EXPECT_TRUE(all_close(logits, fx("logits"), rtol, atol));
  const Tensor loss = nn::bce_with_logits(logits, y, scalar(2.0, dtype));
  EXPECT_NEAR(loss.item<double>(), fx("loss").to_vector<double>()[0], rtol * 3);
  loss.backward();
  const auto named = model->named_parameters();
  EXPECT_EQ(named.size(), with_prefix("grad.").size());
  for (const auto& [name, p] : named) {
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_TRUE(all_close(p.grad(), fx("grad." + name), rtol, atol)) << name;
  }
  {
    NoGradGuard no_grad;
    EXPECT_TRUE(all_close(model->attention(x, padding), fx("attention"), rtol, atol));
  }
  if (dtype == Dtype::f64) {  // Adam's step is ill-conditioned for gradients at rounding level
    opt.step();
    const nn::StateDict after = model->state_dict();
    for (const auto& [name, t] : with_prefix("final.")) {
      // A gradient that is zero up to rounding (the stored patterns' LayerNorm bias shifts every
      // key alike, which softmax ignores) gets an Adam step of any size up to lr: compare loosely.
      const bool rounding = max(abs(fx("grad." + name))).item<double>() < 1e-10;
      EXPECT_TRUE(all_close(after.at(name), t, rtol, rounding ? 1.1e-2 : atol)) << name;
    }
  }
}

TEST(MilHopfield, OneTrainingStepMatchesTorchInFloat64) {
  one_step_matches_torch(Dtype::f64, 1e-9, 1e-12);
}

TEST(MilHopfield, OneTrainingStepMatchesTorchInFloat32) {
  one_step_matches_torch(Dtype::f32, 2e-4, 2e-5);
}

TEST(MilHopfield, AttentionIgnoresPaddingAndSumsToOne) {
  auto model = fixture_model(Dtype::f64);
  model->eval();
  NoGradGuard no_grad;
  const Tensor x = fx("x");
  const Tensor padding = fx("padding") != 0.0;
  const Tensor a = model->attention(x, padding);  // (3, 2, 2, 4)
  ASSERT_EQ(a.shape(), (Shape{3, 2, 2, 4}));
  EXPECT_TRUE(all_close(sum(a, {-1}), ones({3, 2, 2}, Dtype::f64), 1e-12, 1e-12));
  const auto v = a.to_vector<double>();
  const auto pad = fx("padding").to_vector<double>();
  for (int64_t b = 0; b < 3; ++b) {
    for (int64_t k = 0; k < 4; ++k) {  // (head, query) pairs
      for (int64_t n = 0; n < 4; ++n) {
        if (pad[b * 4 + n] != 0) {
          EXPECT_EQ(v[(b * 4 + k) * 4 + n], 0.0);
        }
      }
    }
  }
  // A padded bag scores as the same bag alone.
  const Tensor alone = model->forward(narrow(narrow(x, 0, 1, 1), 1, 0, 2));
  EXPECT_NEAR(alone.item<double>(), model->forward(x, padding).to_vector<double>()[1], 1e-12);
}

// --- the task on synthetic bags ------------------------------------------------------------------

/// Writes `bags` bags in the UCI Musk CSV layout: 3-8 instances of 5 N(0, 1) features; a positive
/// bag hides one witness instance with feature 0 shifted by +4. Returns the file.
fs::path write_synthetic_bags(const fs::path& dir, int bags, uint64_t seed) {
  fs::create_directories(dir);
  const fs::path path = dir / "bags.data";
  std::ofstream out(path);
  Generator gen(seed);
  const auto u = rand({bags * 16}, Dtype::f64, Device::cpu(), &gen).to_vector<double>();
  const auto z = normal({bags * 8 * 5}, 0, 1, Dtype::f64, Device::cpu(), &gen).to_vector<double>();
  size_t ui = 0, zi = 0;
  for (int b = 0; b < bags; ++b) {
    const bool positive = b % 2 == 0;
    const int n = 3 + static_cast<int>(u[ui++] * 6);
    const int witness = static_cast<int>(u[ui++] * n);
    for (int i = 0; i < n; ++i) {
      out << "BAG-" << b << ",conf-" << i;
      for (int f = 0; f < 5; ++f) {
        double v = z[zi++];
        if (positive && i == witness && f == 0) v += 4.0;
        out << "," << v;
      }
      out << "," << (positive && i == witness ? "1." : "0.") << "\n";
    }
  }
  return path;
}

class MilTask : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("basin-mil-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    data_ = write_synthetic_bags(dir_ / "data", 48, 5);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string config_text(const std::string& extra = "") const {
    return fmt::format(R"([model]
type = "mil_hopfield"
embedding = [16]
heads = 2
head_dim = 8
[data]
type = "mil"
root = "{}"
file = "bags.data"
bag_dropout = 0.1
[train]
epochs = 25
batch_size = 8
drop_last = false
log_every = 1000
[optim]
type = "adamw"
lr = 5e-3
{})",
                       (dir_ / "data").string(), extra);
  }

  fs::path dir_, data_;
};

TEST_F(MilTask, ShortRunSeparatesEasyBags) {
  Config config = Config::parse(config_text("[cv]\nfolds = 4\nrepeats = 1\n"));
  config.set("model.pos_weight=\"balanced\"");
  train::TrainerOptions o;
  o.run_dir = (dir_ / "run").string();
  o.quiet = true;
  train::Trainer trainer(config, o);
  const train::Metrics before = trainer.task().evaluate("train");
  const train::Metrics m = trainer.run();
  EXPECT_GT(m.at("roc_auc"), 0.9);
  EXPECT_GE(m.at("accuracy"), 0.75);
  const train::Metrics after = trainer.task().evaluate("train");
  EXPECT_LT(after.at("loss"), 0.5 * before.at("loss"));

  // The attention export: one entry per test bag (12 of 48), heads × 1 query × n weights summing
  // to one; on positive bags the witness gets more weight than the uniform 1/n on average.
  trainer.task().model().eval();
  NoGradGuard no_grad;
  const json j = json::parse(trainer.task().attention_json("all"));
  EXPECT_EQ(j.at("bags").size(), 48u);
  EXPECT_EQ(json::parse(trainer.task().attention_json("test")).at("bags").size(), 12u);
  double witness = 0, uniform = 0;
  for (const json& bag : j.at("bags")) {
    const auto n = bag.at("instances").get<size_t>();
    const auto& att = bag.at("attention");
    ASSERT_EQ(att.size(), 2u);
    for (const json& head : att) {
      ASSERT_EQ(head.size(), 1u);
      ASSERT_EQ(head[0].size(), n);
      double s = 0;
      for (double w : head[0]) s += w;
      EXPECT_NEAR(s, 1.0, 1e-5);
    }
    if (bag.at("label").get<int>() != 1) continue;
    const auto labels = bag.at("instance_labels").get<std::vector<int64_t>>();
    const size_t w =
        static_cast<size_t>(std::find(labels.begin(), labels.end(), 1) - labels.begin());
    ASSERT_LT(w, n);
    for (const json& head : att) witness += head[0][w].get<double>() / 2;
    uniform += 1.0 / static_cast<double>(n);
  }
  EXPECT_GT(witness, uniform);
}

TEST_F(MilTask, CvFoldsPartitionTheBagsStratified) {
  std::vector<int64_t> labels;
  for (int i = 0; i < 30; ++i) labels.push_back(i % 3 == 0);
  train::CvOptions cv;
  cv.folds = 5;
  cv.repeats = 2;
  cv.seed = 3;
  for (cv.repeat = 0; cv.repeat < 2; ++cv.repeat) {
    std::multiset<int64_t> seen;
    for (cv.fold = 0; cv.fold < 5; ++cv.fold) {
      const data::Fold f = train::cv_fold(labels, cv);
      EXPECT_EQ(f.test.size(), 6u);
      EXPECT_EQ(f.train.size() + f.test.size(), 30u);
      int64_t pos = 0;
      for (int64_t i : f.test) pos += labels[static_cast<size_t>(i)];
      EXPECT_EQ(pos, 2);  // 10 positives over 5 folds
      seen.insert(f.test.begin(), f.test.end());
    }
    EXPECT_EQ(seen.size(), 30u);
    EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), 30u);
  }
  // Inner folds split the outer training part only.
  cv.repeat = 1;
  cv.fold = 2;
  cv.inner_folds = 3;
  const data::Fold outer = train::cv_fold(labels, cv);
  const std::set<int64_t> outer_train(outer.train.begin(), outer.train.end());
  std::set<int64_t> inner_tests;
  for (cv.inner_fold = 0; cv.inner_fold < 3; ++cv.inner_fold) {
    const data::Fold inner = train::cv_fold(labels, cv);
    EXPECT_EQ(inner.train.size() + inner.test.size(), outer.train.size());
    for (int64_t i : inner.test) EXPECT_TRUE(outer_train.count(i)) << i;
    inner_tests.insert(inner.test.begin(), inner.test.end());
  }
  EXPECT_EQ(inner_tests, outer_train);
}

TEST_F(MilTask, CrossValidationWritesEveryFoldAndASummary) {
  Config config = Config::parse(config_text("[cv]\nfolds = 3\nrepeats = 2\nseed = 1\n"));
  config.set("train.epochs=4");
  train::CrossValidationOptions o;
  o.run_dir = (dir_ / "cv").string();
  o.quiet = true;
  train::CrossValidation cv(config, o);
  EXPECT_EQ(cv.num_runs(), 6);
  EXPECT_FALSE(fs::exists(dir_ / "cv"));  // nothing written before run()
  const train::CvSummary s = cv.run();
  ASSERT_EQ(s.runs.size(), 6u);
  EXPECT_EQ(s.primary_metric, "roc_auc");
  ASSERT_EQ(s.per_repeat.at("roc_auc").size(), 2u);
  for (const char* metric : {"roc_auc", "accuracy", "loss"}) {
    EXPECT_TRUE(std::isfinite(s.mean.at(metric))) << metric;
    const auto& per = s.per_repeat.at(metric);
    EXPECT_NEAR(s.mean.at(metric), (per[0] + per[1]) / 2, 1e-12);
    EXPECT_NEAR(s.stddev.at(metric), std::abs(per[0] - per[1]) / std::sqrt(2.0), 1e-12);
  }
  for (int r = 0; r < 2; ++r) {
    for (int f = 0; f < 3; ++f) {
      const fs::path fold = dir_ / "cv" / fmt::format("repeat-{}", r) / fmt::format("fold-{}", f);
      EXPECT_TRUE(fs::exists(fold / "cv_result.json")) << fold;
      EXPECT_FALSE(train::list_checkpoints(fold.string()).empty()) << fold;
      // Each fold's config names its split and is a single run.
      const Config c = Config::load((fold / "config.toml").string());
      EXPECT_FALSE(train::runs_cross_validation(c));
    }
  }
  EXPECT_TRUE(train::runs_cross_validation(Config::load((dir_ / "cv/config.toml").string())));
  const json j = json::parse(std::ifstream(dir_ / "cv" / "cv_summary.json"));
  EXPECT_EQ(j.at("runs").size(), 6u);
  EXPECT_EQ(j.at("protocol").at("folds"), 3);
  EXPECT_NEAR(j.at("mean").at("roc_auc").get<double>(), s.mean.at("roc_auc"), 1e-12);
  std::ifstream table(dir_ / "cv" / "cv_summary.md");
  std::string text((std::istreambuf_iterator<char>(table)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("| repeat | roc_auc |"), std::string::npos) << text;
  EXPECT_NE(text.find("mean ± std"), std::string::npos) << text;

  // A second protocol into the same folder is refused; resuming reads the finished runs back.
  EXPECT_THROW(train::CrossValidation(config, o), Error);
  o.resume = true;
  const train::CvSummary again = train::CrossValidation(config, o).run();
  EXPECT_EQ(again.mean.at("roc_auc"), s.mean.at("roc_auc"));
}

TEST_F(MilTask, NestedSearchPicksAGridPointPerOuterFold) {
  Config config =
      Config::parse(config_text("[cv]\nfolds = 2\nrepeats = 1\ninner_folds = 2\n"
                                "grid = [\"optim.lr=[1e-2, 1e-9]\"]\nkeep_checkpoints = false\n"));
  config.set("train.epochs=3");
  train::CrossValidationOptions o;
  o.run_dir = (dir_ / "nested").string();
  o.quiet = true;
  train::CrossValidation cv(config, o);
  EXPECT_EQ(cv.num_runs(), 2 * (1 + 2 * 2));
  const train::CvSummary s = cv.run();
  ASSERT_EQ(s.runs.size(), 2u);
  for (const train::CvRun& run : s.runs) {
    ASSERT_EQ(run.selected.size(), 1u);
    EXPECT_TRUE(run.selected[0].starts_with("optim.lr=")) << run.selected[0];
    const fs::path fold = dir_ / "nested" / "repeat-0" / fmt::format("fold-{}", run.fold);
    EXPECT_TRUE(train::list_checkpoints(fold.string()).empty());  // keep_checkpoints = false
    EXPECT_TRUE(fs::exists(fold / "inner" / "point-1" / "fold-1" / "cv_result.json"));
  }
}

TEST_F(MilTask, BadConfigsNameTheProblem) {
  auto error_of = [&](const std::string& text, const std::string& set = "") {
    Config c = Config::parse(text);
    if (!set.empty()) c.set(set);
    train::TrainerOptions o;
    o.dry_run = true;
    o.quiet = true;
    try {
      train::Trainer t(c, o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of(config_text(), "model.heads=0").find("model.heads"), std::string::npos);
  EXPECT_NE(error_of(config_text(), "model.scaling=[1.0, 2.0, 3.0]").find("model.scaling"),
            std::string::npos);
  EXPECT_NE(error_of(config_text(), "model.scaling=-1.0").find("model.scaling"), std::string::npos);
  EXPECT_NE(error_of(config_text(), "model.pos_weight=\"often\"").find("model.pos_weight"),
            std::string::npos);
  EXPECT_NE(error_of(config_text(), "model.association_dropout=1.5").find("association_dropout"),
            std::string::npos);
  EXPECT_NE(error_of(config_text(), "data.bag_dropout=1.0").find("data.bag_dropout"),
            std::string::npos);
  EXPECT_NE(error_of(config_text(), "data.file=\"nowhere.mat\"").find("nowhere.mat"),
            std::string::npos);
  EXPECT_NE(error_of(config_text(), "model.embeding=[8]").find("model.embeding"),
            std::string::npos);
  EXPECT_NE(error_of(config_text("[cv]\nfolds = 1\n")).find("cv.folds"), std::string::npos);
  EXPECT_NE(error_of(config_text("[cv]\nfolds = 3\nfold = 3\n")).find("cv.fold"),
            std::string::npos);
  EXPECT_NE(error_of(config_text("[cv]\ngrid = [\"optim.lr=[1e-3]\"]\n")).find("inner_folds"),
            std::string::npos);
  EXPECT_NE(error_of(config_text("[cv]\ninner_folds = 2\ngrid = [\"optim.lr\"]\n")).find("cv.grid"),
            std::string::npos);
  // Without [cv], data.test_fraction applies; with it, the key is unknown.
  EXPECT_NE(error_of(config_text("[cv]\n"), "data.test_fraction=0.2").find("data.test_fraction"),
            std::string::npos);

  // A model whose task does not read its split cannot be cross-validated.
  train::CrossValidationOptions o;
  o.run_dir = (dir_ / "mlp").string();
  o.dry_run = true;
  Config mlp = Config::parse(
      "[model]\ntype = \"mlp\"\n[data]\ntype = \"procedural\"\ntrain_size = 16\ntest_size = "
      "8\nsize = 8\n[train]\nbatch_size = 4\n[cv]\nfolds = 2\n");
  try {
    train::CrossValidation cv(mlp, o);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not support cross-validation"), std::string::npos)
        << e.what();
  }
}

TEST(MilTaskData, ElephantFoldsHoldTwentyBags) {
  const std::string root = std::string(BASIN_SHARED_DATA_DIR) + "/elephant";
  if (!fs::exists(root + "/elephant_100x100_matlab.mat")) {
    GTEST_SKIP() << "the Elephant MIL file is not in " << root;
  }
  Config config = Config::parse(fmt::format(
      "[model]\ntype = \"mil_hopfield\"\nembedding = [8]\nheads = 1\nhead_dim = 4\n[data]\n"
      "type = \"mil\"\nroot = \"{}\"\nfile = \"elephant_100x100_matlab.mat\"\n[cv]\nfold = 7\n",
      root));
  manual_seed(0);
  auto task = train::make_task(train::TaskContext{config, Device::cpu(), 0});
  EXPECT_EQ(task->train_data()->size(), 180);
  task->model().eval();
  NoGradGuard no_grad;
  const json j = json::parse(task->attention_json("test"));
  EXPECT_EQ(j.at("bags").size(), 20u);
  int positives = 0;
  for (const json& bag : j.at("bags")) positives += bag.at("label").get<int>();
  EXPECT_EQ(positives, 10);
}

}  // namespace
}  // namespace basin::zoo
