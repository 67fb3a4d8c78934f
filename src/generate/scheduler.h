// The batched engine: many sequences in flight, each with its own adapter
// mixture, sharing one pass over the weights per step (continuous batching).
//
// Three parts that never reach into each other (vLLM's split): a Sequence is
// plain state (generate/sequence.h); the Scheduler decides each step which
// sequences run and how many of their tokens (a token budget: running
// decodes first, then prompt chunks in arrival order, so decodes keep
// flowing while long prompts prefill); LlamaForward runs one pass over the
// chosen rows, every projection one matmul over all of them, attention on
// each sequence's own cache, and the LoRA mixer applies each row's own
// weights (rows grouped by adapter set).
//
// Routing: the schedules that fall due in a step are routed together, their
// embedder windows run as one encoder batch.
//
// A sequence's output does not depend on what runs beside it: its prompt is
// cut into chunks at fixed offsets whatever the load, its sampler is its
// own, and every row computes what it would alone (the int8 kernels give the
// same bits at any row count; f32-activation matmuls may differ in the last
// bits, which greedy tokens practically never notice; the tests check it).
//
// Single-threaded: call everything from one thread (a server feeds it
// through its own queue).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "core/thread_pool.h"
#include "generate/sequence.h"
#include "lora/mixer.h"
#include "model/llama/forward.h"
#include "model/model.h"

namespace tokenlora {

struct SchedulerOptions {
  int max_sequences = 16;        // running at once; more wait in arrival order
  int max_tokens_per_step = 512; // rows of one forward pass
  int prefill_chunk = 256;       // prompt tokens of one sequence per step (<= max_tokens_per_step)
  // KV cache memory of all running sequences; a sequence waits until its
  // cache fits, and one that can never fit is refused. 0: half the memory
  // available when the scheduler starts.
  size_t kv_memory_bytes = 0;
  // Throws InputError naming the field.
  void Validate() const;
};

struct SchedulerStats {
  int64_t steps = 0;
  int64_t rows = 0;            // forward rows run (prompt + decode + recompute)
  int64_t decode_rows = 0;     // of which one new token of a decoding sequence
  int64_t sampled_tokens = 0;  // logits rows consumed
  int64_t routed = 0;          // schedule steps prepared
  int64_t encoder_batches = 0; // encoder calls made for them
  double forward_seconds = 0;
  double routing_seconds = 0;  // schedules' step preparation (embedding included)
};

class Scheduler {
 public:
  // `mixer` (optional) holds the adapters the sequences' weights index by
  // slot; the scheduler sets its per-row weights before every pass.
  Scheduler(const Model& model, ThreadPool& pool, LoraMixer* mixer, SchedulerOptions options = {});
  ~Scheduler();

  // Queues a sequence. Throws InputError for a request that can never run
  // (empty or over-long prompt, bad token id, bad options, weights for no
  // adapter, a cache larger than the whole KV budget); nothing is queued then.
  SequenceId Submit(SequenceRequest request);
  // Ends a waiting or running sequence at once (on_done with stop_reason
  // "cancelled"); its cache is freed. False when the id is not in flight.
  bool Cancel(SequenceId id);

  // One step: admit what fits, route what is due, one forward pass, sample.
  // Does nothing when idle.
  void Step();
  // Steps until every sequence has finished.
  void RunUntilIdle();

  bool idle() const { return waiting_.empty() && running_.empty(); }
  size_t n_waiting() const { return waiting_.size(); }
  size_t n_running() const { return running_.size(); }
  size_t kv_bytes_in_use() const { return kv_bytes_in_use_; }
  // Memory of finished sequences' caches kept for reuse.
  size_t kv_bytes_cached() const { return kv_bytes_free_; }
  size_t kv_memory_bytes() const { return options_.kv_memory_bytes; }
  const SchedulerOptions& options() const { return options_; }
  const SchedulerStats& stats() const { return stats_; }

 private:
  void Admit();
  // A cache for `seq`: a kept one that fits, else a new one (dropping kept
  // ones to make room); nullptr when the budget has no room now.
  std::unique_ptr<KvCache> CacheFor(const Sequence& seq);
  void RouteDue();
  // Removes finished sequences from running_ and frees their caches.
  void Reap();
  void SetRowWeights(std::span<const ForwardSegment> segments, std::span<Sequence* const> owners, ForwardContext& ctx);

  const Model& model_;
  ThreadPool& pool_;
  LoraMixer* mixer_;
  SchedulerOptions options_;
  LlamaForward forward_;
  SequenceId next_id_ = 1;
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::vector<std::unique_ptr<Sequence>> running_;  // in admission order
  size_t kv_bytes_in_use_ = 0;      // caches of running sequences
  // Caches of finished sequences kept for reuse (fresh memory costs a page
  // fault and zeroing per 4 KiB); they count against the KV budget too and
  // are dropped first when a new cache does not fit.
  std::vector<std::unique_ptr<KvCache>> free_caches_;
  size_t kv_bytes_free_ = 0;
  SchedulerStats stats_;
  // Per-step scratch.
  std::vector<ForwardSegment> segments_;
  std::vector<Sequence*> owners_;      // [segments]
  std::vector<float> logits_;          // [rows with logits, vocab]
  std::vector<float> row_weights_;     // [rows, n_cols]
  std::vector<MixMode> row_modes_;     // [rows] when sequences ask for their own mix modes
};

}  // namespace tokenlora
