// `tokenlora eval --suite FILE.json` end to end through the binary on a tiny
// model with four random task adapters and a router over the tiny BERT:
// every output file, the cache (a run cut short resumes to the same table,
// and a second run redoes nothing), predictions independent of --parallel,
// and suite/flag errors (exit 2, naming the field).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "core/mapped_file.h"
#include "generate/routing_test_util.h"
#include "kernels/int8_matmul.h"
#include "lora/adapter.h"
#include "lora/lora_test_util.h"
#include "model/model.h"
#include "router/embedder.h"
#include "router/tiny_bert.h"
#include "test_util.h"

namespace tokenlora {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::RunTokenlora;

const char* const kTasks[] = {"gsm8k", "arc_challenge", "squad", "codealpaca"};

class SuiteCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir();
    const std::string model = testing::WriteTinyLlamaSafetensors(dir_ + "/model");
    const auto m = Model::Load(model);
    embedder_ = testing::WriteTinyBert(testing::TinyBert());
    std::vector<std::string> names(std::begin(kTasks), std::end(kTasks));
    json adapters = json::object();
    for (size_t i = 0; i < names.size(); ++i) {
      WritePeftAdapter(testing::RandomAdapter(m->config(), names[i], 4, 8.0f, {ModuleKind::kQ, ModuleKind::kV}, 21 + i),
                       m->config(), dir_ + "/" + names[i]);
      adapters[names[i]] = names[i];  // relative to the suite file
    }
    testing::RandomRouterFile(Embedder::Load(embedder_, 1)->identity(), names, 5).Save(dir_ + "/router.json");
    fs::create_directories(dir_ + "/data");
    {
      std::ofstream g(dir_ + "/data/gsm.jsonl");
      for (int i = 1; i <= 3; ++i) {
        g << json({{"question", "What is " + std::to_string(i) + " plus 1?"},
                   {"answer", "It is " + std::to_string(i + 1) + ".\n#### " + std::to_string(i + 1)}})
                 .dump()
          << "\n";
      }
      std::ofstream a(dir_ + "/data/arc.jsonl");
      for (const char* key : {"A", "B", "A"}) {
        a << R"({"question": {"stem": "Which?", "choices": [{"text": "x", "label": "A"}, {"text": "y", "label": "B"}]}, "answerKey": ")"
          << key << "\"}\n";
      }
      std::ofstream s(dir_ + "/data/squad.jsonl");
      for (const char* q : {"Who sat?", "Where?", "What sat?"}) {
        s << json({{"context", "the cat sat on the mat."}, {"question", q}, {"answers", {{"text", {"the cat"}}}}}).dump()
          << "\n";
      }
      std::ofstream c(dir_ + "/data/code.jsonl");
      for (const char* ins : {"Print hi.", "Add two numbers.", "Sort a list."}) {
        c << json({{"instruction", ins}, {"input", ""}, {"output", "print('hi')"}}).dump() << "\n";
      }
    }
    suite_ = {{"name", "tiny"},
              {"limit", 3},
              {"tasks",
               {{"gsm8k", {{"data", "gsm.jsonl"}, {"limit", 2}}},
                {"arc_challenge", {{"data", "arc.jsonl"}}},
                {"squad", {{"data", "squad.jsonl"}}},
                {"codealpaca", {{"data", "code.jsonl[1:]"}}}}},
              {"adapters", adapters},
              {"router", "router.json"},
              {"sampling", {{"temperature", 0.9}, {"seeds", {1, 2}}}},
              {"decodings", {"greedy", "sampled"}},
              {"configurations",
               {{{"name", "base"}},
                {{"name", "adapter-gsm8k"}, {"mix", {{"gsm8k", 1}}}},
                {{"name", "adapter-arc_challenge"}, {"mix", {{"arc_challenge", 1}}}},
                {{"name", "adapter-squad"}, {"mix", {{"squad", 1}}}},
                {{"name", "adapter-codealpaca"}, {"mix", {{"codealpaca", 1}}}},
                {{"name", "uniform-peft04"}, {"mix", {{"gsm8k", 1}, {"squad", 1}}}, {"mix_mode", "peft04-linear"}},
                {{"name", "routed-k1"}, {"route_every", 1}},
                {{"name", "routed-k2"}, {"route_every", 2}},
                {{"name", "reference-k2"},
                 {"route_every", 2},
                 {"kv_policy", "recompute"},
                 {"mix_mode", "peft04-linear"},
                 {"retokenize", true},
                 {"stop_at_eos", false},
                 {"max_total", 60}}}},
              {"claims",
               {{"base", "base"},
                {"routed", "routed-k2"},
                {"own_adapter",
                 {{"gsm8k", "adapter-gsm8k"},
                  {"arc_challenge", "adapter-arc_challenge"},
                  {"squad", "adapter-squad"},
                  {"codealpaca", "adapter-codealpaca"}}},
                {"every_k", {{"1", "routed-k1"}, {"2", "routed-k2"}}}}}};
    common_ = "eval -q -t 1 -m " + model + " --embedder " + embedder_ + " --data-dir " + dir_ + "/data";
  }
  void TearDown() override {
    fs::remove_all(dir_);
    fs::remove_all(embedder_);
  }
  std::string WriteSuite(const json& j) {
    const std::string path = dir_ + "/suite.json";
    std::ofstream(path) << j.dump(1);
    return path;
  }
  testing::CliResult Run(const std::string& out, const std::string& extra = "") {
    return RunTokenlora(common_ + " --suite " + WriteSuite(suite_) + " -o " + out + " " + extra, dir_ + "/stdout");
  }
  std::string dir_, embedder_, common_;
  json suite_;
};

TEST_F(SuiteCliTest, WritesTableClaimsChartsAndPerItemPredictions) {
  const std::string out = dir_ + "/out";
  const auto r = Run(out, "--json --parallel 3");
  ASSERT_EQ(r.code, 0) << r.out;
  const json results = json::parse(ReadTextFile(out + "/results.json"));
  EXPECT_EQ(results["suite"], "tiny");
  ASSERT_EQ(results["greedy"]["rows"].size(), 9u);
  for (const json& row : results["greedy"]["rows"]) {
    EXPECT_EQ(row["gsm8k"]["items"], 2) << row.dump();
    EXPECT_EQ(row["codealpaca"]["items"], 2) << row.dump();  // the slice [1:] of 3 records
    EXPECT_TRUE(row["mean"].is_object()) << row.dump();
  }
  EXPECT_TRUE(results["sampled"]["rows"][0]["gsm8k"].contains("sd"));
  ASSERT_EQ(results["greedy"]["claims"].size(), 3u);
  for (const json& claim : results["greedy"]["claims"]) {
    EXPECT_NE(claim["verdict"], "not run") << claim.dump();
  }
  // Routed rows carry the router's confusion; fixed ones do not.
  EXPECT_TRUE(results["greedy"]["rows"][7].contains("router_confusion"));
  EXPECT_FALSE(results["greedy"]["rows"][0].contains("router_confusion"));
  const std::string table = ReadTextFile(out + "/table.md");
  EXPECT_TRUE(testing::Contains(table, "| configuration | gsm8k | arc_challenge | squad | codealpaca | mean |"));
  EXPECT_TRUE(testing::Contains(table, "**(a) token-level routing (routed-k2) beats the base model"));
  EXPECT_TRUE(testing::Contains(table, "top-weighted adapter vs the item's task"));
  EXPECT_EQ(ReadTextFile(out + "/chart-greedy.svg").rfind("<svg", 0), 0u);
  EXPECT_TRUE(fs::exists(out + "/chart-sampled.svg"));
  // --json prints the same object.
  EXPECT_EQ(json::parse(ReadTextFile(dir_ + "/stdout")), results);
  // Per-item predictions: one line per item, in item order, with the item's file line.
  std::istringstream items(ReadTextFile(out + "/items/routed-k2/arc_challenge.seed2.jsonl"));
  int n = 0;
  for (std::string line; std::getline(items, line); ++n) {
    const json j = json::parse(line);
    EXPECT_EQ(j["index"], n);
    EXPECT_EQ(j["line"], n + 1);
    EXPECT_EQ(j["weights"].size(), 4u);
    EXPECT_TRUE(j.contains("top_task"));
  }
  EXPECT_EQ(n, 3);
}

// The per-item lines of a cache file with the wall time taken out.
std::vector<json> ItemsWithoutTimes(const std::string& path) {
  std::vector<json> items;
  std::istringstream in(ReadTextFile(path));
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line);
    j.erase("seconds");
    items.push_back(std::move(j));
  }
  return items;
}

TEST_F(SuiteCliTest, ResumesFromTheCacheToTheSameTableAndParallelDoesNotChangeIt) {
  const std::string out = dir_ + "/out";
  ASSERT_EQ(Run(out, "--parallel 4").code, 0);
  const std::string first = ReadTextFile(out + "/results.json");
  // A run killed part way: the last items of some files gone, half a line left.
  for (const char* file : {"/items/routed-k2/gsm8k.greedy.jsonl", "/items/reference-k2/squad.seed1.jsonl",
                           "/items/base/codealpaca.seed2.jsonl"}) {
    std::istringstream in(ReadTextFile(out + file));
    std::string line;
    std::getline(in, line);
    std::ofstream(out + file, std::ios::trunc) << line << "\n{\"key\": \"0123";
  }
  fs::remove(out + "/items/adapter-squad/squad.greedy.jsonl");
  const auto resumed = Run(out, "--parallel 1");
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  EXPECT_EQ(ReadTextFile(out + "/results.json"), first);
  // The same suite from scratch, one item at a time: the same predictions.
  const std::string serial = dir_ + "/serial";
  ASSERT_EQ(Run(serial, "--parallel 1").code, 0);
  EXPECT_EQ(ReadTextFile(serial + "/results.json"), first);
  // Item by item the same output, tokens and router weights; only the wall
  // time ("seconds") may differ between runs.
  for (const char* file : {"/items/reference-k2/gsm8k.seed1.jsonl", "/items/routed-k2/squad.greedy.jsonl",
                           "/items/routed-k1/codealpaca.seed2.jsonl"}) {
    EXPECT_EQ(ItemsWithoutTimes(serial + file), ItemsWithoutTimes(out + file)) << file;
  }
  // --report-only builds the table from the cache: a run with items missing
  // is left out, nothing is generated, the cache files are not touched.
  const std::string before = ReadTextFile(out + "/items/base/gsm8k.greedy.jsonl");
  suite_["tasks"]["gsm8k"]["limit"] = 3;
  const auto report = Run(out, "--report-only --decodings greedy");
  ASSERT_EQ(report.code, 0) << report.out;
  EXPECT_TRUE(testing::Contains(report.out, "base gsm8k greedy: 2 of 3 items in the cache; left out")) << report.out;
  EXPECT_EQ(ReadTextFile(out + "/items/base/gsm8k.greedy.jsonl"), before);
  const json partial = json::parse(ReadTextFile(out + "/results.json"));
  EXPECT_TRUE(partial["greedy"]["rows"][0]["gsm8k"].is_null());
  EXPECT_TRUE(partial["greedy"]["rows"][0]["arc_challenge"].is_object());
  // More items (a larger limit) reuse the cached ones and add the new one.
  ASSERT_EQ(Run(out, "--configs base --decodings greedy").code, 0);
  std::istringstream in(ReadTextFile(out + "/items/base/gsm8k.greedy.jsonl"));
  int lines = 0;
  for (std::string line; std::getline(in, line);) ++lines;
  EXPECT_EQ(lines, 3);
  // A later run with a smaller limit keeps the items past it: they used to be
  // dropped from the file, losing a larger run's work.
  suite_["tasks"]["gsm8k"]["limit"] = 1;
  ASSERT_EQ(Run(out, "--configs base --decodings greedy").code, 0);
  suite_["tasks"]["gsm8k"]["limit"] = 3;
  const auto again = Run(out, "--report-only --configs base --decodings greedy");
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_FALSE(testing::Contains(again.out, "left out")) << again.out;
}

// The cache is keyed by what ran, not by how the flags spelled it: int8
// activations on a model with no int8-packable weights run f32, and "auto"
// is int8 for the router encoder where the CPU has the int8 kernels.
TEST_F(SuiteCliTest, CacheKeysNameWhatRanNotTheFlags) {
  const std::string out = dir_ + "/out";
  const std::string one = "--configs routed-k2 --decodings greedy ";
  const auto made = Run(out, one + "--activations f32 --embedder-precision int8");
  ASSERT_EQ(made.code, 0) << made.out;
  // The tiny model's weights are f32: --activations int8 runs f32 too.
  const std::string auto_or_int8 = kernels::Int8Accelerated() ? "auto" : "int8";
  auto same = Run(out, one + "--report-only --activations int8 --embedder-precision " + auto_or_int8);
  ASSERT_EQ(same.code, 0) << same.out;
  EXPECT_FALSE(testing::Contains(same.out, "left out")) << same.out;
  // An f32 encoder computes something else: nothing of it is in the cache.
  const auto other = Run(out, one + "--report-only --embedder-precision f32");
  ASSERT_EQ(other.code, 0) << other.out;
  EXPECT_TRUE(testing::Contains(other.out, "routed-k2 gsm8k greedy: 0 of 2 items in the cache; left out")) << other.out;
}

// Sampling's top-k and top-p cuts reach the sampler, the report and the
// cache key: other cuts are other runs; greedy runs do not depend on them.
TEST_F(SuiteCliTest, SamplingCutsAreReportedAndKeyTheSampledRuns) {
  const std::string out = dir_ + "/out";
  const std::string one = "--configs base --tasks squad ";
  suite_["sampling"] = {{"temperature", 0.9}, {"top_k", 50}, {"top_p", 0.9}, {"seeds", {1}}};
  const auto made = Run(out, one);
  ASSERT_EQ(made.code, 0) << made.out;
  const json results = json::parse(ReadTextFile(out + "/results.json"));
  EXPECT_EQ(results["sampled"]["top_k"], 50);
  EXPECT_NEAR(results["sampled"]["top_p"].get<double>(), 0.9, 1e-6);
  EXPECT_TRUE(testing::Contains(ReadTextFile(out + "/table.md"), "over the seeds at temperature 0.9, top-k 50, top-p 0.9."));
  suite_["sampling"]["top_p"] = 0.5;
  const auto other = Run(out, one + "--report-only");
  ASSERT_EQ(other.code, 0) << other.out;
  EXPECT_TRUE(testing::Contains(other.out, "base squad seed1: 0 of 3 items in the cache; left out")) << other.out;
  EXPECT_FALSE(testing::Contains(other.out, "base squad greedy")) << other.out;
  // A cut that keeps one token is greedy decoding whatever the seed.
  suite_["sampling"] = {{"temperature", 0.9}, {"top_k", 1}, {"seeds", {1}}};
  ASSERT_EQ(Run(out, one).code, 0);
  std::vector<json> greedy = ItemsWithoutTimes(out + "/items/base/squad.greedy.jsonl");
  std::vector<json> top1 = ItemsWithoutTimes(out + "/items/base/squad.seed1.jsonl");
  ASSERT_EQ(greedy.size(), top1.size());
  for (size_t i = 0; i < greedy.size(); ++i) EXPECT_EQ(greedy[i]["output"], top1[i]["output"]) << i;
}

TEST_F(SuiteCliTest, BadSuitesAndFlagsExitTwoNamingTheField) {
  json bad = suite_;
  bad["configurations"][1]["mix"] = {{"chess", 1}};
  const std::string out = dir_ + "/out";
  auto r = RunTokenlora(common_ + " --suite " + WriteSuite(bad) + " -o " + out);
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(testing::Contains(r.out, "'chess'")) << r.out;
  bad = suite_;
  bad["configurations"][0]["temperature"] = 1;
  r = RunTokenlora(common_ + " --suite " + WriteSuite(bad) + " -o " + out);
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(testing::Contains(r.out, "unknown field 'temperature'")) << r.out;
  r = RunTokenlora(common_ + " --suite " + dir_ + "/nope.json");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(testing::Contains(r.out, "cannot read")) << r.out;
  r = RunTokenlora(common_ + " --suite " + WriteSuite(suite_) + " --mix gsm8k=1");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(testing::Contains(r.out, "--mix is set per task or configuration")) << r.out;
  r = RunTokenlora(common_ + " --suite " + WriteSuite(suite_) + " --configs routed-k9");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(testing::Contains(r.out, "no configuration 'routed-k9'")) << r.out;
  r = RunTokenlora("eval -q --configs base");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(testing::Contains(r.out, "--configs needs --suite")) << r.out;
  bad = suite_;
  bad["tasks"]["squad"]["data"] = "missing.jsonl";
  r = RunTokenlora(common_ + " --suite " + WriteSuite(bad) + " -o " + out);
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(testing::Contains(r.out, "missing.jsonl")) << r.out;
}

}  // namespace
}  // namespace tokenlora
