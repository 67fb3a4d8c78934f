#include "eval/evaluator.h"

#include <chrono>
#include <string>

#include "core/error.h"
#include "generate/scheduler.h"
#include "generate/token_routing.h"

namespace tokenlora::eval {
namespace {

// Each task's weight averaged over the steps that generated a token.
std::vector<float> MeanRoutedWeights(const TokenRouting& routing) {
  std::vector<float> mean(routing.task_names().size(), 0.0f);
  const std::vector<RoutingTraceStep>& trace = routing.trace();
  if (trace.empty()) return routing.current_weights();  // no token: what the prompt routed to
  for (const RoutingTraceStep& step : trace) {
    for (size_t t = 0; t < mean.size() && t < step.weights.size(); ++t) mean[t] += step.weights[t];
  }
  for (float& w : mean) w /= static_cast<float>(trace.size());
  return mean;
}

}  // namespace

EvalSummary RunEval(const Model& model, ThreadPool& pool, const std::vector<EvalItem>& items,
                    const EvalOptions& options, LoraMixer* mixer, const ScheduleFactory& schedule_for,
                    const std::function<void(const EvalItemResult&)>& on_item) {
  const Tokenizer& tok = model.tokenizer();
  GenerateOptions g;
  g.max_new_tokens = options.limits.max_new_tokens;
  g.stop_strings = options.limits.stop_strings;
  g.max_total_tokens = options.max_total_tokens;
  g.kv_type = options.kv_type;
  g.sampling.temperature = options.temperature;  // 0: greedy
  g.sampling.top_k = options.top_k;
  g.sampling.top_p = options.top_p;
  g.retokenize = options.retokenize;
  g.stop_at_eos = options.stop_at_eos;
  // Prompt chunks as Generator::Generate runs them (prefill_batch), so a
  // prediction is the same at any parallelism.
  SchedulerOptions so;
  so.max_sequences = std::max(1, options.parallel);
  so.prefill_chunk = g.prefill_batch;
  so.max_tokens_per_step = 2 * g.prefill_batch;  // a prompt chunk beside the decodes
  Scheduler scheduler(model, pool, mixer, so);
  const std::vector<float> weights =
      options.weights ? *options.weights : (mixer != nullptr ? mixer->UniformWeights() : std::vector<float>{});

  EvalSummary summary;
  double f1_sum = 0;
  const auto start = std::chrono::steady_clock::now();
  std::vector<EvalItemResult> results(items.size());
  std::vector<std::unique_ptr<MixtureSchedule>> schedules(items.size());
  std::vector<bool> done(items.size(), false);
  std::vector<std::chrono::steady_clock::time_point> submitted(items.size());
  size_t reported = 0, next = 0;
  std::string error;
  auto submit = [&](size_t i) {
    const EvalItem& item = items[i];
    SequenceRequest r;
    // Tokenized as in training: the prompt alone, with BOS when the model wants one.
    r.prompt_ids = tok.EncodeWithBos(item.prompt, /*parse_special=*/false);
    r.options = g;
    if (g.max_total_tokens > 0 && r.prompt_ids.size() >= static_cast<size_t>(g.max_total_tokens)) {
      // The reference's loop checks its total before each step, the first
      // included, after running it once: a prompt past the total gets one token.
      r.options.max_total_tokens = 0;
      r.options.max_new_tokens = 1;
    }
    r.options.sampling.seed = options.seed + i;
    r.mix_mode = options.mix_mode;
    schedules[i] = schedule_for ? schedule_for(item.prompt) : nullptr;
    r.schedule = schedules[i].get();
    if (r.schedule == nullptr) r.weights = weights;
    submitted[i] = std::chrono::steady_clock::now();
    r.on_done = [&, i](GenerateResult&& gr) {
      const EvalItem& it = items[i];
      if (gr.stop_reason == "error" && error.empty()) {
        error = "record at line " + std::to_string(it.line) + ": " + gr.error;
      }
      EvalItemResult& result = results[i];
      result.index = i;
      result.line = it.line;
      result.output = gr.text;
      result.score = ScoreAnswer(options.task, it.record, gr.text);
      result.prompt_tokens = static_cast<int>(gr.prompt_ids.size());
      result.output_tokens = static_cast<int>(gr.output_ids.size());
      result.stop_reason = gr.stop_reason;
      result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - submitted[i]).count();
      if (const auto* routing = dynamic_cast<const TokenRouting*>(schedules[i].get())) {
        result.mean_weights = MeanRoutedWeights(*routing);
      }
      schedules[i].reset();
      done[i] = true;
    };
    try {
      scheduler.Submit(std::move(r));
    } catch (const InputError& e) {  // e.g. a prompt longer than the model's context
      throw InputError("record at line " + std::to_string(item.line) + ": " + e.what());
    }
  };
  // Items enter as slots free up (at most `parallel` waiting beyond the
  // running ones), so schedules and prompts are not all held at once.
  while (reported < items.size()) {
    while (next < items.size() && scheduler.n_waiting() + scheduler.n_running() < static_cast<size_t>(so.max_sequences)) {
      submit(next++);
    }
    scheduler.Step();
    if (!error.empty()) throw InputError(error);
    while (reported < items.size() && done[reported]) {
      const EvalItemResult& result = results[reported];
      summary.mean_score += result.score.score;
      if (result.score.f1 >= 0) f1_sum += result.score.f1;
      summary.prompt_tokens += result.prompt_tokens;
      summary.output_tokens += result.output_tokens;
      ++summary.items;
      if (on_item) on_item(result);
      ++reported;
    }
  }
  if (summary.items > 0) {
    summary.mean_score /= static_cast<double>(summary.items);
    if (options.task == EvalTask::kSquad) summary.mean_f1 = f1_sum / static_cast<double>(summary.items);
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

nlohmann::json EvalItemResultJson(const EvalItemResult& r) {
  nlohmann::json j = {{"index", r.index},
                      {"line", r.line},
                      {"output", r.output},
                      {"predicted", r.score.predicted},
                      {"reference", r.score.reference},
                      {"score", r.score.score},
                      {"prompt_tokens", r.prompt_tokens},
                      {"output_tokens", r.output_tokens},
                      {"stop", r.stop_reason}};
  if (r.score.f1 >= 0) j["f1"] = r.score.f1;
  return j;
}

}  // namespace tokenlora::eval
