// The trainer end to end on a small registered task: checkpoints, exact resume, divergence,
// config errors and run-folder safety.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "basin/basin.h"

namespace basin::train {
namespace {
namespace fs = std::filesystem;

// Regression of a fixed random linear map with noise: 96 items {"x": [4], "y": [2]}.
class RegressionData : public data::Dataset<data::Example> {
 public:
  RegressionData(int64_t n, uint64_t seed) {
    Generator map_gen(99);  // the same map for every split
    Tensor w = normal({4, 2}, 0, 1, Dtype::f32, Device::cpu(), &map_gen);
    Generator gen(seed);
    x_ = normal({n, 4}, 0, 1, Dtype::f32, Device::cpu(), &gen);
    y_ = add(matmul(x_, w),
             mul(normal({n, 2}, 0, 1, Dtype::f32, Device::cpu(), &gen), scalar(0.1, Dtype::f32)));
  }
  int64_t size() const override { return x_.shape(0); }
  data::Example get(int64_t i) const override {
    data::check_index("RegressionData", i, size());
    return {{"x", squeeze(narrow(x_, 0, i, 1), {0})}, {"y", squeeze(narrow(y_, 0, i, 1), {0})}};
  }

 private:
  Tensor x_, y_;
};

// model.type = "test_regression": an MLP with dropout (so the random stream matters) and an
// optional NaN at a given training step.
class RegressionTask : public Task {
 public:
  explicit RegressionTask(const TaskContext& ctx) {
    Config model = Config(ctx.config).section("model");
    const int64_t hidden = model.get<int64_t>("hidden", 16);
    nan_at_ = model.get<int64_t>("nan_at", 0);
    const double p = model.get<double>("dropout", 0.2);
    mlp_ = std::make_shared<nn::MLP>(std::vector<int64_t>{4, hidden, 2}, "tanh", p);
    train_ = std::make_shared<RegressionData>(96, 1);
    test_ = std::make_shared<RegressionData>(32, 2);
  }
  nn::Module& model() override { return *mlp_; }
  data::DatasetPtr<data::Example> train_data() override { return train_; }
  Tensor loss(const data::Example& batch, Metrics& logs) override {
    ++calls_;
    Tensor out = mlp_->forward(batch.at("x"));
    Tensor l = nn::mse_loss(out, batch.at("y"));
    logs["mean_output"] = mean(out).item<double>();
    if (nan_at_ > 0 && calls_ >= nan_at_) return mul(l, scalar(NAN, Dtype::f32));
    return l;
  }
  Metrics evaluate(const std::string&) override {
    data::Example all = data::stack_collate([&] {
      std::vector<data::Example> items;
      for (int64_t i = 0; i < test_->size(); ++i) items.push_back(test_->get(i));
      return items;
    }());
    const double mse = nn::mse_loss(mlp_->forward(all.at("x")), all.at("y")).item<double>();
    return {{"mse", mse}};
  }
  std::string primary_metric() const override { return "mse"; }
  bool higher_is_better() const override { return false; }

 private:
  std::shared_ptr<nn::MLP> mlp_;
  data::DatasetPtr<data::Example> train_, test_;
  int64_t nan_at_ = 0, calls_ = 0;
};

BASIN_REGISTER_TASK("test_regression", "a small regression used by the trainer tests",
                    [](const TaskContext& ctx) { return std::make_unique<RegressionTask>(ctx); });

const char* kConfig = R"(
[model]
type = "test_regression"
hidden = 16
dropout = 0.2

[train]
steps = 40
batch_size = 10
log_every = 5
eval_every = 10
keep_last = 2
clip_norm = 1.0
seed = 7

[optim]
type = "adamw"
lr = 0.01

[schedule]
type = "warmup_cosine"
warmup_steps = 5
)";

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("basin-trainer-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  TrainerOptions options(const std::string& name) {
    TrainerOptions o;
    o.run_dir = (root_ / name).string();
    o.quiet = true;
    return o;
  }
  static Config config(const std::vector<std::string>& sets = {}) {
    Config c = Config::parse(kConfig, "test.toml");
    for (const auto& s : sets) c.set(s);
    return c;
  }
  static std::string read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // metrics.jsonl without the wall-clock field, for comparing two runs.
  static std::string metrics_without_time(const fs::path& run) {
    std::stringstream in(read(run / "metrics.jsonl"));
    std::string line, out;
    while (std::getline(in, line)) {
      const auto pos = line.find(",\"wall_time\"");
      out += (pos == std::string::npos ? line : line.substr(0, pos)) + "\n";
    }
    return out;
  }
  fs::path root_;
};

std::vector<std::vector<float>> params_of(Trainer& t) {
  std::vector<std::vector<float>> out;
  for (const Tensor& p : t.task().model().parameters()) out.push_back(p.to_vector<float>());
  return out;
}

TEST_F(TrainerTest, TrainsAndLowersTheLoss) {
  Trainer t(config({"train.steps=60", "model.dropout=0.0"}), options("run"));
  const double before = t.task().evaluate("test").at("mse");
  const Metrics m = t.run();
  EXPECT_LT(m.at("mse"), 0.5 * before);
  EXPECT_EQ(t.state().step, 60);
  EXPECT_TRUE(fs::exists(root_ / "run" / "config.toml"));
  EXPECT_TRUE(fs::exists(root_ / "run" / "checkpoint-60" / "model.safetensors"));
  EXPECT_TRUE(fs::exists(root_ / "run" / "checkpoint-60" / "optimizer.safetensors"));
  EXPECT_TRUE(fs::exists(root_ / "run" / "checkpoint-60" / "trainer_state.json"));
  // One JSON line per log step (12) and per evaluation (6).
  std::stringstream lines(read(root_ / "run" / "metrics.jsonl"));
  int n = 0;
  for (std::string line; std::getline(lines, line);) ++n;
  EXPECT_EQ(n, 12 + 6);
}

TEST_F(TrainerTest, KeepsTheLastCheckpointsAndTheBest) {
  Trainer t(config(), options("run"));
  t.run();
  const auto kept = list_checkpoints((root_ / "run").string());
  const int64_t best = t.state().best_step;
  ASSERT_GE(best, 10);
  std::vector<int64_t> steps;
  for (const auto& [step, path] : kept) steps.push_back(step);
  EXPECT_TRUE(std::find(steps.begin(), steps.end(), 40) != steps.end());
  EXPECT_TRUE(std::find(steps.begin(), steps.end(), 30) != steps.end());
  EXPECT_TRUE(std::find(steps.begin(), steps.end(), best) != steps.end());
  EXPECT_EQ(steps.size(), best >= 30 ? 2u : 3u);
  for (const auto& entry : fs::directory_iterator(root_ / "run"))
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
}

// Training 2N steps equals training N, stopping and resuming for N: parameters bit for bit, and
// the same metrics log. N = 17 stops mid-epoch (9 batches an epoch) and between evaluations.
TEST_F(TrainerTest, ResumeIsExact) {
  Trainer straight(config({"train.deterministic=true"}), options("straight"));
  straight.run();

  {
    TrainerOptions o = options("resumed");
    o.stop_at = 17;
    Trainer first(config({"train.deterministic=true"}), o);
    first.run();
    EXPECT_EQ(first.state().step, 17);
    EXPECT_EQ(first.state().epoch, 1);
    EXPECT_EQ(first.state().batch_in_epoch, 8);
  }
  TrainerOptions o = options("resumed");
  o.resume = true;
  Trainer second(Config::load((root_ / "resumed" / "config.toml").string()), o);
  EXPECT_EQ(second.state().step, 17);
  second.run();
  EXPECT_EQ(second.state().step, 40);
  EXPECT_EQ(params_of(second), params_of(straight));
  // The stop adds one evaluation line at step 17; apart from it the logs agree.
  std::string resumed = metrics_without_time(root_ / "resumed");
  const auto at = resumed.find("\"split\":\"test\",\"step\":17}");
  ASSERT_NE(at, std::string::npos) << resumed;
  const auto pos = resumed.rfind('\n', at) + 1;
  const auto end = resumed.find('\n', at);
  resumed.erase(pos, end - pos + 1);
  EXPECT_EQ(resumed, metrics_without_time(root_ / "straight"));
}

TEST_F(TrainerTest, DivergenceStopsAndKeepsTheLastGoodCheckpoint) {
  Trainer t(config({"model.nan_at=25"}), options("run"));
  try {
    t.run();
    FAIL() << "expected Diverged";
  } catch (const Diverged& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("step 25: the loss is nan"), std::string::npos) << msg;
    EXPECT_NE(msg.find("checkpoint-20"), std::string::npos) << msg;
  }
  const auto kept = list_checkpoints((root_ / "run").string());
  ASSERT_FALSE(kept.empty());
  EXPECT_EQ(kept.back().first, 20);
  // The checkpoint loads and holds finite parameters.
  RegressionTask fresh(TaskContext{config(), Device::cpu(), 0});
  const TrainerState s = load_checkpoint(kept.back().second, fresh.model(), nullptr);
  EXPECT_EQ(s.step, 20);
  for (const Tensor& p : fresh.model().parameters())
    for (float v : p.to_vector<float>()) EXPECT_TRUE(std::isfinite(v));
}

TEST_F(TrainerTest, UnknownKeyFailsBeforeTouchingTheDisk) {
  try {
    Trainer t(config({"optim.lrr=0.1"}), options("run"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("optim.lrr"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("optim.lr"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(root_ / "run"));
  EXPECT_THROW(Trainer(config({"model.type=\"nope\""}), options("run")), Error);
  EXPECT_THROW(Trainer(config({"train.batch_size=0"}), options("run")), Error);
  EXPECT_THROW(Trainer(config({"train.epochs=2"}), options("run")), Error);  // and steps
  EXPECT_FALSE(fs::exists(root_ / "run"));
}

TEST_F(TrainerTest, RefusesToOverwriteARunAndChecksResume) {
  {
    Trainer t(config({"train.steps=10"}), options("run"));
    t.run();
  }
  const std::string before = read(root_ / "run" / "metrics.jsonl");
  EXPECT_THROW(Trainer(config({"train.steps=10"}), options("run")), Error);

  TrainerOptions o = options("empty");
  o.resume = true;
  fs::create_directories(o.run_dir);
  EXPECT_THROW(Trainer(config(), o), Error);

  // A model that does not fit the checkpoint: an error naming the shapes, nothing written.
  o = options("run");
  o.resume = true;
  try {
    Trainer t(config({"train.steps=10", "model.hidden=8"}), o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("checkpoint-10"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read(root_ / "run" / "metrics.jsonl"), before);
  EXPECT_TRUE(fs::exists(root_ / "run" / "checkpoint-10" / "model.safetensors"));
}

TEST_F(TrainerTest, CheckpointRoundTripNamesOptimizerStateByParameter) {
  Trainer t(config({"train.steps=10"}), options("run"));
  t.run();
  const fs::path ckpt = root_ / "run" / "checkpoint-10";
  const auto opt = io::load_safetensors((ckpt / "optimizer.safetensors").string());
  EXPECT_TRUE(opt.tensors.count("state.layers.0.weight.exp_avg"));
  EXPECT_TRUE(opt.tensors.count("state.layers.3.bias.exp_avg_sq"));
  EXPECT_EQ(opt.metadata.at("optimizer"), "AdamW");
  const auto model = io::load_safetensors((ckpt / "model.safetensors").string());
  EXPECT_EQ(model.tensors.at("layers.0.weight").shape(), (Shape{16, 4}));

  RegressionTask fresh(TaskContext{config(), Device::cpu(), 0});
  auto optimizer = optim::make_optimizer(Config::parse("type = \"adamw\"\nlr = 0.01"),
                                         fresh.model().parameters());
  const TrainerState s = load_checkpoint(ckpt.string(), fresh.model(), optimizer.get());
  EXPECT_EQ(s.step, 10);
  EXPECT_EQ(s.seed, 7u);
  EXPECT_FALSE(s.versions.at("basin").empty());
  const auto a = t.optimizer().state();
  const auto b = optimizer->state();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, v] : a) EXPECT_EQ(v.to_vector<double>(), b.at(k).to_vector<double>()) << k;

  // Damage the model file: loading names the checkpoint and the file.
  {
    std::ofstream f(ckpt / "model.safetensors", std::ios::binary | std::ios::trunc);
    f << "garbage";
  }
  try {
    load_checkpoint(ckpt.string(), fresh.model(), nullptr);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace basin::train
