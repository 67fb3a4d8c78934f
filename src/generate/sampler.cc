#include "generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_set>

#include "core/error.h"
#include "kernels/kernels.h"

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
  const float* x = logits.data();
  const auto n = static_cast<int64_t>(logits.size());
  const kernels::ArgMaxResult r = kernels::ArgMaxFinite(x, n);
  if (r.all_finite) return static_cast<int32_t>(r.index);
  return static_cast<int32_t>(std::max_element(x, x + n) - x);  // callers check finiteness first
}

int32_t Sampler::Sample(std::span<float> logits, std::span<const int32_t> history, size_t n_generated) {
  ApplyPenalties(logits, history, n_generated);
  if (params_.temperature <= 0.0f) return ArgMax(logits);
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < logits.size()) {
    TopKCandidates(logits);
  } else {
    AllCandidates(logits);
  }
  return Draw();
}

void Sampler::ApplyPenalties(std::span<float> logits, std::span<const int32_t> history, size_t n_generated) {
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
}

namespace {
// The walk's order: probability descending, then id ascending.
bool ByProbability(const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}
}  // namespace

void Sampler::TopKCandidates(std::span<const float> logits) {
  // The k largest logits (ties to the lower id), then their softmax. One pass
  // over the vocabulary with a heap of the k best so far, its front the worst
  // of them: ids come in ascending order, so a later one enters only when its
  // logit is strictly larger (a tie keeps the lower id). Listing and
  // partially sorting every (logit, id) pair instead cost 0.4-0.7 ms per token
  // at 151,936 tokens, per sequence of a batched step.
  const size_t vocab = logits.size();
  const auto keep = static_cast<size_t>(params_.top_k);  // < vocab (Sample checks)
  candidates_.clear();
  for (size_t i = 0; i < keep; ++i) candidates_.emplace_back(logits[i], static_cast<int32_t>(i));
  std::make_heap(candidates_.begin(), candidates_.end(), ByProbability);
  float worst = candidates_.front().first;
  for (size_t i = keep; i < vocab; ++i) {
    if (!(logits[i] > worst)) continue;
    std::pop_heap(candidates_.begin(), candidates_.end(), ByProbability);
    candidates_.back() = {logits[i], static_cast<int32_t>(i)};
    std::push_heap(candidates_.begin(), candidates_.end(), ByProbability);
    worst = candidates_.front().first;
  }
  std::sort_heap(candidates_.begin(), candidates_.end(), ByProbability);  // best first
  n_tail_ = 0;
  const float max_logit = candidates_.front().first, t = params_.temperature;
  float sum = 0;
  for (auto& [v, id] : candidates_) sum += (v = std::exp((v - max_logit) / t));
  for (auto& c : candidates_) c.first /= sum;
}

void Sampler::AllCandidates(std::span<float> logits) {
  // Every token's probability (SIMD softmax in place), but only the head the
  // walk is likely to need is listed and sorted: probabilities of at least
  // 2^-24 of the top one. The rest (together at most vocab·2^-24 of the top
  // probability: 0.9% for 151,936 tokens) is listed and sorted only if a walk
  // reaches it (Candidate).
  const auto top = static_cast<size_t>(ArgMax(logits));
  const float max = logits[top], t = params_.temperature;
  for (float& v : logits) v = (v - max) / t;  // <= 0, as the softmax's exponents are (no overflow at tiny t)
  kernels::Softmax(logits.data(), static_cast<int64_t>(logits.size()));
  probs_ = logits;
  tail_floor_ = logits[top] * 0x1p-24f;  // the top logit's exponent is 0: the largest probability
  candidates_.clear();
  tail_mass_ = 0;
  n_tail_ = 0;
  for (int32_t i = 0; i < static_cast<int32_t>(logits.size()); ++i) {
    const float p = logits[static_cast<size_t>(i)];
    if (p >= tail_floor_) {
      candidates_.emplace_back(p, i);
    } else {
      tail_mass_ += p;
      ++n_tail_;
    }
  }
  std::sort(candidates_.begin(), candidates_.end(), ByProbability);
}

const std::pair<float, int32_t>& Sampler::Candidate(size_t i) {
  if (i >= candidates_.size() && n_tail_ > 0) {  // the walk left the sorted head: list and sort the rest after it
    const size_t head = candidates_.size();
    for (int32_t id = 0; id < static_cast<int32_t>(probs_.size()); ++id) {
      const float p = probs_[static_cast<size_t>(id)];
      if (p < tail_floor_) candidates_.emplace_back(p, id);
    }
    std::sort(candidates_.begin() + static_cast<std::ptrdiff_t>(head), candidates_.end(), ByProbability);
    n_tail_ = 0;
  }
  return candidates_[i];
}

int32_t Sampler::Draw() {
  const size_t n = candidates_.size() + n_tail_;
  // top-p: the smallest prefix whose mass reaches top_p. min-p: drop tokens
  // below min_p times the top probability.
  size_t cut = n;
  if (params_.top_p < 1.0f) {
    double cum = 0;
    for (size_t i = 0; i < n; ++i) {
      cum += Candidate(i).first;
      if (cum >= params_.top_p) {
        cut = i + 1;
        break;
      }
    }
  }
  if (params_.min_p > 0.0f) {
    const double threshold = static_cast<double>(params_.min_p) * candidates_.front().first;
    size_t i = 1;
    while (i < cut && Candidate(i).first >= threshold) ++i;
    cut = i;
  }
  double mass = 0;
  if (cut == n) {
    for (const auto& c : candidates_) mass += c.first;
    if (n_tail_ > 0) mass += tail_mass_;  // the tail is not listed yet
  } else {
    for (size_t i = 0; i < cut; ++i) mass += candidates_[i].first;
  }
  // Uniform in [0, mass) from 53 random bits: portable across standard libraries.
  const double u = static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0) * mass;
  double acc = 0;
  for (size_t i = 0; i < cut; ++i) {
    acc += Candidate(i).first;
    if (u < acc) return candidates_[i].second;
  }
  return Candidate(cut - 1).second;
}

}  // namespace tokenlora
