// `tokenlora eval --suite paper|FILE.json`: every configuration of a suite
// (eval/suite.h) on every task, greedy and sampled, with one model load; the
// per-item cache under OUT/items makes an interrupted run resume and a later
// run add configurations. Writes OUT/table.md (tables, claims, router
// confusion), OUT/results.json, OUT/chart-DECODING.svg, and prints the table
// (or the JSON with --json).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tokenlora::cli {

struct SuiteRunArgs {
  std::string suite;                 // "paper" or FILE.json
  std::string out_dir;               // empty: eval-SUITE in the working directory
  std::string model;                 // empty: the built-in model
  std::string data_dir;              // empty: DefaultDataDir()
  std::string configs, decodings, tasks;  // comma-separated subsets; empty: all
  std::vector<std::string> adapters; // NAME=PATH replacing the suite's adapters
  std::string router;                // replacing the suite's router
  std::string activations = "int8", kv_type = "f16", adapter_type = "f32", lora_activations = "int8";
  std::string embedder, embedder_precision = "auto";
  int64_t limit = -1;                // items per task; < 0: the suite's
  int threads = 0, parallel = 8;
  bool json = false, quiet = false;
  // Only report what the cache holds: nothing is generated, and a run with
  // items missing is left out of the table (named on stderr).
  bool report_only = false;
};

// Runs the suite; returns the exit code. InputError for bad suites or files.
int RunSuite(const SuiteRunArgs& args);

}  // namespace tokenlora::cli
