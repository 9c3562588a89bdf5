#include "models/train/cross_validation.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/file_io.h"
#include "models/train/checkpoint.h"
#include "models/train/progress.h"
#include "models/train/trainer.h"

namespace basin::train {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kResultFile = "cv_result.json";

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t") - begin + 1);
}

/// One grid entry "KEY=[v1, v2, ...]" as (key, TOML literals of the values).
std::pair<std::string, std::vector<std::string>> parse_grid_entry(const std::string& entry) {
  const auto eq = entry.find('=');
  const std::string key = eq == std::string::npos ? "" : trim(entry.substr(0, eq));
  const bool key_ok = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
  if (!key_ok) {
    fail("[config] cv.grid: '{}' is not KEY=[value, ...] (e.g. \"optim.lr=[1e-3, 1e-4]\")", entry);
  }
  if (key == "cv" || key.starts_with("cv.")) {
    fail("[config] cv.grid: '{}' cannot search over the [cv] section itself", entry);
  }
  json values;
  try {
    values = json::parse(Config::parse("v = " + entry.substr(eq + 1), "cv.grid").to_json())["v"];
  } catch (const std::exception& e) {
    fail("[config] cv.grid: '{}': the values are not a TOML array: {}", entry, e.what());
  }
  if (!values.is_array() || values.empty()) {
    fail("[config] cv.grid: '{}': the values must be a non-empty array, [v1, v2, ...]", entry);
  }
  std::vector<std::string> literals;
  for (const json& v : values) {
    if (v.is_object()) fail("[config] cv.grid: '{}': a value cannot be a table", entry);
    literals.push_back(v.dump());
  }
  return {key, literals};
}

/// A 31-bit train.seed for stream `stream` of `seed` (readable in a config, valid everywhere).
int64_t run_seed(uint64_t seed, uint64_t stream) {
  return static_cast<int64_t>(data::derive_seed(seed, stream) >> 33);
}

json metrics_json(const Metrics& m) {
  json j = json::object();
  for (const auto& [k, v] : m) j[k] = std::isfinite(v) ? json(v) : json(nullptr);
  return j;
}

Metrics metrics_from_json(const json& j) {
  Metrics m;
  for (const auto& [k, v] : j.items())
    m[k] = v.is_number() ? v.get<double>() : std::numeric_limits<double>::quiet_NaN();
  return m;
}

std::string format_metrics(const Metrics& m, const std::string& first) {
  std::string out;
  auto add = [&](const std::string& k, double v) {
    out += fmt::format("{}{} {:.4f}", out.empty() ? "" : ", ", k, v);
  };
  if (auto it = m.find(first); it != m.end()) add(it->first, it->second);
  for (const auto& [k, v] : m)
    if (k != first) add(k, v);
  return out;
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

}  // namespace

// --- options ------------------------------------------------------------------------------------
int64_t CvOptions::grid_size() const {
  int64_t n = 1;
  for (const auto& [key, values] : grid) n *= static_cast<int64_t>(values.size());
  return n;
}

std::vector<std::string> CvOptions::grid_point(int64_t index) const {
  check(index >= 0 && index < grid_size(), "[cv] grid point {} is out of range (the grid has {})",
        index, grid_size());
  std::vector<std::string> out(grid.size());
  for (size_t i = grid.size(); i-- > 0;) {
    const auto n = static_cast<int64_t>(grid[i].second.size());
    out[i] = grid[i].first + "=" + grid[i].second[static_cast<size_t>(index % n)];
    index /= n;
  }
  return out;
}

std::optional<CvOptions> read_cv_options(Config config) {
  if (!config.has("cv")) return std::nullopt;
  Config s = config.section("cv");
  CvOptions cv;
  cv.folds = s.get<int64_t>("folds", 10);
  check(cv.folds >= 2, "[config] cv.folds: must be at least 2, got {}", cv.folds);
  cv.repeats = s.get<int64_t>("repeats", 5);
  check(cv.repeats >= 1, "[config] cv.repeats: must be at least 1, got {}", cv.repeats);
  const int64_t seed = s.get<int64_t>("seed", 0);
  check(seed >= 0, "[config] cv.seed: must be non-negative, got {}", seed);
  cv.seed = static_cast<uint64_t>(seed);
  cv.inner_folds = s.get<int64_t>("inner_folds", 0);
  check(cv.inner_folds == 0 || cv.inner_folds >= 2,
        "[config] cv.inner_folds: must be 0 (no nested search) or at least 2, got {}",
        cv.inner_folds);
  for (const std::string& entry : s.get<std::vector<std::string>>("grid", {})) {
    auto parsed = parse_grid_entry(entry);
    for (const auto& [key, values] : cv.grid) {
      check(key != parsed.first, "[config] cv.grid: the key '{}' appears twice", key);
    }
    cv.grid.push_back(std::move(parsed));
  }
  check(cv.grid.empty() || cv.inner_folds >= 2,
        "[config] cv.grid: a search needs cv.inner_folds >= 2 (the inner folds that score each "
        "grid point)");
  check(cv.inner_folds == 0 || !cv.grid.empty(),
        "[config] cv.inner_folds: a nested search needs cv.grid (the values to search)");
  cv.keep_checkpoints = s.get<bool>("keep_checkpoints", true);

  // The split of a single run (written by the driver); never filled in as a default, so that a
  // resolved protocol config stays a protocol.
  cv.single_run = s.has("fold");
  if (s.has("repeat")) cv.repeat = s.get<int64_t>("repeat");
  if (cv.single_run) cv.fold = s.get<int64_t>("fold");
  if (s.has("inner_fold")) cv.inner_fold = s.get<int64_t>("inner_fold");
  check(cv.repeat >= 0 && cv.repeat < cv.repeats,
        "[config] cv.repeat: must lie in [0, {}) (cv.repeats = {}), got {}", cv.repeats, cv.repeats,
        cv.repeat);
  check(cv.fold >= 0 && cv.fold < cv.folds,
        "[config] cv.fold: must lie in [0, {}) (cv.folds = {}), got {}", cv.folds, cv.folds,
        cv.fold);
  if (s.has("inner_fold")) {
    check(cv.inner_folds >= 2, "[config] cv.inner_fold: needs cv.inner_folds >= 2");
    check(cv.inner_fold >= 0 && cv.inner_fold < cv.inner_folds,
          "[config] cv.inner_fold: must lie in [0, {}) (cv.inner_folds = {}), got {}",
          cv.inner_folds, cv.inner_folds, cv.inner_fold);
  }
  return cv;
}

bool runs_cross_validation(const Config& config) {
  return config.has("cv") && !config.has("cv.fold");
}

data::Fold cv_fold(std::span<const int64_t> labels, const CvOptions& cv) {
  const uint64_t seed = data::derive_seed(cv.seed, static_cast<uint64_t>(cv.repeat));
  if (cv.inner_fold < 0) return data::stratified_kfold(labels, cv.folds, seed)[cv.fold];
  return data::nested_stratified_kfold(labels, cv.folds, cv.inner_folds, seed)[cv.fold]
      .inner[cv.inner_fold];
}

// --- the driver ---------------------------------------------------------------------------------
struct CrossValidation::Job {
  int64_t repeat = 0, fold = 0;
  int64_t inner_fold = -1;  // -1: the outer run
  int64_t point = 0;        // grid point
};

CrossValidation::~CrossValidation() = default;

std::ostream& CrossValidation::log() { return options_.log != nullptr ? *options_.log : std::cerr; }

int64_t CrossValidation::num_runs() const {
  const int64_t outer = cv_.repeats * cv_.folds;
  return cv_.nested() ? outer * (1 + cv_.grid_size() * cv_.inner_folds) : outer;
}

Config CrossValidation::run_config(const Job& job) const {
  Config c = Config::parse(base_toml_, "config");
  if (cv_.nested()) {
    for (const std::string& assignment : cv_.grid_point(job.point)) c.set(assignment);
  }
  const auto outer = static_cast<uint64_t>(job.repeat * cv_.folds + job.fold);
  const int64_t seed = job.inner_fold < 0
                           ? run_seed(static_cast<uint64_t>(base_seed_), outer)
                           : run_seed(data::derive_seed(static_cast<uint64_t>(base_seed_), outer),
                                      static_cast<uint64_t>(1 + job.inner_fold));
  c.set_value("train.seed", std::to_string(seed));
  c.set_value("cv.repeat", std::to_string(job.repeat));
  c.set_value("cv.fold", std::to_string(job.fold));
  if (job.inner_fold >= 0) c.set_value("cv.inner_fold", std::to_string(job.inner_fold));
  return c;
}

CrossValidation::CrossValidation(Config config, CrossValidationOptions options)
    : options_(std::move(options)) {
  base_toml_ = config.to_toml();
  Config probe = Config::parse(base_toml_, "config");
  const auto cv = read_cv_options(probe);
  check(cv.has_value(), "[cv] the config has no [cv] section");
  check(!cv->single_run,
        "[cv] the config names one fold (cv.fold = {}): that is a single run, not a protocol",
        cv->fold);
  cv_ = *cv;
  base_seed_ = probe.section("train").get<int64_t>("seed", 0);
  check(base_seed_ >= 0, "[config] train.seed: must be non-negative, got {}", base_seed_);

  // Build every configuration once without training: the protocol's own (its resolved config is
  // config.toml) and, for a search, each grid point as an inner and as an outer run.
  TrainerOptions dry;
  dry.dry_run = true;
  dry.quiet = true;
  try {
    Trainer trainer(Config::parse(base_toml_, "config"), dry);
    resolved_ = Config::parse(trainer.config().to_toml(), "config");
    primary_metric_ = trainer.task().primary_metric();
    higher_is_better_ = trainer.task().higher_is_better();
  } catch (const Error& e) {
    // A task that does not read its split leaves the [cv] keys unread.
    if (std::string(e.what()).find("unknown key 'cv.") != std::string::npos) {
      fail(
          "[cv] this model.type does not support cross-validation (its task does not read the "
          "split from [cv]; see models/train/cross_validation.h): {}",
          e.what());
    }
    throw;
  }
  if (cv_.nested()) {
    for (int64_t g = 0; g < cv_.grid_size(); ++g) {
      for (int64_t inner : {int64_t{0}, int64_t{-1}}) {
        try {
          Trainer trainer(run_config(Job{0, 0, inner, g}), dry);
        } catch (const Error& e) {
          fail("[cv] grid point {} ({}): {}", g, join(cv_.grid_point(g), " "), e.what());
        }
      }
    }
  }

  if (options_.dry_run) return;
  check(!options_.run_dir.empty(), "[cv] no run folder given");
  const fs::path dir(options_.run_dir);
  if (options_.resume) {
    check(fs::exists(dir / "config.toml"), "[resume] {} holds no cross-validation run",
          options_.run_dir);
  } else {
    for (const char* name : {"config.toml", "repeat-0", "cv_summary.json"}) {
      check(!fs::exists(dir / name),
            "[cv] {} already holds a run ({} exists): continue it with --resume {} or choose "
            "another --out",
            options_.run_dir, name, options_.run_dir);
    }
  }
}

CvRun CrossValidation::run_job(const Job& job) {
  fs::path dir = fs::path(options_.run_dir) / fmt::format("repeat-{}", job.repeat) /
                 fmt::format("fold-{}", job.fold);
  if (job.inner_fold >= 0) {
    dir =
        dir / "inner" / fmt::format("point-{}", job.point) / fmt::format("fold-{}", job.inner_fold);
  }
  const std::string name = job.inner_fold < 0
                               ? fmt::format("repeat {} fold {}", job.repeat, job.fold)
                               : fmt::format("repeat {} fold {} grid point {} inner fold {}",
                                             job.repeat, job.fold, job.point, job.inner_fold);
  CvRun run{job.repeat, job.fold, {}, 0, 0, {}};
  const fs::path result = dir / kResultFile;
  if (options_.resume && fs::exists(result)) {
    try {
      const json j = json::parse(data::detail::read_file(result.string(), "cv"));
      run.metrics = metrics_from_json(j.at("metrics"));
      run.steps = j.at("steps").get<int64_t>();
      run.wall_time = j.at("wall_time").get<double>();
      return run;
    } catch (const json::exception& e) {
      fail("[cv] {}: damaged result file ({}); delete it to rerun that fold", result.string(),
           e.what());
    }
  }

  TrainerOptions o;
  o.run_dir = dir.string();
  o.quiet = true;
  o.log = options_.log;
  if (fs::exists(dir / "config.toml")) {
    // Only a resumed protocol gets here: continue the fold from its checkpoint, or start it over.
    if (!list_checkpoints(o.run_dir).empty()) {
      o.resume = true;
    } else {
      fs::remove(dir / "config.toml");
      fs::remove(dir / "metrics.jsonl");
    }
  }
  try {
    Trainer trainer(run_config(job), o);
    run.metrics = trainer.run();
    run.steps = trainer.state().step;
    run.wall_time = trainer.state().wall_time;
  } catch (const Error& e) {
    fail("[cv] {} ({}): {}", name, o.run_dir, e.what());
  }
  if (job.inner_fold >= 0 || !cv_.keep_checkpoints) {
    for (const auto& [step, path] : list_checkpoints(o.run_dir)) fs::remove_all(path);
  }
  json j;
  j["repeat"] = job.repeat;
  j["fold"] = job.fold;
  if (job.inner_fold >= 0) j["inner_fold"] = job.inner_fold;
  if (cv_.nested()) j["grid_point"] = cv_.grid_point(job.point);
  j["metrics"] = metrics_json(run.metrics);
  j["steps"] = run.steps;
  j["wall_time"] = run.wall_time;
  data::detail::write_file_atomic(result.string(), j.dump(2) + "\n", "cv");
  return run;
}

CvSummary CrossValidation::run() {
  check(!options_.dry_run, "[cv] run() of a dry run (built to check the config only)");
  const auto start = std::chrono::steady_clock::now();
  const fs::path dir(options_.run_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  check(!ec, "[cv] cannot create {}: {}", options_.run_dir, ec.message());
  data::detail::write_file_atomic((dir / "config.toml").string(), resolved_.to_toml(), "cv");
  if (!options_.quiet) {
    log() << fmt::format(
        "cross-validation: {} repeat(s) of {} stratified folds{}, {} training runs, into {}\n",
        cv_.repeats, cv_.folds,
        cv_.nested() ? fmt::format(", nested search of {} grid points over {} inner folds",
                                   cv_.grid_size(), cv_.inner_folds)
                     : "",
        num_runs(), options_.run_dir);
  }

  CvSummary summary;
  summary.primary_metric = primary_metric_;
  const int64_t total = cv_.repeats * cv_.folds;
  for (int64_t r = 0; r < cv_.repeats; ++r) {
    for (int64_t f = 0; f < cv_.folds; ++f) {
      int64_t point = 0;
      std::string chose;
      if (cv_.nested()) {
        // The grid point with the best mean inner score (NaN counts as worst; ties: the first).
        double best = NAN;
        for (int64_t g = 0; g < cv_.grid_size(); ++g) {
          double sum = 0;
          for (int64_t j = 0; j < cv_.inner_folds; ++j) {
            const CvRun inner = run_job(Job{r, f, j, g});
            auto it = inner.metrics.find(primary_metric_);
            sum += it == inner.metrics.end() ? NAN : it->second;
          }
          const double score = sum / static_cast<double>(cv_.inner_folds);
          const bool better = std::isnan(best) ? !std::isnan(score)
                                               : (higher_is_better_ ? score > best : score < best);
          if (better) {
            best = score;
            point = g;
          }
        }
        chose = fmt::format(" (chose {}; inner {} {:.4f})", join(cv_.grid_point(point), " "),
                            primary_metric_, best);
      }
      CvRun run = run_job(Job{r, f, -1, point});
      if (cv_.nested()) run.selected = cv_.grid_point(point);
      if (!options_.quiet) {
        log() << fmt::format("cv {}/{}: repeat {} fold {}: {} ({} steps, {}){}\n",
                             r * cv_.folds + f + 1, total, r, f,
                             format_metrics(run.metrics, primary_metric_), run.steps,
                             format_duration(run.wall_time), chose);
      }
      summary.runs.push_back(std::move(run));
    }
  }

  // Per-repeat means over the folds, then mean and sample std over the repeats.
  std::map<std::string, bool> names;
  for (const CvRun& run : summary.runs)
    for (const auto& [k, v] : run.metrics) names[k] = true;
  for (const auto& [name, unused] : names) {
    std::vector<double>& per = summary.per_repeat[name];
    per.assign(static_cast<size_t>(cv_.repeats), 0.0);
    for (const CvRun& run : summary.runs) {
      auto it = run.metrics.find(name);
      per[static_cast<size_t>(run.repeat)] +=
          (it == run.metrics.end() ? NAN : it->second) / static_cast<double>(cv_.folds);
    }
    double mean = 0;
    for (double v : per) mean += v / static_cast<double>(per.size());
    double ss = 0;
    for (double v : per) ss += (v - mean) * (v - mean);
    summary.mean[name] = mean;
    summary.stddev[name] =
        per.size() > 1 ? std::sqrt(ss / static_cast<double>(per.size() - 1)) : 0.0;
  }
  summary.wall_time =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  json j;
  json protocol;
  protocol["folds"] = cv_.folds;
  protocol["repeats"] = cv_.repeats;
  protocol["seed"] = cv_.seed;
  protocol["inner_folds"] = cv_.inner_folds;
  json grid = json::array();
  for (const auto& [key, values] : cv_.grid) grid.push_back({{"key", key}, {"values", values}});
  protocol["grid"] = grid;
  j["protocol"] = protocol;
  j["primary_metric"] = summary.primary_metric;
  j["mean"] = metrics_json(summary.mean);
  j["std"] = metrics_json(summary.stddev);
  json per_repeat = json::object();
  for (const auto& [name, values] : summary.per_repeat) {
    json a = json::array();
    for (double v : values) a.push_back(std::isfinite(v) ? json(v) : json(nullptr));
    per_repeat[name] = a;
  }
  j["per_repeat"] = per_repeat;
  json runs = json::array();
  for (const CvRun& run : summary.runs) {
    json rj{{"repeat", run.repeat},
            {"fold", run.fold},
            {"metrics", metrics_json(run.metrics)},
            {"steps", run.steps},
            {"wall_time", run.wall_time}};
    if (!run.selected.empty()) rj["selected"] = run.selected;
    runs.push_back(rj);
  }
  j["runs"] = runs;
  j["wall_time"] = summary.wall_time;
  data::detail::write_file_atomic((dir / "cv_summary.json").string(), j.dump(2) + "\n", "cv");
  const std::string table = cv_table(summary);
  data::detail::write_file_atomic((dir / "cv_summary.md").string(), table, "cv");
  if (!options_.quiet) {
    log() << table;
    log() << fmt::format("cv done in {}: {} {:.4f} ± {:.4f} over {} repeat(s) of {} folds\n",
                         format_duration(summary.wall_time), primary_metric_,
                         summary.mean[primary_metric_], summary.stddev[primary_metric_],
                         cv_.repeats, cv_.folds);
  }
  return summary;
}

std::string cv_table(const CvSummary& summary) {
  std::vector<std::string> names;
  if (summary.per_repeat.count(summary.primary_metric) > 0) {
    names.push_back(summary.primary_metric);
  }
  for (const auto& [name, values] : summary.per_repeat)
    if (name != summary.primary_metric) names.push_back(name);
  std::string out = "| repeat |";
  for (const auto& n : names) out += " " + n + " |";
  out += "\n|---|";
  for (size_t i = 0; i < names.size(); ++i) out += "---|";
  out += "\n";
  size_t repeats = 0;
  for (const auto& [name, values] : summary.per_repeat) repeats = values.size();
  for (size_t r = 0; r < repeats; ++r) {
    out += fmt::format("| {} |", r);
    for (const auto& n : names) out += fmt::format(" {:.4f} |", summary.per_repeat.at(n)[r]);
    out += "\n";
  }
  out += "| mean ± std |";
  for (const auto& n : names) {
    out += fmt::format(" {:.4f} ± {:.4f} |", summary.mean.at(n), summary.stddev.at(n));
  }
  return out + "\n";
}

}  // namespace basin::train
