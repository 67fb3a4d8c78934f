// AdamW over the LoRA parameters, the learning-rate schedule and global-norm
// gradient clipping, with PyTorch's / Hugging Face's exact formulas so a
// step can be compared with torch.optim.AdamW + clip_grad_norm_ +
// transformers' schedules.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/lora_params.h"

namespace tokenlora {

enum class LrSchedule { kCosine, kLinear, kConstant };
// "cosine", "linear", "constant"; InputError otherwise.
LrSchedule ParseLrSchedule(const std::string& text);
const char* LrScheduleName(LrSchedule s);

struct OptimizerConfig {
  double lr = 2e-4;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;   // decoupled (AdamW): p −= lr·wd·p before the Adam update
  double max_grad_norm = 1.0;  // <= 0: no clipping
  LrSchedule schedule = LrSchedule::kCosine;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
};

// The learning rate of optimizer step `step` (0-based), as transformers'
// get_{cosine,linear,constant}_schedule_with_warmup: lr·step/warmup during
// warm-up, then lr·½(1 + cos(π·progress)) or lr·(1 − progress) with
// progress = (step − warmup)/(total − warmup).
double LearningRate(const OptimizerConfig& c, int64_t step);

// torch.nn.utils.clip_grad_norm_: the global L2 norm of all gradients
// (accumulated in double); when it exceeds max_norm the gradients are
// multiplied by max_norm / (norm + 1e-6). Returns the norm before clipping.
double ClipGradNorm(LoraParams& params, double max_norm);

class AdamW {
 public:
  AdamW(LoraParams& params, OptimizerConfig config);

  // Applies one update with the params' current gradients and the schedule's
  // learning rate for step(); returns that learning rate. Moments are f32
  // (as torch keeps them for f32 parameters); the update is computed in
  // double and rounded once.
  double Step();
  int64_t step() const { return step_; }  // updates done so far
  const OptimizerConfig& config() const { return config_; }

  // Moments per module, for checkpoints: [module][0: m_a, 1: v_a, 2: m_b, 3: v_b].
  std::vector<std::vector<std::vector<float>>>& moments() { return moments_; }
  void set_step(int64_t step) { step_ = step; }

 private:
  LoraParams& params_;
  OptimizerConfig config_;
  int64_t step_ = 0;
  std::vector<std::vector<std::vector<float>>> moments_;
};

}  // namespace tokenlora
