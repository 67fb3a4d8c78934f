#include "server/server_engine.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <future>

#include "core/error.h"

namespace tokenlora::server {
namespace {

EngineEvent MakeEvent(EngineEvent::Kind kind, std::string error = "") {
  EngineEvent e;
  e.kind = kind;
  e.error = std::move(error);
  return e;
}

}  // namespace

void Channel::Push(EngineEvent event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(event));
  }
  cv_.notify_all();
}

std::vector<EngineEvent> Channel::Wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return !events_.empty(); });
  std::vector<EngineEvent> out(std::make_move_iterator(events_.begin()), std::make_move_iterator(events_.end()));
  events_.clear();
  return out;
}

// A request in flight, on the engine thread.
struct ServerEngine::Job {
  std::shared_ptr<Channel> channel;
  std::vector<ChoiceSpec> choices;
  bool trace = false;
  std::vector<std::unique_ptr<TokenRouting>> routings;  // [choices]; kept until the job ends
  std::vector<size_t> trace_sent;                       // [choices] trace steps already sent
  std::vector<std::vector<StepLogprobs>> logprobs;      // [choices] tokens' log-probabilities not sent yet
  std::vector<SequenceId> ids;                          // [choices] once submitted
  int remaining = 0;                                    // choices not done
  bool cancel_sent = false;
  AdapterBank::Lease adapters;                          // what the sequences may use, until the job ends

  // The trace steps of `choice` not sent yet.
  void TakeTrace(int choice, EngineEvent& e) {
    const TokenRouting* r = routings[static_cast<size_t>(choice)].get();
    if (!trace || r == nullptr) return;
    const auto& steps = r->trace();
    size_t& sent = trace_sent[static_cast<size_t>(choice)];
    e.trace.assign(steps.begin() + static_cast<std::ptrdiff_t>(std::min(sent, steps.size())), steps.end());
    if (sent == 0) e.trace_tasks = r->task_names();
    sent = steps.size();
  }
};

ServerEngine::ServerEngine(EngineResources resources) : res_(std::move(resources)) {
  TL_CHECK(res_.model != nullptr && res_.pool != nullptr);
  scheduler_ = std::make_unique<Scheduler>(*res_.model, *res_.pool, res_.mixer, res_.scheduler);
  thread_ = std::thread([this] { Loop(); });
}

ServerEngine::~ServerEngine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::shared_ptr<Channel> ServerEngine::Submit(std::vector<ChoiceSpec> choices, bool trace) {
  auto job = std::make_unique<Job>();
  job->channel = std::make_shared<Channel>();
  job->choices = std::move(choices);
  job->trace = trace;
  std::shared_ptr<Channel> channel = job->channel;
  {
    std::lock_guard<std::mutex> lock(mu_);
    inbox_.push_back({std::move(job), {}});
    ++snapshot_.waiting;
  }
  cv_.notify_all();
  return channel;
}

void ServerEngine::RunOnEngine(const std::function<void()>& fn) {
  std::promise<void> done;
  std::future<void> result = done.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    inbox_.push_back({nullptr, [&] {
                        try {
                          fn();
                          done.set_value();
                        } catch (...) {
                          done.set_exception(std::current_exception());
                        }
                      }});
  }
  cv_.notify_all();
  result.get();
}

void ServerEngine::CancelAll() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancel_all_ = true;
  }
  cv_.notify_all();
}

EngineSnapshot ServerEngine::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_;
}

void ServerEngine::Start(std::unique_ptr<Job> job) {
  Job* j = job.get();
  const size_t n = j->choices.size();
  j->routings.resize(n);
  j->trace_sent.assign(n, 0);
  j->logprobs.resize(n);
  std::vector<SequenceRequest> requests(n);
  uint64_t slots = 0;  // every adapter the sequences may weigh
  try {
    for (size_t c = 0; c < n; ++c) {
      ChoiceSpec& spec = j->choices[c];
      SequenceRequest& r = requests[c];
      r.prompt_ids = std::move(spec.prompt_ids);
      r.options = spec.options;
      r.mix_mode = spec.mix_mode;
      if (spec.routed) {
        if (res_.router == nullptr || res_.bank == nullptr) throw InputError("this server has no router (start it with --router)");
        j->routings[c] = std::make_unique<TokenRouting>(*res_.router, *res_.bank, spec.router_text, spec.routing);
        r.schedule = j->routings[c].get();
        slots |= j->routings[c]->possible_slots();
      } else if (!spec.mix.empty()) {
        for (const auto& [name, w] : spec.mix) {
          const int slot = res_.bank != nullptr ? res_.bank->Find(name) : -1;
          if (slot < 0) throw InputError("no adapter named '" + name + "' is loaded (GET /v1/models lists them)");
          if (r.weights.size() <= static_cast<size_t>(slot)) r.weights.resize(static_cast<size_t>(slot) + 1, 0.0f);
          r.weights[static_cast<size_t>(slot)] += w;
          slots |= uint64_t{1} << slot;
        }
      }
      const int choice = static_cast<int>(c);
      if (spec.logprobs >= 0) {
        r.on_token = [j, choice, top_n = spec.logprobs](int32_t token, std::span<const float> logits) {
          j->logprobs[static_cast<size_t>(choice)].push_back(ComputeLogprobs(logits, token, top_n));
        };
      }
      r.on_text = [j, choice](const std::string& piece) {
        EngineEvent e;
        e.kind = EngineEvent::Kind::kText;
        e.choice = choice;
        e.text = piece;
        j->TakeTrace(choice, e);
        e.logprobs.swap(j->logprobs[static_cast<size_t>(choice)]);
        const bool keep_going = !j->channel->cancelled();
        j->channel->Push(std::move(e));
        return keep_going;
      };
      r.on_done = [j, choice](GenerateResult&& result) {
        EngineEvent e;
        e.kind = EngineEvent::Kind::kDone;
        e.choice = choice;
        e.result = std::move(result);
        j->TakeTrace(choice, e);
        e.logprobs.swap(j->logprobs[static_cast<size_t>(choice)]);
        j->channel->Push(std::move(e));
        --j->remaining;
      };
    }
  } catch (const InputError& e) {
    j->channel->Push(MakeEvent(EngineEvent::Kind::kError, e.what()));
    return;
  }
  // Every sequence or none: a refused one cancels those queued before it.
  for (size_t c = 0; c < n; ++c) {
    try {
      j->ids.push_back(scheduler_->Submit(std::move(requests[c])));
      ++j->remaining;
    } catch (const InputError& e) {
      for (SequenceId id : j->ids) scheduler_->Cancel(id);
      // The cancelled choices' kDone events are dropped with the channel's
      // reader: the handler stops at kError.
      j->channel->Push(MakeEvent(EngineEvent::Kind::kError, e.what()));
      j->remaining = 0;
      return;
    }
  }
  if (res_.bank != nullptr) j->adapters = res_.bank->Hold(slots);
  j->channel->Push(MakeEvent(EngineEvent::Kind::kAccepted));
  jobs_.push_back(std::move(job));
}

void ServerEngine::Loop() {
  while (true) {
    std::vector<Item> work;
    bool cancel_all = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || cancel_all_ || !inbox_.empty() || !scheduler_->idle(); });
      work.swap(inbox_);
      cancel_all = cancel_all_ || stop_;
      cancel_all_ = false;
      snapshot_.waiting -= static_cast<int64_t>(std::count_if(work.begin(), work.end(), [](const Item& i) { return i.job != nullptr; }));
    }
    for (Item& item : work) {
      if (item.fn) {
        item.fn();
      } else if (cancel_all) {
        item.job->channel->Push(MakeEvent(EngineEvent::Kind::kError, "the server is shutting down"));
      } else {
        Start(std::move(item.job));
      }
    }
    // Cancelled jobs free their sequences now, not at their next token.
    for (auto& job : jobs_) {
      if ((cancel_all || job->channel->cancelled()) && !job->cancel_sent) {
        job->cancel_sent = true;
        for (SequenceId id : job->ids) scheduler_->Cancel(id);
      }
    }
    if (!scheduler_->idle()) {
      try {
        scheduler_->Step();
      } catch (const std::exception& e) {
        // A step should not throw (requests are checked at Submit); if one
        // does, its sequences cannot go on: end them all, keep serving.
        std::fprintf(stderr, "serve: engine step failed: %s — cancelling the running requests\n", e.what());
        for (auto& job : jobs_) {
          for (SequenceId id : job->ids) scheduler_->Cancel(id);
        }
      }
    }
    bool ended = false;
    jobs_.remove_if([this, &ended](const std::unique_ptr<Job>& j) {
      if (j->remaining > 0) return false;
      for (const auto& r : j->routings) {
        if (r != nullptr) finished_route_calls_ += r->stats().route_calls;
      }
      ended = true;
      return true;
    });
    // Adapters removed while these jobs ran go now (between steps).
    if (ended && res_.bank != nullptr && res_.bank->retired() > 0) res_.bank->Reclaim();
    int64_t live_route_calls = 0;
    for (const auto& job : jobs_) {
      for (const auto& r : job->routings) {
        if (r != nullptr) live_route_calls += r->stats().route_calls;
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      snapshot_.waiting = static_cast<int64_t>(inbox_.size() + scheduler_->n_waiting());
      snapshot_.running = static_cast<int64_t>(scheduler_->n_running());
      snapshot_.jobs = static_cast<int64_t>(jobs_.size());
      snapshot_.steps = scheduler_->stats().steps;
      snapshot_.rows = scheduler_->stats().rows;
      snapshot_.route_calls = finished_route_calls_ + live_route_calls;
      if (res_.embedder != nullptr) {  // used on this thread only
        snapshot_.encoder_runs = res_.embedder->stats().encoder_runs;
        snapshot_.encoder_seconds = res_.embedder->stats().encoder_ms / 1000.0;
      }
      snapshot_.kv_bytes = scheduler_->kv_bytes_in_use();
      if (stop_ && scheduler_->idle() && inbox_.empty()) break;
    }
  }
}

}  // namespace tokenlora::server
