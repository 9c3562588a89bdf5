#include "models/train/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace basin::train {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{:02}:{:02}", s / 60, s % 60);
}

bool Progress::stderr_is_tty() { return ::isatty(STDERR_FILENO) == 1; }

Progress::Progress(std::ostream& out, int64_t total, int64_t initial, bool tty, int64_t line_every)
    : out_(out),
      total_(total),
      initial_(initial),
      step_(initial),
      tty_(tty),
      line_every_(std::max<int64_t>(line_every, 1)),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

void Progress::update(int64_t step,
                      const std::vector<std::pair<std::string, std::string>>& postfix) {
  step_ = step;
  postfix_ = postfix;
  if (tty_) {
    draw(step == total_);
  } else if (step % line_every_ == 0 || step == total_) {
    draw(true);
  }
}

void Progress::draw(bool force) {
  const auto now = std::chrono::steady_clock::now();
  if (!force && drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  drawn_ = true;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const int64_t done = step_ - initial_;
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
  const double remaining = rate > 0 ? static_cast<double>(total_ - step_) / rate : NAN;
  std::string post;
  for (const auto& [key, value] : postfix_) post += fmt::format(", {}={}", key, value);
  const std::string rate_text = rate >= 1 || rate == 0 ? fmt::format("{:.1f} it/s", rate)
                                                       : fmt::format("{:.2f} s/it", 1.0 / rate);
  const double frac = total_ > 0 ? static_cast<double>(step_) / static_cast<double>(total_) : 1.0;
  if (tty_) {
    constexpr int kWidth = 24;
    static const char* kEighths[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
    const double cells = frac * kWidth;
    const int full = static_cast<int>(cells);
    std::string bar;
    for (int i = 0; i < full; ++i) bar += "█";
    int used = full;
    if (full < kWidth) {
      bar += kEighths[static_cast<int>((cells - full) * 8)];
      used += 1;
    }
    bar += std::string(static_cast<size_t>(kWidth - used), ' ');
    out_ << fmt::format("\r\033[Ktrain {:3.0f}%|{}| {}/{} [{}<{}, {}{}]", frac * 100, bar, step_,
                        total_, format_duration(elapsed), format_duration(remaining), rate_text,
                        post)
         << std::flush;
  } else {
    out_ << fmt::format("step {}/{} ({:.0f}%) elapsed {} eta {} {}{}\n", step_, total_, frac * 100,
                        format_duration(elapsed), format_duration(remaining), rate_text, post)
         << std::flush;
  }
}

void Progress::message(const std::string& text) {
  if (tty_ && drawn_) out_ << "\r\033[K";
  out_ << text << '\n';
  if (tty_ && drawn_) draw(true);
  out_ << std::flush;
}

void Progress::close() {
  if (tty_ && drawn_) {
    draw(true);
    out_ << '\n' << std::flush;
  }
  drawn_ = false;
}

}  // namespace basin::train
