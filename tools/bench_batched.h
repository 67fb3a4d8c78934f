// `tokenlora bench --parallel 1,4,16`: many sequences at once on the batched
// engine, as llama.cpp's llama-batched-bench measures them (-npp prompt
// tokens and -ntg new tokens per sequence, -npl sequences): the prompts'
// throughput, then the aggregate and per-sequence decode throughput. Variants
// in the same run: the base model; with --adapter, every sequence with the
// adapters at fixed equal weights; with --router, every sequence routed on
// its own text every K tokens (the router's share of the time and the
// efficiency of its batched encoder calls against one large encoder batch).
// With --peer-batched, llama-batched-bench runs on the same file, interleaved.
#pragma once

#include <string>
#include <vector>

namespace tokenlora::cli {

struct BatchedBenchArgs {
  std::string model;  // resolved path
  std::vector<int> parallel;  // sequence counts
  int n_prompt = 64, n_gen = 64, reps = 3, threads = 0;
  std::string activations = "int8", kv_type = "f16";
  std::vector<std::string> adapters;
  std::string adapter_type = "f32", mix_mode = "exact", lora_activations = "int8";
  std::string router, embedder, route_every = "2", kv_policy = "keep", window = "whole";
  std::string embedder_precision = "auto";
  std::string prompt_file;
  std::string peer;  // llama-batched-bench
  bool json = false;
};

// "1,4,16" -> {1, 4, 16}, each 1..256; InputError naming `flag`.
std::vector<int> ParseParallelList(const std::string& text, const std::string& flag = "--parallel");

int RunBatchedBench(const BatchedBenchArgs& args);

}  // namespace tokenlora::cli
