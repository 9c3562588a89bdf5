// basin-eval: evaluates a checkpoint and prints its metrics as one JSON object on stdout (human
// lines go to stderr); the same object is written beside the checkpoint as eval-<split>.json.
//
//   basin-eval --checkpoint runs/mlp/checkpoint-1000 [--split test] [--data ../other/mnist]
//   basin-eval --checkpoint runs/mil/repeat-0/fold-0/checkpoint-160 --export-attention att.json
//
// --export-attention FILE also writes the model's attention weights on every item of the split
// (for Hopfield pooling: each bag's per-instance weights, per head) as JSON; a model without
// attention is a usage error.
//
// Exit codes: 0 done, 1 evaluation failed, 2 bad usage, checkpoint or input.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "basin/basin.h"

namespace fs = std::filesystem;
using namespace basin;

namespace {

int usage_error(const std::string& message) {
  std::cerr << "basin-eval: error: " << message << '\n';
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Evaluate a basin checkpoint.", "basin-eval"};
  std::string checkpoint, split, data_root, device;
  std::vector<std::string> sets;
  app.add_option("--checkpoint", checkpoint, "a checkpoint folder, runs/x/checkpoint-N")
      ->required();
  app.add_option("--split", split, "the split to evaluate (default: the model's first)");
  app.add_option("--data", data_root, "read the data from this folder (data.root)");
  app.add_option("--set", sets, "override a model or data key (repeatable)")
      ->type_name("KEY=VALUE");
  app.add_option("--device", device, "cpu, cuda or cuda:N");
  std::string attention_file;
  app.add_option("--export-attention", attention_file,
                 "write each item's attention weights (JSON) to this file");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return usage_error(e.what());
  }

  std::unique_ptr<train::Task> task;
  train::TrainerState state;
  std::string model_type;
  try {
    check(fs::is_directory(checkpoint), "--checkpoint {}: no such checkpoint folder", checkpoint);
    const fs::path config_path = fs::path(checkpoint) / "config.toml";
    check(fs::exists(config_path), "--checkpoint {}: not a basin checkpoint (no config.toml)",
          checkpoint);
    Config config = Config::load(config_path.string());
    for (const std::string& s : sets) config.set(s);
    if (config.has("model.type"))
      model_type = Config(config).section("model").get<std::string>("type", "");
    if (!data_root.empty()) config.set_value("data.root", nlohmann::json(data_root).dump());
    state = train::read_trainer_state(checkpoint);
    const Device dev = Device::parse(device.empty() ? "cpu" : device);
    manual_seed(state.seed);
    task = train::make_task(train::TaskContext{config, dev, state.seed});
    // The trainer's own sections are not read here; only the model's and the data's must be known.
    for (const char* section : {"model", "data"}) config.section(section).check_all_used();
    train::load_checkpoint(checkpoint, task->model(), nullptr);
    if (split.empty()) split = task->splits().front();
    const auto splits = task->splits();
    if (std::find(splits.begin(), splits.end(), split) == splits.end()) {
      std::string names;
      for (const auto& s : splits) names += (names.empty() ? "" : ", ") + s;
      fail("--split {}: this model has {}", split, names);
    }
  } catch (const Error& e) {
    return usage_error(e.what());
  }

  try {
    std::cerr << "evaluating " << checkpoint << " (step " << state.step << ") on " << split << '\n';
    train::Metrics metrics;
    nlohmann::json attention;
    {
      NoGradGuard no_grad;
      task->model().eval();
      metrics = task->evaluate(split);
      if (!attention_file.empty()) {
        std::string text;
        try {
          text = task->attention_json(split);
        } catch (const Error& e) {
          return usage_error(
              fmt::format("--export-attention: model.type '{}': {}", model_type, e.what()));
        }
        attention = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
        check(attention.is_object(),
              "--export-attention: the model's attention is not a JSON object");
      }
    }
    if (!attention_file.empty()) {
      nlohmann::json head;
      head["checkpoint"] = checkpoint;
      head["step"] = state.step;
      head.update(attention);
      const std::string bytes = head.dump() + "\n";
      std::ofstream file(attention_file, std::ios::trunc | std::ios::binary);
      file << bytes;
      file.close();
      if (!file) fail("--export-attention {}: cannot write the file", attention_file);
      std::cerr << "attention weights written to " << attention_file << '\n';
    }
    nlohmann::json j;
    j["checkpoint"] = checkpoint;
    j["step"] = state.step;
    j["split"] = split;
    for (const auto& [k, v] : metrics) j[k] = v;
    const std::string text = j.dump();
    std::cout << text << '\n';
    const fs::path out = fs::path(checkpoint) / ("eval-" + split + ".json");
    std::ofstream file(out, std::ios::trunc);
    file << j.dump(2) << '\n';
    if (!file) std::cerr << "basin-eval: warning: could not write " << out.string() << '\n';
  } catch (const Error& e) {
    std::cerr << "basin-eval: error: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
