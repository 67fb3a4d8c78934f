#include "generate/generator.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"

namespace tokenlora {
namespace {

using Clock = std::chrono::steady_clock;
double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Length of the longest suffix of `text` that is a proper prefix of a stop
// string: those bytes must be held back until we know they are not a stop.
size_t HeldBackLength(const std::string& text, const std::vector<std::string>& stops) {
  size_t held = 0;
  for (const std::string& s : stops) {
    const size_t max_len = std::min(text.size(), s.size() - 1);
    for (size_t len = max_len; len > held; --len) {
      if (text.compare(text.size() - len, len, s, 0, len) == 0) {
        held = len;
        break;
      }
    }
  }
  return held;
}

}  // namespace

double GenerateResult::PrefillTokensPerSecond() const {
  return prefill_seconds > 0 ? static_cast<double>(prompt_ids.size()) / prefill_seconds : 0;
}
double GenerateResult::DecodeTokensPerSecond() const {
  return decode_seconds > 0 ? decoded_tokens / decode_seconds : 0;
}

Generator::Generator(const Model& model, ThreadPool& pool) : model_(model), pool_(pool) {}

GenerateResult Generator::Generate(const std::vector<int32_t>& prompt_ids,
                                   const GenerateOptions& options,
                                   const std::function<bool(const std::string&)>& on_text,
                                   const ProjectionHook* hook, MixtureSchedule* schedule) {
  const LlamaConfig& c = model_.config();
  const Tokenizer& tok = model_.tokenizer();
  if (prompt_ids.empty()) throw InputError("the prompt is empty after tokenization");
  if (options.max_new_tokens < 0) {
    throw InputError("max_new_tokens is " + std::to_string(options.max_new_tokens) + ", expected >= 0");
  }
  for (const std::string& s : options.stop_strings) {
    if (s.empty()) throw InputError("a stop string is empty");
  }
  if (options.max_total_tokens < 0) {
    throw InputError("max_total_tokens is " + std::to_string(options.max_total_tokens) + ", expected >= 0");
  }
  if (options.max_total_tokens > 0 && static_cast<int>(prompt_ids.size()) >= options.max_total_tokens) {
    throw InputError("the prompt has " + std::to_string(prompt_ids.size()) +
                     " tokens, which already reaches the total-token limit " +
                     std::to_string(options.max_total_tokens) + "; raise the limit or shorten the prompt");
  }
  int ctx_size = options.ctx_size > 0
                     ? options.ctx_size
                     : std::min<int>(c.max_context, static_cast<int>(prompt_ids.size()) + options.max_new_tokens);
  ctx_size = std::max(ctx_size, 1);
  if (static_cast<int>(prompt_ids.size()) > ctx_size) {
    throw InputError("the prompt has " + std::to_string(prompt_ids.size()) +
                     " tokens but the context holds " + std::to_string(ctx_size) +
                     " (model limit " + std::to_string(c.max_context) + "); shorten the prompt");
  }

  GenerateResult result;
  result.prompt_ids = prompt_ids;
  KvCache kv(c, ctx_size, options.kv_type);
  LlamaForward forward(model_, options.prefill_batch);
  ForwardContext ctx{&pool_, hook};
  Sampler sampler(options.sampling);
  std::vector<float> logits(static_cast<size_t>(c.vocab_size));
  std::vector<int32_t> history = prompt_ids;

  std::string decoded;  // everything the decoder produced (the schedule's view of the output)
  auto t0 = Clock::now();
  if (schedule != nullptr) schedule->BeforeStep(0, decoded);
  forward.Run(prompt_ids, kv, ctx, logits.data(), /*all_logits=*/false);
  result.prefill_seconds = SecondsSince(t0);

  StreamingDecoder decoder(tok);
  std::string pending;  // decoded text not yet handed to on_text
  bool stopped_by_caller = false;
  auto emit = [&](size_t n) {
    if (n == 0) return;
    const std::string piece = pending.substr(0, n);
    pending.erase(0, n);
    result.text += piece;
    if (on_text && !on_text(piece)) stopped_by_caller = true;
  };

  result.stop_reason = "length";
  t0 = Clock::now();
  for (int i = 0; i < options.max_new_tokens && !stopped_by_caller; ++i) {
    const int32_t next = sampler.Sample(logits, history);
    if (options.stop_at_eos && tok.IsEndOfGeneration(next)) {
      result.stop_reason = "eos";
      break;
    }
    result.output_ids.push_back(next);
    history.push_back(next);
    const std::string piece = decoder.Push(next);
    pending += piece;
    decoded += piece;
    if (schedule != nullptr) schedule->AfterToken(i, next, piece);
    // Stop strings: cut at the first match; otherwise emit what cannot start one.
    size_t stop_at = std::string::npos;
    for (const std::string& s : options.stop_strings) {
      const size_t pos = pending.find(s);
      if (pos != std::string::npos) stop_at = std::min(stop_at, pos);
    }
    if (stop_at != std::string::npos) {
      pending.resize(stop_at);
      emit(pending.size());
      result.stop_reason = "stop_string";
      break;
    }
    emit(pending.size() - HeldBackLength(pending, options.stop_strings));
    if (i + 1 == options.max_new_tokens) break;  // no need to run the last token
    if (options.max_total_tokens > 0 && static_cast<int>(history.size()) >= options.max_total_tokens) break;
    if (kv.n_past() >= kv.capacity()) {
      result.stop_reason = "context_full";
      break;
    }
    const bool changed = schedule != nullptr && schedule->BeforeStep(i + 1, decoded);
    if (changed && schedule->recompute_past()) {
      // Every past key/value again under the new weights: one batched
      // forward of the whole text, as a fresh run would compute it.
      kv.Truncate(0);
      forward.Run(history, kv, ctx, logits.data(), false);
      result.recomputed_tokens += static_cast<int>(history.size()) - 1;
    } else {
      const int32_t one[1] = {next};
      forward.Run(one, kv, ctx, logits.data(), false);
    }
    ++result.decoded_tokens;
  }
  result.decode_seconds = SecondsSince(t0);
  if (result.stop_reason != "stop_string") {
    pending += decoder.Flush();
    emit(pending.size());
  }
  return result;
}

}  // namespace tokenlora
