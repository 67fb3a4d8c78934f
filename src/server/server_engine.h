// The serving engine: one thread owns the Scheduler (which is
// single-threaded) and everything the scheduler touches (the mixer, the
// router's embedder). HTTP handler threads never call the model: they put a
// job into the engine's inbox and read its events from a Channel (text
// pieces, then each choice's result). The engine thread drains the inbox
// between Scheduler::Step() calls, frees the sequences of cancelled jobs at
// once, and sleeps when there is nothing to do.
//
// A job is one API request: n choices (several prompts × n samples), each
// one sequence. Its token-level schedules (TokenRouting) live in the job, not
// in the sequences, so their traces outlive the sequences until the last
// event is sent.
//
// Run-time adapters: the bank changes only on the engine thread (RunOnEngine),
// between steps. A job holds a lease on the adapters its sequences may use
// (AdapterBank::Hold), taken when it starts and dropped when its last
// sequence ends; an adapter removed meanwhile is retired, its slot and
// weights kept for the job, and reclaimed after it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/thread_pool.h"
#include "generate/generator.h"
#include "generate/scheduler.h"
#include "generate/token_logprobs.h"
#include "generate/token_routing.h"
#include "lora/adapter_bank.h"
#include "lora/mixer.h"
#include "model/model.h"
#include "router/embedder.h"
#include "router/router.h"

namespace tokenlora::server {

// What the engine runs on; every pointer but model/pool may be null. The
// owner keeps them alive longer than the engine.
struct EngineResources {
  const Model* model = nullptr;
  ThreadPool* pool = nullptr;
  AdapterBank* bank = nullptr;  // changed on the engine thread only
  LoraMixer* mixer = nullptr;
  Router* router = nullptr;      // token-level routing (over `bank`)
  Embedder* embedder = nullptr;  // /v1/embeddings (the router's, when there is one)
  SchedulerOptions scheduler;
};

// One choice: one sequence.
struct ChoiceSpec {
  std::vector<int32_t> prompt_ids;
  GenerateOptions options;
  // The mixture: routed (a TokenRouting over the router with `routing`,
  // seeing `router_text` first), else the fixed `mix` {adapter: weight}
  // (empty: the base model).
  bool routed = false;
  TokenRoutingOptions routing;
  std::string router_text;
  std::vector<std::pair<std::string, float>> mix;
  std::optional<MixMode> mix_mode;  // not given: the mixer's (--mix-mode)
  int logprobs = -1;  // -1: none; else each token's log-probability and this many alternatives
};

struct EngineEvent {
  enum class Kind { kAccepted, kText, kDone, kError };
  Kind kind = Kind::kText;
  int choice = 0;
  std::string text;                       // kText: a final piece
  std::vector<RoutingTraceStep> trace;    // kText/kDone with tracing: the steps new since the last event
  std::vector<std::string> trace_tasks;   // with trace: the tasks the weights follow
  std::vector<StepLogprobs> logprobs;     // kText/kDone with logprobs: the tokens new since the last event
  GenerateResult result;                  // kDone
  std::string error;                      // kError: an InputError's message (the request is refused)
};

// Events of one job, from the engine thread to the handler thread.
class Channel {
 public:
  void Push(EngineEvent event);
  // Every event queued; waits up to `timeout` when none is. Empty on timeout.
  std::vector<EngineEvent> Wait(std::chrono::milliseconds timeout);
  // The client is gone: the engine cancels the job's sequences (freeing
  // their caches) at its next turn.
  void Cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<EngineEvent> events_;
  std::atomic<bool> cancelled_{false};
};

struct EngineSnapshot {
  int64_t waiting = 0;  // jobs in the inbox + sequences the scheduler has not admitted
  int64_t running = 0;  // sequences in the batch
  int64_t jobs = 0;     // requests in flight in the engine
  int64_t steps = 0;
  int64_t rows = 0;
  int64_t route_calls = 0;  // routings of finished and running schedules
  int64_t encoder_runs = 0;       // windows the router's encoder embedded (embeddings included)
  double encoder_seconds = 0;     // time in the encoder
  size_t kv_bytes = 0;
};

class ServerEngine {
 public:
  explicit ServerEngine(EngineResources resources);
  ~ServerEngine();  // cancels everything and joins the engine thread
  ServerEngine(const ServerEngine&) = delete;
  ServerEngine& operator=(const ServerEngine&) = delete;

  // Queues a job. Its channel first gets kAccepted (every sequence queued)
  // or kError (an InputError: over-long prompt, unknown adapter, ...; nothing
  // runs), then kText events and one kDone per choice.
  std::shared_ptr<Channel> Submit(std::vector<ChoiceSpec> choices, bool trace);
  // Runs `fn` on the engine thread between two steps and waits for it
  // (exceptions come back here).
  void RunOnEngine(const std::function<void()>& fn);
  // Cancels every job in flight (shutdown after the drain period).
  void CancelAll();
  EngineSnapshot Snapshot() const;
  const EngineResources& resources() const { return res_; }

 private:
  struct Job;
  struct Item {
    std::unique_ptr<Job> job;
    std::function<void()> fn;
  };
  void Loop();
  void Start(std::unique_ptr<Job> job);

  EngineResources res_;
  std::unique_ptr<Scheduler> scheduler_;
  std::list<std::unique_ptr<Job>> jobs_;  // engine thread only
  int64_t finished_route_calls_ = 0;      // engine thread only

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Item> inbox_;
  bool stop_ = false;
  bool cancel_all_ = false;
  EngineSnapshot snapshot_;
  std::thread thread_;
};

}  // namespace tokenlora::server
