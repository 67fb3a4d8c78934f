// Loading held-out items and scoring answers (eval/task_eval.h), on the real
// data sets in the data folder (testing::DataDir), and RunEval on a tiny model.
#include "eval/task_eval.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "eval/evaluator.h"
#include "router/record_template.h"
#include "test_util.h"
#include "tiny_model.h"

namespace tokenlora::eval {
namespace {

namespace fs = std::filesystem;

struct TaskFile {
  EvalTask task;
  std::string file;
};

std::vector<TaskFile> RealFiles() {
  return {{EvalTask::kGsm8k, testing::DataPath("gsm8k/test.jsonl")},
          {EvalTask::kArc, testing::DataPath("arc_challenge/ARC-Challenge-Test.jsonl")},
          {EvalTask::kSquad, testing::DataPath("squad/dev.jsonl")},
          {EvalTask::kCodeAlpaca, testing::DataPath("codealpaca/code_alpaca_2k.jsonl")}};
}

TEST(LoadEvalItems, PromptsAreTheTrainingPromptsAndTheReferenceAnswersScoreFull) {
  for (const TaskFile& f : RealFiles()) {
    if (testing::DataMissing(f.file)) return;
    const std::vector<EvalItem> items = LoadEvalItems(f.file + "[10:30]", f.task, 12);
    ASSERT_EQ(items.size(), 12u) << EvalTaskName(f.task);
    const RecordTemplate full = RecordTemplate::Parse(EvalTaskName(f.task));
    for (const EvalItem& item : items) {
      // The prompt is the training text up to "Answer:"; the rest is " " + the answer.
      const std::string text = full.Format(item.record);
      ASSERT_TRUE(text.starts_with(item.prompt)) << item.prompt;
      EXPECT_TRUE(item.prompt.ends_with("Answer:"));
      const std::string answer = text.substr(item.prompt.size());
      EXPECT_DOUBLE_EQ(ScoreAnswer(f.task, item.record, answer).score, 1.0) << EvalTaskName(f.task) << ": " << answer;
    }
    EXPECT_EQ(items.front().line, 11);
  }
}

TEST(LoadEvalItems, StrideSpreadsTheItemsOverTheSlice) {
  const std::string dir = testing::TempDir();
  const std::string path = dir + "/g.jsonl";
  {
    std::ofstream out(path);
    for (int i = 0; i < 40; ++i) out << nlohmann::json{{"question", std::to_string(i)}, {"answer", "#### 1"}}.dump() << "\n";
  }
  const std::vector<EvalItem> items = LoadEvalItems(path + "[10:30]", EvalTask::kGsm8k, 4, 6);
  std::vector<int64_t> lines;
  for (const EvalItem& item : items) lines.push_back(item.line);
  EXPECT_EQ(lines, (std::vector<int64_t>{11, 17, 23, 29}));
  EXPECT_EQ(LoadEvalItems(path + "[10:30]", EvalTask::kGsm8k, -1, 6).size(), 4u);  // 10, 16, 22, 28
  EXPECT_THROW(LoadEvalItems(path, EvalTask::kGsm8k, -1, 0), InputError);
  fs::remove_all(dir);
}

TEST(ScoreAnswer, WrongAnswersScoreLow) {
  const nlohmann::json gsm = {{"question", "q"}, {"answer", "2+2=<<2+2=4>>4\n#### 4"}};
  EXPECT_EQ(ScoreAnswer(EvalTask::kGsm8k, gsm, " 2+2 is 5.\n#### 5").score, 0);
  EXPECT_EQ(ScoreAnswer(EvalTask::kGsm8k, gsm, " 2+2 = 4, so 4").score, 1);
  const nlohmann::json arc = nlohmann::json::parse(
      R"({"question": {"stem": "s", "choices": [{"text": "x", "label": "A"}, {"text": "y", "label": "B"}]},
          "answerKey": "B"})");
  EXPECT_EQ(ScoreAnswer(EvalTask::kArc, arc, " A").score, 0);
  EXPECT_EQ(ScoreAnswer(EvalTask::kArc, arc, " B. y").predicted, "B");
  const nlohmann::json squad = {{"context", "c"}, {"question", "q"},
                                {"answers", {{"text", {"Denver Broncos", "the Broncos"}}}}};
  const ItemScore s = ScoreAnswer(EvalTask::kSquad, squad, " Broncos of Denver\nQuestion: more");
  EXPECT_EQ(s.score, 0);
  EXPECT_EQ(s.predicted, "Broncos of Denver");  // the first line only
  EXPECT_GT(s.f1, 0.5);
  const nlohmann::json code = {{"instruction", "i"}, {"input", ""}, {"output", "return a + b"}};
  EXPECT_NEAR(ScoreAnswer(EvalTask::kCodeAlpaca, code, "return a * c").score, 2.0 / 3.0, 1e-12);
}

TEST(LoadEvalItems, BadFilesNameTheLineAndTheTask) {
  const std::string dir = testing::TempDir();
  const std::string path = dir + "/bad.jsonl";
  {
    std::ofstream(path) << R"({"question": "q", "answer": "#### 3"})" << "\n\n"
                        << R"({"question": "q", "answer": "no final number"})" << "\n";
  }
  try {
    LoadEvalItems(path, EvalTask::kGsm8k, -1);
    ADD_FAILURE() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:3"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("#### N"), std::string::npos) << e.what();
  }
  try {
    LoadEvalItems(path, EvalTask::kSquad, -1);  // a GSM8K file given as SQuAD
    ADD_FAILURE() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--task"), std::string::npos) << e.what();
  }
  { std::ofstream(path) << "{not json\n"; }
  EXPECT_THROW(LoadEvalItems(path, EvalTask::kGsm8k, -1), InputError);
  EXPECT_THROW(LoadEvalItems(path + "[5:]", EvalTask::kGsm8k, -1), InputError);  // empty selection
  EXPECT_THROW(ParseEvalTask("mmlu"), InputError);
  fs::remove_all(dir);
}

TEST(RunEval, EachItemIsTheGreedyGenerationOfItsPrompt) {
  const std::string dir = testing::TempDir();
  const std::string model_path = testing::WriteTinyModel({"llama", "gguf", DType::kF32}, dir);
  const auto model = Model::Load(model_path);
  const std::string data = dir + "/items.jsonl";
  {
    std::ofstream out(data);
    for (int i = 0; i < 3; ++i) {
      out << nlohmann::json{{"question", "what is " + std::to_string(i) + " plus one?"},
                            {"answer", "#### " + std::to_string(i + 1)}}
                 .dump()
          << "\n";
    }
  }
  const std::vector<EvalItem> items = LoadEvalItems(data, EvalTask::kGsm8k, -1);
  ThreadPool pool(2);
  Generator generator(*model, pool);
  EvalOptions options;
  options.limits = {5, {"\n\n"}};
  std::vector<EvalItemResult> seen;
  const EvalSummary summary =
      RunEval(*model, pool, items, options, nullptr, {}, [&](const EvalItemResult& r) { seen.push_back(r); });
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(summary.items, 3u);
  double sum = 0;
  for (size_t i = 0; i < seen.size(); ++i) {
    const EvalItemResult& r = seen[i];
    EXPECT_EQ(r.index, i);  // in item order
    GenerateOptions g;
    g.max_new_tokens = 5;
    g.stop_strings = {"\n\n"};
    g.sampling.temperature = 0;
    const GenerateResult direct =
        generator.Generate(model->tokenizer().EncodeWithBos(items[r.index].prompt, false), g);
    EXPECT_EQ(r.output, direct.text);
    EXPECT_EQ(r.output_tokens, static_cast<int>(direct.output_ids.size()));
    EXPECT_EQ(r.score.score, ScoreAnswer(EvalTask::kGsm8k, items[r.index].record, r.output).score);
    sum += r.score.score;
  }
  // Items run at once on the batched engine give the same predictions, in order.
  options.parallel = 3;
  std::vector<EvalItemResult> batched;
  RunEval(*model, pool, items, options, nullptr, {}, [&](const EvalItemResult& r) { batched.push_back(r); });
  ASSERT_EQ(batched.size(), seen.size());
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(batched[i].index, i);
    EXPECT_EQ(batched[i].output, seen[i].output);
  }
  EXPECT_DOUBLE_EQ(summary.mean_score, sum / 3);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tokenlora::eval
