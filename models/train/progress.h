// Progress of a run on stderr: a tqdm-style bar redrawn in place on a terminal,
//
//   train  42%|████████▍           | 420/1000 [00:12<00:17, 34.1 it/s, loss=0.312, lr=1.0e-03]
//
// and plain periodic lines when stderr is not a terminal (logs, CI).
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace basin::train {

/// Formats seconds as [h:]mm:ss.
std::string format_duration(double seconds);

class Progress {
 public:
  /// A bar from `initial` to `total` steps. `tty` chooses the bar (true) or plain lines printed
  /// every `line_every` steps (false).
  Progress(std::ostream& out, int64_t total, int64_t initial, bool tty, int64_t line_every);
  /// Reports that `step` steps are done; `postfix` pairs are shown after the rate.
  void update(int64_t step, const std::vector<std::pair<std::string, std::string>>& postfix);
  /// Prints a message on its own line without breaking the bar.
  void message(const std::string& text);
  /// Ends the bar's line.
  void close();

  /// True when stderr is a terminal.
  static bool stderr_is_tty();

 private:
  void draw(bool force);
  std::ostream& out_;
  int64_t total_, initial_, step_;
  bool tty_;
  int64_t line_every_;
  std::vector<std::pair<std::string, std::string>> postfix_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool drawn_ = false;
};

}  // namespace basin::train
