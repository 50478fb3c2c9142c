// A one-line progress bar on stderr, for commands that may run long
// (audit verify, audit export, reconcile external). Shown only on a
// terminal, and only once the work has run for a second: short runs and
// scripts see nothing.
#ifndef POINTLEDGER_TOOLS_CLI_PROGRESS_H_
#define POINTLEDGER_TOOLS_CLI_PROGRESS_H_

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace pointledger::tools {

class ProgressBar {
 public:
  explicit ProgressBar(std::FILE* err) : err_(err), enabled_(isatty(fileno(err)) == 1) {}
  ~ProgressBar() { Clear(); }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // `total` 0: unknown (no bar, just the count).
  void Update(std::string_view phase, uint64_t done, uint64_t total) {
    if (!enabled_) return;
    const auto now = Clock::now();
    if (now - start_ < std::chrono::seconds(1) || now - last_ < std::chrono::milliseconds(100)) {
      return;
    }
    last_ = now;
    std::string line = "\r" + std::string(phase);
    line.resize(std::max<size_t>(line.size(), 10), ' ');
    if (total > 0) {
      const uint64_t shown = std::min(done, total);
      const int filled = static_cast<int>(30.0 * static_cast<double>(shown) / static_cast<double>(total));
      line += " [" + std::string(filled, '#') + std::string(30 - filled, '.') + "] ";
      line += std::to_string(100 * shown / total) + "% ";
    }
    line += std::to_string(done);
    if (total > 0) line += "/" + std::to_string(total);
    line += "   ";
    std::fputs(line.c_str(), err_);
    std::fflush(err_);
    shown_ = true;
  }

  void Clear() {
    if (!shown_) return;
    std::fprintf(err_, "\r%79s\r", "");
    std::fflush(err_);
    shown_ = false;
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::FILE* err_;
  bool enabled_;
  bool shown_ = false;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_{};
};

}  // namespace pointledger::tools

#endif  // POINTLEDGER_TOOLS_CLI_PROGRESS_H_
