#include "generate/generator.h"

#include <algorithm>

#include "core/error.h"
#include "generate/scheduler.h"
#include "lora/mixer.h"

namespace tokenlora {

double GenerateResult::PrefillTokensPerSecond() const {
  return prefill_seconds > 0 ? static_cast<double>(prompt_ids.size()) / prefill_seconds : 0;
}
double GenerateResult::DecodeTokensPerSecond() const {
  return decode_seconds > 0 ? decoded_tokens / decode_seconds : 0;
}

Generator::Generator(const Model& model, ThreadPool& pool) : model_(model), pool_(pool) {}

GenerateResult Generator::Generate(const std::vector<int32_t>& prompt_ids, const GenerateOptions& options,
                                   const std::function<bool(const std::string&)>& on_text, LoraMixer* mixer,
                                   MixtureSchedule* schedule) {
  // One sequence in the batched engine: prompts run in chunks of
  // prefill_batch, one chunk per step.
  SchedulerOptions so;
  so.max_sequences = 1;
  so.max_tokens_per_step = std::max(1, options.prefill_batch);
  so.prefill_chunk = so.max_tokens_per_step;
  Scheduler scheduler(model_, pool_, mixer, so);
  SequenceRequest request;
  request.prompt_ids = prompt_ids;
  request.options = options;
  request.schedule = schedule;
  if (schedule == nullptr && mixer != nullptr && mixer->active()) request.weights = mixer->UniformWeights();
  request.on_text = on_text;
  GenerateResult result;
  request.on_done = [&result](GenerateResult&& r) { result = std::move(r); };
  scheduler.Submit(std::move(request));
  scheduler.RunUntilIdle();
  if (result.stop_reason == "error") throw InputError(result.error);
  return result;
}

}  // namespace tokenlora
