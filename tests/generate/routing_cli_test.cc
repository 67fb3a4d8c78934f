// `tokenlora generate --router`: what a user runs, end to end through the
// binary: on the tiny models (flags, errors, trace files) and on the real
// default model with the real MiniLM router.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/mapped_file.h"
#include "lora/adapter.h"
#include "lora/lora_test_util.h"
#include "model/model.h"
#include "router/embedder.h"
#include "router/router_file.h"
#include "router/tiny_bert.h"
#include "routing_test_util.h"
#include "test_util.h"

namespace tokenlora {
namespace {

namespace fs = std::filesystem;
using testing::RunTokenlora;

const std::vector<std::string> kTasks = {"math", "science", "code"};

class RoutingCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir();
    model_ = testing::WriteTinyLlamaSafetensors(dir_ + "/model");
    const auto model = Model::Load(model_);
    embedder_ = testing::WriteTinyBert(testing::TinyBert());
    const RouterFile f = testing::RandomRouterFile(Embedder::Load(embedder_, 1)->identity(), kTasks, 3);
    for (size_t i = 0; i < kTasks.size(); ++i) {
      const LoraAdapter a = testing::RandomAdapter(model->config(), kTasks[i], 4, 8.0f,
                                                   {ModuleKind::kQ, ModuleKind::kV}, 11 + i);
      WritePeftAdapter(a, model->config(), dir_ + "/" + kTasks[i]);
      adapters_ += " --adapter " + kTasks[i] + "=" + dir_ + "/" + kTasks[i];
    }
    f.Save(dir_ + "/router.json");
    base_ = "generate -m " + model_ + " -p 'the cat sat on the mat' -n 6 --ignore-eos --router " + dir_ +
            "/router.json --embedder " + embedder_;
  }
  void TearDown() override {
    fs::remove_all(dir_);
    fs::remove_all(embedder_);
  }
  // Six small records per task in dir_/TASK.jsonl, and the router commands'
  // --task flags and embeddings cache naming them.
  std::string WriteTaskRecords() const {
    const char* texts[] = {"the cat sat", "cat cat", "the mat", "on the mat .", "sat on the", "mat cat ."};
    std::string tasks;
    for (size_t t = 0; t < kTasks.size(); ++t) {
      std::ofstream out(dir_ + "/" + kTasks[t] + ".jsonl");
      for (size_t i = 0; i < 6; ++i) out << "{\"t\": \"" << texts[(i + 2 * t) % 6] << " " << kTasks[t] << "\"}\n";
      tasks += " --task " + kTasks[t] + "=" + dir_ + "/" + kTasks[t] + ".jsonl:{t}";
    }
    return tasks + " --embeddings-cache " + dir_ + "/cache --embedder " + embedder_;
  }
  std::string dir_, model_, embedder_, adapters_, base_;
};

TEST_F(RoutingCliTest, GeneratesAndWritesTheTrace) {
  const auto r = RunTokenlora(base_ + adapters_ + " --route-every 2 --route-policy softmax --trace " + dir_ +
                              "/t.json --trace-svg " + dir_ + "/t.svg");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("router: 3 calls"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("policy softmax"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(ReadTextFile(dir_ + "/t.json"));
  EXPECT_EQ(j["steps"].size(), 6u);
  EXPECT_EQ(j["tasks"], nlohmann::json(kTasks));
  EXPECT_NE(ReadTextFile(dir_ + "/t.svg").find("</svg>"), std::string::npos);

  const auto rc = RunTokenlora(base_ + adapters_ + " --route-every 1 --kv-policy recompute");
  ASSERT_EQ(rc.code, 0) << rc.out;
  EXPECT_NE(rc.out.find("kv recompute"), std::string::npos) << rc.out;
}

TEST_F(RoutingCliTest, BadRoutingFlagsExitWithTwoAndSayWhy) {
  struct Case {
    std::string args, expect;
  };
  std::ofstream(dir_ + "/garbage.json") << "{not json";
  const std::string plain = "generate -m " + model_ + " -p hi -n 2";
  const Case cases[] = {
      {base_ + adapters_ + " --route-every 0", "--route-every"},
      {base_ + adapters_ + " --route-every sometimes", "--route-every"},
      {base_ + adapters_ + " --kv-policy drop", "kv-policy"},
      {base_ + adapters_ + " --route-policy loud", "policy"},
      {base_ + adapters_ + " --route-window last:0", "window"},
      {base_ + adapters_ + " --mix math=1", "--mix"},
      {base_, "--adapter"},
      {base_ + " --adapter math=" + dir_ + "/math", "no adapter for task(s): science, code"},
      {base_ + adapters_ + " --adapter poetry=" + dir_ + "/math", "poetry"},
      {base_ + adapters_ + " --trace " + dir_ + "/no/such/dir/t.json", "does not exist"},
      {base_ + adapters_ + " --trace-svg " + dir_, "is a directory"},
      {plain + " --trace " + dir_ + "/t.json", "needs a router"},
      {plain + " --route-every 2", "needs a router"},
      {"generate -m " + model_ + " -p hi --router " + dir_ + "/garbage.json --embedder " + embedder_ + adapters_,
       "garbage.json"},
      {"generate -m " + model_ + " -p hi --router " + dir_ + "/router.json --embedder " + dir_ + "/none" +
           adapters_,
       "not found"},
  };
  for (const Case& c : cases) {
    const auto r = RunTokenlora(c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find(c.expect), std::string::npos) << c.args << "\n" << r.out;
    EXPECT_EQ(r.out.find("prefill:"), std::string::npos) << "generated before failing: " << c.args;
  }
}

// A router with several prototypes per task, built and measured through the
// binary, routes generate under every score rule.
TEST_F(RoutingCliTest, PrototypeRouterBuildsEvaluatesAndRoutes) {
  const std::string tasks = WriteTaskRecords();
  const auto b = RunTokenlora("router build --prototypes 3 --seed 4" + tasks + " -o " + dir_ + "/p.json");
  ASSERT_EQ(b.code, 0) << b.out;
  EXPECT_NE(b.out.find("math: 3 prototypes (records per prototype:"), std::string::npos) << b.out;
  EXPECT_NE(b.out.find("(version 2)"), std::string::npos) << b.out;
  const RouterFile f = RouterFile::Load(dir_ + "/p.json");
  EXPECT_EQ(f.kmeans.k, 3);
  EXPECT_EQ(f.kmeans.seed, 4u);
  // The same build again reads every task from the cache, and writes the same bytes.
  const auto again = RunTokenlora("router build --prototypes 3 --seed 4" + tasks + " -o " + dir_ + "/q.json");
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_NE(again.out.find("code: 6 embeddings from the cache"), std::string::npos) << again.out;
  EXPECT_EQ(ReadTextFile(dir_ + "/q.json"), ReadTextFile(dir_ + "/p.json"));

  const auto ev = RunTokenlora("router eval --router " + dir_ + "/p.json" + tasks + " --score softmax:0.1");
  ASSERT_EQ(ev.code, 0) << ev.out;
  EXPECT_NE(ev.out.find("tasks scored by softmax:0.1 over prototypes"), std::string::npos) << ev.out;
  EXPECT_NE(ev.out.find("overall: "), std::string::npos) << ev.out;
  EXPECT_NE(ev.out.find("embeddings from the cache"), std::string::npos) << ev.out;

  const std::string gen = "generate -m " + model_ + " -p 'the cat sat on the mat' -n 4 --ignore-eos --router " +
                          dir_ + "/p.json --embedder " + embedder_ + adapters_;
  for (const char* score : {"max", "softmax:0.05", "centroid"}) {
    const auto r = RunTokenlora(gen + " --route-score " + score);
    ASSERT_EQ(r.code, 0) << score << "\n" << r.out;
    EXPECT_NE(r.out.find("router: 2 calls"), std::string::npos) << r.out;
  }
}

// A whitened router (--whiten, version 3), with and without prototypes, is
// built, measured and routes generate through the binary; the trace's
// similarities are the whitened cosines TaskScorer computes.
TEST_F(RoutingCliTest, WhitenedRouterBuildsEvaluatesAndRoutes) {
  const std::string tasks = WriteTaskRecords();
  for (const std::string prototypes : {"1", "2"}) {
    const std::string file = dir_ + "/w" + prototypes + ".json";
    const auto b = RunTokenlora("router build --whiten 0.1 --prototypes " + prototypes + tasks + " -o " + file);
    ASSERT_EQ(b.code, 0) << b.out;
    EXPECT_NE(b.out.find("(version 3)"), std::string::npos) << b.out;
    const RouterFile f = RouterFile::Load(file);
    ASSERT_TRUE(f.whitening.has_value());
    EXPECT_EQ(f.kmeans.k, prototypes == "1" ? 0 : 2);
    const auto ev = RunTokenlora("router eval --router " + file + tasks);
    ASSERT_EQ(ev.code, 0) << ev.out;
    EXPECT_NE(ev.out.find("overall: "), std::string::npos) << ev.out;
    EXPECT_NE(ev.out.find("; cosines whitened (lambda 0.1)"), std::string::npos) << ev.out;
    const auto r = RunTokenlora("generate -m " + model_ + " -p 'the cat sat on the mat' -n 4 --ignore-eos --router " +
                                file + " --embedder " + embedder_ + adapters_ + " --trace " + dir_ + "/trace.json");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("router: 2 calls"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("softmax); cosines whitened (lambda 0.1) | window"), std::string::npos) << r.out;
    const nlohmann::json trace = nlohmann::json::parse(ReadTextFile(dir_ + "/trace.json"));
    ASSERT_FALSE(trace["steps"].empty());
    for (const auto& step : trace["steps"]) {
      double largest = -2;
      for (const auto& v : step["similarities"]) largest = std::max(largest, v.get<double>());
      EXPECT_GE(largest, -1.0);
      EXPECT_LE(largest, 1.0);
    }
  }
}

// The real thing, as scripts/demo runs it: SmolLM2-135M-Instruct,
// all-MiniLM-L6-v2, the router built from the paper's four task data sets and
// the four adapters trained for the default model (adapters/).
TEST(RoutingCliRealModel, MathPromptLeansOnGsm8kAtEveryToken) {
  const std::string model_path = testing::DefaultModelPath();
  const std::string minilm = testing::SourcePath("models/all-MiniLM-L6-v2");
  if (model_path.empty() || !fs::exists(minilm)) GTEST_SKIP() << "run scripts/fetch-models first";
  const std::string dir = testing::TempDir();
  std::string adapters;
  for (const char* task : {"gsm8k", "arc_challenge", "squad", "codealpaca"}) {
    adapters += std::string(" --adapter ") + task + "=" + testing::SourcePath(std::string("adapters/") + task);
  }
  // The adapters' training format (the reference code's GSM8K prompt).
  std::ofstream(dir + "/prompt.txt")
      << "Question: Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
         "How many clips did Natalia sell altogether in April and May?\n\nAnswer:";
  const auto r = RunTokenlora("generate -m " + model_path + " --embedder " + minilm + " --router " +
                              testing::SourcePath("adapters/router.json") + adapters + " -f " + dir +
                              "/prompt.txt -n 16 --ignore-eos --route-every 2 --adapter-type f16 --trace " + dir +
                              "/t.json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(ReadTextFile(dir + "/t.json"));
  ASSERT_EQ(j["steps"].size(), 16u);
  EXPECT_EQ(j["stats"]["route_calls"], 8);
  for (const auto& s : j["steps"]) {
    EXPECT_GT(s["weights"][0].get<double>(), 0.5) << "gsm8k should lead on a GSM8K question: " << s.dump();
  }
  // The adapters are at work: the base model alone answers differently.
  const auto base = RunTokenlora("generate -m " + model_path + " -f " + dir + "/prompt.txt -n 16 --ignore-eos");
  ASSERT_EQ(base.code, 0) << base.out;
  EXPECT_EQ(base.out.find(j["output"].get<std::string>()), std::string::npos) << j["output"] << "\n" << base.out;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tokenlora
