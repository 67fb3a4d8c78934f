// Token-level routing on tiny models: the tiny Llama with three random
// adapters, routed by a router over the tiny BERT. Every generated token is
// checked against an independent recomputation: a fresh forward pass (or a
// step-by-step one) under the weights the trace says the token was made
// with, and the router's own answer for the text of that step.
#include "generate/token_routing.h"

// GCC 12 with -fsanitize=address reports -Wmaybe-uninitialized inside
// libstdc++'s std::regex (std::function members of its NFA states): a false
// positive in the system header, which the Release build does not report.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/error.h"
#include "generate/routing_trace.h"
#include "lora/adapter_bank.h"
#include "lora/lora_test_util.h"
#include "router/tiny_bert.h"
#include "routing_test_util.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace tokenlora {
namespace {

const std::vector<std::string> kTasks = {"math", "science", "code"};
const std::string kPromptText = "the cat";

int ArgMax(const float* v, int n) { return static_cast<int>(std::max_element(v, v + n) - v); }

class TokenRoutingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir();
    model_ = Model::Load(testing::WriteTinyLlamaSafetensors(dir_));
    bank_ = testing::RandomTaskAdapters(*model_, kTasks);
    // 64 pieces: the window keeps growing through the whole generation.
    embedder_dir_ = testing::WriteTinyBert(testing::TinyBert(64, 64));
    embedder_ = Embedder::Load(embedder_dir_, 1);
    file_ = MakeRouterFile(*embedder_);
  }
  void TearDown() override {
    std::filesystem::remove_all(dir_);
    std::filesystem::remove_all(embedder_dir_);
  }

  // Centroids placed so the weights move as the output grows: "math" sits on
  // the prompt, "science" on the prompt followed by unknown pieces (what the
  // tiny model's stray bytes embed as), "code" elsewhere.
  static RouterFile MakeRouterFile(Embedder& e) {
    return testing::RouterFileFromTexts(
        e, kTasks, {kPromptText, kPromptText + " ? ? ? ? ? ? ? ? ? ? ? ?", "mat mat on mat"});
  }
  RoutingPolicy SharpSoftmax() const { return RoutingPolicy::Make("softmax", 0.05f, 1, "", kTasks); }

  struct Run {
    GenerateResult result;
    std::vector<RoutingTraceStep> trace;
    RoutingStats stats;
  };
  Run Generate(int route_every, KvPolicy kv, int n_new, MixMode mode = MixMode::kExact) {
    Router router(file_, "router.json", *embedder_, SharpSoftmax(), RouteWindow{});
    LoraMixer mixer(*bank_, MixerOptions{mode});
    TokenRouting routing(router, *bank_, kPromptText, {route_every, kv});
    ThreadPool pool(2);
    Generator g(*model_, pool);
    GenerateOptions o;
    o.max_new_tokens = n_new;
    o.stop_at_eos = false;
    Run run;
    run.result = g.Generate(testing::LoraPromptIds(), o, {}, &mixer, &routing);
    run.trace = routing.trace();
    run.stats = routing.stats();
    return run;
  }
  // The mixer row (by bank slot) for weights in router task order.
  std::vector<float> SlotRow(const std::vector<float>& task_weights) const {
    std::vector<float> row(kTasks.size(), 0.0f);
    for (size_t t = 0; t < kTasks.size(); ++t) row[static_cast<size_t>(bank_->Require(kTasks[t]))] = task_weights[t];
    return row;
  }
  std::string Decoded(const std::vector<int32_t>& ids, size_t n) const {
    StreamingDecoder d(model_->tokenizer());
    std::string s;
    for (size_t i = 0; i < n; ++i) s += d.Push(ids[i]);
    return s;
  }

  std::string dir_, embedder_dir_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<AdapterBank> bank_;
  std::unique_ptr<Embedder> embedder_;
  RouterFile file_;
};

// The weights must actually move, or the tests below would prove little.
void ExpectWeightsMove(const std::vector<RoutingTraceStep>& trace) {
  float spread = 0;
  for (const RoutingTraceStep& s : trace) {
    for (size_t t = 0; t < s.weights.size(); ++t) {
      spread = std::max(spread, std::fabs(s.weights[t] - trace.front().weights[t]));
    }
  }
  EXPECT_GT(spread, 1e-3f) << "the test router's weights hardly change; the test is too weak";
}

TEST_F(TokenRoutingTest, RecomputeEqualsAFreshForwardUnderEachStepsWeights) {
  const Run run = Generate(/*route_every=*/1, KvPolicy::kRecompute, 12);
  ASSERT_EQ(run.trace.size(), 12u);
  ExpectWeightsMove(run.trace);
  EXPECT_GT(run.result.recomputed_tokens, 0);
  ThreadPool pool(1);
  const int vocab = model_->config().vocab_size;
  std::vector<int32_t> text = testing::LoraPromptIds();
  for (size_t t = 0; t < run.trace.size(); ++t) {
    LoraMixer fresh(*bank_);
    fresh.SetTokenWeights(SlotRow(run.trace[t].weights), 1, static_cast<int>(kTasks.size()));
    const std::vector<float> logits = testing::RunLogits(*model_, text, &fresh, pool);
    EXPECT_EQ(ArgMax(logits.data() + (text.size() - 1) * static_cast<size_t>(vocab), vocab),
              run.result.output_ids[t])
        << "step " << t;
    text.push_back(run.result.output_ids[t]);
  }
}

TEST_F(TokenRoutingTest, KeepEqualsAStepByStepForwardUnderEachStepsWeights) {
  const Run run = Generate(/*route_every=*/2, KvPolicy::kKeep, 12);
  ExpectWeightsMove(run.trace);
  EXPECT_EQ(run.result.recomputed_tokens, 0);
  ThreadPool pool(1);
  const LlamaConfig& c = model_->config();
  KvCache kv(c, 64);
  LlamaForward forward(*model_, 64);
  LoraMixer mixer(*bank_);
  std::vector<float> logits(static_cast<size_t>(c.vocab_size));
  const std::vector<int32_t> prompt = testing::LoraPromptIds();
  for (size_t t = 0; t < run.trace.size(); ++t) {
    mixer.SetTokenWeights(SlotRow(run.trace[t].weights), 1, static_cast<int>(kTasks.size()));
    if (t == 0) {
      forward.Run(prompt, kv, ForwardContext{&pool, &mixer}, logits.data(), false);
    } else {
      const int32_t one[1] = {run.result.output_ids[t - 1]};
      forward.Run(one, kv, ForwardContext{&pool, &mixer}, logits.data(), false);
    }
    EXPECT_EQ(ArgMax(logits.data(), c.vocab_size), run.result.output_ids[t]) << "step " << t;
  }
}

TEST_F(TokenRoutingTest, RoutesEveryKOnTheRunningText) {
  const int k = 3;
  const Run run = Generate(k, KvPolicy::kKeep, 10);
  ASSERT_EQ(run.trace.size(), 10u);
  EXPECT_EQ(run.stats.route_calls, 4);  // steps 0, 3, 6, 9
  // An independent router (fresh embedder state) on the text of each routing step.
  auto embedder = Embedder::Load(embedder_dir_, 1);
  Router reference(file_, "router.json", *embedder, SharpSoftmax(), RouteWindow{});
  for (size_t t = 0; t < run.trace.size(); ++t) {
    const size_t routed_at = t - t % k;
    EXPECT_EQ(run.trace[t].rerouted, t % k == 0) << "step " << t;
    const auto want = reference.Route(kPromptText + Decoded(run.result.output_ids, routed_at)).weights;
    ASSERT_EQ(run.trace[t].weights.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(run.trace[t].weights[i], want[i], 1e-6) << "step " << t;
  }
}

// routing.adapters: the policy weighs the subset's similarities alone; the
// other tasks weigh 0 and their adapters are never weighed.
TEST_F(TokenRoutingTest, RoutesAmongASubsetOfTasks) {
  Router router(file_, "router.json", *embedder_, SharpSoftmax(), RouteWindow{});
  TokenRoutingOptions options{1, KvPolicy::kKeep};
  options.only_tasks = {"code", "math"};  // any order; task order inside
  TokenRouting routing(router, *bank_, kPromptText, options);
  EXPECT_EQ(routing.possible_slots(),
            (uint64_t{1} << bank_->Require("math")) | (uint64_t{1} << bank_->Require("code")));
  LoraMixer mixer(*bank_);
  ThreadPool pool(2);
  Generator g(*model_, pool);
  GenerateOptions o;
  o.max_new_tokens = 6;
  o.stop_at_eos = false;
  const GenerateResult r = g.Generate(testing::LoraPromptIds(), o, {}, &mixer, &routing);
  auto embedder = Embedder::Load(embedder_dir_, 1);
  Router reference(file_, "router.json", *embedder, SharpSoftmax(), RouteWindow{});
  ASSERT_EQ(routing.trace().size(), 6u);
  for (size_t t = 0; t < routing.trace().size(); ++t) {
    const std::vector<float> sims = reference.Route(kPromptText + Decoded(r.output_ids, t)).similarities;
    const std::vector<float> want = SharpSoftmax().Weights(std::vector<float>{sims[0], sims[2]});
    const std::vector<float>& got = routing.trace()[t].weights;
    EXPECT_NEAR(got[0], want[0], 1e-6) << "step " << t;
    EXPECT_EQ(got[1], 0.0f) << "step " << t;
    EXPECT_NEAR(got[2], want[1], 1e-6) << "step " << t;
  }
  for (const std::vector<std::string>& bad : {std::vector<std::string>{"poetry"}, {"math", "math"}}) {
    TokenRoutingOptions b;
    b.only_tasks = bad;
    EXPECT_THROW(TokenRouting(router, *bank_, kPromptText, b), InputError);
  }
}

TEST_F(TokenRoutingTest, RoutingOnceOnThePromptEqualsFixedWeights) {
  for (const MixMode mode : {MixMode::kExact, MixMode::kPeft04Linear}) {
    const Run routed = Generate(/*route_every=*/0, KvPolicy::kKeep, 12, mode);
    EXPECT_EQ(routed.stats.route_calls, 1);
    for (const RoutingTraceStep& s : routed.trace) EXPECT_EQ(s.weights, routed.trace.front().weights);
    // The same generation with the prompt's weights fixed, no router.
    LoraMixer mixer(*bank_, MixerOptions{mode});
    mixer.SetTokenWeights(SlotRow(routed.trace.front().weights), 1, static_cast<int>(kTasks.size()));
    ThreadPool pool(2);
    Generator g(*model_, pool);
    GenerateOptions o;
    o.max_new_tokens = 12;
    o.stop_at_eos = false;
    const GenerateResult fixed = g.Generate(testing::LoraPromptIds(), o, {}, &mixer);
    EXPECT_EQ(routed.result.output_ids, fixed.output_ids) << MixModeName(mode);
  }
}

TEST_F(TokenRoutingTest, AdapterNamesMustMatchTheRoutersTasks) {
  Router router(file_, "router.json", *embedder_, SharpSoftmax(), RouteWindow{});
  AdapterBank partial(*model_);
  partial.Add(testing::RandomAdapter(model_->config(), "math", 4, 8.0f, {ModuleKind::kQ}, 1));
  partial.Add(testing::RandomAdapter(model_->config(), "poetry", 4, 8.0f, {ModuleKind::kQ}, 2));
  LoraMixer mixer(partial);
  try {
    TokenRouting routing(router, partial, kPromptText, {});
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("no adapter for task(s): science, code"), std::string::npos) << what;
    EXPECT_NE(what.find("poetry"), std::string::npos) << what;
    EXPECT_NE(what.find("--adapter"), std::string::npos) << what;
  }
}

TEST_F(TokenRoutingTest, StopsAtTheTotalTokenLimit) {
  ThreadPool pool(1);
  Generator g(*model_, pool);
  GenerateOptions o;
  o.max_new_tokens = 100;
  o.stop_at_eos = false;
  const int prompt = static_cast<int>(testing::LoraPromptIds().size());
  o.max_total_tokens = prompt + 5;
  const GenerateResult r = g.Generate(testing::LoraPromptIds(), o);
  EXPECT_EQ(r.output_ids.size(), 5u);
  EXPECT_EQ(r.stop_reason, "length");
  o.max_total_tokens = prompt;
  EXPECT_THROW(g.Generate(testing::LoraPromptIds(), o), InputError);
}

TEST(TokenRoutingFlags, ParseRouteEveryAndKvPolicy) {
  EXPECT_EQ(ParseRouteEvery("1"), 1);
  EXPECT_EQ(ParseRouteEvery("4"), 4);
  EXPECT_EQ(ParseRouteEvery("prompt"), 0);
  for (const char* bad : {"0", "-2", "two", "2x", ""}) {
    try {
      ParseRouteEvery(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("--route-every"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(ParseKvPolicy("keep"), KvPolicy::kKeep);
  EXPECT_EQ(ParseKvPolicy("recompute"), KvPolicy::kRecompute);
  EXPECT_THROW(ParseKvPolicy("drop"), InputError);
}

TEST_F(TokenRoutingTest, TraceJsonAndSvgDescribeEveryToken) {
  Router router(file_, "router.json", *embedder_, SharpSoftmax(), RouteWindow{});
  LoraMixer mixer(*bank_);
  TokenRouting routing(router, *bank_, kPromptText, {2, KvPolicy::kKeep});
  ThreadPool pool(1);
  Generator g(*model_, pool);
  GenerateOptions o;
  o.max_new_tokens = 9;
  o.stop_at_eos = false;
  const GenerateResult r = g.Generate(testing::LoraPromptIds(), o, {}, &mixer, &routing);
  const RoutingTraceInfo info{"router.json", router.policy().Describe(), router.window().Describe(), "exact",
                              "a <prompt> & more"};
  const nlohmann::json j = nlohmann::json::parse(RoutingTraceJson(routing, r, info));
  EXPECT_EQ(j["format"], "tokenlora-trace");
  EXPECT_EQ(j["tasks"], nlohmann::json(kTasks));
  EXPECT_EQ(j["route_every"], 2);
  EXPECT_EQ(j["kv_policy"], "keep");
  ASSERT_EQ(j["steps"].size(), r.output_ids.size());
  std::string joined;
  for (size_t i = 0; i < r.output_ids.size(); ++i) {
    const auto& s = j["steps"][i];
    EXPECT_EQ(s["token"], r.output_ids[i]);
    EXPECT_EQ(s["rerouted"], i % 2 == 0);
    double sum = 0;
    for (double w : s["weights"]) sum += w;
    EXPECT_NEAR(sum, 1.0, 1e-5);
    joined += s["text"].get<std::string>();
  }
  EXPECT_EQ(joined, r.text);
  EXPECT_EQ(j["stats"]["route_calls"], 5);

  const std::string svg = RoutingTraceSvg(routing, info);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  for (const std::string& t : kTasks) EXPECT_NE(svg.find(t), std::string::npos) << t;
  // Markup in the text is escaped: the only '<' are tag openers.
  for (size_t p = svg.find('<'); p != std::string::npos; p = svg.find('<', p + 1)) {
    const char next = svg[p + 1];
    EXPECT_TRUE(std::isalpha(static_cast<unsigned char>(next)) || next == '/' || next == '?') << svg.substr(p, 20);
  }

  // The settings line under the title fits the picture even with long policy
  // and window descriptions: it wraps, and no word is lost. The width is
  // estimated from the font: a monospace advance of 0.602 em (DejaVu Sans Mono).
  RoutingTraceInfo long_info = info;
  long_info.policy = "paper (T=4) over a deliberately long description of the policy settings";
  long_info.window = "sliding 64 tokens of the prompt and the generated text so far";
  const std::string long_svg = RoutingTraceSvg(routing, long_info);
  const std::regex width_re("<svg[^>]* width=\"([0-9.]+)\"");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(long_svg, m, width_re));
  const double picture_width = std::stod(m[1].str());
  const std::regex text_re("<text x=\"([0-9.]+)\" y=\"[0-9.]+\" font-size=\"([0-9.]+)\"[^>]*>([^<]*)</text>");
  std::string subtitle;
  int subtitle_lines = 0;
  for (auto it = std::sregex_iterator(long_svg.begin(), long_svg.end(), text_re); it != std::sregex_iterator(); ++it) {
    const std::string content = (*it)[3].str();
    size_t chars = 0;
    for (const char c : content) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    const double right = std::stod((*it)[1].str()) + static_cast<double>(chars) * 0.602 * std::stod((*it)[2].str());
    EXPECT_LE(right, picture_width) << content;
    if ((*it)[2].str() == "11" && content.find("generated token") == std::string::npos) {
      subtitle += (subtitle.empty() ? "" : " ") + content;
      ++subtitle_lines;
    }
  }
  EXPECT_GE(subtitle_lines, 2);
  EXPECT_NE(subtitle.find(long_info.policy), std::string::npos) << subtitle;
  EXPECT_NE(subtitle.find(long_info.window), std::string::npos) << subtitle;
  EXPECT_NE(subtitle.find("5 router calls"), std::string::npos) << subtitle;
}

}  // namespace
}  // namespace tokenlora
