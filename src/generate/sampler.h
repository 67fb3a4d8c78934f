// Token sampling: greedy, temperature, top-k, top-p, min-p, repetition
// penalty; a seeded RNG makes runs reproducible (same seed -> same text).
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
  uint64_t seed = 0;
  // Throws InputError naming the bad field.
  void Validate() const;
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& params);

  // Picks the next token from logits [vocab]; `history` is every token so far
  // (prompt and output) for the repetition penalty. `logits` is modified.
  int32_t Sample(std::span<float> logits, std::span<const int32_t> history);

 private:
  SamplerParams params_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;  // reused across calls
};

// Index of the largest logit (lowest index on ties).
int32_t ArgMax(std::span<const float> logits);

}  // namespace tokenlora
