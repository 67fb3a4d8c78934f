// `tokenlora bench --router R ...`: the cost of token-level routing. The
// same greedy generation (prompt of -p tokens, -n new tokens, EOS ignored)
// runs with the adapter weights fixed at the prompt's routing and with
// routing every K tokens, interleaved rep by rep; it reports the time ratio,
// router milliseconds per call and the router's share of the time.
#pragma once

#include <string>
#include <vector>

namespace tokenlora::cli {

struct RoutingBenchArgs {
  std::string model;  // resolved path
  std::vector<std::string> adapters;
  std::string adapter_type = "f32", mix_mode = "exact", lora_activations = "int8";
  std::string router, embedder, route_every = "2", kv_policy = "keep", window = "whole";
  std::string embedder_precision = "auto";
  std::string prompt_file;  // text to cut the prompt from ("" = built-in passage)
  int n_prompt = 100, n_gen = 128, reps = 3, threads = 0;
  std::string activations = "int8";  // --activations
  std::string kv_type = "f16";       // --kv-type
  bool json = false;
};

int RunRoutingBench(const RoutingBenchArgs& args);

// The benchmarks' default prompt text: ordinary English mixing the four
// tasks' topics.
const char* BenchPassage();

}  // namespace tokenlora::cli
