#include "generate/scheduler.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/memory_info.h"
#include "lora/mixer.h"
#include "router/embedder.h"

namespace tokenlora {
namespace {

using Clock = std::chrono::steady_clock;

std::string MiB(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

}  // namespace

void SchedulerOptions::Validate() const {
  auto bad = [](const std::string& field, int got, const std::string& expected) {
    throw InputError("scheduler: " + field + " is " + std::to_string(got) + ", expected " + expected);
  };
  if (max_sequences < 1) bad("max_sequences (--parallel)", max_sequences, ">= 1");
  if (max_tokens_per_step < 1) bad("max_tokens_per_step (--batch-tokens)", max_tokens_per_step, ">= 1");
  if (prefill_chunk < 1 || prefill_chunk > max_tokens_per_step) {
    bad("prefill_chunk", prefill_chunk,
        "in 1.." + std::to_string(max_tokens_per_step) + " (at most the tokens of one step)");
  }
}

Scheduler::Scheduler(const Model& model, ThreadPool& pool, LoraMixer* mixer, SchedulerOptions options)
    : model_(model),
      pool_(pool),
      mixer_(mixer),
      options_((options.Validate(), options)),
      forward_(model, options.max_tokens_per_step) {
  if (options_.kv_memory_bytes == 0) {
    const size_t available = AvailableMemoryBytes();
    options_.kv_memory_bytes = available > 0 ? available / 2 : size_t{1} << 30;
  }
}

Scheduler::~Scheduler() = default;

SequenceId Scheduler::Submit(SequenceRequest request) {
  const LlamaConfig& c = model_.config();
  const GenerateOptions& o = request.options;
  const std::vector<int32_t>& prompt = request.prompt_ids;
  if (prompt.empty()) throw InputError("the prompt is empty after tokenization");
  o.sampling.Validate();
  if (o.max_new_tokens < 0) {
    throw InputError("max_new_tokens is " + std::to_string(o.max_new_tokens) + ", expected >= 0");
  }
  for (const std::string& s : o.stop_strings) {
    if (s.empty()) throw InputError("a stop string is empty");
  }
  if (o.max_total_tokens < 0) {
    throw InputError("max_total_tokens is " + std::to_string(o.max_total_tokens) + ", expected >= 0");
  }
  if (o.max_total_tokens > 0 && static_cast<int>(prompt.size()) >= o.max_total_tokens) {
    throw InputError("the prompt has " + std::to_string(prompt.size()) +
                     " tokens, which already reaches the total-token limit " +
                     std::to_string(o.max_total_tokens) + "; raise the limit or shorten the prompt");
  }
  for (int32_t t : prompt) {
    if (t < 0 || t >= c.vocab_size) {
      throw InputError("token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                       std::to_string(c.vocab_size) + ")");
    }
  }
  if (c.max_context > 0 && o.ctx_size > c.max_context) {
    throw InputError("the context size (-c / ctx_size) is " + std::to_string(o.ctx_size) +
                     " tokens, beyond the model's context of " + std::to_string(c.max_context) +
                     " (positions past it were never trained); give at most " + std::to_string(c.max_context));
  }
  int ctx_size = o.ctx_size > 0 ? o.ctx_size
                                : static_cast<int>(std::min<int64_t>(
                                      c.max_context, static_cast<int64_t>(prompt.size()) + o.max_new_tokens));
  ctx_size = std::max(ctx_size, 1);
  if (static_cast<int>(prompt.size()) > ctx_size) {
    throw InputError("the prompt has " + std::to_string(prompt.size()) + " tokens but the context holds " +
                     std::to_string(ctx_size) + " (model limit " + std::to_string(c.max_context) +
                     "); shorten the prompt");
  }
  if (o.kv_type != DType::kF16 && o.kv_type != DType::kF32) {
    throw InputError("KV cache type " + std::string(Name(o.kv_type)) + " is not supported; expected f16 or f32");
  }
  const size_t kv_bytes = KvCache::BytesFor(c, ctx_size, o.kv_type);
  if (kv_bytes > options_.kv_memory_bytes) {
    throw InputError("a context of " + std::to_string(ctx_size) + " tokens needs " + MiB(kv_bytes) +
                     " of KV cache, more than the scheduler's whole KV budget of " +
                     MiB(options_.kv_memory_bytes) +
                     " (half the memory available at start unless set): lower --ctx-size or the token limit "
                     "(about " + std::to_string(options_.kv_memory_bytes / std::max<size_t>(1, kv_bytes / ctx_size)) +
                     " tokens fit)");
  }
  if (request.schedule == nullptr && request.owned_schedule == nullptr && !request.weights.empty()) {
    if (mixer_ == nullptr) throw InputError("the request gives adapter weights but no adapters are loaded");
    for (float w : request.weights) {
      if (!std::isfinite(w)) throw InputError("an adapter weight is not finite");
    }
    mixer_->CheckWeights(request.weights, request.mix_mode);
  }
  if ((request.schedule != nullptr || request.owned_schedule != nullptr) && mixer_ == nullptr) {
    throw InputError("the request has a mixture schedule but no adapters are loaded");
  }
  if (const MixtureSchedule* schedule = request.owned_schedule != nullptr ? request.owned_schedule.get() : request.schedule;
      schedule != nullptr && schedule->possible_slots() != 0) {
    // The linear modes mix equal ranks only: refuse now, not in a step
    // that runs other sequences too.
    std::vector<float> every(AdapterBank::kMaxAdapters, 0.0f);
    for (uint64_t m = schedule->possible_slots(); m != 0; m &= m - 1) every[static_cast<size_t>(__builtin_ctzll(m))] = 1;
    mixer_->CheckWeights(every, request.mix_mode);
  }
  const SequenceId id = next_id_++;
  waiting_.push_back(std::make_unique<Sequence>(id, std::move(request), model_, ctx_size));
  return id;
}

bool Scheduler::Cancel(SequenceId id) {
  for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
    if ((*it)->id() == id) {
      std::unique_ptr<Sequence> seq = std::move(*it);
      waiting_.erase(it);
      seq->Finish("cancelled", Clock::now());
      return true;
    }
  }
  for (auto& seq : running_) {
    if (seq->id() == id && !seq->finished()) {
      seq->Finish("cancelled", Clock::now());
      Reap();
      return true;
    }
  }
  return false;
}

std::unique_ptr<KvCache> Scheduler::CacheFor(const Sequence& seq) {
  const DType type = seq.options().kv_type;
  // The smallest kept cache that fits.
  size_t best = free_caches_.size();
  for (size_t i = 0; i < free_caches_.size(); ++i) {
    const KvCache& c = *free_caches_[i];
    if (c.type() == type && KvCache::BytesFor(model_.config(), seq.ctx_size(), type) <= c.bytes() &&
        (best == free_caches_.size() || c.bytes() < free_caches_[best]->bytes())) {
      best = i;
    }
  }
  if (best < free_caches_.size() && free_caches_[best]->Reuse(seq.ctx_size(), type)) {
    std::unique_ptr<KvCache> kv = std::move(free_caches_[best]);
    free_caches_.erase(free_caches_.begin() + static_cast<std::ptrdiff_t>(best));
    kv_bytes_free_ -= kv->bytes();
    return kv;
  }
  const size_t bytes = KvCache::BytesFor(model_.config(), seq.ctx_size(), type);
  while (kv_bytes_in_use_ + kv_bytes_free_ + bytes > options_.kv_memory_bytes && !free_caches_.empty()) {
    kv_bytes_free_ -= free_caches_.back()->bytes();
    free_caches_.pop_back();
  }
  if (kv_bytes_in_use_ + bytes > options_.kv_memory_bytes) return nullptr;
  return std::make_unique<KvCache>(model_.config(), seq.ctx_size(), type);
}

void Scheduler::Admit() {
  // Arrival order; the head waits (rather than being overtaken) when its
  // cache does not fit yet, so a long request is not starved.
  while (!waiting_.empty() && static_cast<int>(running_.size()) < options_.max_sequences) {
    Sequence& seq = *waiting_.front();
    std::unique_ptr<KvCache> kv = CacheFor(seq);
    if (kv == nullptr) break;
    seq.Admit(std::move(kv), Clock::now());
    kv_bytes_in_use_ += seq.kv_bytes();
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
}

void Scheduler::RouteDue() {
  struct Pending {
    Sequence* seq;
    MixtureSchedule::EncoderRequest request;
  };
  std::vector<Pending> pending;
  const auto t0 = Clock::now();
  for (auto& seq : running_) {
    if (seq->step_prepared() || seq->finished()) continue;
    MixtureSchedule* schedule = seq->schedule();
    if (schedule == nullptr) {
      seq->PrepareStep(false);
      continue;
    }
    try {
      pending.push_back({seq.get(), schedule->BeginStep(seq->step(), seq->output_text())});
    } catch (const InputError& e) {  // this sequence's routing failed: it ends, the others go on
      seq->Fail(e.what(), Clock::now());
      continue;
    }
    ++stats_.routed;
  }
  if (pending.empty()) return;
  // One encoder call per embedder for every window that changed.
  std::vector<EmbedderState*> states;
  std::vector<double> share(pending.size(), 0.0);
  std::vector<bool> embedded(pending.size(), false);
  for (size_t i = 0; i < pending.size(); ++i) {
    Embedder* embedder = pending[i].request.embedder;
    if (embedder == nullptr || embedded[i]) continue;
    states.clear();
    std::vector<size_t> members;
    for (size_t j = i; j < pending.size(); ++j) {
      if (pending[j].request.embedder == embedder) {
        states.push_back(pending[j].request.state);
        members.push_back(j);
        embedded[j] = true;
      }
    }
    const auto e0 = Clock::now();
    embedder->EmbedPending(states);
    ++stats_.encoder_batches;
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - e0).count();
    for (size_t j : members) share[j] = ms / static_cast<double>(members.size());
  }
  for (size_t i = 0; i < pending.size(); ++i) {
    Sequence& seq = *pending[i].seq;
    try {
      seq.PrepareStep(seq.schedule()->FinishStep(share[i]));
    } catch (const InputError& e) {
      seq.Fail(e.what(), Clock::now());
    }
  }
  stats_.routing_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
}

void Scheduler::SetRowWeights(std::span<const ForwardSegment> segments, std::span<Sequence* const> owners,
                              ForwardContext& ctx) {
  ctx.hook = nullptr;
  if (mixer_ == nullptr) return;
  size_t n_cols = 0;
  bool any = false, same = true, own_modes = false;
  std::span<const float> first = owners[0]->weights();
  const MixMode first_mode = owners[0]->mix_mode().value_or(mixer_->mode());
  for (Sequence* seq : owners) {
    const std::span<const float> w = seq->weights();
    const MixMode mode = seq->mix_mode().value_or(mixer_->mode());
    n_cols = std::max(n_cols, w.size());
    for (float v : w) any = any || v != 0;
    same = same && w.size() == first.size() && std::equal(w.begin(), w.end(), first.begin()) && mode == first_mode;
    own_modes = own_modes || mode != mixer_->mode();
  }
  if (!any) return;  // the base model alone: no hook, bit for bit
  ctx.hook = mixer_;
  if (same) {
    mixer_->SetTokenWeights(first, 1, static_cast<int>(first.size()),
                            own_modes ? std::span<const MixMode>(&first_mode, 1) : std::span<const MixMode>());
    return;
  }
  int64_t rows = 0;
  for (const ForwardSegment& s : segments) rows += static_cast<int64_t>(s.tokens.size());
  row_weights_.assign(static_cast<size_t>(rows) * n_cols, 0.0f);
  row_modes_.clear();
  size_t r = 0;
  for (size_t i = 0; i < segments.size(); ++i) {
    const std::span<const float> w = owners[i]->weights();
    const MixMode mode = owners[i]->mix_mode().value_or(mixer_->mode());
    for (size_t t = 0; t < segments[i].tokens.size(); ++t, ++r) {
      std::copy(w.begin(), w.end(), row_weights_.begin() + static_cast<std::ptrdiff_t>(r * n_cols));
      if (own_modes) row_modes_.push_back(mode);
    }
  }
  mixer_->SetTokenWeights(row_weights_, rows, static_cast<int>(n_cols), row_modes_);
}

void Scheduler::Step() {
  Admit();
  if (running_.empty()) return;
  RouteDue();
  Reap();  // a schedule's error may have ended a sequence
  if (running_.empty()) return;

  // Rows: every decoding sequence's token first, then prompt (or recompute)
  // chunks in admission order while the budget lasts.
  segments_.clear();
  owners_.clear();
  int budget = options_.max_tokens_per_step;
  // The chunk that ends a feed asks for its last row's logits.
  auto take = [&](Sequence& seq, std::span<const int32_t> chunk) {
    const auto logits = chunk.size() == seq.feed_left() ? ForwardSegment::Logits::kLast : ForwardSegment::Logits::kNone;
    segments_.push_back({chunk, &seq.kv(), logits});
    owners_.push_back(&seq);
    budget -= static_cast<int>(chunk.size());
  };
  for (auto& seq : running_) {
    if (seq->decoding() && budget >= 1) take(*seq, seq->NextChunk(options_.prefill_chunk));
  }
  for (auto& seq : running_) {
    if (seq->decoding()) continue;
    const std::span<const int32_t> chunk = seq->NextChunk(options_.prefill_chunk);
    if (static_cast<int>(chunk.size()) <= budget) take(*seq, chunk);  // else it waits for a step with room
  }
  if (segments_.empty()) return;  // cannot happen: prefill_chunk <= max_tokens_per_step

  ForwardContext ctx{&pool_, nullptr};
  SetRowWeights(segments_, owners_, ctx);
  const int64_t vocab = model_.config().vocab_size;
  const int64_t logit_rows = LlamaForward::LogitRows(segments_);
  logits_.resize(static_cast<size_t>(std::max<int64_t>(logit_rows, 1) * vocab));
  const auto t0 = Clock::now();
  forward_.RunSegments(segments_, ctx, logits_.data());
  const auto t1 = Clock::now();
  stats_.forward_seconds += std::chrono::duration<double>(t1 - t0).count();
  ++stats_.steps;

  int64_t logit_row = 0;
  for (size_t i = 0; i < segments_.size(); ++i) {
    Sequence& seq = *owners_[i];
    stats_.rows += static_cast<int64_t>(segments_[i].tokens.size());
    if (seq.decoding()) ++stats_.decode_rows;
    if (!seq.ChunkDone(segments_[i].tokens.size())) continue;
    TL_CHECK(segments_[i].logits == ForwardSegment::Logits::kLast);
    seq.ConsumeLogits(std::span<float>(logits_.data() + logit_row * vocab, static_cast<size_t>(vocab)), t1);
    ++logit_row;
    ++stats_.sampled_tokens;
  }
  Reap();
}

void Scheduler::Reap() {
  for (auto it = running_.begin(); it != running_.end();) {
    if (!(*it)->finished()) {
      ++it;
      continue;
    }
    kv_bytes_in_use_ -= (*it)->kv_bytes();
    std::unique_ptr<KvCache> kv = (*it)->ReleaseKv();
    if (kv != nullptr && free_caches_.size() < static_cast<size_t>(options_.max_sequences)) {
      kv_bytes_free_ += kv->bytes();
      free_caches_.push_back(std::move(kv));
    }
    it = running_.erase(it);
  }
}

void Scheduler::RunUntilIdle() {
  while (!idle()) Step();
}

}  // namespace tokenlora
