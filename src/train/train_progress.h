// The training progress line on stderr:
//   train [########............]   120/300  40%  loss 1.832  val 1.901  812 tok/s  ETA 3m41s
// Redrawn in place at most 5 times a second on a terminal; elsewhere (logs,
// CI) one line every 10% of the steps.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace tokenlora {

class TrainProgress {
 public:
  TrainProgress(int64_t total_steps, int64_t first_step, std::FILE* out);
  // After step `step` (1-based count of steps done); loss: that step's mean
  // loss; tokens: tokens processed since the start of this run.
  void Update(int64_t step, double loss, int64_t tokens);
  void SetValLoss(double val_loss) { val_loss_ = val_loss; }
  // Restarts the clock (speed and ETA count from now).
  void Restart() { start_ = last_draw_ = std::chrono::steady_clock::now(); }
  void Finish(int64_t step, int64_t tokens);
  double tokens_per_second(int64_t tokens) const;

 private:
  std::string Line(int64_t step, int64_t tokens) const;

  int64_t total_, first_;
  std::FILE* out_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  int last_decile_ = -1;
  double loss_ = 0, val_loss_ = -1;
  double smoothed_loss_ = -1;
};

}  // namespace tokenlora
