#include "generate/token_logprobs.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace tokenlora {

StepLogprobs ComputeLogprobs(std::span<const float> logits, int32_t token, int top_n) {
  TL_CHECK(!logits.empty());
  TL_CHECK(token >= 0 && static_cast<size_t>(token) < logits.size());
  const float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - max);
  const double lse = static_cast<double>(max) + std::log(sum);
  StepLogprobs out;
  out.chosen = {token, static_cast<float>(static_cast<double>(logits[static_cast<size_t>(token)]) - lse)};
  const size_t k = std::min(static_cast<size_t>(std::max(top_n, 0)), logits.size());
  if (k == 0) return out;
  std::vector<int32_t> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(), [&](int32_t a, int32_t b) {
    const float la = logits[static_cast<size_t>(a)], lb = logits[static_cast<size_t>(b)];
    return la > lb || (la == lb && a < b);
  });
  for (size_t i = 0; i < k; ++i) {
    out.top.push_back({ids[i], static_cast<float>(static_cast<double>(logits[static_cast<size_t>(ids[i])]) - lse)});
  }
  return out;
}

}  // namespace tokenlora
