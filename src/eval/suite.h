// An evaluation suite: tasks × configurations × decodings, as
// `tokenlora eval --suite paper|FILE.json` runs it. The built-in `paper`
// suite is the seed paper's table (Belofsky 2023): the base model, every
// adapter on every task, the uniform mix (exact, and the reference's
// PEFT 0.4 linear merge at weights 1), prompt-level routing, token-level
// routing every k = 1..4 tokens, k = 2 with the past recomputed, the routed
// runs again with the reference's merge, and the reference's own loop
// (re-tokenized text, no end-of-text stop, 256 tokens in all, ARC centroid
// from train + test), and beyond the paper routed-k2 on the whitened router
// (adapters/router-whitened.json, router/whitening.h) — greedy, and sampled
// as the reference's pipeline sampled (temperature 0.9, top-k 50, top-p 0.9:
// see PaperSuiteJson) over 3 seeds.
//
// A suite file is JSON:
//   {"name": "mine",
//    "limit": 200,                           // items per task (optional)
//    "tasks": {"gsm8k": {"data": "gsm8k/test.jsonl", "every": 1, "limit": 50}, ...},
//    "adapters": {"gsm8k": "adapters/gsm8k", ...},  // NAME: PEFT dir or .gguf
//    "router": "adapters/router.json",       // for routed configurations
//    "sampling": {"temperature": 0.9, "top_k": 50, "top_p": 0.9, "seeds": [1, 2, 3]},
//    "decodings": ["greedy", "sampled"],
//    "configurations": [
//      {"name": "base"},
//      {"name": "adapter-gsm8k", "mix": {"gsm8k": 1}},
//      {"name": "routed-k2", "route_every": 2},
//      {"name": "reference-k2", "route_every": 2, "kv_policy": "recompute",
//       "mix_mode": "peft04-linear", "retokenize": true, "stop_at_eos": false,
//       "max_total": 256, "router": "router-arc-train-test.json"}],
//    "claims": {"base": "base", "routed": "routed-k2",
//               "own_adapter": {"gsm8k": "adapter-gsm8k", ...},
//               "every_k": {"1": "routed-k1", "2": "routed-k2", ...}, "best_k": 2,
//               "also_routed": ["routed-k2-whitened"]}}   // optional: (a), (b) for these too
// Task data paths are relative to the data folder (scripts/data_dir.py's
// rule), adapter and router paths to the suite file's folder (the built-in
// suite: the checkout). Every field is checked; an unknown one is an error
// naming it.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "eval/task_eval.h"

namespace tokenlora::eval {

struct SuiteTask {
  EvalTask task;
  std::string data;     // FILE.jsonl[SLICE], relative to the data folder unless absolute
  int64_t every = 1;    // every K-th record of the slice
  int64_t limit = -1;   // < 0: the suite's limit
};

// One row of the table: which adapters at which weights, or routed.
struct SuiteConfiguration {
  std::string name;  // unique; letters, digits, '-', '_', '.', ':'
  // Fixed weights {adapter: weight}; empty with no route_every: the base model.
  std::vector<std::pair<std::string, float>> mix;
  std::optional<std::string> route_every;  // "K" or "prompt": token-level routing over every adapter
  std::string kv_policy = "keep";          // routed: keep or recompute
  std::string mix_mode = "exact";          // exact, peft-linear or peft04-linear
  std::string route_policy;                // routed: paper (default), softmax, top-k
  std::string router;                      // routed: this router instead of the suite's
  bool retokenize = false;                 // GenerateOptions::retokenize
  bool stop_at_eos = true;
  int max_total = 0;                       // prompt + answer cap in tokens; 0: none

  bool routed() const { return route_every.has_value(); }
  bool base() const { return !routed() && mix.empty(); }
};

struct SuiteSampling {
  float temperature = 0.9f;
  int top_k = 0;       // 0: off
  float top_p = 1.0f;  // 1: off
  std::vector<uint64_t> seeds = {1, 2, 3};
};

// Which configurations the claims compare (names in `configurations`).
struct SuiteClaims {
  std::string base, routed;
  std::map<std::string, std::string> own_adapter;  // task name -> configuration
  std::map<int, std::string> every_k;              // k -> configuration
  int best_k = 2;
  // Beyond the paper: (a) and (b) tested again for each of these routed
  // configurations (claims "a, NAME" and "b, NAME").
  std::vector<std::string> also_routed;
};

struct Suite {
  std::string name;
  int64_t limit = 200;
  std::vector<SuiteTask> tasks;
  std::vector<std::pair<std::string, std::string>> adapters;  // name -> path
  std::string router;
  SuiteSampling sampling;
  std::vector<std::string> decodings = {"greedy"};  // "greedy", "sampled"
  std::vector<SuiteConfiguration> configurations;
  std::optional<SuiteClaims> claims;

  const SuiteConfiguration* Find(const std::string& name) const;
};

// Reads a suite from JSON; `where` names its source in errors ("suite.json").
// Relative adapter/router paths are resolved against `base_dir`. InputError
// naming the field, what was expected and what came.
Suite ParseSuite(const nlohmann::json& j, const std::string& where, const std::string& base_dir);
// `paper`, or a FILE.json (InputError when it cannot be read or parsed).
// `checkout`: where the built-in suite's adapters/ live.
Suite LoadSuite(const std::string& name_or_file, const std::string& checkout);
// The built-in paper suite as JSON (paths relative to the checkout).
nlohmann::json PaperSuiteJson();

// Keeps the configurations named in `names` (comma-separated; "" keeps all),
// the decodings in `decodings` and the tasks in `tasks` (same). InputError
// naming an unknown one.
void SelectFromSuite(Suite& suite, const std::string& names, const std::string& decodings,
                     const std::string& tasks = "");

}  // namespace tokenlora::eval
