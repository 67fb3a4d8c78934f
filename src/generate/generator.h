// One generation: prefill the prompt, then sample token by token until EOS,
// a stop string, or the token limit. Streams valid UTF-8 text to a callback.
// A generation is the one-sequence case of the batched engine
// (generate/scheduler.h): the same Sequence and Scheduler run it.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/thread_pool.h"
#include "generate/mixture_schedule.h"
#include "generate/sampler.h"
#include "model/model.h"

namespace tokenlora {

struct GenerateOptions {
  int max_new_tokens = 128;
  SamplerParams sampling;
  std::vector<std::string> stop_strings;
  int ctx_size = 0;             // 0: prompt + max_new_tokens, capped by the model's context
  bool stop_at_eos = true;
  // The reference code's loop (jb-01/LoRA-TLE): after every token the text
  // (prompt + output) is decoded and tokenized again from scratch, so e.g.
  // two "\n" tokens can come back as one "\n\n"; when the ids change, the
  // whole text is run again on the new ids. With stop_at_eos false an
  // end-of-generation token is dropped as the reference's decoding drops it
  // (the text stays as it was): greedy decoding would pick it again at every
  // step until the total limit, so the sequence ends there with that text;
  // sampled decoding draws again from the same logits (what the next step
  // would compute).
  bool retokenize = false;
  int prefill_batch = 256;
  // Stop once prompt + output hold this many tokens; 0: no such limit. (The
  // paper's reference code generates until 256 tokens in all.)
  int max_total_tokens = 0;
  // KV cache elements: kF32 (exact) or kF16 (half the memory and traffic;
  // the CLI's default, as llama.cpp's).
  DType kv_type = DType::kF32;
};

struct GenerateResult {
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> output_ids;
  std::string text;             // the output (stop string removed)
  std::string stop_reason;      // "eos", "stop_string", "length", "context_full", "cancelled", "error"
  std::string error;            // with "error": what went wrong (an InputError's message)
  double prefill_seconds = 0;
  double decode_seconds = 0;     // includes the schedule's time (routing)
  int decoded_tokens = 0;       // tokens run through the decode loop
  int recomputed_tokens = 0;    // tokens re-run because the mixture changed (recompute_past)
  double PrefillTokensPerSecond() const;
  double DecodeTokensPerSecond() const;
};

class LoraMixer;

class Generator {
 public:
  Generator(const Model& model, ThreadPool& pool);

  // `on_text` receives each new piece of text as soon as it is final (never
  // splitting a UTF-8 character or a possible stop string); returning false
  // stops generation (stop_reason "cancelled"). Throws InputError for an
  // over-long prompt. `mixer` (optional): the adapters; without `schedule`
  // the weights set on it now apply to every token, with one the schedule
  // picks them between steps.
  GenerateResult Generate(const std::vector<int32_t>& prompt_ids, const GenerateOptions& options,
                          const std::function<bool(const std::string&)>& on_text = {},
                          LoraMixer* mixer = nullptr, MixtureSchedule* schedule = nullptr);

 private:
  const Model& model_;
  ThreadPool& pool_;
};

}  // namespace tokenlora
