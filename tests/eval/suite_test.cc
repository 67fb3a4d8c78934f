// The suite's pure parts: the suite file parser (every field checked, errors
// naming it), the paired bootstrap against an exact enumeration of every
// resample, the claims' verdicts, and the table.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "core/error.h"
#include "eval/bootstrap.h"
#include "eval/claims.h"
#include "eval/suite.h"
#include "eval/suite_report.h"

namespace tokenlora::eval {
namespace {

using nlohmann::json;

json MinimalSuite() {
  return {{"tasks", {{"arc_challenge", {{"data", "arc.jsonl"}}}}},
          {"adapters", {{"arc_challenge", "a"}}},
          {"configurations", {{{"name", "base"}}, {{"name", "own"}, {"mix", {{"arc_challenge", 1}}}}}}};
}

std::string ParseError(const json& j) {
  try {
    ParseSuite(j, "s.json", "/base");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(SuiteParse, MinimalSuiteHasDefaultsAndResolvedPaths) {
  const Suite s = ParseSuite(MinimalSuite(), "dir/mine.json", "/base");
  EXPECT_EQ(s.name, "mine");
  EXPECT_EQ(s.limit, 200);
  ASSERT_EQ(s.tasks.size(), 1u);
  EXPECT_EQ(s.tasks[0].task, EvalTask::kArc);
  EXPECT_EQ(s.tasks[0].data, "arc.jsonl");  // relative to the data folder, resolved by the runner
  ASSERT_EQ(s.adapters.size(), 1u);
  EXPECT_EQ(s.adapters[0].second, "/base/a");
  EXPECT_EQ(s.decodings, std::vector<std::string>{"greedy"});
  ASSERT_EQ(s.configurations.size(), 2u);
  EXPECT_TRUE(s.configurations[0].base());
  EXPECT_FALSE(s.configurations[1].base());
  EXPECT_FALSE(s.claims.has_value());
}

TEST(SuiteParse, EveryBadFieldIsNamed) {
  struct Case {
    std::function<void(json&)> edit;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {[](json& j) { j["colour"] = 1; }, "unknown field 'colour'"},
      {[](json& j) { j.erase("tasks"); }, "no \"tasks\" field"},
      {[](json& j) { j["tasks"] = json::object({{"chess", {{"data", "x"}}}}); }, "chess"},
      {[](json& j) { j["tasks"]["arc_challenge"]["every"] = 0; }, "field 'every'"},
      {[](json& j) { j["tasks"]["arc_challenge"].erase("data"); }, "no \"data\" field"},
      {[](json& j) { j["limit"] = -3; }, "field 'limit'"},
      {[](json& j) { j["configurations"] = json::array(); }, "field 'configurations'"},
      {[](json& j) { j["configurations"][0]["name"] = "a/b"; }, "field 'name'"},
      {[](json& j) { j["configurations"][1]["name"] = "base"; }, "a second configuration named 'base'"},
      {[](json& j) { j["configurations"][1]["mix"]["arc_challenge"] = "1"; }, "mix.arc_challenge"},
      {[](json& j) { j["configurations"][1]["route_every"] = 2; }, "'mix' fixes the weights"},
      {[](json& j) { j["configurations"][0]["route_every"] = 0; }, "field 'route_every'"},
      {[](json& j) { j["configurations"][0]["kv_policy"] = "keep"; }, "'kv_policy' applies to routed"},
      {[](json& j) { j["configurations"][0]["mix_mode"] = "ties"; }, "field 'mix_mode'"},
      {[](json& j) { j["configurations"][0]["retokenize"] = 1; }, "field 'retokenize'"},
      {[](json& j) { j["configurations"][0]["max_total"] = 0; }, "field 'max_total'"},
      {[](json& j) { j["decodings"] = {"beam"}; }, "field 'decodings'"},
      {[](json& j) { j["sampling"] = {{"temperature", 0}}; }, "field 'temperature'"},
      {[](json& j) { j["sampling"] = {{"seeds", {-1}}}; }, "field 'seeds'"},
      {[](json& j) { j["sampling"] = {{"top_k", -1}}; }, "field 'top_k'"},
      {[](json& j) { j["sampling"] = {{"top_k", 2.5}}; }, "field 'top_k'"},
      {[](json& j) { j["sampling"] = {{"top_p", 0}}; }, "field 'top_p'"},
      {[](json& j) { j["sampling"] = {{"top_p", 1.5}}; }, "field 'top_p'"},
      {[](json& j) { j["claims"] = {{"base", "base"}, {"routed", "nope"}, {"own_adapter", json::object()},
                                    {"every_k", {{"1", "own"}}}, {"best_k", 1}}; },
       "names configuration 'nope'"},
      {[](json& j) { j["claims"] = {{"base", "base"}, {"routed", "own"}, {"own_adapter", json::object()},
                                    {"every_k", {{"1", "own"}}}, {"best_k", 2}}; },
       "best_k 2 is not one of the every_k keys"},
      {[](json& j) { j["claims"] = {{"base", "base"}, {"routed", "own"}, {"own_adapter", json::object()},
                                    {"every_k", {{"1", "own"}}}, {"also_routed", "own"}}; },
       "field 'also_routed'"},
      {[](json& j) { j["claims"] = {{"base", "base"}, {"routed", "own"}, {"own_adapter", json::object()},
                                    {"every_k", {{"1", "own"}}}, {"also_routed", {"nope"}}}; },
       "names configuration 'nope'"},
      {[](json& j) { j["claims"] = {{"base", "base"}, {"routed", "own"}, {"own_adapter", json::object()},
                                    {"every_k", {{"1", "own"}}}, {"also_routed", {"base"}}}; },
       "field 'also_routed[0]'"},
  };
  for (const Case& c : cases) {
    json j = MinimalSuite();
    c.edit(j);
    const std::string error = ParseError(j);
    EXPECT_NE(error.find(c.expected), std::string::npos) << j.dump() << "\n -> " << error;
    EXPECT_EQ(error.rfind("s.json", 0), 0u) << error;  // names the file first
  }
}

TEST(SuiteParse, PaperSuiteHasEveryBaselineAndClaims) {
  const Suite s = ParseSuite(PaperSuiteJson(), "paper", "/checkout");
  EXPECT_EQ(s.tasks.size(), 4u);
  EXPECT_EQ(s.decodings, (std::vector<std::string>{"greedy", "sampled"}));
  EXPECT_EQ(s.sampling.seeds.size(), 3u);
  EXPECT_FLOAT_EQ(s.sampling.temperature, 0.9f);
  // The reference's pipeline sampled with Llama-2-7b-hf's generation config
  // (top_p 0.9) and transformers' default top_k 50.
  EXPECT_EQ(s.sampling.top_k, 50);
  EXPECT_FLOAT_EQ(s.sampling.top_p, 0.9f);
  for (const char* name : {"base", "adapter-gsm8k", "adapter-codealpaca", "uniform", "uniform-peft04", "routed-prompt",
                           "routed-k1", "routed-k2", "routed-k3", "routed-k4", "routed-k2-recompute", "routed-k2-peft04",
                           "routed-k2-recompute-peft04", "reference-k2"}) {
    EXPECT_NE(s.Find(name), nullptr) << name;
  }
  const SuiteConfiguration& ref = *s.Find("reference-k2");
  EXPECT_TRUE(ref.retokenize);
  EXPECT_FALSE(ref.stop_at_eos);
  EXPECT_EQ(ref.max_total, 256);
  EXPECT_EQ(ref.mix_mode, "peft04-linear");
  EXPECT_EQ(ref.kv_policy, "recompute");
  EXPECT_EQ(ref.router, "/checkout/adapters/router-arc-train-test.json");
  const SuiteConfiguration& whitened = *s.Find("routed-k2-whitened");
  EXPECT_EQ(whitened.route_every, "2");
  EXPECT_EQ(whitened.kv_policy, "keep");
  EXPECT_EQ(whitened.mix_mode, "exact");
  EXPECT_EQ(whitened.router, "/checkout/adapters/router-whitened.json");
  EXPECT_EQ(whitened.route_policy, "");
  EXPECT_EQ(s.Find("routed-k2-whitened-top1")->route_policy, "top-k");
  EXPECT_EQ(s.Find("routed-k2-whitened-top1")->router, whitened.router);
  float uniform_sum = 0;
  for (const auto& [name, w] : s.Find("uniform")->mix) uniform_sum += w;
  EXPECT_FLOAT_EQ(uniform_sum, 1.0f);
  ASSERT_TRUE(s.claims.has_value());
  EXPECT_EQ(s.claims->routed, "routed-k2");
  EXPECT_EQ(s.claims->every_k.size(), 4u);
  EXPECT_EQ(s.claims->own_adapter.at("squad"), "adapter-squad");
  EXPECT_EQ(s.claims->also_routed, (std::vector<std::string>{"routed-k2-whitened", "routed-k2-whitened-top1"}));
}

TEST(SuiteParse, SelectKeepsNamedConfigurationsAndRefusesUnknownOnes) {
  Suite s = ParseSuite(PaperSuiteJson(), "paper", "");
  SelectFromSuite(s, "routed-k2,base", "greedy");
  ASSERT_EQ(s.configurations.size(), 2u);
  EXPECT_EQ(s.configurations[0].name, "routed-k2");
  EXPECT_EQ(s.decodings, std::vector<std::string>{"greedy"});
  EXPECT_THROW(SelectFromSuite(s, "routed-k9", ""), InputError);
  SelectFromSuite(s, "", "", "squad,gsm8k");
  ASSERT_EQ(s.tasks.size(), 2u);
  EXPECT_EQ(s.tasks[0].task, EvalTask::kSquad);
  EXPECT_THROW(SelectFromSuite(s, "", "", "chess"), InputError);
  SelectFromSuite(s, "", "", "squad");
  EXPECT_THROW(SelectFromSuite(s, "", "", "gsm8k"), InputError);  // no longer in the suite
  EXPECT_THROW(SelectFromSuite(s, "", "beam"), InputError);
}

// The bootstrap distribution of a mean over n items is known exactly by
// enumerating all n^n resamples (each equally likely); the Monte Carlo
// interval must land on the exact percentiles.
TEST(Bootstrap, MatchesExactEnumerationOfEveryResample) {
  const std::vector<double> d = {0.13, -0.4, 0.77, 0.05, -0.21, 0.5};
  const size_t n = d.size();
  std::vector<double> exact;
  std::vector<size_t> idx(n, 0);
  for (;;) {
    double sum = 0;
    for (const size_t i : idx) sum += d[i];
    exact.push_back(sum / static_cast<double>(n));
    size_t pos = 0;
    while (pos < n && ++idx[pos] == n) idx[pos++] = 0;
    if (pos == n) break;
  }
  ASSERT_EQ(exact.size(), 46656u);
  const double lo = Quantile(exact, 0.025), hi = Quantile(exact, 0.975);
  const BootstrapInterval ci = BootstrapMeanOfGroupMeans({d}, 200000, 7);
  EXPECT_NEAR(ci.estimate, (0.13 - 0.4 + 0.77 + 0.05 - 0.21 + 0.5) / 6, 1e-12);
  EXPECT_NEAR(ci.low, lo, 0.01) << "exact " << lo;
  EXPECT_NEAR(ci.high, hi, 0.01) << "exact " << hi;
  // Deterministic for a seed.
  const BootstrapInterval again = BootstrapMeanOfGroupMeans({d}, 200000, 7);
  EXPECT_EQ(ci.low, again.low);
  EXPECT_EQ(ci.high, again.high);
}

TEST(Bootstrap, GroupsCountOnceEachAndConstantDifferencesHaveNoWidth) {
  const BootstrapInterval ci = BootstrapMeanOfGroupMeans({{0.5, 0.5, 0.5}, {0.1}}, 1000, 1);
  EXPECT_DOUBLE_EQ(ci.estimate, 0.3);  // (0.5 + 0.1) / 2, not weighted by items
  EXPECT_DOUBLE_EQ(ci.low, 0.3);
  EXPECT_DOUBLE_EQ(ci.high, 0.3);
}

TEST(Bootstrap, QuantileInterpolatesLikeNumpy) {
  // numpy.quantile([1, 2, 3, 4], [0.25, 0.5, 0.9]) = [1.75, 2.5, 3.7]
  EXPECT_DOUBLE_EQ(Quantile({4, 1, 3, 2}, 0.25), 1.75);
  EXPECT_DOUBLE_EQ(Quantile({4, 1, 3, 2}, 0.5), 2.5);
  EXPECT_NEAR(Quantile({4, 1, 3, 2}, 0.9), 3.7, 1e-12);
  const MeanSd m = MeanAndSd(std::vector<double>{1, 2, 3, 4});
  EXPECT_DOUBLE_EQ(m.mean, 2.5);
  EXPECT_NEAR(m.sd, 1.2909944487358056, 1e-12);  // numpy.std(ddof=1)
}

// Every task's per-item scores of a configuration from `by_config` (read at
// each call, so a test can change the map between evaluations).
ItemScoresFn ScoresOf(const std::map<std::string, std::vector<double>>& by_config) {
  return [&by_config](const std::string& config, EvalTask) -> std::optional<std::vector<double>> {
    const auto it = by_config.find(config);
    if (it == by_config.end()) return std::nullopt;
    return it->second;
  };
}

SuiteClaims TwoTaskClaims() {
  SuiteClaims c;
  c.base = "base";
  c.routed = "k2";
  c.own_adapter = {{"gsm8k", "own-g"}, {"arc_challenge", "own-a"}};
  c.every_k = {{1, "k1"}, {2, "k2"}};
  c.best_k = 2;
  return c;
}

// Sampled scores are means over seeds (thirds), so a resampled statistic that
// is exactly zero can come out 6e-18; found on the 0.5B base's ARC at 200
// items, where it read as "holds" with an interval of [+0.0, +10.5] points.
TEST(Claims, AnIntervalEndingAtZeroUpToRoundingTouchesZero) {
  EXPECT_STREQ(IntervalVerdict({0.053, 5.821731985378226e-18, 0.105}), kNotDistinguishable);
  EXPECT_STREQ(IntervalVerdict({-0.05, -0.1, -5.8e-18}), kNotDistinguishable);
  EXPECT_STREQ(IntervalVerdict({0.05, 1e-4, 0.1}), kHolds);  // +0.01 points is a real lower end
  EXPECT_STREQ(IntervalVerdict({-0.05, -0.1, -1e-4}), kDoesNotHold);
  // The rounding itself: thirds that cancel exactly in exact arithmetic.
  double sum = 0;
  for (int i = 0; i < 3; ++i) sum += (2.0 / 3 - 1.0 / 3) + (1.0 / 3 - 2.0 / 3) + (1.0 - 2.0 / 3) + (0.0 - 1.0 / 3);
  EXPECT_STREQ(IntervalVerdict({sum, sum, sum + 0.1}), kNotDistinguishable) << sum;
}

TEST(Claims, VerdictsFollowTheIntervals) {
  const std::vector<EvalTask> tasks = {EvalTask::kGsm8k, EvalTask::kArc};
  // 40 items per task; routed is right on 30, base on 10, own adapters and
  // k1 on the same items as routed (no difference).
  std::map<std::string, std::vector<double>> by_config;
  for (int i = 0; i < 40; ++i) {
    by_config["k2"].push_back(i < 30 ? 1 : 0);
    by_config["base"].push_back(i < 10 ? 1 : 0);
    by_config["own-g"].push_back(i < 30 ? 1 : 0);
    by_config["own-a"].push_back(i < 30 ? 1 : 0);
    by_config["k1"].push_back(i % 2 == 0 && i < 30 ? 1 : (i >= 30 && i < 32 ? 1 : 0));
  }
  const ItemScoresFn scores = ScoresOf(by_config);
  const std::vector<ClaimReport> r = EvaluateClaims(TwoTaskClaims(), tasks, scores);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].verdict, kHolds);  // +50 points on both tasks
  ASSERT_EQ(r[0].comparisons.size(), 2u);
  EXPECT_NEAR(r[0].comparisons[0].difference.estimate, 0.5, 1e-12);
  EXPECT_EQ(r[1].verdict, kNotDistinguishable);  // identical to the own adapters
  EXPECT_EQ(r[2].verdict, kHolds);               // k2 75% vs k1 40%
  EXPECT_NE(r[2].note.find("k = 2"), std::string::npos) << r[2].note;

  by_config["base"] = std::vector<double>(40, 1.0);  // now the base is always right
  const std::vector<ClaimReport> worse = EvaluateClaims(TwoTaskClaims(), tasks, scores);
  EXPECT_EQ(worse[0].verdict, kDoesNotHold);

  by_config.erase("own-a");
  const std::vector<ClaimReport> missing = EvaluateClaims(TwoTaskClaims(), tasks, scores);
  EXPECT_EQ(missing[1].verdict, kNotRun);
  EXPECT_NE(missing[1].note.find("own-a"), std::string::npos) << missing[1].note;
  EXPECT_NE(ClaimsMarkdown(missing).find("not run"), std::string::npos);
  EXPECT_EQ(ClaimsJson(missing)[0]["verdict"], kDoesNotHold);
}

// Beyond the paper: (a) and (b) again for other routed configurations, after
// the paper's three, named by the configuration.
TEST(Claims, AlsoRoutedConfigurationsGetTheirOwnAAndB) {
  const std::vector<EvalTask> tasks = {EvalTask::kGsm8k, EvalTask::kArc};
  std::map<std::string, std::vector<double>> by_config;
  for (int i = 0; i < 40; ++i) {
    by_config["k2"].push_back(i < 30 ? 1 : 0);
    by_config["k1"].push_back(i < 30 ? 1 : 0);
    by_config["base"].push_back(i < 10 ? 1 : 0);
    by_config["own-g"].push_back(i < 20 ? 1 : 0);
    by_config["own-a"].push_back(i < 20 ? 1 : 0);
    by_config["better"].push_back(i < 38 ? 1 : 0);
  }
  const ItemScoresFn scores = ScoresOf(by_config);
  SuiteClaims c = TwoTaskClaims();
  c.also_routed = {"better", "absent"};
  const std::vector<ClaimReport> r = EvaluateClaims(c, tasks, scores);
  ASSERT_EQ(r.size(), 7u);
  EXPECT_EQ(r[0].id, "a");
  EXPECT_EQ(r[2].id, "c");
  EXPECT_EQ(r[3].id, "a, better");
  EXPECT_EQ(r[3].verdict, kHolds);
  EXPECT_NE(r[3].statement.find("(better)"), std::string::npos) << r[3].statement;
  EXPECT_EQ(r[4].id, "b, better");
  EXPECT_EQ(r[4].verdict, kHolds);  // 95% against the own adapters' 50%
  EXPECT_NEAR(r[4].comparisons[0].difference.estimate, 0.45, 1e-12);
  EXPECT_EQ(r[5].verdict, kNotRun);
  EXPECT_EQ(r[6].verdict, kNotRun);
  EXPECT_NE(ClaimsMarkdown(r).find("**(b, better) the mean over the tasks of token-level routing (better)"),
            std::string::npos);
  EXPECT_EQ(ClaimsJson(r)[4]["claim"], "b, better");
}

TEST(SuiteReport, TableShowsScoresSampledSpreadAndMissingRuns) {
  SuiteTable t;
  t.suite = "s";
  t.model = "m.gguf";
  t.tasks = {EvalTask::kGsm8k, EvalTask::kArc};
  t.configurations = {"base", "routed"};
  t.decodings = {"greedy", "sampled"};
  t.seeds = {1, 2};
  t.runs[SuiteTable::RunKey("base", EvalTask::kGsm8k, "greedy")].scores = {1, 0, 0, 0};
  t.runs[SuiteTable::RunKey("base", EvalTask::kArc, "greedy")].scores = {1, 1, 0, 0};
  t.runs[SuiteTable::RunKey("routed", EvalTask::kGsm8k, "seed1")].scores = {1, 1, 0, 0};
  t.runs[SuiteTable::RunKey("routed", EvalTask::kGsm8k, "seed2")].scores = {1, 0, 0, 0};
  SuiteRunResult& r = t.runs[SuiteTable::RunKey("routed", EvalTask::kArc, "seed1")];
  r.scores = {1, 1};
  r.tasks = {"gsm8k", "arc_challenge"};
  r.top_task = {"arc_challenge", "gsm8k"};
  t.runs[SuiteTable::RunKey("routed", EvalTask::kArc, "seed2")].scores = {1, 0};

  const std::string greedy = TableMarkdown(t, "greedy");
  EXPECT_NE(greedy.find("| base | 25.0 | 50.0 | 37.5 |"), std::string::npos) << greedy;
  EXPECT_NE(greedy.find("| routed | - | - | - |"), std::string::npos) << greedy;
  EXPECT_NE(greedy.find("A dash: not every item"), std::string::npos) << greedy;
  const std::string sampled = TableMarkdown(t, "sampled");
  // gsm8k seeds 50% and 25%: mean 37.5, sd 17.7; arc 100% and 50%.
  EXPECT_NE(sampled.find("| routed | 37.5 ± 17.7 | 75.0 ± 35.4 | 56.2 ± 26.5 |"), std::string::npos) << sampled;
  const auto items = t.ItemScores("routed", EvalTask::kGsm8k, "sampled");
  ASSERT_TRUE(items.has_value());
  EXPECT_EQ(*items, (std::vector<double>{1, 0.5, 0, 0}));
  const std::string confusion = ConfusionMarkdown(t, "sampled");
  EXPECT_NE(confusion.find("| arc_challenge | 1 | 1 | 50.0% |"), std::string::npos) << confusion;
  const std::string svg = ChartSvg(t, "sampled", {});
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("routed: 37.5%"), std::string::npos);
  const json j = SuiteJson(t, {});
  EXPECT_DOUBLE_EQ(j["greedy"]["rows"][0]["mean"]["score"].get<double>(), 0.375);
  EXPECT_TRUE(j["greedy"]["rows"][1]["gsm8k"].is_null());
  EXPECT_EQ(j["sampled"]["rows"][1]["router_confusion"]["arc_challenge"]["gsm8k"], 1);

  t.configurations = {"base"};  // every cell present: no note about dashes
  const std::string full = TableMarkdown(t, "greedy");
  EXPECT_EQ(full.find("A dash"), std::string::npos) << full;
}

}  // namespace
}  // namespace tokenlora::eval
