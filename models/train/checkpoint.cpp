#include "models/train/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/build_info.h"
#include "core/error.h"
#include "core/io/safetensors.h"
#include "data/file_io.h"

namespace basin::train {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kStateFormat = "basin-trainer-state/1";

std::string read_text(const fs::path& path, const char* who) {
  std::ifstream in(path, std::ios::binary);
  check(static_cast<bool>(in), "[{}] cannot read {}", who, path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json state_to_json(const TrainerState& s) {
  json j;
  j["format"] = kStateFormat;
  j["step"] = s.step;
  j["epoch"] = s.epoch;
  j["batch_in_epoch"] = s.batch_in_epoch;
  j["seed"] = s.seed;
  j["rng_offset"] = s.rng_offset;
  j["best_metric_name"] = s.best_metric_name;
  j["best_metric"] = s.best_metric ? json(*s.best_metric) : json(nullptr);
  j["best_step"] = s.best_step;
  j["wall_time"] = s.wall_time;
  j["versions"] = s.versions;
  j["log_window"] = {{"steps", s.window_steps}, {"loss", s.window_loss}, {"logs", s.window_logs}};
  return j;
}

TrainerState state_from_json(const json& j, const std::string& where) {
  try {
    check(j.is_object() && j.value("format", "") == kStateFormat,
          "[load_checkpoint] {}: not a basin trainer state (format '{}' expected)", where,
          kStateFormat);
    TrainerState s;
    s.step = j.at("step").get<int64_t>();
    s.epoch = j.at("epoch").get<int64_t>();
    s.batch_in_epoch = j.at("batch_in_epoch").get<int64_t>();
    s.seed = j.at("seed").get<uint64_t>();
    s.rng_offset = j.at("rng_offset").get<uint64_t>();
    s.best_metric_name = j.value("best_metric_name", "");
    if (j.contains("best_metric") && !j.at("best_metric").is_null())
      s.best_metric = j.at("best_metric").get<double>();
    s.best_step = j.value("best_step", int64_t{-1});
    s.wall_time = j.value("wall_time", 0.0);
    if (j.contains("versions"))
      s.versions = j.at("versions").get<std::map<std::string, std::string>>();
    if (j.contains("log_window")) {
      const json& w = j.at("log_window");
      s.window_steps = w.at("steps").get<int64_t>();
      s.window_loss = w.at("loss").get<double>();
      s.window_logs = w.at("logs").get<std::map<std::string, double>>();
    }
    check(s.step >= 0 && s.epoch >= 0 && s.batch_in_epoch >= 0,
          "[load_checkpoint] {}: negative step, epoch or batch position", where);
    return s;
  } catch (const json::exception& e) {
    fail("[load_checkpoint] {}: {}", where, e.what());
  }
}

// Parses "checkpoint-<step>" exactly; nullopt for anything else (temporary folders included).
std::optional<int64_t> parse_checkpoint_name(const std::string& name) {
  const std::string prefix = "checkpoint-";
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return {};
  int64_t step = -1;
  const char* first = name.data() + prefix.size();
  const char* last = name.data() + name.size();
  auto [ptr, ec] = std::from_chars(first, last, step);
  if (ec != std::errc() || ptr != last || step < 0) return {};
  return step;
}

}  // namespace

std::string checkpoint_name(int64_t step) { return "checkpoint-" + std::to_string(step); }

std::string save_checkpoint(const std::string& run_dir, const nn::Module& model,
                            const optim::Optimizer& optimizer, const TrainerState& state,
                            const std::string& config_toml) {
  const fs::path final_dir = fs::path(run_dir) / checkpoint_name(state.step);
  const fs::path tmp_dir = final_dir.string() + ".tmp-" + std::to_string(::getpid());
  std::error_code ec;
  fs::remove_all(tmp_dir, ec);
  fs::create_directories(tmp_dir, ec);
  check(!ec, "[save_checkpoint] cannot create {}: {}", tmp_dir.string(), ec.message());
  try {
    // The optimizer's parameter i is the model's i-th named parameter.
    const nn::NamedTensors named = model.named_parameters();
    const Tensors& params = optimizer.params();
    check(named.size() == params.size(),
          "[save_checkpoint] the optimizer holds {} parameters, the model {}", params.size(),
          named.size());
    for (size_t i = 0; i < params.size(); ++i) {
      check(named[i].second.impl() == params[i].impl(),
            "[save_checkpoint] optimizer parameter {} is not the model's '{}': build the optimizer "
            "from model.parameters()",
            i, named[i].first);
    }
    std::map<std::string, Tensor> opt_tensors;
    for (const auto& [key, value] : optimizer.state()) {
      const size_t dot = key.find('.');
      const size_t index = std::stoul(key.substr(0, dot));
      opt_tensors["state." + named.at(index).first + key.substr(dot)] = value;
    }
    const std::map<std::string, std::string> meta = {
        {"format", "pt"}, {"basin_version", version()}, {"step", std::to_string(state.step)}};
    io::save_safetensors((tmp_dir / "model.safetensors").string(), model.state_dict(), meta);
    io::save_safetensors(
        (tmp_dir / "optimizer.safetensors").string(), opt_tensors,
        {{"optimizer", optimizer.name()}, {"lr", fmt::format("{}", optimizer.lr())}});
    data::detail::write_file_atomic((tmp_dir / "trainer_state.json").string(),
                                    state_to_json(state).dump(2) + "\n", "save_checkpoint");
    data::detail::write_file_atomic((tmp_dir / "config.toml").string(), config_toml,
                                    "save_checkpoint");

    // Swap into place: an existing checkpoint of the same step is moved aside first and removed
    // only once the new one holds its name.
    const fs::path old_dir = final_dir.string() + ".old-" + std::to_string(::getpid());
    const bool replacing = fs::exists(final_dir);
    if (replacing) {
      fs::rename(final_dir, old_dir, ec);
      check(!ec, "[save_checkpoint] cannot move {} aside: {}", final_dir.string(), ec.message());
    }
    fs::rename(tmp_dir, final_dir, ec);
    check(!ec, "[save_checkpoint] cannot rename {} to {}: {}", tmp_dir.string(), final_dir.string(),
          ec.message());
    if (replacing) fs::remove_all(old_dir, ec);
  } catch (...) {
    fs::remove_all(tmp_dir, ec);
    throw;
  }
  return final_dir.string();
}

TrainerState read_trainer_state(const std::string& checkpoint_dir) {
  const fs::path dir(checkpoint_dir);
  check(fs::is_directory(dir),
        "[load_checkpoint] {} is not a checkpoint folder (no such directory)", checkpoint_dir);
  const fs::path path = dir / "trainer_state.json";
  check(fs::exists(path), "[load_checkpoint] {}: trainer_state.json is missing", checkpoint_dir);
  json j;
  try {
    j = json::parse(read_text(path, "load_checkpoint"));
  } catch (const json::exception& e) {
    fail("[load_checkpoint] {}: invalid JSON: {}", path.string(), e.what());
  }
  return state_from_json(j, path.string());
}

TrainerState load_checkpoint(const std::string& checkpoint_dir, nn::Module& model,
                             optim::Optimizer* optimizer) {
  TrainerState state = read_trainer_state(checkpoint_dir);
  const fs::path dir(checkpoint_dir);
  try {
    model.load_state_dict(io::load_safetensors((dir / "model.safetensors").string()).tensors);
  } catch (const Error& e) {
    fail("[load_checkpoint] {}: the model does not load: {}", checkpoint_dir, e.what());
  }
  if (optimizer != nullptr) {
    const nn::NamedTensors named = model.named_parameters();
    std::map<std::string, size_t> index_of;
    for (size_t i = 0; i < named.size(); ++i) index_of[named[i].first] = i;
    optim::StateDict opt_state;
    for (const auto& [key, value] :
         io::load_safetensors((dir / "optimizer.safetensors").string()).tensors) {
      // "state.<param name>.<key>": the parameter name itself contains dots, the key does not.
      const size_t last_dot = key.rfind('.');
      check(key.rfind("state.", 0) == 0 && last_dot > 6,
            "[load_checkpoint] {}: unexpected optimizer tensor '{}'", checkpoint_dir, key);
      const std::string param = key.substr(6, last_dot - 6);
      auto it = index_of.find(param);
      check(it != index_of.end(),
            "[load_checkpoint] {}: optimizer state for '{}', which the model does not have",
            checkpoint_dir, param);
      opt_state[std::to_string(it->second) + key.substr(last_dot)] = value;
    }
    try {
      optimizer->load_state(opt_state);
    } catch (const Error& e) {
      fail("[load_checkpoint] {}: the optimizer state does not load: {}", checkpoint_dir, e.what());
    }
  }
  return state;
}

std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& run_dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec)) return out;
  for (const auto& entry : fs::directory_iterator(run_dir, ec)) {
    if (!entry.is_directory()) continue;
    if (auto step = parse_checkpoint_name(entry.path().filename().string()))
      out.emplace_back(*step, entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void prune_checkpoints(const std::string& run_dir, int keep_last, int64_t keep_step) {
  auto all = list_checkpoints(run_dir);
  const int64_t n = static_cast<int64_t>(all.size());
  for (int64_t i = 0; i < n - std::max(keep_last, 0); ++i) {
    if (all[i].first == keep_step) continue;
    std::error_code ec;
    fs::remove_all(all[i].second, ec);
  }
}

}  // namespace basin::train
