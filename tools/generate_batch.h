// `tokenlora generate -f FILE.jsonl --parallel N`: many prompts through the
// batched engine, each line with its own mixture, limits and sampling.
//
// A line: {"prompt": "...", plus optional "id" (echoed), "mix" ({adapter:
// weight}; {} = the base alone), "router" (a router file, loaded once per
// path), "route_every" (K or "prompt"), "kv_policy" ("keep"/"recompute"),
// "max_tokens", "temperature", "top_p", "top_k", "seed", "stop" (a string
// or a list), "trace" (true: the per-token weights of a routed line)}. A
// line without "mix"/"router" uses the command's flags. Output: one JSON
// line per input line, in input order, as soon as every line before it is
// done: {"line", "id"?, "text", "stop_reason", "prompt_tokens",
// "output_tokens", "trace"?}.
#pragma once

#include <string>

#include "core/thread_pool.h"
#include "generate/generator.h"
#include "generate/scheduler.h"
#include "mixture_args.h"
#include "model/model.h"

namespace tokenlora::cli {

struct BatchGenerateArgs {
  std::string file;
  SchedulerOptions scheduler;
  GenerateOptions defaults;  // the command's flags; a line may override some
  bool chat = false;
  std::string system;
  bool progress = true;
};

// Validates every line before generating anything (InputError naming the
// file, line and field), then runs them all and prints the results to
// stdout. Returns the exit code.
int RunGenerateBatch(const BatchGenerateArgs& args, const Model& model, ThreadPool& pool, MixtureSetup& mixture);

// Whether `path` names a JSONL batch file (its name ends in ".jsonl").
bool IsBatchFile(const std::string& path);

}  // namespace tokenlora::cli
