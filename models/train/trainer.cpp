#include "models/train/trainer.h"

#include <omp.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "autograd/grad.h"
#include "core/build_info.h"
#include "core/grad_mode.h"
#include "core/random.h"
#include "data/file_io.h"
#include "data/loader.h"
#include "models/optim/clip.h"
#include "models/optim/factory.h"
#include "models/train/plots.h"
#include "models/train/progress.h"

namespace basin::train {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Keeps the lines of metrics.jsonl up to `step`: a resumed run rewrites what came after its
// checkpoint.
void truncate_metrics(const fs::path& path, int64_t step) {
  std::ifstream in(path);
  if (!in) return;
  std::string kept, line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("step") && j["step"].is_number_integer() &&
        j["step"].get<int64_t>() > step)
      continue;
    kept += line + "\n";
  }
  in.close();
  data::detail::write_file_atomic(path.string(), kept, "train");
}

std::string format_value(double v) {
  if (v != 0 && (std::fabs(v) < 1e-3 || std::fabs(v) >= 1e5)) return fmt::format("{:.3e}", v);
  return fmt::format("{:.4g}", v);
}

}  // namespace

std::ostream& Trainer::log() { return options_.log != nullptr ? *options_.log : std::cerr; }

Trainer::~Trainer() = default;

Trainer::Trainer(Config config, TrainerOptions options)
    : config_(std::move(config)), options_(std::move(options)) {
  Config train = config_.section("train");
  const int64_t seed = train.get<int64_t>("seed", 0);
  check(seed >= 0, "[config] train.seed: must be non-negative, got {}", seed);
  const std::string device_name = train.get<std::string>("device", "cpu");
  try {
    device_ = Device::parse(device_name);
  } catch (const Error& e) {
    fail("[config] train.device: {}", e.what());
  }
  deterministic_ = train.get<bool>("deterministic", false);
  batch_size_ = train.get<int64_t>("batch_size", 32);
  check(batch_size_ > 0, "[config] train.batch_size: must be positive, got {}", batch_size_);
  drop_last_ = train.get<bool>("drop_last", true);
  log_every_ = train.get<int64_t>("log_every", 50);
  check(log_every_ > 0, "[config] train.log_every: must be positive, got {}", log_every_);
  keep_last_ = train.get<int>("keep_last", 2);
  check(keep_last_ >= 1, "[config] train.keep_last: must be at least 1, got {}", keep_last_);
  clip_norm_ = train.get<double>("clip_norm", 0.0);
  check(clip_norm_ >= 0, "[config] train.clip_norm: must be >= 0 (0 turns clipping off), got {}",
        clip_norm_);
  prefetch_ = train.get<int64_t>("prefetch", 2);
  check(prefetch_ >= 1, "[config] train.prefetch: must be at least 1, got {}", prefetch_);

  // Parameters are drawn from the default generator, seeded here.
  manual_seed(static_cast<uint64_t>(seed));
  task_ = make_task(TaskContext{config_, device_, static_cast<uint64_t>(seed)});

  const int64_t n = task_->train_data()->size();
  check(n > 0, "[train] the training set is empty");
  const int64_t per_epoch = drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
  check(per_epoch > 0,
        "[config] train.batch_size: {} is larger than the training set ({} items) with "
        "drop_last = true",
        batch_size_, n);
  if (train.has("epochs")) {
    check(!train.has("steps"), "[config] train: give steps or epochs, not both");
    const int64_t epochs = train.get<int64_t>("epochs");
    check(epochs > 0, "[config] train.epochs: must be positive, got {}", epochs);
    total_steps_ = epochs * per_epoch;
  } else {
    total_steps_ = train.get<int64_t>("steps", 1000);
    check(total_steps_ > 0, "[config] train.steps: must be positive, got {}", total_steps_);
  }
  eval_every_ = train.get<int64_t>("eval_every", 0);
  check(eval_every_ >= 0, "[config] train.eval_every: must be >= 0, got {}", eval_every_);
  if (eval_every_ == 0) eval_every_ = total_steps_;

  optimizer_ = optim::make_optimizer(config_.section("optim"), task_->model().parameters());
  schedule_ = std::make_unique<optim::Schedule>(
      optim::make_schedule(config_.section("schedule"), optimizer_->lr(), total_steps_));
  config_.check_all_used();

  state_.seed = static_cast<uint64_t>(seed);
  state_.best_metric_name = task_->primary_metric();

  state_.versions = build_info();
  if (options_.dry_run) return;

  // Only now, with everything built and checked, touch the run folder.
  check(!options_.run_dir.empty(), "[train] no run folder given");
  const fs::path dir(options_.run_dir);
  if (options_.resume) {
    const auto checkpoints = list_checkpoints(options_.run_dir);
    check(!checkpoints.empty(), "[resume] {} holds no checkpoint to resume from", options_.run_dir);
    const std::string& latest = checkpoints.back().second;
    state_ = load_checkpoint(latest, task_->model(), optimizer_.get());
    check(state_.seed == static_cast<uint64_t>(seed),
          "[resume] {} was trained with seed {}, the config now says {}", latest, state_.seed,
          seed);
    check(state_.step <= total_steps_,
          "[resume] {} is at step {}, past train.steps = {} (raise it with --set train.steps=N)",
          latest, state_.step, total_steps_);
    if (deterministic_) {
      const std::string threads = std::to_string(omp_get_max_threads());
      auto it = state_.versions.find("omp_threads");
      if (it != state_.versions.end() && it->second != threads) {
        log() << fmt::format(
            "warning: {} was saved with {} threads, this run has {}: results will not be "
            "bitwise identical (set OMP_NUM_THREADS={})\n",
            latest, it->second, threads, it->second);
      }
    }
    default_generator().set_state(state_.seed, state_.rng_offset);
    truncate_metrics(dir / "metrics.jsonl", state_.step);
    if (!options_.quiet) log() << fmt::format("resuming {} at step {}\n", latest, state_.step);
  } else {
    for (const char* name : {"config.toml", "metrics.jsonl"}) {
      check(!fs::exists(dir / name),
            "[train] {} already holds a run ({} exists): continue it with --resume {} or choose "
            "another --out",
            options_.run_dir, name, options_.run_dir);
    }
    check(list_checkpoints(options_.run_dir).empty(),
          "[train] {} already holds checkpoints: continue it with --resume {} or choose another "
          "--out",
          options_.run_dir, options_.run_dir);
    std::error_code ec;
    fs::create_directories(dir, ec);
    check(!ec, "[train] cannot create {}: {}", options_.run_dir, ec.message());
    std::ofstream(dir / "metrics.jsonl", std::ios::trunc);
  }
  data::detail::write_file_atomic((dir / "config.toml").string(), config_.to_toml(), "train");
  state_.versions = build_info();
}

void Trainer::log_json(const std::string& line) {
  std::ofstream out(fs::path(options_.run_dir) / "metrics.jsonl", std::ios::app);
  out << line << '\n';
  out.flush();
}

void Trainer::evaluate_and_checkpoint(Metrics& last_eval) {
  // Evaluation must not move the training streams: it runs on a saved copy of the generator.
  Generator& gen = default_generator();
  const uint64_t gen_seed = gen.seed(), gen_offset = gen.offset();
  const std::string split = task_->splits().front();
  {
    NoGradGuard no_grad;
    task_->model().eval();
    last_eval = task_->evaluate(split);
    task_->model().train();
  }
  gen.set_state(gen_seed, gen_offset);

  json j;
  j["step"] = state_.step;
  j["epoch"] = state_.epoch;
  j["split"] = split;
  for (const auto& [k, v] : last_eval) j[k] = v;
  log_json(j.dump());

  const std::string metric = task_->primary_metric();
  auto it = last_eval.find(metric);
  check(it != last_eval.end(),
        "[train] the task's evaluate() did not report its primary metric '{}'", metric);
  const double value = it->second;
  const bool better =
      !state_.best_metric ||
      (task_->higher_is_better() ? value > *state_.best_metric : value < *state_.best_metric);
  if (better && std::isfinite(value)) {
    state_.best_metric = value;
    state_.best_step = state_.step;
  }
  save_checkpoint(options_.run_dir, task_->model(), *optimizer_, state_, config_.to_toml());
  prune_checkpoints(options_.run_dir, keep_last_, state_.best_step);
}

Metrics Trainer::run() {
  Progress progress(log(), total_steps_, state_.step, options_.progress_tty, log_every_);
  auto say = [&](const std::string& text) {
    if (!options_.quiet) progress.message(text);
  };
  const bool plots = gnuplot_available();
  if (!plots) say("note: gnuplot not found, so no plots are drawn (install gnuplot-nox)");
  if (!options_.quiet) {
    say(fmt::format("model {}: {} parameters, {} training items, {} steps of batch {}",
                    task_->model().type_name(), task_->model().num_parameters(),
                    task_->train_data()->size(), total_steps_, batch_size_));
  }

  const Tensors params = task_->model().parameters();
  // Stops the run on a non-finite value, naming the last good checkpoint (nothing is written).
  auto diverged = [&](const char* what, double value) {
    const auto saved = list_checkpoints(options_.run_dir);
    throw Diverged(fmt::format(
        "[train] step {}: {} is {}; stopping. {}", state_.step + 1, what, value,
        saved.empty() ? std::string("No checkpoint was saved yet.")
                      : fmt::format("The last good checkpoint is {} (resume with --resume {} after "
                                    "lowering optim.lr or adding train.clip_norm)",
                                    saved.back().second, options_.run_dir)));
  };
  auto shuffled = data::shuffle(task_->train_data(), state_.seed);
  const auto start = std::chrono::steady_clock::now();
  const double wall_before = state_.wall_time;
  double grad_norm = NAN;
  Metrics last_eval;
  task_->model().train();

  while (state_.step < total_steps_) {
    shuffled->set_epoch(state_.epoch);
    task_->set_epoch(state_.epoch);
    auto batches = data::batch(data::DatasetPtr<data::Example>(shuffled), batch_size_, drop_last_,
                               task_->collate());
    const int64_t per_epoch = batches->size();
    if (state_.batch_in_epoch >= per_epoch) {
      ++state_.epoch;
      state_.batch_in_epoch = 0;
      continue;
    }
    data::Loader loader(batches, state_.batch_in_epoch, static_cast<int>(prefetch_));
    while (state_.step < total_steps_) {
      std::optional<data::Example> batch = loader.next();
      if (!batch) break;
      if (!device_.is_cpu()) {
        for (auto& [name, value] : *batch) value = value.to(device_);
      }
      schedule_->apply(*optimizer_, state_.step);
      optimizer_->zero_grad();
      Metrics logs;
      Tensor loss = task_->loss(*batch, logs);
      check(loss.numel() == 1, "[train] the task's loss has shape {}, expected a scalar",
            shape_str(loss.shape()));
      const double loss_value = loss.item<double>();
      if (!std::isfinite(loss_value)) diverged("the loss", loss_value);
      loss.backward();
      if (clip_norm_ > 0) {
        grad_norm = optim::clip_grad_norm(params, clip_norm_);
        if (!std::isfinite(grad_norm)) diverged("the gradient norm", grad_norm);
      }
      optimizer_->step();
      ++state_.step;
      ++state_.batch_in_epoch;
      if (state_.batch_in_epoch == per_epoch) {
        ++state_.epoch;
        state_.batch_in_epoch = 0;
      }
      state_.rng_offset = default_generator().offset();
      state_.wall_time =
          wall_before +
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

      state_.window_loss += loss_value;
      ++state_.window_steps;
      for (const auto& [k, v] : logs) state_.window_logs[k] += v;
      if (state_.step % log_every_ == 0 || state_.step == total_steps_) {
        json j;
        j["step"] = state_.step;
        j["epoch"] = state_.epoch;
        j["split"] = "train";
        const auto count = static_cast<double>(state_.window_steps);
        j["loss"] = state_.window_loss / count;
        for (const auto& [k, v] : state_.window_logs) j[k] = v / count;
        j["lr"] = optimizer_->lr();
        if (clip_norm_ > 0) j["grad_norm"] = grad_norm;
        j["wall_time"] = state_.wall_time;
        log_json(j.dump());
        state_.window_loss = 0;
        state_.window_steps = 0;
        state_.window_logs.clear();
      }
      if (!options_.quiet) {
        progress.update(state_.step, {{"loss", format_value(loss_value)},
                                      {"lr", format_value(optimizer_->lr())}});
      }
      const bool stopping = options_.stop_at > 0 && state_.step >= options_.stop_at;
      if (state_.step % eval_every_ == 0 || state_.step == total_steps_ || stopping) {
        evaluate_and_checkpoint(last_eval);
        std::string line = fmt::format("step {}:", state_.step);
        for (const auto& [k, v] : last_eval) line += fmt::format(" {}={}", k, format_value(v));
        say(line);
        if (plots) {
          try {
            plot_metrics(options_.run_dir);
          } catch (const Error& e) {
            say(fmt::format("note: plots not drawn: {}", e.what()));
          }
        }
        try {
          task_->write_samples((fs::path(options_.run_dir) / "samples").string());
        } catch (const Error& e) {
          say(fmt::format("note: samples not written: {}", e.what()));
        }
      }
      if (stopping) {
        if (!options_.quiet) {
          progress.close();
          say(fmt::format("stopped at step {}; continue with --resume {}", state_.step,
                          options_.run_dir));
        }
        return last_eval;
      }
      if (state_.batch_in_epoch == 0) break;  // the epoch is over: reshuffle
    }
  }
  if (!options_.quiet) progress.close();
  if (last_eval.empty() && state_.step == total_steps_) {
    // Resumed at the final step: nothing was trained, report the checkpoint's metrics.
    NoGradGuard no_grad;
    task_->model().eval();
    last_eval = task_->evaluate(task_->splits().front());
  }
  return last_eval;
}

}  // namespace basin::train
