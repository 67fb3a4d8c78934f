// A progress bar on stderr for long runs (router build / eval):
//   gsm8k         [##########..........]  3712/7473  49%  41.2 rec/s  ETA 1m31s
// Redrawn in place at most 10 times a second on a terminal; elsewhere (logs,
// CI) one line every 10% so the output stays short.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace tokenlora {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, std::FILE* out = stderr);
  void Update(int64_t done);
  // Final line with the totals and elapsed time; `note` is appended ("3 skipped").
  void Finish(int64_t done, const std::string& note = "");

 private:
  std::string Line(int64_t done, bool final) const;

  std::string label_;
  int64_t total_;
  std::FILE* out_;
  bool tty_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  int last_decile_ = -1;
};

// "1m31s", "12s", "2h05m"
std::string FormatDuration(double seconds);

}  // namespace tokenlora
