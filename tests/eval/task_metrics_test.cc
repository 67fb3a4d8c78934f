// Task metrics vs independent references: SQuAD v1.1's normalization, exact
// match and F1 as Python computes them, and rouge-score's ROUGE-L
// (tests/golden/eval/metrics.json, made by scripts/make_golden_eval.py).
// GSM8K numbers and ARC letters are our own reading rules: hand cases.
#include "eval/task_metrics.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace tokenlora::eval {
namespace {

nlohmann::json Golden() {
  std::ifstream in(testing::SourcePath("tests/golden/eval/metrics.json"));
  return nlohmann::json::parse(in);
}

TEST(SquadMetrics, MatchTheOfficialDefinitionOnGoldenCases) {
  const nlohmann::json g = Golden();
  ASSERT_GT(g["squad"].size(), 80u);
  for (const auto& c : g["squad"]) {
    const std::string pred = c["prediction"];
    const auto refs = c["references"].get<std::vector<std::string>>();
    EXPECT_EQ(SquadNormalize(pred), c["normalized"].get<std::string>()) << pred;
    EXPECT_EQ(SquadExactMatch(pred, refs), c["exact_match"].get<double>()) << pred;
    EXPECT_NEAR(SquadF1(pred, refs), c["f1"].get<double>(), 1e-12) << pred;
  }
}

TEST(RougeL, MatchesRougeScoreOnGoldenCases) {
  const nlohmann::json g = Golden();
  ASSERT_GT(g["rouge_l"].size(), 60u);
  for (const auto& c : g["rouge_l"]) {
    const std::string pred = c["prediction"], ref = c["reference"];
    EXPECT_NEAR(RougeL(pred, ref), c["fmeasure"].get<double>(), 1e-12) << pred << " | " << ref;
  }
}

TEST(Gsm8kFinalNumber, ReadsTheMarkedNumberElseTheLastOne) {
  EXPECT_EQ(Gsm8kFinalNumber("She sold 48/2 = <<48/2=24>>24 clips.\n#### 72"), "72");
  EXPECT_EQ(Gsm8kFinalNumber("#### 1,234.50 dollars"), "1234.50");
  EXPECT_EQ(Gsm8kFinalNumber("It costs $18. Then 20 more, so 38."), "38");
  EXPECT_EQ(Gsm8kFinalNumber("The loss is -5 dollars."), "-5");
  EXPECT_EQ(Gsm8kFinalNumber("#### 5\nQuestion: 7 apples"), "5");  // the first marked answer wins
  EXPECT_EQ(Gsm8kFinalNumber("no numbers here"), std::nullopt);
  EXPECT_EQ(Gsm8kFinalNumber("#### none"), std::nullopt);
  EXPECT_TRUE(Gsm8kNumbersEqual("18", "18.00"));
  EXPECT_TRUE(Gsm8kNumbersEqual("1000", "1000"));
  EXPECT_FALSE(Gsm8kNumbersEqual("18", "19"));
  EXPECT_FALSE(Gsm8kNumbersEqual("", "19"));
}

TEST(ArcAnswerLabel, ReadsTheLeadingLabel) {
  const std::vector<std::string> letters = {"A", "B", "C", "D"};
  EXPECT_EQ(ArcAnswerLabel(" B", letters), "B");
  EXPECT_EQ(ArcAnswerLabel(" C. the sun", letters), "C");
  EXPECT_EQ(ArcAnswerLabel("(D) because", letters), "D");
  EXPECT_EQ(ArcAnswerLabel(" The answer is B.", letters), "B");
  EXPECT_EQ(ArcAnswerLabel(" Apples fall", letters), "");  // "A" starting a word is not a label
  EXPECT_EQ(ArcAnswerLabel(" E", letters), "");            // not one of the choices
  EXPECT_EQ(ArcAnswerLabel("", letters), "");
  EXPECT_EQ(ArcAnswerLabel(" 3", {"1", "2", "3", "4"}), "3");
  EXPECT_EQ(ArcAnswerLabel(" 30 degrees", {"1", "2", "3", "4"}), "");
}

}  // namespace
}  // namespace tokenlora::eval
