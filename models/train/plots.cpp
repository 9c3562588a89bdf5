#include "models/train/plots.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace basin::train {
namespace fs = std::filesystem;

bool gnuplot_available() { return std::system("command -v gnuplot >/dev/null 2>&1") == 0; }

std::vector<std::string> plot_metrics(const std::string& run_dir) {
  check(gnuplot_available(), "[plot_metrics] gnuplot not found (install gnuplot-nox)");
  const fs::path jsonl = fs::path(run_dir) / "metrics.jsonl";
  std::ifstream in(jsonl);
  check(static_cast<bool>(in), "[plot_metrics] cannot read {}", jsonl.string());
  // metric -> split -> (step, value)
  std::map<std::string, std::map<std::string, std::vector<std::pair<int64_t, double>>>> series;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("step")) continue;
    const int64_t step = j["step"].get<int64_t>();
    const std::string split = j.value("split", "train");
    for (const auto& [key, value] : j.items()) {
      if (key == "step" || key == "epoch" || key == "wall_time" || !value.is_number()) continue;
      series[key][split].emplace_back(step, value.get<double>());
    }
  }
  const fs::path dir = fs::path(run_dir) / "plots";
  fs::create_directories(dir);
  std::vector<std::string> written;
  for (const auto& [metric, splits] : series) {
    const fs::path png = dir / (metric + ".png");
    std::string script = fmt::format(
        "set terminal pngcairo size 800,500 noenhanced\nset output '{}'\nset title '{}'\n"
        "set xlabel 'step'\nset grid\nset key outside right top\n",
        png.string(), metric);
    if (metric == "loss" || metric == "grad_norm") script += "set logscale y\n";
    std::string plot = "plot ";
    std::string data;
    for (const auto& [split, points] : splits) {
      if (plot.size() > 5) plot += ", ";
      plot += fmt::format("'-' using 1:2 with lines lw 2 title '{}'", split);
      for (const auto& [step, value] : points) data += fmt::format("{} {:.9g}\n", step, value);
      data += "e\n";
    }
    script += plot + "\n" + data;
    run_gnuplot(script, png.string());
    written.push_back(png.string());
  }
  return written;
}

void run_gnuplot(std::string script, const std::string& what) {
  FILE* pipe = ::popen("gnuplot 2>/dev/null", "w");
  check(pipe != nullptr, "[plot] cannot start gnuplot");
  std::fwrite(script.data(), 1, script.size(), pipe);
  if (::pclose(pipe) == 0) return;
  // pngcairo may be missing from a minimal gnuplot; the plain png terminal is always there.
  const size_t at = script.find("pngcairo");
  check(at != std::string::npos, "[plot] gnuplot failed on {}", what);
  script.replace(at, 8, "png");
  pipe = ::popen("gnuplot 2>/dev/null", "w");
  check(pipe != nullptr, "[plot] cannot start gnuplot");
  std::fwrite(script.data(), 1, script.size(), pipe);
  check(::pclose(pipe) == 0, "[plot] gnuplot failed on {}", what);
}

}  // namespace basin::train
