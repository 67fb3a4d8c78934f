#include "router/progress.h"

#include <unistd.h>

#include <algorithm>

namespace tokenlora {

std::string FormatDuration(double seconds) {
  const long s = std::max(0L, static_cast<long>(seconds + 0.5));
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
  } else if (s >= 60) {
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lds", s);
  }
  return buf;
}

ProgressBar::ProgressBar(std::string label, int64_t total, std::FILE* out)
    : label_(std::move(label)),
      total_(std::max<int64_t>(total, 0)),
      out_(out),
      tty_(::isatty(::fileno(out)) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_ - std::chrono::seconds(1)) {}

std::string ProgressBar::Line(int64_t done, bool final) const {
  constexpr int kWidth = 24;
  const double frac =
      total_ > 0 ? std::min(1.0, static_cast<double>(done) / static_cast<double>(total_)) : 1.0;
  const int filled = static_cast<int>(frac * kWidth);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = secs > 0 ? static_cast<double>(done) / secs : 0.0;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%-14s [%s%s] %6lld/%-6lld %3d%%  %6.1f rec/s  %s %s", label_.c_str(),
                std::string(static_cast<size_t>(filled), '#').c_str(),
                std::string(static_cast<size_t>(kWidth - filled), '.').c_str(), static_cast<long long>(done),
                static_cast<long long>(total_), static_cast<int>(frac * 100), rate, final ? "took" : "ETA",
                final ? FormatDuration(secs).c_str()
                      : (rate > 0 ? FormatDuration(static_cast<double>(total_ - done) / rate).c_str() : "?"));
  return buf;
}

void ProgressBar::Update(int64_t done) {
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    std::fprintf(out_, "\r%s", Line(done, false).c_str());
  } else {
    const int decile = total_ > 0 ? static_cast<int>(10 * done / total_) : 10;
    if (decile == last_decile_ || decile >= 10) return;
    last_decile_ = decile;
    std::fprintf(out_, "%s\n", Line(done, false).c_str());
  }
  std::fflush(out_);
}

void ProgressBar::Finish(int64_t done, const std::string& note) {
  std::fprintf(out_, "%s%s%s\n", tty_ ? "\r" : "", Line(done, true).c_str(),
               note.empty() ? "" : ("  " + note).c_str());
  std::fflush(out_);
}

}  // namespace tokenlora
