// Routing: policies against a Python transcription of the reference's
// similarity(), the embedder's window / reuse / incremental tokenization
// (results identical to embedding from scratch), router build and eval on a
// tiny model, and MiniLM end to end against sentence-transformers.
#include "router/router.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <fstream>

#include "core/error.h"
#include "core/mapped_file.h"
#include "router/builder.h"
#include "router_test_util.h"
#include "test_util.h"
#include "tiny_bert.h"

namespace tokenlora {
namespace {

using testing::ExpectInputError;

using nlohmann::json;
using testing::SourcePath;
using testing::TempDir;

struct RouterGolden {
  json meta;
  std::vector<std::vector<float>> centroids;  // [4][384]
  std::vector<std::vector<float>> prompts;    // [n][384]
};

const RouterGolden& LoadRouterGolden() {
  static const RouterGolden g = [] {
    RouterGolden g;
    std::ifstream in(SourcePath("tests/golden/router/router.json"));
    g.meta = json::parse(in);
    const auto blob = testing::ReadF32File(SourcePath("tests/golden/router/router.f32"));
    const size_t dim = g.meta["dim"].get<size_t>(), n_tasks = g.meta["tasks"].size();
    EXPECT_EQ(blob.size(), (n_tasks + g.meta["prompts"].size()) * dim);
    for (size_t i = 0; i * dim < blob.size(); ++i) {
      std::vector<float> v(blob.begin() + static_cast<long>(i * dim),
                           blob.begin() + static_cast<long>((i + 1) * dim));
      (i < n_tasks ? g.centroids : g.prompts).push_back(std::move(v));
    }
    return g;
  }();
  return g;
}

// The paper policy on the reference's own embeddings, against
// torch.nn.CosineSimilarity + the max x T + softmax of evals.py.
TEST(Policy, PaperMatchesReferenceSimilarity) {
  const RouterGolden& g = LoadRouterGolden();
  std::vector<std::string> names;
  for (const json& t : g.meta["tasks"]) names.push_back(t["name"].get<std::string>());
  const RoutingPolicy paper = RoutingPolicy::Make("paper", 0, 1, "", names);
  double max_diff = 0;
  for (size_t p = 0; p < g.prompts.size(); ++p) {
    std::vector<float> sims;
    for (const auto& c : g.centroids) sims.push_back(CosineSimilarity(g.prompts[p], c));
    const std::vector<float> w = paper.Weights(sims);
    const json& want = g.meta["prompts"][p];
    for (size_t t = 0; t < names.size(); ++t) {
      EXPECT_NEAR(sims[t], want["similarities"][t].get<double>(), 1e-6) << "prompt " << p;
      EXPECT_NEAR(w[t], want["weights"][t].get<double>(), 1e-5) << "prompt " << p << " task " << names[t];
      max_diff = std::max(max_diff, std::abs(w[t] - want["weights"][t].get<double>()));
    }
  }
  std::printf("[ router   ] %zu prompts: paper weights within %.2e of the reference\n", g.prompts.size(),
              max_diff);
}

TEST(Policy, OtherPolicies) {
  const std::vector<std::string> names = {"a", "b", "c"};
  const std::vector<float> sims = {0.2f, 0.5f, 0.4f};
  const auto near = [](const std::vector<float>& got, const std::vector<double>& want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << i;
  };
  const auto softmax = [](std::vector<double> x) {
    double s = 0;
    for (double& v : x) s += (v = std::exp(v));
    for (double& v : x) v /= s;
    return x;
  };
  near(RoutingPolicy::Make("paper", 0, 1, "", names).Weights(sims), softmax({0.2, 2.0, 0.4}));
  near(RoutingPolicy::Make("softmax", 0.1f, 1, "", names).Weights(sims), softmax({2, 5, 4}));
  const auto top2 = softmax({5, 4});
  near(RoutingPolicy::Make("top-k", 0.1f, 2, "", names).Weights(sims), {0, top2[0], top2[1]});
  near(RoutingPolicy::Make("top-k", 0, 1, "", names).Weights(sims), {0, 1, 0});
  near(RoutingPolicy::Make("uniform", 0, 1, "", names).Weights(sims), {1.0 / 3, 1.0 / 3, 1.0 / 3});
  near(RoutingPolicy::Make("fixed", 0, 1, "c=0.25,a=0.75", names).Weights(sims), {0.75, 0, 0.25});
  // The reference's quirk: all similarities negative, so x T makes the largest smaller.
  near(RoutingPolicy::Make("paper", 0, 1, "", names).Weights(std::vector<float>{-0.1f, -0.3f, -0.2f}),
       softmax({-0.4, -0.3, -0.2}));
  ExpectInputError([&] { RoutingPolicy::Make("best", 0, 1, "", names); }, "--policy 'best' is unknown");
  ExpectInputError([&] { RoutingPolicy::Make("top-k", 0, 4, "", names); }, "--top-k 4 must be in [1, 3]");
  ExpectInputError([&] { RoutingPolicy::Make("fixed", 0, 1, "", names); }, "--policy fixed needs --weights");
  ExpectInputError([&] { RoutingPolicy::Make("paper", 0, 1, "a=1", names); },
                   "--weights is only for --policy fixed");
  ExpectInputError([&] { RoutingPolicy::Make("fixed", 0, 1, "d=1", names); },
                   "--weights: 'd=1' must be TASK=WEIGHT");
  ExpectInputError([&] { RoutingPolicy::Make("fixed", 0, 1, "a=-1", names); }, "with a weight >= 0");
}

// A temperature that is given must be usable: never silently replaced by the
// default (0 is "not given"), never NaN weights. Errors name the flag as
// typed: generate's carry the "route-" prefix.
TEST(Policy, TemperatureIsCheckedAndErrorsNameTheTypedFlag) {
  const std::vector<std::string> names = {"a", "b", "c"};
  for (const float t : {-4.0f, std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                        2e6f}) {
    ExpectInputError([&] { RoutingPolicy::Make("softmax", t, 1, "", names); }, "--temperature ");
    ExpectInputError([&] { RoutingPolicy::Make("paper", t, 1, "", names, "route-"); }, "--route-temperature ");
  }
  ExpectInputError([&] { RoutingPolicy::Make("top-k", 0, 0, "", names, "route-"); }, "--route-top-k 0 must be");
  ExpectInputError([&] { RoutingPolicy::Make("best", 0, 1, "", names, "route-"); }, "--route-policy 'best'");
  ExpectInputError([&] { RoutingPolicy::Make("fixed", 0, 1, "", names, "route-"); },
                   "--route-policy fixed needs --route-weights");
  ExpectInputError([] { RouteWindow::Parse("tail", "--route-window"); }, "--route-window 'tail'");
  EXPECT_EQ(RoutingPolicy::Make("paper", 0, 1, "", names).temperature, 4.0f);  // 0: not given
  EXPECT_EQ(RoutingPolicy::Make("softmax", 0, 1, "", names).temperature, 0.1f);
  // The largest temperature allowed still gives finite weights summing to 1.
  for (const char* policy : {"paper", "softmax"}) {
    for (const float t : {RoutingPolicy::kMaxTemperature, 1e-6f}) {
      const std::vector<float> w =
          RoutingPolicy::Make(policy, t, 1, "", names).Weights(std::vector<float>{0.9f, -0.2f, 0.3f});
      double sum = 0;
      for (float x : w) {
        EXPECT_TRUE(std::isfinite(x)) << policy << " T=" << t;
        sum += x;
      }
      EXPECT_NEAR(sum, 1.0, 1e-5) << policy << " T=" << t;
    }
  }
}

class TinyEmbedder : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::WriteTinyBert(testing::TinyBert());
    embedder_ = Embedder::Load(dir_, 2);
  }

  // The embedding of exactly these pieces, from scratch.
  std::vector<float> Fresh(const std::vector<int32_t>& pieces) {
    const std::vector<int32_t> ids = embedder_->model().WithSpecialTokens(pieces);
    BertWorkspace ws;
    ThreadPool pool(1);
    std::vector<float> out(static_cast<size_t>(embedder_->dim()));
    embedder_->model().Embed({&ids, 1}, pool, ws, out.data());
    return out;
  }
  std::string dir_;
  std::unique_ptr<Embedder> embedder_;
};

// Routing a growing text reuses work but never changes a result.
TEST_F(TinyEmbedder, GrowingTextGivesTheSameEmbeddingsAsFromScratch) {
  const WordPieceTokenizer& tok = embedder_->model().tokenizer();
  const std::vector<std::string> steps = {"the", " ca",  "t",    "s",  " sat", " on",
                                          ".",   " the", " mat", " .", " cat", " sat"};
  for (const RouteWindow window : {RouteWindow::Parse("whole"), RouteWindow::Parse("last:3")}) {
    std::string text;
    int64_t runs_before = embedder_->stats().encoder_runs;
    for (const std::string& s : steps) {
      text += s;
      const std::vector<float> got = embedder_->EmbedWindow(text, window);
      std::vector<int32_t> pieces = tok.Encode(text, false);
      const size_t keep = std::min<size_t>(window.last_pieces == 0 ? 6 : 3, pieces.size());
      pieces = window.last_pieces == 0
                   ? std::vector<int32_t>(pieces.begin(), pieces.begin() + static_cast<long>(keep))
                   : std::vector<int32_t>(pieces.end() - static_cast<long>(keep), pieces.end());
      EXPECT_EQ(got, Fresh(pieces)) << window.Describe() << ", text '" << text << "'";
    }
    if (window.last_pieces == 0) {
      // 12 steps; once 6 pieces ([CLS] + 6 + [SEP] = max_seq_length 8) are
      // known the window is frozen and the encoder no longer runs.
      EXPECT_LE(embedder_->stats().encoder_runs - runs_before, 8);
    }
  }
  // A text that does not extend the previous one starts over.
  EXPECT_EQ(embedder_->EmbedWindow("mat", RouteWindow::Parse("whole")), Fresh(tok.Encode("mat", false)));
  EXPECT_EQ(embedder_->stats().calls, 2 * static_cast<int64_t>(steps.size()) + 1);
}

TEST_F(TinyEmbedder, WindowSpecs) {
  EXPECT_EQ(RouteWindow::Parse("last:16").last_pieces, 16);
  ExpectInputError([] { RouteWindow::Parse("last:0"); }, "expected 'whole' or 'last:N'");
  ExpectInputError([] { RouteWindow::Parse("tail"); }, "expected 'whole' or 'last:N'");
}

TEST_F(TinyEmbedder, BuildEvalAndRoute) {
  const std::string dir = TempDir();
  WriteFileAtomically(dir + "/a.jsonl",
                      "{\"t\": \"the cat sat\"}\n{\"t\": \"the cats\"}\n{\"t\": \"cat\"}\n");
  WriteFileAtomically(dir + "/b.jsonl", "{\"t\": \"on the mat .\"}\n{\"x\": 1}\n{\"t\": \"mat mat\"}\n");
  RecordOptions o;
  o.progress = false;
  o.batch = 2;
  const std::vector<TaskSpec> specs = {TaskSpec::Parse("cats=" + dir + "/a.jsonl:{t}"),
                                       TaskSpec::Parse("mats=" + dir + "/b.jsonl:{t}")};
  ExpectInputError([&] { BuildRouter(specs, *embedder_, o); }, "b.jsonl:2: field 't' is missing");
  o.skip_bad = true;
  const RouterFile file = BuildRouter(specs, *embedder_, o);
  ASSERT_EQ(file.tasks.size(), 2u);
  EXPECT_EQ(file.tasks[1].records, 2);
  EXPECT_EQ(file.tasks[1].skipped, 1);
  EXPECT_EQ(file.tasks[0].source, dir + "/a.jsonl");
  EXPECT_EQ(file.embedder.sha256, embedder_->identity().sha256);
  // Centroid = mean of the (normalised) embeddings, whatever the batching.
  std::vector<float> e(3 * 16);
  const std::vector<std::string> texts = {"the cat sat", "the cats", "cat"};
  embedder_->EmbedBatch(texts, e.data());
  for (size_t j = 0; j < 16; ++j)
    EXPECT_NEAR(file.tasks[0].centroid[j], (e[j] + e[16 + j] + e[32 + j]) / 3, 1e-6);

  const RouterEval ev =
      EvaluateRouter(file, *embedder_, RoutingPolicy::Make("paper", 0, 1, "", file.TaskNames()), specs, o);
  EXPECT_EQ(ev.Total(0), 3);
  EXPECT_EQ(ev.Total(1), 2);
  EXPECT_EQ(ev.skipped[1], 1);
  EXPECT_NE(FormatRouterEval(ev).find("go to their own task"), std::string::npos);

  Router router(file, "r.json", *embedder_, RoutingPolicy::Make("softmax", 0, 1, "", file.TaskNames()),
                RouteWindow::Parse("whole"));
  const RouteResult r = router.Route("the cat");
  EXPECT_NEAR(r.weights[0] + r.weights[1], 1.0, 1e-6);
  RouterFile other = file;
  other.embedder.sha256 = std::string(64, '0');
  ExpectInputError([&] { Router(other, "r.json", *embedder_, RoutingPolicy{}, RouteWindow{}); },
                   "r.json was built with embedder");
  ExpectInputError(
      [&] { EvaluateRouter(file, *embedder_, RoutingPolicy{}, {TaskSpec::Parse("dogs=x.jsonl:{t}")}, o); },
      "--task dogs: not a task of the router (cats, mats)");
  ExpectInputError([&] { BuildRouter({specs[0], specs[0]}, *embedder_, o); }, "--task cats is given twice");
}

// --prototypes 1 writes the centroid exactly as before prototypes existed
// (the double-precision mean of the normalised embeddings, a version 1 file);
// K > 1 keeps that centroid and adds the k-means prototypes; the embeddings
// cache gives the same file without running the encoder.
TEST_F(TinyEmbedder, PrototypesAndTheEmbeddingsCache) {
  const std::string dir = TempDir();
  const std::vector<std::string> texts = {"the cat sat", "the cats", "cat", "on the mat .", "mat mat", "sat on"};
  std::string jsonl;
  for (const std::string& t : texts) jsonl += "{\"t\": \"" + t + "\"}\n";
  WriteFileAtomically(dir + "/p.jsonl", jsonl);
  RecordOptions o;
  o.progress = false;
  const std::vector<TaskSpec> specs = {TaskSpec::Parse("all=" + dir + "/p.jsonl:{t}"),
                                       TaskSpec::Parse("two=" + dir + "/p.jsonl[:2]:{t}")};
  const RouterFile one = BuildRouter(specs, *embedder_, o);
  EXPECT_EQ(one.version(), 1);
  // Today's centroid, computed as the builder did before prototypes: bit for bit.
  std::vector<float> e(texts.size() * 16);
  embedder_->EmbedBatch(texts, e.data());
  std::vector<double> sum(16, 0.0);
  for (size_t i = 0; i < texts.size(); ++i) {
    double sq = 0.0;
    for (size_t j = 0; j < 16; ++j) sq += double{e[i * 16 + j]} * e[i * 16 + j];
    const double inv = 1.0 / std::max(std::sqrt(sq), 1e-12);
    for (size_t j = 0; j < 16; ++j) sum[j] += e[i * 16 + j] * inv;
  }
  for (size_t j = 0; j < 16; ++j) EXPECT_EQ(one.tasks[0].centroid[j], static_cast<float>(sum[j] / 6)) << j;
  EXPECT_EQ(BuildRouter(specs, *embedder_, o, {1, 99, 100}).Serialize(), one.Serialize());

  const RouterFile three = BuildRouter(specs, *embedder_, o, {3, 0, 100});
  EXPECT_EQ(three.version(), 2);
  EXPECT_EQ(three.kmeans.k, 3);
  EXPECT_EQ(three.tasks[0].prototypes.size(), 3u);
  EXPECT_EQ(three.tasks[1].prototypes.size(), 2u);  // two records: two prototypes at most
  for (size_t t = 0; t < 2; ++t) EXPECT_EQ(three.tasks[t].centroid, one.tasks[t].centroid);
  const RouterFile again = RouterFile::Parse(three.Serialize(), "three.json");
  EXPECT_EQ(again.Serialize(), three.Serialize());

  // A cache hit gives the same file; a different text is a miss.
  o.embeddings_cache = dir + "/cache";
  const std::string built = BuildRouter(specs, *embedder_, o, {3, 0, 100}).Serialize();
  EXPECT_EQ(built, three.Serialize());
  size_t entries = 0;
  for (const auto& f : std::filesystem::directory_iterator(o.embeddings_cache)) entries += f.path().extension() == ".emb";
  EXPECT_EQ(entries, 2u);
  EXPECT_EQ(BuildRouter(specs, *embedder_, o, {3, 0, 100}).Serialize(), built);
  // The int8 encoder's embeddings are cached apart from f32's.
  auto int8 = Embedder::Load(dir_, 2, EncoderPrecision::kInt8);
  BuildRouter(specs, *int8, o, {3, 0, 100});
  entries = 0;
  for (const auto& f : std::filesystem::directory_iterator(o.embeddings_cache)) entries += f.path().extension() == ".emb";
  EXPECT_EQ(entries, 4u);
  // router eval reads the same cache and scores the tasks by their prototypes.
  RoutingPolicy max = RoutingPolicy::Make("paper", 0, 1, "", three.TaskNames());
  const RouterEval ev = EvaluateRouter(three, *embedder_, max, {specs[0]}, o);
  EXPECT_EQ(ev.Total(0), 6);
}

// MiniLM end to end: centroids from the same records and the prompts' weights,
// all computed by tokenlora, against sentence-transformers + the reference.
TEST(MiniLmRouter, MatchesReferenceEndToEnd) {
  const std::string dir = testing::MiniLmDir();
  if (dir.empty()) GTEST_SKIP() << "models/all-MiniLM-L6-v2 absent (scripts/fetch-models)";
  const RouterGolden& g = LoadRouterGolden();
  const std::string shared = testing::DataPath("");
  for (const json& t : g.meta["tasks"]) {
    if (testing::DataMissing(shared + t["file"].get<std::string>())) return;
  }
  auto embedder = Embedder::Load(dir, ThreadPool::PhysicalCores());
  EXPECT_EQ(embedder->identity().name, "all-MiniLM-L6-v2");
  std::vector<TaskSpec> specs;
  for (const json& t : g.meta["tasks"]) {
    specs.push_back(
        TaskSpec::Parse(t["name"].get<std::string>() + "=" + shared + t["file"].get<std::string>()));
  }
  RecordOptions o;
  o.limit = g.meta["tasks"][0]["records"].get<int64_t>();
  o.progress = false;
  const RouterFile file = BuildRouter(specs, *embedder, o);
  for (size_t t = 0; t < file.tasks.size(); ++t) {
    EXPECT_GE(testing::Cosine(file.tasks[t].centroid.data(), g.centroids[t].data(), 384), 0.99999)
        << file.tasks[t].name;
  }
  Router router(file, "built", *embedder, RoutingPolicy::Make("paper", 0, 1, "", file.TaskNames()),
                RouteWindow{});
  double max_diff = 0;
  for (const json& p : g.meta["prompts"]) {
    if (!p.contains("text")) continue;
    const RouteResult r = router.Route(p["text"].get<std::string>());
    for (size_t t = 0; t < r.weights.size(); ++t) {
      max_diff = std::max(max_diff, std::abs(r.weights[t] - p["weights"][t].get<double>()));
    }
  }
  EXPECT_LT(max_diff, 1e-4);
  std::printf(
      "[ router   ] end to end (tokenlora embeddings and centroids): weights within %.2e of the reference\n",
      max_diff);
}

// adapters/router.json: the four tasks' centroids from
// the full training splits (see its "source" fields), as `tokenlora router
// build` wrote them.
TEST(MiniLmRouter, CheckedInRouterFile) {
  const RouterFile file = RouterFile::Load(SourcePath("adapters/router.json"));
  ASSERT_EQ(file.TaskNames(), (std::vector<std::string>{"gsm8k", "arc_challenge", "squad", "codealpaca"}));
  EXPECT_EQ(file.tasks[0].records, 7473);
  const std::string dir = testing::MiniLmDir();
  if (dir.empty()) GTEST_SKIP() << "models/all-MiniLM-L6-v2 absent (scripts/fetch-models)";
  auto embedder = Embedder::Load(dir, ThreadPool::PhysicalCores());
  Router router(file, "minilm_paper_tasks.json", *embedder,
                RoutingPolicy::Make("paper", 0, 1, "", file.TaskNames()), RouteWindow{});
  const auto top = [&](const std::string& text) {
    const std::vector<float> w = router.Route(text).weights;
    return file.tasks[static_cast<size_t>(std::max_element(w.begin(), w.end()) - w.begin())].name;
  };
  EXPECT_EQ(
      top("Question: Tom has 3 boxes of 12 pencils and gives away 7. How many pencils are left?\n\nAnswer:"),
      "gsm8k");
  EXPECT_EQ(top("Write a Python function that returns the n-th Fibonacci number.\n\nAnswer:"), "codealpaca");
  EXPECT_EQ(top("Question: Which process in plants turns light energy into chemical energy?\nChoices: A. "
                "respiration\nB. photosynthesis\n\nAnswer:"),
            "arc_challenge");
}

}  // namespace
}  // namespace tokenlora
