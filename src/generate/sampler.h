// Token sampling: greedy, temperature, top-k, top-p, min-p, repetition
// penalty, OpenAI's presence and frequency penalties; a seeded RNG makes runs
// reproducible (same seed -> same text).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace tokenlora {

struct SamplerParams {
  float temperature = 0.0f;     // <= 0: greedy (argmax)
  int top_k = 0;                // 0: off
  float top_p = 1.0f;           // 1: off
  float min_p = 0.0f;           // 0: off
  float repeat_penalty = 1.0f;  // 1: off (divides positive logits, multiplies negative)
  int repeat_last_n = 64;       // window the penalty looks at
  // OpenAI's penalties over the generated tokens (not the prompt), applied
  // to the raw logits before temperature: logit[t] -= c[t]·frequency_penalty
  // + (c[t] > 0)·presence_penalty, c[t] = times t was generated. 0: off;
  // OpenAI's range is [-2, 2] (negative values favour repeats).
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;
  // Throws InputError naming the bad field.
  void Validate() const;
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& params);

  // Picks the next token from logits [vocab]; `history` is every token so far
  // (prompt and output) for the repetition penalty, its last `n_generated`
  // the output (what the presence and frequency penalties count). `logits`
  // is modified. With a temperature, tokens are drawn from the softmax of
  // logits / temperature (over the top_k largest when top_k is set) cut by
  // top-p and min-p, walking the candidates by probability (descending, ties
  // to the lower id).
  int32_t Sample(std::span<float> logits, std::span<const int32_t> history, size_t n_generated);

 private:
  void ApplyPenalties(std::span<float> logits, std::span<const int32_t> history, size_t n_generated);
  // Fill candidates_ with (probability, id).
  void TopKCandidates(std::span<const float> logits);
  void AllCandidates(std::span<float> logits);
  // Candidate i in walk order, sorting the tail in when the walk reaches it.
  const std::pair<float, int32_t>& Candidate(size_t i);
  int32_t Draw();

  SamplerParams params_;
  std::mt19937_64 rng_;
  // (probability, id) in walk order, reused across calls; after
  // AllCandidates the n_tail_ tokens below tail_floor_ (tail_mass_ of the
  // probability in all) are listed only when a walk reaches them, from probs_
  // (the softmax, in the logits Sample was given).
  std::vector<std::pair<float, int32_t>> candidates_;
  std::span<const float> probs_;
  float tail_floor_ = 0;
  double tail_mass_ = 0;
  size_t n_tail_ = 0;
  std::vector<int32_t> generated_;  // reused: the output, sorted
};

// Index of the largest logit (lowest index on ties).
int32_t ArgMax(std::span<const float> logits);

}  // namespace tokenlora
