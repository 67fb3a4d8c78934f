#include "train/optimizer.h"

#include <cmath>
#include <numbers>

#include "core/error.h"

namespace tokenlora {

LrSchedule ParseLrSchedule(const std::string& text) {
  if (text == "cosine") return LrSchedule::kCosine;
  if (text == "linear") return LrSchedule::kLinear;
  if (text == "constant") return LrSchedule::kConstant;
  throw InputError("--schedule: expected cosine, linear or constant, got '" + text + "'");
}

const char* LrScheduleName(LrSchedule s) {
  switch (s) {
    case LrSchedule::kCosine:
      return "cosine";
    case LrSchedule::kLinear:
      return "linear";
    case LrSchedule::kConstant:
      return "constant";
  }
  return "?";
}

double LearningRate(const OptimizerConfig& c, int64_t step) {
  if (step < c.warmup_steps) {
    return c.lr * static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, c.warmup_steps));
  }
  if (c.schedule == LrSchedule::kConstant) return c.lr;
  const double progress = static_cast<double>(step - c.warmup_steps) /
                          static_cast<double>(std::max<int64_t>(1, c.total_steps - c.warmup_steps));
  if (c.schedule == LrSchedule::kLinear) return c.lr * std::max(0.0, 1.0 - progress);
  return c.lr * std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * progress)));
}

double ClipGradNorm(LoraParams& params, double max_norm) {
  double sum_sq = 0;
  for (const TrainableModule& m : params.modules()) {
    for (float g : m.grad_a) sum_sq += static_cast<double>(g) * g;
    for (float g : m.grad_b) sum_sq += static_cast<double>(g) * g;
  }
  const double norm = std::sqrt(sum_sq);
  if (max_norm > 0) {
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) {
      const auto f = static_cast<float>(coef);
      for (TrainableModule& m : params.modules()) {
        for (float& g : m.grad_a) g *= f;
        for (float& g : m.grad_b) g *= f;
      }
    }
  }
  return norm;
}

AdamW::AdamW(LoraParams& params, OptimizerConfig config) : params_(params), config_(config) {
  for (const TrainableModule& m : params.modules()) {
    moments_.push_back({std::vector<float>(m.a.size(), 0.0f), std::vector<float>(m.a.size(), 0.0f),
                        std::vector<float>(m.b.size(), 0.0f), std::vector<float>(m.b.size(), 0.0f)});
  }
}

namespace {

void Update(std::vector<float>& p, const std::vector<float>& g, std::vector<float>& m, std::vector<float>& v,
            const OptimizerConfig& c, double lr, int64_t t) {
  const double bc1 = 1.0 - std::pow(c.beta1, static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(c.beta2, static_cast<double>(t));
  const double step_size = lr / bc1;
  const double bc2_sqrt = std::sqrt(bc2);
  const double decay = 1.0 - lr * c.weight_decay;
  for (size_t i = 0; i < p.size(); ++i) {
    const double gi = g[i];
    m[i] = static_cast<float>(c.beta1 * m[i] + (1.0 - c.beta1) * gi);
    v[i] = static_cast<float>(c.beta2 * v[i] + (1.0 - c.beta2) * gi * gi);
    const double denom = std::sqrt(static_cast<double>(v[i])) / bc2_sqrt + c.eps;
    p[i] = static_cast<float>(p[i] * decay - step_size * m[i] / denom);
  }
}

}  // namespace

double AdamW::Step() {
  const double lr = LearningRate(config_, step_);
  ++step_;
  auto& modules = params_.modules();
  for (size_t k = 0; k < modules.size(); ++k) {
    TrainableModule& mod = modules[k];
    Update(mod.a, mod.grad_a, moments_[k][0], moments_[k][1], config_, lr, step_);
    Update(mod.b, mod.grad_b, moments_[k][2], moments_[k][3], config_, lr, step_);
  }
  return lr;
}

}  // namespace tokenlora
