#include "generate/token_logprobs.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace tokenlora {
namespace {

TEST(TokenLogprobs, MatchesLogSoftmax) {
  const std::vector<float> logits = {1.0f, 3.0f, -2.0f, 3.0f, 0.5f};
  double z = 0;
  for (float v : logits) z += std::exp(static_cast<double>(v));
  const StepLogprobs lp = ComputeLogprobs(logits, 4, 3);
  EXPECT_EQ(lp.chosen.token, 4);
  EXPECT_NEAR(lp.chosen.logprob, 0.5 - std::log(z), 1e-6);
  ASSERT_EQ(lp.top.size(), 3u);
  EXPECT_EQ(lp.top[0].token, 1);  // tie with 3: lower id first
  EXPECT_EQ(lp.top[1].token, 3);
  EXPECT_EQ(lp.top[2].token, 0);
  EXPECT_NEAR(lp.top[0].logprob, 3.0 - std::log(z), 1e-6);
  double total = 0;
  for (int t = 0; t < 5; ++t) total += std::exp(ComputeLogprobs(logits, t, 0).chosen.logprob);
  EXPECT_NEAR(total, 1.0, 1e-6);
}

TEST(TokenLogprobs, StableForHugeLogitsAndClampsTopN) {
  const std::vector<float> logits = {1000.0f, 999.0f};
  const StepLogprobs lp = ComputeLogprobs(logits, 1, 10);
  EXPECT_TRUE(std::isfinite(lp.chosen.logprob));
  EXPECT_NEAR(lp.chosen.logprob, -1.0 - std::log1p(std::exp(-1.0)), 1e-5);
  EXPECT_EQ(lp.top.size(), 2u);
  EXPECT_TRUE(ComputeLogprobs(logits, 0, 0).top.empty());
}

}  // namespace
}  // namespace tokenlora
