#include "generate/sequence.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/kernels.h"

namespace tokenlora {
namespace {

// GenerateOptions::retokenize with sampling: draws after an end-of-text
// token before giving up (at temperature 0.9 the reference's model rarely
// puts more than a few percent on it).
constexpr int kMaxEndOfTextRedraws = 1000;

double Seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

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

Sequence::Sequence(SequenceId id, SequenceRequest request, const Model& model, int ctx_size)
    : id_(id),
      request_(std::move(request)),
      model_(model),
      ctx_size_(ctx_size),
      schedule_(request_.owned_schedule != nullptr ? request_.owned_schedule.get() : request_.schedule),
      sampler_(request_.options.sampling),
      decoder_(model.tokenizer()) {
  result_.prompt_ids = request_.prompt_ids;
  history_ = request_.prompt_ids;
  feed_ = request_.prompt_ids;
}

std::span<const float> Sequence::weights() const {
  if (schedule_ != nullptr) return schedule_->slot_weights();
  return request_.weights;
}

void Sequence::Admit(std::unique_ptr<KvCache> kv, std::chrono::steady_clock::time_point now) {
  TL_CHECK(kv_ == nullptr && !finished_);
  kv_ = std::move(kv);
  start_ = now;
}

void Sequence::PrepareStep(bool weights_changed) {
  step_prepared_ = true;
  // (Not decoding at a later step: the feed is already the whole text.)
  if (weights_changed && step_ > 0 && decoding_ && schedule_ != nullptr && schedule_->recompute_past()) {
    // Every past key/value again under the new weights: the whole text as
    // one feed, as a fresh run would compute it.
    kv_->Truncate(0);
    feed_ = history_;
    feed_done_ = 0;
    decoding_ = false;
    result_.recomputed_tokens += static_cast<int>(history_.size()) - 1;
  }
}

std::span<const int32_t> Sequence::NextChunk(int max_chunk) const {
  const size_t n = std::min(feed_left(), static_cast<size_t>(std::max(1, max_chunk)));
  return std::span<const int32_t>(feed_).subspan(feed_done_, n);
}

bool Sequence::ChunkDone(size_t n_tokens) {
  feed_done_ += n_tokens;
  TL_CHECK(feed_done_ <= feed_.size());
  return feed_done_ == feed_.size();
}

void Sequence::Emit(size_t n) {
  if (n == 0) return;
  const std::string piece = pending_.substr(0, n);
  pending_.erase(0, n);
  result_.text += piece;
  if (request_.on_text && !request_.on_text(piece)) cancel_requested_ = true;
}

void Sequence::ConsumeLogits(std::span<float> logits, std::chrono::steady_clock::time_point now) {
  const GenerateOptions& o = request_.options;
  if (!got_logits_) first_logits_ = now;
  got_logits_ = true;
  const int i = step_;  // the new token this picks
  if (i >= o.max_new_tokens) return Finish("length", now);
  if (!kernels::ArgMaxFinite(logits.data(), static_cast<int64_t>(logits.size())).all_finite) {
    const bool nan = std::any_of(logits.begin(), logits.end(), [](float v) { return std::isnan(v); });
    return Fail(std::string("the model's logits hold ") + (nan ? "NaN" : "Inf") + " at new token " +
                    std::to_string(i) + ": the activations overflowed — adapter weights or --mix scales too "
                    "large (or a corrupt model/adapter file)?", now);
  }
  const Tokenizer& tok = model_.tokenizer();
  const bool redraw_eos = o.retokenize && !o.stop_at_eos && o.sampling.temperature > 0;
  if (request_.on_token || redraw_eos) raw_logits_.assign(logits.begin(), logits.end());
  int32_t next = sampler_.Sample(logits, history_, result_.output_ids.size());
  if (o.retokenize && !o.stop_at_eos && tok.IsEndOfGeneration(next)) {
    // Dropped from the text, so the next step would see the same ids: greedy
    // picks it again until the limit (end now, same text); sampling draws
    // again from the same logits.
    if (!redraw_eos) return Finish("eos", now);
    std::vector<float> again(raw_logits_.size());
    for (int draw = 0; draw < kMaxEndOfTextRedraws && tok.IsEndOfGeneration(next); ++draw) {
      again = raw_logits_;
      next = sampler_.Sample(again, history_, result_.output_ids.size());
    }
    if (tok.IsEndOfGeneration(next)) return Finish("eos", now);
  }
  if (o.stop_at_eos && tok.IsEndOfGeneration(next)) return Finish("eos", now);
  if (request_.on_token) request_.on_token(next, raw_logits_);
  result_.output_ids.push_back(next);
  history_.push_back(next);
  const std::string piece = decoder_.Push(next);
  pending_ += piece;
  decoded_ += piece;
  if (schedule_ != nullptr) schedule_->AfterToken(i, next, piece);
  // Stop strings: cut at the first match; otherwise emit what cannot start one.
  size_t stop_at = std::string::npos;
  for (const std::string& s : o.stop_strings) {
    const size_t pos = pending_.find(s);
    if (pos != std::string::npos) stop_at = std::min(stop_at, pos);
  }
  if (stop_at != std::string::npos) {
    pending_.resize(stop_at);
    Emit(pending_.size());
    return Finish("stop_string", now);
  }
  Emit(pending_.size() - HeldBackLength(pending_, o.stop_strings));
  if (cancel_requested_) return Finish("cancelled", now);
  if (i + 1 == o.max_new_tokens) return Finish("length", now);  // no need to run the last token
  const bool ids_changed = o.retokenize && Retokenize();
  if (o.max_total_tokens > 0 && static_cast<int>(history_.size()) >= o.max_total_tokens) {
    return Finish("length", now);
  }
  const size_t positions_needed = ids_changed ? history_.size() : static_cast<size_t>(kv_->n_past()) + 1;
  if (positions_needed > static_cast<size_t>(kv_->capacity())) return Finish("context_full", now);
  step_ = i + 1;
  step_prepared_ = false;
  feed_done_ = 0;
  if (ids_changed) {  // the whole text again, on its new ids
    kv_->Truncate(0);
    feed_ = history_;
    decoding_ = false;
    result_.recomputed_tokens += static_cast<int>(history_.size()) - 1;
    return;
  }
  feed_.assign(1, next);
  decoding_ = true;
  ++result_.decoded_tokens;
}

bool Sequence::Retokenize() {
  const Tokenizer& tok = model_.tokenizer();
  std::vector<int32_t> ids = tok.EncodeWithBos(tok.Decode(history_, /*skip_special=*/true), /*parse_special=*/false);
  if (ids == history_) return false;
  history_ = std::move(ids);
  return true;
}

void Sequence::Fail(const std::string& message, std::chrono::steady_clock::time_point now) {
  if (finished_) return;
  result_.error = message;
  Finish("error", now);
}

void Sequence::Finish(const std::string& reason, std::chrono::steady_clock::time_point now) {
  if (finished_) return;
  finished_ = true;
  result_.stop_reason = reason;
  if (reason != "stop_string" && reason != "cancelled" && reason != "error") {
    pending_ += decoder_.Flush();
    Emit(pending_.size());
  }
  if (running()) {
    const auto prefill_end = got_logits_ ? first_logits_ : now;
    result_.prefill_seconds = Seconds(prefill_end - start_);
    result_.decode_seconds = Seconds(now - prefill_end);
  }
  if (request_.on_done) request_.on_done(std::move(result_));
}

}  // namespace tokenlora
