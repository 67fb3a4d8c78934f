// Several tasks in one `tokenlora eval` run: which tasks on which files
// (--task NAME --data FILE, or --task NAME=FILE as often as wanted), and one
// summary over all of them (a row per task and the unweighted mean).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/evaluator.h"
#include "eval/task_eval.h"

namespace tokenlora::eval {

struct TaskRun {
  EvalTask task;
  std::string data;  // FILE.jsonl, optionally sliced: FILE.jsonl[:100]
};

// The runs that --task values and --data ask for: one "NAME" with `data`, or
// any number of "NAME=FILE" with `data` empty. InputError naming the flag
// for anything else (no task, a NAME without a file, NAME=FILE with --data,
// an unknown task, the same NAME=FILE twice).
std::vector<TaskRun> ParseTaskRuns(const std::vector<std::string>& task_args, const std::string& data);

struct TaskResult {
  TaskRun run;
  EvalSummary summary;
};

// The unweighted mean of the tasks' scores (each task counts once, however
// many items it has); 0 for no tasks.
double MeanTaskScore(const std::vector<TaskResult>& results);

// One task's summary as `eval --json` prints it.
nlohmann::json TaskSummaryJson(const TaskResult& result, const std::string& adapters);
// Several tasks: {"tasks": [per task as above], "mean_score", "items",
// "prompt_tokens", "output_tokens", "seconds", "adapters"}.
nlohmann::json MultiTaskSummaryJson(const std::vector<TaskResult>& results, const std::string& adapters);

// One task's summary lines as `eval` prints them.
std::string TaskSummaryText(const TaskResult& result, const std::string& adapters);
// Several tasks: a table, a row per task and a mean row, then the adapters
// and the totals.
std::string MultiTaskSummaryText(const std::vector<TaskResult>& results, const std::string& adapters);

}  // namespace tokenlora::eval
