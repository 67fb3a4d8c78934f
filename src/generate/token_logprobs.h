// Log-probabilities of a sampled token and the most likely alternatives,
// from the raw logits of its step (before temperature, top-p or penalties,
// as OpenAI's logprobs report the model's distribution). Used by the server
// for `logprobs` / `top_logprobs`.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace tokenlora {

struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0;  // log softmax(logits)[token]
};

struct StepLogprobs {
  TokenLogprob chosen;
  std::vector<TokenLogprob> top;  // the `top_n` most likely, best first (ties: lower id first)
};

// logits: [vocab]. top_n >= 0 (clamped to the vocabulary). Numerically
// stable (max-subtracted log-sum-exp in double).
StepLogprobs ComputeLogprobs(std::span<const float> logits, int32_t token, int top_n);

}  // namespace tokenlora
