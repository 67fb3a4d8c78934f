#include "generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_set>

#include "core/error.h"

namespace tokenlora {

void SamplerParams::Validate() const {
  auto bad = [](const std::string& field, const std::string& got, const std::string& expected) {
    throw InputError("sampling: " + field + " is " + got + ", expected " + expected);
  };
  if (!std::isfinite(temperature) || temperature < 0) bad("temperature", std::to_string(temperature), ">= 0");
  if (top_k < 0) bad("top_k", std::to_string(top_k), ">= 0 (0 turns it off)");
  if (!(top_p > 0 && top_p <= 1)) bad("top_p", std::to_string(top_p), "in (0, 1]");
  if (!(min_p >= 0 && min_p <= 1)) bad("min_p", std::to_string(min_p), "in [0, 1]");
  if (!(repeat_penalty > 0) || !std::isfinite(repeat_penalty)) {
    bad("repeat_penalty", std::to_string(repeat_penalty), "> 0 (1 turns it off)");
  }
  if (repeat_last_n < 0) bad("repeat_last_n", std::to_string(repeat_last_n), ">= 0");
  if (!(presence_penalty >= -2 && presence_penalty <= 2)) {
    bad("presence_penalty", std::to_string(presence_penalty), "in [-2, 2] (0 turns it off)");
  }
  if (!(frequency_penalty >= -2 && frequency_penalty <= 2)) {
    bad("frequency_penalty", std::to_string(frequency_penalty), "in [-2, 2] (0 turns it off)");
  }
}

Sampler::Sampler(const SamplerParams& params) : params_(params), rng_(params.seed) {
  params_.Validate();
}

int32_t ArgMax(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

int32_t Sampler::Sample(std::span<float> logits, std::span<const int32_t> history, size_t n_generated) {
  const int32_t vocab = static_cast<int32_t>(logits.size());
  TL_CHECK(n_generated <= history.size());
  if ((params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f) && n_generated > 0) {
    // Counts by sorting the output (O(n log n) per token; no vocab-sized table).
    generated_.assign(history.end() - static_cast<std::ptrdiff_t>(n_generated), history.end());
    std::sort(generated_.begin(), generated_.end());
    for (size_t i = 0; i < generated_.size();) {
      size_t j = i;
      while (j < generated_.size() && generated_[j] == generated_[i]) ++j;
      const int32_t id = generated_[i];
      if (id >= 0 && id < vocab) {
        logits[static_cast<size_t>(id)] -=
            static_cast<float>(j - i) * params_.frequency_penalty + params_.presence_penalty;
      }
      i = j;
    }
  }
  if (params_.repeat_penalty != 1.0f && params_.repeat_last_n > 0) {
    const size_t n = std::min(history.size(), static_cast<size_t>(params_.repeat_last_n));
    std::unordered_set<int32_t> seen(history.end() - static_cast<std::ptrdiff_t>(n), history.end());
    for (int32_t id : seen) {
      if (id < 0 || id >= vocab) continue;
      float& l = logits[static_cast<size_t>(id)];
      l = l > 0 ? l / params_.repeat_penalty : l * params_.repeat_penalty;
    }
  }
  if (params_.temperature <= 0.0f) return ArgMax(logits);

  // Candidates sorted by logit, cut by top-k.
  candidates_.clear();
  candidates_.reserve(logits.size());
  for (int32_t i = 0; i < vocab; ++i) candidates_.emplace_back(logits[static_cast<size_t>(i)], i);
  size_t keep = candidates_.size();
  if (params_.top_k > 0) keep = std::min(keep, static_cast<size_t>(params_.top_k));
  auto by_logit = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(keep),
                    candidates_.end(), by_logit);
  candidates_.resize(keep);

  // Softmax with temperature (in double for a stable cumulative sum).
  const double max_logit = candidates_.front().first;
  std::vector<double> probs(keep);
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) {
    probs[i] = std::exp((candidates_[i].first - max_logit) / params_.temperature);
    sum += probs[i];
  }
  for (double& p : probs) p /= sum;

  // top-p: the smallest prefix whose mass reaches top_p. min-p: drop tokens
  // below min_p times the top probability.
  size_t cut = keep;
  if (params_.top_p < 1.0f) {
    double cum = 0;
    for (size_t i = 0; i < keep; ++i) {
      cum += probs[i];
      if (cum >= params_.top_p) {
        cut = i + 1;
        break;
      }
    }
  }
  if (params_.min_p > 0.0f) {
    const double threshold = params_.min_p * probs[0];
    size_t i = 1;
    while (i < cut && probs[i] >= threshold) ++i;
    cut = i;
  }
  double mass = 0;
  for (size_t i = 0; i < cut; ++i) mass += probs[i];
  // Uniform in [0, mass) from 53 random bits: portable across standard libraries.
  const double u = static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0) * mass;
  double acc = 0;
  for (size_t i = 0; i < cut; ++i) {
    acc += probs[i];
    if (u < acc) return candidates_[i].second;
  }
  return candidates_[cut - 1].second;
}

}  // namespace tokenlora
