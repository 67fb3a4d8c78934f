// `tokenlora eval` end to end through the binary, on a tiny model.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "tiny_model.h"

namespace tokenlora {
namespace {

namespace fs = std::filesystem;
using testing::RunTokenlora;

class EvalCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir();
    model_ = testing::WriteTinyModel({"llama", "gguf", DType::kF32}, dir_);
    data_ = dir_ + "/arc.jsonl";
    std::ofstream out(data_);
    for (const char* key : {"A", "B", "C", "B"}) {
      out << R"({"question": {"stem": "Which?", "choices": [{"text": "x", "label": "A"}, {"text": "y", "label": "B"},)"
          << R"( {"text": "z", "label": "C"}]}, "answerKey": ")" << key << "\"}\n";
    }
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_, model_, data_;
};

TEST_F(EvalCliTest, ScoresEveryItemAndWritesPredictions) {
  const auto r = RunTokenlora("eval -q -m " + model_ + " --task arc_challenge --data '" + data_ +
                              "[1:]' --json -o " + dir_ + "/pred.jsonl -t 1");
  ASSERT_EQ(r.code, 0) << r.out;
  const size_t brace = r.out.find('{');
  ASSERT_NE(brace, std::string::npos) << r.out;
  const auto summary = nlohmann::json::parse(r.out.substr(brace, r.out.find('\n', brace) - brace));
  EXPECT_EQ(summary["items"], 3);
  EXPECT_EQ(summary["metric"], "answer letter");
  std::ifstream in(dir_ + "/pred.jsonl");
  int lines = 0;
  double sum = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["line"], lines + 2);  // the slice skips the first record
    EXPECT_EQ(j["reference"], std::string(lines == 1 ? "C" : "B"));
    sum += j["score"].get<double>();
  }
  EXPECT_EQ(lines, 3);
  EXPECT_DOUBLE_EQ(summary["score"].get<double>(), sum / 3);
}

// Several --task NAME=FILE pairs: one model load, each task scored by its
// own metric, one summary (a row per task and the unweighted mean).
TEST_F(EvalCliTest, SeveralTasksGiveOneSummary) {
  const std::string gsm = dir_ + "/gsm.jsonl";
  {
    std::ofstream out(gsm);
    for (int i = 0; i < 2; ++i) out << R"({"question": "What is 1+1?", "answer": "1+1=2\n#### 2"})" << "\n";
  }
  const std::string tasks = " --task 'arc_challenge=" + data_ + "[1:]' --task gsm8k=" + gsm + " -n 4 -t 1";
  auto r = RunTokenlora("eval -q -m " + model_ + tasks + " --json -o " + dir_ + "/pred.jsonl");
  ASSERT_EQ(r.code, 0) << r.out;
  const size_t brace = r.out.find('{');
  ASSERT_NE(brace, std::string::npos) << r.out;
  const auto summary = nlohmann::json::parse(r.out.substr(brace, r.out.find('\n', brace) - brace));
  ASSERT_EQ(summary["tasks"].size(), 2u) << summary.dump();
  EXPECT_EQ(summary["tasks"][0]["task"], "arc_challenge");
  EXPECT_EQ(summary["tasks"][0]["items"], 3);
  EXPECT_EQ(summary["tasks"][1]["task"], "gsm8k");
  EXPECT_EQ(summary["tasks"][1]["metric"], "exact final number");
  EXPECT_EQ(summary["items"], 5);
  EXPECT_DOUBLE_EQ(summary["mean_score"].get<double>(), (summary["tasks"][0]["score"].get<double>() +
                                                         summary["tasks"][1]["score"].get<double>()) /
                                                            2);
  std::ifstream in(dir_ + "/pred.jsonl");
  std::map<std::string, int> per_task;
  for (std::string line; std::getline(in, line);) ++per_task[nlohmann::json::parse(line)["task"].get<std::string>()];
  EXPECT_EQ(per_task["arc_challenge"], 3);
  EXPECT_EQ(per_task["gsm8k"], 2);

  r = RunTokenlora("eval -q -m " + model_ + tasks);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("arc_challenge  answer letter"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("mean "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("adapters: none (base model)"), std::string::npos) << r.out;
}

TEST_F(EvalCliTest, BadInputExitsWithTwoAndSaysWhy) {
  struct Case {
    std::string args, expected;
  };
  const std::vector<Case> cases = {
      {"--task mmlu --data " + data_, "unknown task"},
      {"--task gsm8k --data " + data_, "check --task"},
      {"--task arc_challenge --data " + dir_ + "/missing.jsonl", "missing.jsonl"},
      {"--task arc_challenge --data " + data_ + " --route-every 4", "needs a router"},
      {"--task arc_challenge --data " + data_ + " --mix a=1", "--mix needs adapters"},
      {"--task arc_challenge --data " + data_ + " -o " + dir_ + "/no/such/dir/p.jsonl", "does not exist"},
      {"--task arc_challenge", "add --data FILE.jsonl"},
      {"--task arc_challenge --task gsm8k=" + data_, "each needs its file"},
      {"--task arc_challenge=" + data_ + " --data " + data_, "use one form"},
      {"--task arc_challenge=" + data_ + " --task arc_challenge=" + data_, "given twice"},
      {"--task arc_challenge=" + data_ + " --task gsm8k=" + dir_ + "/missing.jsonl", "missing.jsonl"},
  };
  for (const Case& c : cases) {
    const auto r = RunTokenlora("eval -q -m " + model_ + " " + c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find(c.expected), std::string::npos) << c.args << "\n" << r.out;
  }
}

TEST_F(EvalCliTest, ARecordTooLongForTheModelStopsTheRunButKeepsWhatWasScored) {
  {
    std::ofstream out(data_, std::ios::app);  // a fifth record, longer than the tiny model's context
    out << R"({"question": {"stem": ")" << std::string(4000, 'x') << R"(", "choices": [{"text": "x", "label": "A"}]},)"
        << R"( "answerKey": "A"})" << "\n";
  }
  const auto r = RunTokenlora("eval -q -m " + model_ + " --task arc_challenge --data " + data_ + " -o " + dir_ +
                              "/pred.jsonl -t 1");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("line 5"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir_ + "/pred.jsonl"));
  std::ifstream partial(dir_ + "/pred.jsonl.partial");
  int lines = 0;
  for (std::string line; std::getline(partial, line);) ++lines;
  EXPECT_EQ(lines, 4);
}

// The committed GSM8K adapter (adapters/gsm8k, trained by scripts/train-adapters)
// on the real default model: it answers in GSM8K's worked-solution format
// (steps, then "#### N" and EOS), which the base never does.
TEST(EvalCliRealModel, Gsm8kAdapterWritesWorkedSolutions) {
  const std::string model_path = testing::DefaultModelPath();
  const std::string data = testing::DataPath("gsm8k/test.jsonl");
  if (model_path.empty()) GTEST_SKIP() << "run scripts/fetch-models first";
  if (testing::DataMissing(data)) return;
  const std::string dir = testing::TempDir();
  auto outputs = [&](const std::string& extra) {
    // f32 activations: the setting the adapters' README numbers were measured with.
    const auto r = RunTokenlora("eval -q --task gsm8k --activations f32 --data '" + data + "[3:7]' -o " + dir +
                                "/p.jsonl " + extra);
    EXPECT_EQ(r.code, 0) << r.out;
    std::vector<std::string> out;
    std::ifstream in(dir + "/p.jsonl");
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line)["output"]);
    return out;
  };
  const std::vector<std::string> base = outputs("");
  const std::vector<std::string> tuned = outputs("--adapter gsm8k=" + testing::SourcePath("adapters/gsm8k"));
  ASSERT_EQ(base.size(), 4u);
  ASSERT_EQ(tuned.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(base[i].find("####"), std::string::npos) << base[i];
    EXPECT_NE(tuned[i].find("####"), std::string::npos) << tuned[i];
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tokenlora
