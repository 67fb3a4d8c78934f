#include "generate/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "core/error.h"

namespace tokenlora {
namespace {

std::vector<float> Logits() { return {1.0f, 3.0f, 2.5f, -1.0f, 0.0f, 2.9f}; }

TEST(Sampler, GreedyIsArgMax) {
  Sampler s({});
  auto l = Logits();
  EXPECT_EQ(s.Sample(l, {}, 0), 1);
}

TEST(Sampler, SameSeedSameTokens) {
  SamplerParams p;
  p.temperature = 1.0f;
  p.seed = 42;
  Sampler a(p), b(p);
  std::vector<int32_t> ta, tb;
  for (int i = 0; i < 200; ++i) {
    auto l1 = Logits(), l2 = Logits();
    ta.push_back(a.Sample(l1, {}, 0));
    tb.push_back(b.Sample(l2, {}, 0));
  }
  EXPECT_EQ(ta, tb);
  p.seed = 43;
  Sampler c(p);
  std::vector<int32_t> tc;
  for (int i = 0; i < 200; ++i) {
    auto l = Logits();
    tc.push_back(c.Sample(l, {}, 0));
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
    ++counts[s.Sample(l, {}, 0)];
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
      EXPECT_EQ(s.Sample(l, {}, 0), 1) << "mode " << mode;
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
    const int32_t t = s.Sample(l, {}, 0);
    EXPECT_TRUE(t == 1 || t == 5 || t == 2) << t;
  }
}

// Top-k over a vocabulary the size of Qwen's: the kept set is exactly the k
// largest logits with ties at the boundary going to the lower ids (against a
// full sort), and at a high temperature every one of them is drawn.
TEST(Sampler, TopKKeepsTheLargestLogitsTiesToTheLowerId) {
  const size_t vocab = 151936;
  for (const uint32_t levels : {2000u, 20000u}) {  // ~76 / ~8 tokens per logit value
    std::mt19937 rng(7);
    std::vector<float> base(vocab);
    for (float& v : base) v = static_cast<float>(rng() % levels) * 0.001f;
    std::vector<int32_t> order(vocab);
    for (size_t i = 0; i < vocab; ++i) order[i] = static_cast<int32_t>(i);
    auto logit = [&](int32_t id) { return base[static_cast<size_t>(id)]; };
    std::sort(order.begin(), order.end(),
              [&](int32_t a, int32_t b) { return logit(a) > logit(b) || (logit(a) == logit(b) && a < b); });
    for (const size_t k : {size_t{1}, size_t{7}, size_t{50}}) {
      const std::set<int32_t> want(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k));
      if (levels == 2000u) {
        ASSERT_EQ(logit(order[k - 1]), logit(order[k])) << "the boundary is inside a tie";
      }
      SamplerParams p;
      p.temperature = 1e4f;
      p.top_k = static_cast<int>(k);
      p.seed = 5;
      Sampler s(p);
      std::set<int32_t> drawn;
      for (size_t i = 0; i < 40 * k; ++i) {
        std::vector<float> l = base;
        const int32_t t = s.Sample(l, {}, 0);
        ASSERT_TRUE(want.count(t)) << "levels " << levels << ", k " << k << ": token " << t
                                   << " is not among the k largest";
        drawn.insert(t);
      }
      EXPECT_EQ(drawn, want) << "levels " << levels << ", k " << k;
    }
  }
}

TEST(Sampler, RepetitionPenaltyDemotesSeenTokens) {
  SamplerParams p;
  p.repeat_penalty = 2.0f;
  Sampler s(p);
  auto l = Logits();
  const std::vector<int32_t> history = {1};
  EXPECT_EQ(s.Sample(l, history, 0), 5);  // 3.0 / 2 = 1.5 < 2.9
  EXPECT_FLOAT_EQ(l[1], 1.5f);
}

// The distribution each setting should sample from, computed independently
// of the sampler: the penalty on the raw logits, softmax(l / T) over the
// vocabulary, then top-k, top-p (the smallest prefix by probability whose
// mass reaches top_p, as transformers and llama.cpp keep) and min-p
// (p >= min_p · p_max) on the renormalised survivors.
std::vector<double> ExpectedDistribution(std::vector<float> l, const SamplerParams& p,
                                         const std::vector<int32_t>& history) {
  for (size_t i = 0; i < l.size(); ++i) {
    if (std::find(history.begin(), history.end(), static_cast<int32_t>(i)) == history.end()) continue;
    l[i] = l[i] > 0 ? l[i] / p.repeat_penalty : l[i] * p.repeat_penalty;
  }
  const size_t n = l.size();
  std::vector<double> prob(n);
  double z = 0;
  for (size_t i = 0; i < n; ++i) z += prob[i] = std::exp(static_cast<double>(l[i]) / p.temperature);
  for (double& q : prob) q /= z;
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return prob[a] > prob[b]; });
  std::vector<bool> kept(n, false);
  const size_t k = p.top_k > 0 ? std::min(n, static_cast<size_t>(p.top_k)) : n;
  double mass = 0;
  for (size_t r = 0; r < k; ++r) mass += prob[order[r]];
  double cum = 0;
  for (size_t r = 0; r < k; ++r) {
    kept[order[r]] = true;
    cum += prob[order[r]] / mass;
    if (cum >= p.top_p) break;
  }
  const double p_max = prob[order[0]];
  double total = 0;
  for (size_t i = 0; i < n; ++i) {
    if (kept[i] && prob[i] < p.min_p * p_max) kept[i] = false;
    if (kept[i]) total += prob[i];
  }
  std::vector<double> out(n, 0.0);
  for (size_t i = 0; i < n; ++i) out[i] = kept[i] ? prob[i] / total : 0.0;
  return out;
}

// Each knob against the independent distribution: frequencies within 5
// binomial sigma, and tokens the distribution excludes never drawn. The
// settings sit where a sampler that ignored the knob, or cut one token too
// many or too few, would fail (e.g. top-p 0.8 keeps exactly 3 tokens at T=1).
TEST(Sampler, EveryKnobMatchesAnIndependentDistribution) {
  struct Case {
    const char* name;
    SamplerParams p;
    std::vector<int32_t> history;
  };
  auto params = [](float t, int k, float top_p, float min_p, float penalty) {
    SamplerParams p;
    p.temperature = t;
    p.top_k = k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.repeat_penalty = penalty;
    p.seed = 11;
    return p;
  };
  const std::vector<Case> cases = {
      {"T=1", params(1.0f, 0, 1.0f, 0.0f, 1.0f), {}},
      {"T=0.5", params(0.5f, 0, 1.0f, 0.0f, 1.0f), {}},
      {"T=2.5", params(2.5f, 0, 1.0f, 0.0f, 1.0f), {}},
      {"top-k 3", params(1.0f, 3, 1.0f, 0.0f, 1.0f), {}},
      {"top-p 0.8", params(1.0f, 0, 0.8f, 0.0f, 1.0f), {}},
      {"top-p 0.95", params(1.0f, 0, 0.95f, 0.0f, 1.0f), {}},
      {"top-p 0.5 T=2", params(2.0f, 0, 0.5f, 0.0f, 1.0f), {}},
      {"min-p 0.5", params(1.0f, 0, 1.0f, 0.5f, 1.0f), {}},
      {"min-p 0.1 T=2", params(2.0f, 0, 1.0f, 0.1f, 1.0f), {}},
      {"penalty on positive and negative", params(1.0f, 0, 1.0f, 0.0f, 1.5f), {1, 3, 4}},
      {"all together", params(1.5f, 4, 0.9f, 0.05f, 1.3f), {2, 3}},
  };
  const int n = 40000;
  for (const Case& c : cases) {
    const std::vector<double> want = ExpectedDistribution(Logits(), c.p, c.history);
    Sampler s(c.p);
    std::vector<int> counts(want.size(), 0);
    for (int i = 0; i < n; ++i) {
      auto l = Logits();
      ++counts[static_cast<size_t>(s.Sample(l, c.history, 0))];
    }
    for (size_t t = 0; t < want.size(); ++t) {
      const double got = counts[t] / static_cast<double>(n);
      if (want[t] == 0) {
        EXPECT_EQ(counts[t], 0) << c.name << ": token " << t << " is outside the distribution";
        continue;
      }
      const double sigma = std::sqrt(want[t] * (1 - want[t]) / n);
      EXPECT_NEAR(got, want[t], 5 * sigma + 1e-9) << c.name << ": token " << t;
    }
  }
}

// A vocabulary-sized softmax sorts only the head of the distribution
// (probabilities >= 2^-24 of the top one); a draw that lands in the rest (here
// 65,535 tokens at e^-16.7 = 5.6e-8 of the top one, together 0.37% of the
// mass) must still come out at that rate.
TEST(Sampler, DrawsReachTheUnsortedTail) {
  SamplerParams p;
  p.temperature = 1.0f;
  p.seed = 5;
  Sampler s(p);
  const int vocab = 65536;
  std::vector<float> base(static_cast<size_t>(vocab), -16.7f);
  base[0] = 0.0f;
  const double e = std::exp(-16.7), tail_mass = (vocab - 1) * e / (1 + (vocab - 1) * e);
  const int n = 4000;
  int tail = 0;
  for (int i = 0; i < n; ++i) {
    auto l = base;
    const int32_t t = s.Sample(l, {}, 0);
    ASSERT_GE(t, 0);
    ASSERT_LT(t, vocab);
    tail += t != 0;
  }
  const double sigma = std::sqrt(tail_mass * (1 - tail_mass) / n);
  EXPECT_NEAR(tail / static_cast<double>(n), tail_mass, 5 * sigma);
  EXPECT_GT(tail, 0);
}

// The repetition penalty divides a positive logit and multiplies a negative
// one (as llama.cpp and transformers), and touches only the last n tokens.
TEST(Sampler, RepetitionPenaltySignsAndWindow) {
  SamplerParams p;
  p.repeat_penalty = 2.0f;
  p.repeat_last_n = 2;
  Sampler s(p);
  auto l = Logits();
  const std::vector<int32_t> history = {0, 3, 1};  // 0 is outside the window
  s.Sample(l, history, 0);
  EXPECT_FLOAT_EQ(l[0], 1.0f);
  EXPECT_FLOAT_EQ(l[1], 1.5f);
  EXPECT_FLOAT_EQ(l[3], -2.0f);
}

// OpenAI's penalties: logit -= count·frequency + (count > 0)·presence, over
// the generated tokens only (the prompt is not counted).
TEST(Sampler, PresenceAndFrequencyPenaltiesCountGeneratedTokens) {
  SamplerParams p;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  Sampler s(p);
  auto l = Logits();
  // Prompt {2, 2}; generated {1, 1, 1, 3, 5}.
  const std::vector<int32_t> history = {2, 2, 1, 1, 1, 3, 5};
  s.Sample(l, history, 5);
  EXPECT_FLOAT_EQ(l[0], 1.0f);                       // never seen
  EXPECT_FLOAT_EQ(l[1], 3.0f - 3 * 0.25f - 0.5f);    // three times
  EXPECT_FLOAT_EQ(l[2], 2.5f);                       // prompt only: not counted
  EXPECT_FLOAT_EQ(l[3], -1.0f - 0.25f - 0.5f);       // once
  EXPECT_FLOAT_EQ(l[5], 2.9f - 0.25f - 0.5f);
  // Greedy picks from the penalised logits: 2 (2.5) beats 1 (1.75) and 5 (2.15).
  auto g = Logits();
  EXPECT_EQ(s.Sample(g, history, 5), 2);
  // Nothing generated: nothing changes.
  auto u = Logits();
  s.Sample(u, history, 0);
  EXPECT_EQ(u, Logits());
}

TEST(Sampler, NegativePenaltiesFavourRepeats) {
  SamplerParams p;
  p.frequency_penalty = -2.0f;
  Sampler s(p);
  auto l = Logits();
  const std::vector<int32_t> history = {4, 4};
  EXPECT_EQ(s.Sample(l, history, 2), 4);  // 0 + 2·2 > 3
}

TEST(Sampler, BadParamsAreInputErrors) {
  for (float bad : {-2.5f, 2.01f, std::nanf("")}) {
    SamplerParams p;
    p.presence_penalty = bad;
    EXPECT_THROW(Sampler{p}, InputError);
    p = {};
    p.frequency_penalty = bad;
    EXPECT_THROW(Sampler{p}, InputError);
  }
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
