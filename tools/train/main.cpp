// basin-train: trains the model a TOML config names, into a run folder.
//
//   basin-train --config configs/mlp_mnist.toml --set optim.lr=3e-4 --seed 0 --out runs/mlp
//   basin-train --resume runs/mlp [--set train.steps=4000]
//   basin-train --config configs/mlp_mnist.toml --print-config
//   basin-train --config configs/mil_elephant.toml [--cv 10 --repeats 5]   (cross-validation)
//
// A config with a [cv] section (or --cv/--repeats) runs a cross-validation protocol: one run per
// fold in subfolders of the run folder and a summary (models/train/cross_validation.h).
//
// Exit codes: 0 done, 1 the run failed (e.g. the loss diverged), 2 bad usage, config or input.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "basin/basin.h"
#include "models/train/cross_validation.h"

namespace fs = std::filesystem;
using namespace basin;

namespace {

int usage_error(const std::string& message) {
  std::cerr << "basin-train: error: " << message << '\n';
  return 2;
}

/// Runs the cross-validation protocol of `config` into `run_dir`.
int cross_validate(const Config& config, const std::string& run_dir, bool resume, bool print_config,
                   bool quiet) {
  train::CrossValidationOptions options;
  options.run_dir = run_dir;
  options.resume = resume;
  options.quiet = quiet;
  options.dry_run = print_config;
  std::unique_ptr<train::CrossValidation> cv;
  try {
    cv = std::make_unique<train::CrossValidation>(config, options);
  } catch (const Error& e) {
    return usage_error(e.what());
  }
  if (print_config) {
    std::cout << cv->config().to_toml();
    return 0;
  }
  try {
    const train::CvSummary summary = cv->run();
    std::string line = fmt::format("done: {} runs in {}", summary.runs.size(),
                                   train::format_duration(summary.wall_time));
    for (const auto& [k, v] : summary.mean)
      line += fmt::format(", {} {:.4f} ± {:.4f}", k, v, summary.stddev.at(k));
    std::cerr << line << "\nrun folder: " << run_dir << " (cv_summary.json, cv_summary.md)\n";
  } catch (const Error& e) {
    std::cerr << "basin-train: error: " << e.what() << '\n';
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Train a basin model from a TOML config.", "basin-train"};
  std::string config_path, out, resume, device;
  std::vector<std::string> sets;
  int64_t seed = -1;
  bool print_config = false, list_models = false, deterministic = false, quiet = false;
  app.add_option("--config,-c", config_path, "the TOML config of the run");
  app.add_option("--set", sets, "override a config key: --set optim.lr=3e-4 (repeatable)")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);
  app.add_option("--seed", seed, "the seed of every random stream (train.seed)");
  app.add_option("--device", device, "cpu, cuda or cuda:N (train.device)");
  app.add_option("--out,-o", out, "the run folder (default: runs/<config name>)");
  app.add_option("--resume", resume, "continue the run in this folder from its latest checkpoint");
  int64_t stop_at = 0;
  app.add_option("--stop-at", stop_at, "checkpoint and stop at this step (continue with --resume)");
  app.add_flag("--deterministic", deterministic, "bitwise-reproducible run (train.deterministic)");
  app.add_flag("--print-config", print_config, "print the resolved config and exit");
  app.add_flag("--list-models", list_models, "list the registered models and exit");
  app.add_flag("--quiet,-q", quiet, "no progress output");
  int64_t cv_folds = 0, cv_repeats = 0;
  app.add_option("--cv", cv_folds, "cross-validate with this many stratified folds (cv.folds)");
  app.add_option("--repeats", cv_repeats, "repetitions of the cross-validation (cv.repeats)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return usage_error(e.what());
  }

  if (list_models) {
    for (const auto& [name, description] : train::registered_tasks())
      std::cout << name << "\t" << description << '\n';
    return 0;
  }

  Config config;
  train::TrainerOptions options;
  try {
    if (!resume.empty()) {
      if (!config_path.empty()) {
        return usage_error(
            "give --config or --resume, not both (a resumed run uses its own "
            "config.toml; change it with --set)");
      }
      if (!out.empty() && fs::path(out) != fs::path(resume)) {
        return usage_error("--out and --resume name different folders");
      }
      const fs::path run_config = fs::path(resume) / "config.toml";
      if (!fs::is_directory(resume))
        return usage_error("--resume " + resume + ": no such run folder");
      if (!fs::exists(run_config)) {
        return usage_error("--resume " + resume + ": not a basin run (no config.toml)");
      }
      config = Config::load(run_config.string());
      options.run_dir = resume;
      options.resume = true;
    } else {
      if (config_path.empty()) return usage_error("give --config FILE (or --resume RUN_FOLDER)");
      config = Config::load(config_path);
      options.run_dir =
          out.empty() ? (fs::path("runs") / fs::path(config_path).stem()).string() : out;
    }
    for (const std::string& s : sets) config.set(s);
    if (seed >= 0) config.set_value("train.seed", std::to_string(seed));
    if (!device.empty()) config.set_value("train.device", "\"" + device + "\"");
    if (deterministic) config.set_value("train.deterministic", "true");
    if (cv_folds != 0) config.set_value("cv.folds", std::to_string(cv_folds));
    if (cv_repeats != 0) config.set_value("cv.repeats", std::to_string(cv_repeats));
  } catch (const Error& e) {
    return usage_error(e.what());
  }

  if (train::runs_cross_validation(config)) {
    if (stop_at > 0) return usage_error("--stop-at applies to one run, not a cross-validation");
    return cross_validate(config, options.run_dir, options.resume, print_config, quiet);
  }

  options.progress_tty = train::Progress::stderr_is_tty();
  options.quiet = quiet;
  options.dry_run = print_config;
  options.stop_at = stop_at;
  std::unique_ptr<train::Trainer> trainer;
  try {
    trainer = std::make_unique<train::Trainer>(config, options);
  } catch (const Error& e) {
    return usage_error(e.what());
  }
  if (print_config) {
    std::cout << trainer->config().to_toml();
    return 0;
  }
  try {
    const train::Metrics metrics = trainer->run();
    const train::TrainerState& state = trainer->state();
    std::string line =
        fmt::format("done: {} steps in {}", state.step, train::format_duration(state.wall_time));
    for (const auto& [k, v] : metrics) line += fmt::format(", {} {:.4f}", k, v);
    if (state.best_metric) {
      line += fmt::format(" (best {} {:.4f} at step {})", state.best_metric_name,
                          *state.best_metric, state.best_step);
    }
    std::cerr << line << "\nrun folder: " << options.run_dir << '\n';
  } catch (const train::Diverged& e) {
    std::cerr << "basin-train: " << e.what() << '\n';
    return 1;
  } catch (const Error& e) {
    std::cerr << "basin-train: error: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
