#include "generate/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "core/error.h"

namespace tokenlora {
namespace {

std::vector<float> Logits() { return {1.0f, 3.0f, 2.5f, -1.0f, 0.0f, 2.9f}; }

TEST(Sampler, GreedyIsArgMax) {
  Sampler s({});
  auto l = Logits();
  EXPECT_EQ(s.Sample(l, {}), 1);
}

TEST(Sampler, SameSeedSameTokens) {
  SamplerParams p;
  p.temperature = 1.0f;
  p.seed = 42;
  Sampler a(p), b(p);
  std::vector<int32_t> ta, tb;
  for (int i = 0; i < 200; ++i) {
    auto l1 = Logits(), l2 = Logits();
    ta.push_back(a.Sample(l1, {}));
    tb.push_back(b.Sample(l2, {}));
  }
  EXPECT_EQ(ta, tb);
  p.seed = 43;
  Sampler c(p);
  std::vector<int32_t> tc;
  for (int i = 0; i < 200; ++i) {
    auto l = Logits();
    tc.push_back(c.Sample(l, {}));
  }
  EXPECT_NE(ta, tc);
}

TEST(Sampler, FrequenciesFollowSoftmax) {
  SamplerParams p;
  p.temperature = 1.0f;
  p.seed = 7;
  Sampler s(p);
  const std::vector<float> base = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  std::map<int32_t, int> counts;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    auto l = base;
    ++counts[s.Sample(l, {})];
  }
  // Binomial standard deviation at n=20000 is <= 0.0036; allow 4 sigma.
  EXPECT_NEAR(counts[0] / double(n), 0.5, 0.015);
  EXPECT_NEAR(counts[1] / double(n), 0.3, 0.015);
  EXPECT_NEAR(counts[2] / double(n), 0.2, 0.015);
}

TEST(Sampler, TopKOneTopPTinyMinPOneAreGreedy) {
  for (int mode = 0; mode < 3; ++mode) {
    SamplerParams p;
    p.temperature = 5.0f;
    p.seed = 1;
    if (mode == 0) p.top_k = 1;
    if (mode == 1) p.top_p = 1e-6f;
    if (mode == 2) p.min_p = 1.0f;
    Sampler s(p);
    for (int i = 0; i < 50; ++i) {
      auto l = Logits();
      EXPECT_EQ(s.Sample(l, {}), 1) << "mode " << mode;
    }
  }
}

TEST(Sampler, TopKLimitsCandidates) {
  SamplerParams p;
  p.temperature = 100.0f;  // nearly uniform
  p.top_k = 3;
  p.seed = 3;
  Sampler s(p);
  for (int i = 0; i < 500; ++i) {
    auto l = Logits();
    const int32_t t = s.Sample(l, {});
    EXPECT_TRUE(t == 1 || t == 5 || t == 2) << t;
  }
}

TEST(Sampler, RepetitionPenaltyDemotesSeenTokens) {
  SamplerParams p;
  p.repeat_penalty = 2.0f;
  Sampler s(p);
  auto l = Logits();
  const std::vector<int32_t> history = {1};
  EXPECT_EQ(s.Sample(l, history), 5);  // 3.0 / 2 = 1.5 < 2.9
  EXPECT_FLOAT_EQ(l[1], 1.5f);
}

TEST(Sampler, BadParamsAreInputErrors) {
  SamplerParams p;
  p.top_p = 0.0f;
  EXPECT_THROW(Sampler{p}, InputError);
  p = {};
  p.temperature = -1;
  EXPECT_THROW(Sampler{p}, InputError);
  p = {};
  p.min_p = 2;
  EXPECT_THROW(Sampler{p}, InputError);
}

}  // namespace
}  // namespace tokenlora
