#include "eval/evaluator.h"

#include <chrono>
#include <string>

#include "core/error.h"

namespace tokenlora::eval {

EvalSummary RunEval(const Model& model, Generator& generator, const std::vector<EvalItem>& items,
                    const EvalOptions& options, LoraMixer* mixer, const ScheduleFactory& schedule_for,
                    const std::function<void(const EvalItemResult&)>& on_item) {
  const Tokenizer& tok = model.tokenizer();
  GenerateOptions g;
  g.max_new_tokens = options.limits.max_new_tokens;
  g.stop_strings = options.limits.stop_strings;
  g.max_total_tokens = options.max_total_tokens;
  g.kv_type = options.kv_type;
  g.sampling.temperature = 0;  // greedy
  EvalSummary summary;
  double f1_sum = 0;
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < items.size(); ++i) {
    const EvalItem& item = items[i];
    const auto item_start = std::chrono::steady_clock::now();
    // Tokenized as in training: the prompt alone, with BOS when the model wants one.
    const std::vector<int32_t> ids = tok.EncodeWithBos(item.prompt, /*parse_special=*/false);
    std::unique_ptr<MixtureSchedule> schedule = schedule_for ? schedule_for(item.prompt) : nullptr;
    GenerateResult r;
    try {
      r = generator.Generate(ids, g, {}, mixer, schedule.get());
    } catch (const InputError& e) {  // e.g. a prompt longer than the model's context
      throw InputError("record at line " + std::to_string(item.line) + ": " + e.what());
    }
    EvalItemResult result;
    result.index = i;
    result.line = item.line;
    result.output = r.text;
    result.score = ScoreAnswer(options.task, item.record, r.text);
    result.prompt_tokens = static_cast<int>(r.prompt_ids.size());
    result.output_tokens = static_cast<int>(r.output_ids.size());
    result.stop_reason = r.stop_reason;
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - item_start).count();
    summary.mean_score += result.score.score;
    if (result.score.f1 >= 0) f1_sum += result.score.f1;
    summary.prompt_tokens += result.prompt_tokens;
    summary.output_tokens += result.output_tokens;
    ++summary.items;
    if (on_item) on_item(result);
  }
  if (summary.items > 0) {
    summary.mean_score /= static_cast<double>(summary.items);
    if (options.task == EvalTask::kSquad) summary.mean_f1 = f1_sum / static_cast<double>(summary.items);
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace tokenlora::eval
