// Loss and metric curves of a run as PNG files, drawn by gnuplot from metrics.jsonl.
#pragma once

#include <string>
#include <vector>

namespace basin::train {

/// Whether a gnuplot executable is on PATH.
bool gnuplot_available();

/// Reads `run_dir`/metrics.jsonl and writes `run_dir`/plots/<metric>.png for every numeric field
/// (one curve per split, against the step). Returns the files written; throws basin::Error when
/// gnuplot is missing or fails.
std::vector<std::string> plot_metrics(const std::string& run_dir);

/// Runs a gnuplot script whose first line sets the terminal to "pngcairo" (retried with the
/// plain "png" terminal when a minimal gnuplot lacks cairo). `what` names the output in errors.
void run_gnuplot(std::string script, const std::string& what);

}  // namespace basin::train
