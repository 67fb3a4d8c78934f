#include "train/train_progress.h"

#include <unistd.h>

#include <algorithm>

#include "router/progress.h"

namespace tokenlora {

TrainProgress::TrainProgress(int64_t total_steps, int64_t first_step, std::FILE* out)
    : total_(std::max<int64_t>(1, total_steps)),
      first_(first_step),
      out_(out),
      tty_(out != nullptr && isatty(fileno(out)) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

double TrainProgress::tokens_per_second(int64_t tokens) const {
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return s > 0 ? static_cast<double>(tokens) / s : 0.0;
}

std::string TrainProgress::Line(int64_t step, int64_t tokens) const {
  constexpr int kWidth = 20;
  const int filled = static_cast<int>(kWidth * std::min(step, total_) / total_);
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int64_t done_here = step - first_;
  const double eta = done_here > 0 ? elapsed / static_cast<double>(done_here) * static_cast<double>(total_ - step) : 0;
  char val[32] = "";
  if (val_loss_ >= 0) std::snprintf(val, sizeof val, "  val %.3f", val_loss_);
  char buf[256];
  std::snprintf(buf, sizeof buf, "train [%s%s] %6lld/%-6lld %3d%%  loss %.3f%s  %.0f tok/s  ETA %s",
                std::string(static_cast<size_t>(filled), '#').c_str(),
                std::string(static_cast<size_t>(kWidth - filled), '.').c_str(), static_cast<long long>(step),
                static_cast<long long>(total_), static_cast<int>(100 * step / total_), smoothed_loss_, val,
                tokens_per_second(tokens), FormatDuration(eta).c_str());
  return buf;
}

void TrainProgress::Update(int64_t step, double loss, int64_t tokens) {
  loss_ = loss;
  // An exponential moving average over ~10 steps: single batches are noisy.
  smoothed_loss_ = smoothed_loss_ < 0 ? loss : 0.9 * smoothed_loss_ + 0.1 * loss;
  if (out_ == nullptr) return;
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_draw_ < std::chrono::milliseconds(200) && step < total_) return;
    last_draw_ = now;
    std::fprintf(out_, "\r%s", Line(step, tokens).c_str());
    std::fflush(out_);
    return;
  }
  const int decile = static_cast<int>(10 * step / total_);
  if (decile != last_decile_) {
    last_decile_ = decile;
    std::fprintf(out_, "%s\n", Line(step, tokens).c_str());
  }
}

void TrainProgress::Finish(int64_t step, int64_t tokens) {
  if (out_ == nullptr) return;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::fprintf(out_, "%s%s  (%s)\n", tty_ ? "\r" : "", Line(step, tokens).c_str(), FormatDuration(elapsed).c_str());
}

}  // namespace tokenlora
