// Several tasks in one `eval` run: parsing --task/--data and the summary.
#include "eval/task_runs.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"

namespace tokenlora::eval {
namespace {

std::string ErrorOf(const std::vector<std::string>& tasks, const std::string& data) {
  try {
    ParseTaskRuns(tasks, data);
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ParseTaskRuns, OneTaskWithDataOrNameFilePairs) {
  auto runs = ParseTaskRuns({"squad"}, "dev.jsonl[:10]");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].task, EvalTask::kSquad);
  EXPECT_EQ(runs[0].data, "dev.jsonl[:10]");
  runs = ParseTaskRuns({"gsm8k=test.jsonl[:100]", "arc_challenge=a=b.jsonl"}, "");
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].task, EvalTask::kGsm8k);
  EXPECT_EQ(runs[0].data, "test.jsonl[:100]");
  EXPECT_EQ(runs[1].task, EvalTask::kArc);
  EXPECT_EQ(runs[1].data, "a=b.jsonl");  // only the first '=' separates
  // The same task on two files is allowed; the same pair twice is not.
  EXPECT_EQ(ParseTaskRuns({"gsm8k=a.jsonl", "gsm8k=b.jsonl"}, "").size(), 2u);
}

TEST(ParseTaskRuns, BadCombinationsNameTheFlagAndTheFix) {
  EXPECT_NE(ErrorOf({}, "x.jsonl").find("--task: expected a task"), std::string::npos);
  EXPECT_NE(ErrorOf({"gsm8k"}, "").find("add --data FILE.jsonl, or write --task gsm8k=FILE.jsonl"), std::string::npos);
  EXPECT_NE(ErrorOf({"gsm8k", "squad=d.jsonl"}, "").find("each needs its file"), std::string::npos);
  EXPECT_NE(ErrorOf({"gsm8k=t.jsonl"}, "t.jsonl").find("use one form"), std::string::npos);
  EXPECT_NE(ErrorOf({"gsm8k="}, "").find("no file after '='"), std::string::npos);
  EXPECT_NE(ErrorOf({"gsm8k=t.jsonl", "gsm8k=t.jsonl"}, "").find("given twice"), std::string::npos);
  EXPECT_NE(ErrorOf({"mmlu=t.jsonl"}, "").find("unknown task"), std::string::npos);
}

std::vector<TaskResult> TwoResults() {
  TaskResult arc{{EvalTask::kArc, "arc.jsonl"}, {}};
  arc.summary.items = 100;
  arc.summary.mean_score = 0.25;
  arc.summary.output_tokens = 300;
  arc.summary.seconds = 2;
  TaskResult squad{{EvalTask::kSquad, "dev.jsonl[5696:]"}, {}};
  squad.summary.items = 10;
  squad.summary.mean_score = 0.5;
  squad.summary.mean_f1 = 0.6;
  squad.summary.output_tokens = 100;
  squad.summary.seconds = 1;
  return {arc, squad};
}

TEST(MultiTaskSummary, TheMeanWeighsEachTaskOnce) {
  const auto results = TwoResults();
  EXPECT_DOUBLE_EQ(MeanTaskScore(results), 0.375);  // not (25 + 5) / 110
  EXPECT_DOUBLE_EQ(MeanTaskScore({}), 0.0);
  const nlohmann::json j = MultiTaskSummaryJson(results, "none (base model)");
  EXPECT_DOUBLE_EQ(j["mean_score"].get<double>(), 0.375);
  EXPECT_EQ(j["items"], 110);
  EXPECT_EQ(j["output_tokens"], 400);
  ASSERT_EQ(j["tasks"].size(), 2u);
  EXPECT_EQ(j["tasks"][1]["task"], "squad");
  EXPECT_DOUBLE_EQ(j["tasks"][1]["f1"].get<double>(), 0.6);
  EXPECT_FALSE(j["tasks"][0].contains("f1"));
}

TEST(MultiTaskSummary, TextHasARowPerTaskAndTheMean) {
  const std::string text = MultiTaskSummaryText(TwoResults(), "gsm8k=adapters/gsm8k");
  EXPECT_NE(text.find("arc_challenge  answer letter"), std::string::npos) << text;
  EXPECT_NE(text.find("25.0%"), std::string::npos) << text;
  EXPECT_NE(text.find("(F1 60.0%)"), std::string::npos) << text;
  EXPECT_NE(text.find("37.5%"), std::string::npos) << text;
  EXPECT_NE(text.find("adapters: gsm8k=adapters/gsm8k"), std::string::npos) << text;
  EXPECT_NE(text.find("400 answer tokens in 3.0 s"), std::string::npos) << text;
  // One task prints the single-task lines `eval` always printed.
  const std::string one = TaskSummaryText(TwoResults()[1], "none (base model)");
  EXPECT_EQ(one,
            "squad on dev.jsonl[5696:]: exact match 50.0% over 10 items (F1 60.0%)\n"
            "adapters: none (base model)\n100 answer tokens in 1.0 s\n");
}

}  // namespace
}  // namespace tokenlora::eval
