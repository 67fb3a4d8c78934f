// Held-out accuracy of a model (plus adapters) on one of the paper's tasks:
// each record's prompt is its built-in template up to "Answer:" (what the
// adapters were trained on), the model answers greedily, and the answer is
// scored by the task's usual metric (eval/task_metrics.h).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace tokenlora::eval {

enum class EvalTask { kGsm8k, kArc, kSquad, kCodeAlpaca };

// "gsm8k", "arc_challenge", "squad", "codealpaca"; InputError listing them otherwise.
EvalTask ParseEvalTask(std::string_view name);
const char* EvalTaskName(EvalTask task);
// What the score means: "exact final number", "answer letter", "exact match", "ROUGE-L F".
const char* EvalMetricName(EvalTask task);

// How long an answer may get and where it ends (besides end-of-sequence).
struct AnswerLimits {
  int max_new_tokens;
  std::vector<std::string> stop_strings;
};
AnswerLimits DefaultAnswerLimits(EvalTask task);

struct EvalItem {
  int64_t line = 0;          // 1-based line in the file
  std::string prompt;        // template text up to and including "Answer:"
  nlohmann::json record;
};

// Records of FILE.jsonl or FILE.jsonl[SLICE] (Hugging Face split syntax):
// every `stride`-th record of the slice (1: all; e.g. spread 100 items over
// a file ordered by topic), at most `limit` of them (< 0: no limit).
// InputError "FILE:LINE: ..." for a record that is not JSON or lacks a
// field the task needs.
std::vector<EvalItem> LoadEvalItems(const std::string& file_with_slice, EvalTask task, int64_t limit,
                                    int64_t stride = 1);

struct ItemScore {
  double score = 0;        // 0..1 (exact tasks: 0 or 1)
  std::string predicted;   // what was read from the output (number, label, answer line)
  std::string reference;   // what it was compared with
  double f1 = -1;          // SQuAD token F1 (else -1)
};
// Scores `output` (the text generated after the prompt) for `record`.
ItemScore ScoreAnswer(EvalTask task, const nlohmann::json& record, std::string_view output);

}  // namespace tokenlora::eval
