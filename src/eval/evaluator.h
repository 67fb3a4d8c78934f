// Runs a model (with a fixed adapter mixture, or token-level routing) over
// held-out task items, greedily, and scores every answer.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "eval/task_eval.h"
#include "generate/generator.h"
#include "lora/mixer.h"
#include "model/model.h"

namespace tokenlora::eval {

struct EvalOptions {
  EvalTask task = EvalTask::kGsm8k;
  AnswerLimits limits = DefaultAnswerLimits(EvalTask::kGsm8k);
  // Prompt + answer cap (the paper's reference: 256); 0: none. As in the
  // reference's loop, a prompt already at the cap still gets one token.
  int max_total_tokens = 0;
  DType kv_type = DType::kF32;  // KV cache elements (GenerateOptions::kv_type)
  // Items generated at once on the batched engine; the predictions do not
  // depend on it (each item runs as it would alone).
  int parallel = 1;
  // Fixed mixture by adapter-bank slot for items without a schedule; not
  // given: the mixer's current mixture (LoraMixer::UniformWeights).
  std::optional<std::vector<float>> weights;
  // How the rows' adapters combine; not given: the mixer's mode.
  std::optional<MixMode> mix_mode;
  // Greedy at temperature 0; above, item i samples with seed `seed` + i, so
  // its output does not depend on `parallel`.
  float temperature = 0;
  int top_k = 0;       // sampled only; 0: off
  float top_p = 1.0f;  // sampled only; 1: off
  uint64_t seed = 0;
  // The reference code's loop (GenerateOptions::retokenize, stop_at_eos).
  bool retokenize = false;
  bool stop_at_eos = true;
};

struct EvalItemResult {
  size_t index = 0;     // in the item list
  int64_t line = 0;     // in the file
  std::string output;   // the generated answer (stop string removed)
  ItemScore score;
  int prompt_tokens = 0;
  int output_tokens = 0;
  std::string stop_reason;
  double seconds = 0;
  // Token-level routing: each router task's weight averaged over the item's
  // routed steps ([n_tasks], router task order; empty without routing).
  std::vector<float> mean_weights;
};

// One item's line of a predictions file (`eval -o`) and of the suite's
// cache: index, line, output, predicted, reference, score, prompt_tokens,
// output_tokens, stop, and f1 where the metric has one.
nlohmann::json EvalItemResultJson(const EvalItemResult& r);

struct EvalSummary {
  size_t items = 0;
  double mean_score = 0;  // the task metric, 0..1
  double mean_f1 = -1;    // SQuAD only
  int64_t prompt_tokens = 0, output_tokens = 0;
  double seconds = 0;
};

// Makes the mixture schedule for one item's prompt (token-level routing), or
// returns nullptr for a fixed mixture.
using ScheduleFactory = std::function<std::unique_ptr<MixtureSchedule>(const std::string& prompt)>;

// `mixer`: the adapters (nullptr: the base model). `on_item` sees each result
// once it and every item before it are scored, in item order (progress, a
// predictions file).
EvalSummary RunEval(const Model& model, ThreadPool& pool, const std::vector<EvalItem>& items,
                    const EvalOptions& options, LoraMixer* mixer, const ScheduleFactory& schedule_for,
                    const std::function<void(const EvalItemResult&)>& on_item);

}  // namespace tokenlora::eval
