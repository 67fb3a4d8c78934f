// One generation: prefill the prompt, then sample token by token until EOS,
// a stop string, or the token limit. Streams valid UTF-8 text to a callback.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/thread_pool.h"
#include "generate/sampler.h"
#include "model/llama/forward.h"
#include "model/model.h"

namespace tokenlora {

struct GenerateOptions {
  int max_new_tokens = 128;
  SamplerParams sampling;
  std::vector<std::string> stop_strings;
  int ctx_size = 0;             // 0: prompt + max_new_tokens, capped by the model's context
  bool stop_at_eos = true;
  int prefill_batch = 256;
  // Stop once prompt + output hold this many tokens; 0: no such limit. (The
  // paper's reference code generates until 256 tokens in all.)
  int max_total_tokens = 0;
  // KV cache elements: kF32 (exact) or kF16 (half the memory and traffic;
  // the CLI's default, as llama.cpp's).
  DType kv_type = DType::kF32;
};

// Changes the projection hook's weights while a generation runs (token-level
// adapter routing: src/generate/token_routing.h). The generator calls it
// before each forward pass and after each sampled token.
class MixtureSchedule {
 public:
  virtual ~MixtureSchedule() = default;
  // Before the forward pass whose logits pick new token `step` (step 0: the
  // prompt's prefill). `output_text`: what was generated so far, as decoded
  // (before stop strings are cut). Returns true when it changed the hook's
  // weights.
  virtual bool BeforeStep(int step, std::string_view output_text) = 0;
  // Token `step` was sampled; `piece` is the text it completed (may be empty
  // inside a UTF-8 character). Not called for an end-of-generation token.
  virtual void AfterToken(int step, int32_t token, std::string_view piece) {}
  // When the weights change: false keeps every past key/value as computed
  // under the weights of its own step; true re-runs the whole text under the
  // new weights (what the reference does: no KV cache).
  virtual bool recompute_past() const { return false; }
};

struct GenerateResult {
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> output_ids;
  std::string text;             // the output (stop string removed)
  std::string stop_reason;      // "eos", "stop_string", "length"
  double prefill_seconds = 0;
  double decode_seconds = 0;     // includes the schedule's time (routing)
  int decoded_tokens = 0;       // tokens run through the decode loop
  int recomputed_tokens = 0;    // tokens re-run because the mixture changed (recompute_past)
  double PrefillTokensPerSecond() const;
  double DecodeTokensPerSecond() const;
};

class Generator {
 public:
  Generator(const Model& model, ThreadPool& pool);

  // `on_text` receives each new piece of text as soon as it is final (never
  // splitting a UTF-8 character or a possible stop string); returning false
  // stops generation. Throws InputError for an over-long prompt. `schedule`
  // (optional) may change `hook`'s weights between steps.
  GenerateResult Generate(const std::vector<int32_t>& prompt_ids, const GenerateOptions& options,
                          const std::function<bool(const std::string&)>& on_text = {},
                          const ProjectionHook* hook = nullptr, MixtureSchedule* schedule = nullptr);

 private:
  const Model& model_;
  ThreadPool& pool_;
};

}  // namespace tokenlora
