// One sequence of the batched engine: plain state that a Scheduler drives
// step by step (vLLM's sequence, llama-server's slot). It holds its prompt,
// its KV cache once admitted, its sampler and seed, stop strings, streaming
// UTF-8 decoder and token limits, and its mixture: none (the base model),
// fixed weights over any of the loaded adapters, or a schedule (token-level
// routing) with its own route-every, policy, window and KV policy.
//
// Life: waiting → running (admitted: cache allocated; the feed, the tokens
// to run next, is the prompt, run in chunks) → each time the feed's last
// chunk has run, its logits pick a token, and the feed becomes that token
// (or the whole text again, when a recompute schedule changed the weights)
// → finished (EOS, stop string, limit, full context, or cancelled): the
// cache is freed at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "generate/generator.h"
#include "generate/mixture_schedule.h"
#include "generate/sampler.h"
#include "lora/mixer.h"
#include "model/llama/kv_cache.h"
#include "model/model.h"

namespace tokenlora {

// What a caller asks the scheduler to generate.
struct SequenceRequest {
  std::vector<int32_t> prompt_ids;
  GenerateOptions options;  // prefill_batch is the scheduler's (SchedulerOptions::prefill_chunk)
  // Fixed mixture by adapter-bank slot ([n_slots]; empty: the base model).
  // Ignored when a schedule is given.
  std::vector<float> weights;
  // How the adapters of a row are mixed (LoraMixer); not given: the mixer's mode.
  std::optional<MixMode> mix_mode;
  // Token-level schedule: `schedule` (not owned; must outlive the sequence)
  // or `owned_schedule`.
  MixtureSchedule* schedule = nullptr;
  std::unique_ptr<MixtureSchedule> owned_schedule;
  // Each final piece of text; returning false cancels the sequence.
  std::function<bool(const std::string&)> on_text;
  // Called once when the sequence ends (also when cancelled): its result.
  std::function<void(GenerateResult&&)> on_done;
  // Optional: each output token with the raw logits of its step ([vocab],
  // before the sampler's transforms), e.g. for log-probabilities; not called
  // for an end-of-generation token. Costs a copy of the row per token when set.
  std::function<void(int32_t token, std::span<const float> logits)> on_token;
};

using SequenceId = int64_t;

class Sequence {
 public:
  Sequence(SequenceId id, SequenceRequest request, const Model& model, int ctx_size);

  SequenceId id() const { return id_; }
  bool running() const { return kv_ != nullptr; }
  bool finished() const { return finished_; }
  int ctx_size() const { return ctx_size_; }
  const GenerateOptions& options() const { return request_.options; }
  MixtureSchedule* schedule() const { return schedule_; }
  // The weights of the current step by bank slot (empty: the base model).
  std::span<const float> weights() const;
  const std::optional<MixMode>& mix_mode() const { return request_.mix_mode; }

  // Admission: the cache is the sequence's until it finishes.
  void Admit(std::unique_ptr<KvCache> kv, std::chrono::steady_clock::time_point now);
  KvCache& kv() { return *kv_; }
  size_t kv_bytes() const { return kv_ != nullptr ? kv_->bytes() : 0; }

  // The step whose logits the feed's last chunk produces (0: the prompt).
  int step() const { return step_; }
  // Whether the step's schedule work (routing) is still to do.
  bool step_prepared() const { return step_prepared_; }
  const std::string& output_text() const { return decoded_; }
  // Marks the step prepared; `weights_changed` with a recompute schedule
  // makes the feed the whole text again, under the new weights.
  void PrepareStep(bool weights_changed);
  // Whether the feed is one new token after a sampled one (decode), not a
  // prompt or a recomputed text.
  bool decoding() const { return decoding_; }
  // The next chunk of the feed: at most `max_chunk` tokens, cut at
  // multiples of `max_chunk` from the feed's start, so the chunks (and the
  // numbers they produce) do not depend on what else runs in the step.
  std::span<const int32_t> NextChunk(int max_chunk) const;
  // Tokens of the feed not yet run.
  size_t feed_left() const { return feed_.size() - feed_done_; }
  // The chunk ran; true when it ended the feed (its last row gives logits).
  bool ChunkDone(size_t n_tokens);
  // Logits of the feed's last token: samples, streams text, and either
  // finishes or sets the next feed. `logits` is modified.
  void ConsumeLogits(std::span<float> logits, std::chrono::steady_clock::time_point now);
  // Ends the sequence now (caller cancel, request error) with `reason`.
  void Finish(const std::string& reason, std::chrono::steady_clock::time_point now);
  // Ends the sequence with an error (stop_reason "error", result.error).
  void Fail(const std::string& message, std::chrono::steady_clock::time_point now);
  // The cache, released by a finished sequence (nullptr when none).
  std::unique_ptr<KvCache> ReleaseKv() { return std::move(kv_); }

 private:
  // Hands the first n pending bytes to on_text.
  void Emit(size_t n);
  // GenerateOptions::retokenize: the history as the text's fresh
  // tokenization; true when that changed it (the feed is then the whole text).
  bool Retokenize();

  SequenceId id_;
  SequenceRequest request_;
  const Model& model_;
  int ctx_size_;
  MixtureSchedule* schedule_;
  Sampler sampler_;
  StreamingDecoder decoder_;
  std::unique_ptr<KvCache> kv_;

  GenerateResult result_;
  std::vector<int32_t> history_;  // prompt + output
  std::vector<int32_t> feed_;     // tokens to run before the next logits
  size_t feed_done_ = 0;          // of feed_, already run
  int step_ = 0;
  bool step_prepared_ = false;
  bool decoding_ = false;
  bool finished_ = false;
  bool cancel_requested_ = false;  // on_text returned false
  bool got_logits_ = false;        // the prompt has run
  std::string decoded_;  // everything the decoder produced (the schedule's view of the output)
  std::string pending_;  // decoded text not yet handed to on_text
  std::vector<float> raw_logits_;  // [vocab] on_token's copy of the step's logits
  std::chrono::steady_clock::time_point start_, first_logits_;
};

}  // namespace tokenlora
