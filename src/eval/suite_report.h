// What a suite run produced, and its outputs: the paper-shaped table
// (configurations × tasks + the mean), the same as JSON, an SVG bar chart,
// and the router's confusion matrix per routed configuration. Pure
// functions of the scores; the runner (tools/eval_suite.cc) fills them in.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "eval/claims.h"
#include "eval/task_eval.h"

namespace tokenlora::eval {

// One configuration × task × decoding run ("greedy" or "seed<N>").
struct SuiteRunResult {
  std::vector<double> scores;         // [items] in item order
  std::vector<std::string> top_task;  // [items] routed: the router task of largest mean weight; else empty
  std::vector<std::string> tasks;     // the router's tasks (routed runs)
  int64_t output_tokens = 0;
  double seconds = 0;                 // generation time of the items run now (0: all from the cache)
};

struct SuiteTable {
  std::string suite, model;
  std::vector<EvalTask> tasks;
  std::vector<std::string> configurations;
  std::vector<std::string> decodings;  // "greedy", "sampled"
  std::vector<uint64_t> seeds;         // of "sampled"
  float temperature = 0.9f;
  int top_k = 0;       // of "sampled"; 0: off
  float top_p = 1.0f;  // of "sampled"; 1: off
  std::map<std::string, SuiteRunResult> runs;  // by RunKey

  static std::string RunKey(const std::string& config, EvalTask task, const std::string& run);
  // The run names of a decoding: {"greedy"} or {"seed1", ...}.
  std::vector<std::string> RunsOf(const std::string& decoding) const;
  const SuiteRunResult* Find(const std::string& config, EvalTask task, const std::string& run) const;
  // Per-item scores under `decoding` (sampled: the mean over its seeds), or
  // nullopt when a run is missing.
  std::optional<std::vector<double>> ItemScores(const std::string& config, EvalTask task,
                                                const std::string& decoding) const;

  struct Cell {
    bool present = false;
    double mean = 0, sd = 0;  // sampled: over the seeds' task scores
    size_t items = 0;
  };
  Cell At(const std::string& config, EvalTask task, const std::string& decoding) const;
  // The unweighted mean over the tasks (sampled: mean ± sd over the seeds of
  // each seed's task mean); not present unless every task is.
  Cell Mean(const std::string& config, const std::string& decoding) const;
};

// Rows: configurations; columns: the tasks and their mean; "-" where not run.
std::string TableMarkdown(const SuiteTable& table, const std::string& decoding);
// The router's top task vs the item's task, per routed configuration of `decoding`.
std::string ConfusionMarkdown(const SuiteTable& table, const std::string& decoding);
// Grouped bars: one group per task (and the mean), one bar per configuration
// in `configs` (empty: all); sampled runs get a ±sd whisker.
std::string ChartSvg(const SuiteTable& table, const std::string& decoding, const std::vector<std::string>& configs);
// Everything as JSON: per decoding the table cells, the confusion matrices
// and `claims` (by decoding).
nlohmann::json SuiteJson(const SuiteTable& table, const std::map<std::string, std::vector<ClaimReport>>& claims);

}  // namespace tokenlora::eval
