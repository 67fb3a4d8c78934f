// `tokenlora generate -f FILE.jsonl --parallel N`, end to end through the
// binary: every line's text must be exactly what the same request prints
// alone (`generate -f PROMPT.txt` with the equivalent flags), at any
// --parallel; bad lines and flags exit 2 naming the line and field. On the
// tiny models with random adapters and a router, and on the real default
// model with its four adapters and the MiniLM router.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

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
using nlohmann::json;
using testing::RunTokenlora;

std::vector<json> JsonLines(const std::string& path) {
  std::vector<json> out;
  std::istringstream in(ReadTextFile(path));
  std::string line;
  while (std::getline(in, line)) out.push_back(json::parse(line));
  return out;
}

// One request: the JSONL line and the flags that make the same request alone.
struct Case {
  json line;
  std::string alone_flags;
};

// Runs `cases` as one JSONL file (flags `common` + `batch_flags`) and each
// alone; expects identical text and stop reasons.
void ExpectBatchEqualsAlone(const std::string& dir, const std::string& common, const std::vector<Case>& cases,
                            const std::string& batch_flags) {
  {
    std::ofstream f(dir + "/in.jsonl");
    for (const Case& c : cases) f << c.line.dump() << "\n";
  }
  const auto batch =
      RunTokenlora("generate " + common + " -f " + dir + "/in.jsonl " + batch_flags, dir + "/out.jsonl");
  ASSERT_EQ(batch.code, 0) << batch.out;
  EXPECT_TRUE(testing::Contains(batch.out, "batch: " + std::to_string(cases.size()) + " requests"));
  const std::vector<json> got = JsonLines(dir + "/out.jsonl");
  ASSERT_EQ(got.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(got[i]["line"], i + 1);
    std::ofstream(dir + "/prompt.txt") << cases[i].line["prompt"].get<std::string>();
    const auto alone =
        RunTokenlora("generate " + common + " -f " + dir + "/prompt.txt " + cases[i].alone_flags, dir + "/alone.txt");
    ASSERT_EQ(alone.code, 0) << alone.out;
    std::string text = ReadTextFile(dir + "/alone.txt");
    ASSERT_FALSE(text.empty());
    text.pop_back();  // generate ends its output with a newline
    EXPECT_EQ(got[i]["text"].get<std::string>(), text) << "line " << i + 1 << ": " << cases[i].line.dump();
    EXPECT_TRUE(testing::Contains(alone.out, "stop: " + got[i]["stop_reason"].get<std::string>()))
        << "line " << i + 1;
  }
}

class BatchCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir();
    const std::string model = testing::WriteTinyLlamaSafetensors(dir_ + "/model");
    const auto m = Model::Load(model);
    embedder_ = testing::WriteTinyBert(testing::TinyBert());
    const RouterFile f = testing::RandomRouterFile(Embedder::Load(embedder_, 1)->identity(), {"math", "science", "code"}, 3);
    std::string adapters;
    for (const std::string task : {"math", "science", "code"}) {
      WritePeftAdapter(testing::RandomAdapter(m->config(), task, 4, 8.0f, {ModuleKind::kQ, ModuleKind::kV}, 11 + task.size()),
                       m->config(), dir_ + "/" + task);
      adapters += " --adapter " + task + "=" + dir_ + "/" + task;
    }
    f.Save(dir_ + "/router.json");
    common_ = "-m " + model + adapters + " --ignore-eos";
  }
  void TearDown() override {
    fs::remove_all(dir_);
    fs::remove_all(embedder_);
  }
  std::string dir_, embedder_, common_;
};

TEST_F(BatchCliTest, EveryLineEqualsItsRequestAlone) {
  const std::string r = " --router " + dir_ + "/router.json --embedder " + embedder_;
  const std::vector<Case> cases = {
      {{{"prompt", "the cat sat"}, {"mix", json::object()}}, "-n 7 --mix math=0"},  // weight 0: the base model
      {{{"prompt", "on the mat the cat"}, {"mix", {{"math", 1.0}}}}, "-n 7 --mix math=1"},
      {{{"prompt", "a dog"}, {"mix", {{"math", 0.5}, {"code", 1.5}}}, {"max_tokens", 4}}, "-n 4 --mix math=0.5,code=1.5"},
      {{{"prompt", "the mat"}, {"router", dir_ + "/router.json"}, {"route_every", 1}}, "-n 7" + r + " --route-every 1"},
      {{{"prompt", "cats and dogs and mats"}, {"router", dir_ + "/router.json"}, {"route_every", 2},
        {"kv_policy", "recompute"}}, "-n 7" + r + " --route-every 2 --kv-policy recompute"},
      {{{"prompt", "sat on"}, {"router", dir_ + "/router.json"}, {"route_every", "prompt"}},
       "-n 7" + r + " --route-every prompt"},
      {{{"prompt", "the cat sat on"}, {"temperature", 0.9}, {"seed", 5}, {"mix", {{"science", 1.0}}}},
       "-n 7 --mix science=1 --temp 0.9 --seed 5"},
      {{{"prompt", "the cat"}, {"stop", "a"}, {"id", "x"}}, "-n 7 --stop a"},
      {{{"prompt", "mats and cats"}, {"router", dir_ + "/router.json"}, {"route_policy", "softmax"},
        {"route_temperature", 0.2}, {"route_window", "last:3"}, {"route_every", 1}},
       "-n 7" + r + " --route-every 1 --route-policy softmax --route-temperature 0.2 --route-window last:3"},
      {{{"prompt", "cats on mats"}, {"router", dir_ + "/router.json"}, {"route_score", "softmax:0.1"}},
       "-n 7" + r + " --route-score softmax:0.1"},
  };
  // Lines without "mix"/"router" use the command's flags (here: every adapter at weight 1).
  ExpectBatchEqualsAlone(dir_, common_, cases, "-n 7 --parallel 3 --batch-tokens 8 --embedder " + embedder_);
  // Any --parallel gives the same lines.
  const std::string first = ReadTextFile(dir_ + "/out.jsonl");
  const auto one = RunTokenlora("generate " + common_ + " -f " + dir_ + "/in.jsonl -n 7 --parallel 1 --embedder " + embedder_,
                                dir_ + "/one.jsonl");
  ASSERT_EQ(one.code, 0) << one.out;
  EXPECT_EQ(ReadTextFile(dir_ + "/one.jsonl"), first);
  EXPECT_EQ(JsonLines(dir_ + "/out.jsonl")[7]["id"], "x");
  // The per-line policy really differs from the command's default (paper).
  const std::vector<json> lines = JsonLines(dir_ + "/out.jsonl");
  ASSERT_EQ(lines.size(), cases.size());
}

TEST_F(BatchCliTest, RoutedLinesFollowTheCommandsRouterAndTraceOnRequest) {
  std::ofstream(dir_ + "/in.jsonl") << R"({"prompt": "the cat", "trace": true})" << "\n"
                                    << R"({"prompt": "a dog", "route_every": 1, "max_tokens": 3})" << "\n";
  const auto r = RunTokenlora("generate -n 7 " + common_ + " --router " + dir_ + "/router.json --embedder " + embedder_ +
                                  " -f " + dir_ + "/in.jsonl",
                              dir_ + "/out.jsonl");
  ASSERT_EQ(r.code, 0) << r.out;
  const std::vector<json> got = JsonLines(dir_ + "/out.jsonl");
  ASSERT_EQ(got.size(), 2u);
  ASSERT_EQ(got[0]["trace"].size(), 7u);
  EXPECT_EQ(got[0]["trace"][0]["weights"].size(), 3u);
  EXPECT_FALSE(got[1].contains("trace"));
  EXPECT_EQ(got[1]["output_tokens"], 3);
}

TEST_F(BatchCliTest, BadLinesAndFlagsExitWithTwoAndSayWhere) {
  struct Bad {
    std::string file_text, flags, want;
  };
  const std::vector<Bad> cases = {
      {"{\"prompt\": \"a\"}\n{\"prompt\": \"b\", \"temp\": 1}\n", "", "line 2: unknown field 'temp'"},
      {"{\"prompt\": \"a\"}\nnot json\n", "", "line 2: not valid JSON"},
      {"{\"id\": 3}\n", "", "line 1: no \"prompt\" field"},
      {"[1, 2]\n", "", "expected a JSON object"},
      {"{\"prompt\": \"a\", \"mix\": {\"poetry\": 1}}\n", "", "--adapter poetry=PATH"},
      {"{\"prompt\": \"a\", \"mix\": {\"math\": \"high\"}}\n", "", "should be a finite number"},
      {"{\"prompt\": \"a\", \"max_tokens\": -3}\n", "", "'max_tokens' should be a whole number >= 0"},
      {"{\"prompt\": \"a\", \"route_every\": 2}\n", "", "need a router"},
      {"{\"prompt\": \"a\", \"route_window\": \"last:0\"}\n", "", "route_window"},
      {"{\"prompt\": \"a\", \"route_score\": \"mean\"}\n", "", "route_score: 'mean': unknown score"},
      {"{\"prompt\": \"a\", \"route_temperature\": 0}\n", "", "'route_temperature' should be > 0"},
      {"{\"prompt\": \"a\", \"trace\": true}\n", "", "not routed"},
      {"{\"prompt\": \"a\", \"temperature\": -1}\n", "", "temperature"},
      {"{\"prompt\": \"a\", \"stop\": [1]}\n", "", "'stop' should hold strings"},
      {"\n\n", "", "holds no requests"},
      {"{\"prompt\": \"a\"}\n", "--trace " + dir_ + "/t.json", "\"trace\": true"},
      {"{\"prompt\": \"a\"}\n", "--parallel 0", "--parallel"},
  };
  for (const Bad& c : cases) {
    std::ofstream(dir_ + "/bad.jsonl") << c.file_text;
    const auto r = RunTokenlora("generate -n 7 " + common_ + " -f " + dir_ + "/bad.jsonl " + c.flags);
    EXPECT_EQ(r.code, 2) << c.file_text << r.out;
    EXPECT_TRUE(testing::Contains(r.out, c.want)) << c.file_text;
  }
  std::ofstream(dir_ + "/p.txt") << "a prompt";
  const auto r = RunTokenlora("generate " + common_ + " -f " + dir_ + "/p.txt --parallel 4");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_TRUE(testing::Contains(r.out, "-f FILE.jsonl"));
}

// The real default model with its four adapters and the MiniLM router: four
// questions of different tasks routed every 2 tokens, as a batch of 4 and
// alone, give the same answers.
TEST(BatchCliRealModel, RoutedQuestionsInABatchEqualThemAlone) {
  const std::string model_path = testing::DefaultModelPath();
  const std::string minilm = testing::SourcePath("models/all-MiniLM-L6-v2");
  if (model_path.empty() || !fs::exists(minilm)) GTEST_SKIP() << "run scripts/fetch-models first";
  const std::string dir = testing::TempDir();
  std::string common = "-m " + model_path + " --embedder " + minilm + " --router " +
                       testing::SourcePath("adapters/router.json") + " -n 24 --stop '\n\n'";
  for (const char* task : {"gsm8k", "arc_challenge", "squad", "codealpaca"}) {
    common += std::string(" --adapter ") + task + "=" + testing::SourcePath(std::string("adapters/") + task);
  }
  std::vector<Case> cases;
  for (const char* q : {"A baker made 24 muffins and sold 3/4 of them. How many are left?",
                        "Which gas do plants take in from the air? (A) oxygen (B) carbon dioxide (C) nitrogen",
                        "Write a Python function that returns the square of a number.",
                        "The Nile flows north through Egypt. Which direction does the Nile flow?"}) {
    cases.push_back({{{"prompt", std::string("Question: ") + q + "\n\nAnswer:"}}, "--route-every 2"});
  }
  ExpectBatchEqualsAlone(dir, common, cases, "--parallel 4");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tokenlora
