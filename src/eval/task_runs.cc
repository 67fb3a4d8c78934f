#include "eval/task_runs.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "core/error.h"

namespace tokenlora::eval {
namespace {

std::string Format(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

}  // namespace

std::vector<TaskRun> ParseTaskRuns(const std::vector<std::string>& task_args, const std::string& data) {
  if (task_args.empty()) {
    throw InputError("--task: expected a task (--task gsm8k --data FILE, or --task NAME=FILE, repeatable), got none");
  }
  std::vector<TaskRun> runs;
  std::set<std::string> seen;
  for (const std::string& arg : task_args) {
    const size_t eq = arg.find('=');
    if (eq == std::string::npos) {
      if (task_args.size() > 1) {
        throw InputError("--task " + arg + ": with several --task flags each needs its file, NAME=FILE (e.g. --task " +
                         arg + "=test.jsonl)");
      }
      if (data.empty()) {
        throw InputError("--task " + arg + ": expected held-out records: add --data FILE.jsonl, or write --task " +
                         arg + "=FILE.jsonl");
      }
      runs.push_back({ParseEvalTask(arg), data});
      continue;
    }
    if (!data.empty()) {
      throw InputError("--data " + data + ": given together with --task " + arg +
                       ", which names its own file; use one form: --task NAME --data FILE, or --task NAME=FILE");
    }
    const std::string name = arg.substr(0, eq), file = arg.substr(eq + 1);
    if (file.empty()) throw InputError("--task " + arg + ": expected NAME=FILE, got no file after '='");
    if (!seen.insert(arg).second) throw InputError("--task " + arg + ": given twice");
    runs.push_back({ParseEvalTask(name), file});
  }
  return runs;
}

double MeanTaskScore(const std::vector<TaskResult>& results) {
  if (results.empty()) return 0;
  double sum = 0;
  for (const TaskResult& r : results) sum += r.summary.mean_score;
  return sum / static_cast<double>(results.size());
}

nlohmann::json TaskSummaryJson(const TaskResult& result, const std::string& adapters) {
  const EvalSummary& s = result.summary;
  nlohmann::json j = {{"task", EvalTaskName(result.run.task)},
                      {"data", result.run.data},
                      {"metric", EvalMetricName(result.run.task)},
                      {"items", s.items},
                      {"score", s.mean_score},
                      {"adapters", adapters},
                      {"prompt_tokens", s.prompt_tokens},
                      {"output_tokens", s.output_tokens},
                      {"seconds", s.seconds}};
  if (s.mean_f1 >= 0) j["f1"] = s.mean_f1;
  return j;
}

nlohmann::json MultiTaskSummaryJson(const std::vector<TaskResult>& results, const std::string& adapters) {
  nlohmann::json tasks = nlohmann::json::array();
  size_t items = 0;
  int64_t prompt_tokens = 0, output_tokens = 0;
  double seconds = 0;
  for (const TaskResult& r : results) {
    nlohmann::json j = TaskSummaryJson(r, adapters);
    j.erase("adapters");
    tasks.push_back(std::move(j));
    items += r.summary.items;
    prompt_tokens += r.summary.prompt_tokens;
    output_tokens += r.summary.output_tokens;
    seconds += r.summary.seconds;
  }
  return {{"tasks", tasks},
          {"mean_score", MeanTaskScore(results)},
          {"items", items},
          {"adapters", adapters},
          {"prompt_tokens", prompt_tokens},
          {"output_tokens", output_tokens},
          {"seconds", seconds}};
}

std::string TaskSummaryText(const TaskResult& result, const std::string& adapters) {
  const EvalSummary& s = result.summary;
  std::string out = std::string(EvalTaskName(result.run.task)) + " on " + result.run.data + ": " +
                    EvalMetricName(result.run.task) + " " + Format("%.1f", 100 * s.mean_score) + "% over " +
                    std::to_string(s.items) + " items";
  if (s.mean_f1 >= 0) out += " (F1 " + Format("%.1f", 100 * s.mean_f1) + "%)";
  out += "\nadapters: " + adapters + "\n" + std::to_string(s.output_tokens) + " answer tokens in " +
         Format("%.1f", s.seconds) + " s\n";
  return out;
}

std::string MultiTaskSummaryText(const std::vector<TaskResult>& results, const std::string& adapters) {
  size_t name_w = 4, metric_w = 6;
  for (const TaskResult& r : results) {
    name_w = std::max(name_w, std::string(EvalTaskName(r.run.task)).size());
    metric_w = std::max(metric_w, std::string(EvalMetricName(r.run.task)).size());
  }
  auto row = [&](const std::string& name, const std::string& metric, const std::string& score,
                 const std::string& items, const std::string& data) {
    char buf[1024];
    std::snprintf(buf, sizeof buf, "%-*s  %-*s  %7s  %6s  %s\n", static_cast<int>(name_w), name.c_str(),
                  static_cast<int>(metric_w), metric.c_str(), score.c_str(), items.c_str(), data.c_str());
    return std::string(buf);
  };
  std::string out = row("task", "metric", "score", "items", "data");
  size_t items = 0;
  int64_t output_tokens = 0;
  double seconds = 0;
  for (const TaskResult& r : results) {
    std::string score = Format("%.1f%%", 100 * r.summary.mean_score);
    std::string data = r.run.data;
    if (r.summary.mean_f1 >= 0) data += "  (F1 " + Format("%.1f%%", 100 * r.summary.mean_f1) + ")";
    out += row(EvalTaskName(r.run.task), EvalMetricName(r.run.task), score, std::to_string(r.summary.items), data);
    items += r.summary.items;
    output_tokens += r.summary.output_tokens;
    seconds += r.summary.seconds;
  }
  out += row("mean", "", Format("%.1f%%", 100 * MeanTaskScore(results)), std::to_string(items),
             "(unweighted: each task counts once)");
  out += "adapters: " + adapters + "\n" + std::to_string(output_tokens) + " answer tokens in " +
         Format("%.1f", seconds) + " s\n";
  return out;
}

}  // namespace tokenlora::eval
