// One generation: prefill the prompt, then sample token by token until EOS,
// a stop string, or the token limit. Streams valid UTF-8 text to a callback.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
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
};

struct GenerateResult {
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> output_ids;
  std::string text;             // the output (stop string removed)
  std::string stop_reason;      // "eos", "stop_string", "length"
  double prefill_seconds = 0;
  double decode_seconds = 0;
  int decoded_tokens = 0;       // tokens run through the decode loop
  double PrefillTokensPerSecond() const;
  double DecodeTokensPerSecond() const;
};

class Generator {
 public:
  Generator(const Model& model, ThreadPool& pool);

  // `on_text` receives each new piece of text as soon as it is final (never
  // splitting a UTF-8 character or a possible stop string); returning false
  // stops generation. Throws InputError for an over-long prompt.
  GenerateResult Generate(const std::vector<int32_t>& prompt_ids, const GenerateOptions& options,
                          const std::function<bool(const std::string&)>& on_text = {},
                          const ProjectionHook* hook = nullptr);

 private:
  const Model& model_;
  ThreadPool& pool_;
};

}  // namespace tokenlora
