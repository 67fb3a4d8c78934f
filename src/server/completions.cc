// POST /v1/completions and /v1/chat/completions: a request becomes one
// engine job of n choices; its events become one JSON response or a stream
// of server-sent events ("data: {chunk}\n\n" ... "data: [DONE]\n\n").
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "generate/token_logprobs.h"
#include "server/http_server.h"
#include "server/client_socket.h"
#include "server/in_flight.h"

namespace tokenlora::server {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

json TraceSteps(const std::vector<RoutingTraceStep>& steps, const std::vector<std::string>& tasks) {
  json out = json::array();
  for (const RoutingTraceStep& s : steps) {
    json w = json::object();
    for (size_t t = 0; t < s.weights.size() && t < tasks.size(); ++t) w[tasks[t]] = s.weights[t];
    out.push_back({{"step", s.step}, {"token", s.token}, {"text", s.text}, {"rerouted", s.rerouted}, {"weights", w}});
  }
  return out;
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json Bytes(const std::string& s) {
  json out = json::array();
  for (unsigned char c : s) out.push_back(static_cast<int>(c));
  return out;
}

// OpenAI's logprobs objects for `steps`: chat {"content": [{token, logprob,
// bytes, top_logprobs}]}, completions {tokens, token_logprobs, top_logprobs,
// text_offset} (`offset`: the choice's text so far, in bytes).
json LogprobsJson(const Tokenizer& tok, const std::vector<StepLogprobs>& steps, bool chat, size_t& offset) {
  auto text = [&](int32_t id) { return tok.Decode(std::span<const int32_t>(&id, 1), false); };
  if (chat) {
    json content = json::array();
    for (const StepLogprobs& s : steps) {
      json top = json::array();
      for (const TokenLogprob& t : s.top) {
        const std::string tt = text(t.token);
        top.push_back({{"token", tt}, {"logprob", t.logprob}, {"bytes", Bytes(tt)}});
      }
      const std::string ct = text(s.chosen.token);
      content.push_back({{"token", ct}, {"logprob", s.chosen.logprob}, {"bytes", Bytes(ct)}, {"top_logprobs", top}});
    }
    return {{"content", content}};
  }
  json out = {{"tokens", json::array()}, {"token_logprobs", json::array()}, {"top_logprobs", json::array()},
              {"text_offset", json::array()}};
  for (const StepLogprobs& s : steps) {
    const std::string ct = text(s.chosen.token);
    out["tokens"].push_back(ct);
    out["token_logprobs"].push_back(s.chosen.logprob);
    json top = json::object();
    for (const TokenLogprob& t : s.top) top[text(t.token)] = t.logprob;
    out["top_logprobs"].push_back(top);
    out["text_offset"].push_back(offset);
    offset += ct.size();
  }
  return out;
}

// Appends `more` (one LogprobsJson) to `all`.
void AppendLogprobs(json& all, const json& more) {
  if (all.is_null()) {
    all = more;
    return;
  }
  for (auto& [key, value] : more.items()) {
    for (const json& v : value) all[key].push_back(v);
  }
}

// What a job's events add up to, shared by both response forms.
struct JobState {
  std::string id, model;
  int64_t created = 0;
  bool chat = false, trace = false, include_usage = false;
  size_t n_per_prompt = 1;
  std::shared_ptr<Channel> channel;
  std::unique_ptr<InFlight> guard;
  Clock::time_point start, first_token, last_token;
  bool got_token = false;
  size_t done = 0;
  std::vector<GenerateResult> results;         // [choices]
  std::vector<bool> finished;                  // [choices]
  std::vector<std::string> texts;              // [choices] streamed so far
  std::vector<std::vector<std::string>> tasks; // [choices] trace task names
  std::vector<json> traces;                    // [choices] whole trace (non-stream)
  std::vector<bool> role_sent;                 // [choices] chat stream's first delta
  std::vector<EngineEvent> pending;            // events read before the stream began
  int logprobs = -1;                           // the request's (-1: none)
  const Tokenizer* tok = nullptr;
  std::vector<json> logprobs_all;              // [choices] (non-stream)
  std::vector<size_t> logprobs_offset;         // [choices] text_offset so far
  json chunk_logprobs;                         // the last Record()'s event's, null without
  bool stream_ended = false;

  size_t n() const { return results.size(); }
  bool all_done() const { return done == n(); }

  // Records `e`; returns the choice's trace steps as JSON (empty without tracing).
  json Record(EngineEvent& e) {
    const size_t c = static_cast<size_t>(e.choice);
    if (!e.trace_tasks.empty()) tasks[c] = e.trace_tasks;
    json steps = trace ? TraceSteps(e.trace, tasks[c]) : json();
    if (trace) {
      for (const json& s : steps) traces[c].push_back(s);
    }
    chunk_logprobs = nullptr;
    if (logprobs >= 0 && !e.logprobs.empty()) {
      chunk_logprobs = LogprobsJson(*tok, e.logprobs, chat, logprobs_offset[c]);
      AppendLogprobs(logprobs_all[c], chunk_logprobs);
    }
    if (e.kind == EngineEvent::Kind::kText) {
      const auto now = Clock::now();
      if (!got_token) first_token = now;
      got_token = true;
      last_token = now;
      texts[c] += e.text;
    } else if (e.kind == EngineEvent::Kind::kDone) {
      results[c] = std::move(e.result);
      finished[c] = true;
      ++done;
    }
    return steps;
  }

  json Usage() const {
    int64_t prompt = 0, completion = 0;
    for (size_t c = 0; c < n(); ++c) {
      if (c % n_per_prompt == 0) prompt += static_cast<int64_t>(results[c].prompt_ids.size());
      completion += static_cast<int64_t>(results[c].output_ids.size());
    }
    return {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
  }

  json Envelope(bool chunk) const {
    return {{"id", id},
            {"object", chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion"},
            {"created", created},
            {"model", model}};
  }
};

// Turns the job's first events into a go (kAccepted) or a 400 (kError).
void AwaitAccepted(JobState& s, int max_context) {
  bool accepted = false;
  while (!accepted) {
    // Events after kAccepted in the same batch are the job's first output: keep them.
    for (EngineEvent& e : s.channel->Wait(std::chrono::milliseconds(200))) {
      if (e.kind == EngineEvent::Kind::kError) {
        if (e.error.find("mix mode") != std::string::npos) {  // the mixer: ranks the mode cannot mix
          throw BadRequest("routing.mix_mode: " + e.error + " (supported for these adapters: exact)",
                           "routing.mix_mode", "unsupported_value");
        }
        const bool context = e.error.find("context") != std::string::npos;
        throw BadRequest(e.error, context ? "messages" : "", context ? "context_length_exceeded" : "invalid_value");
      }
      if (e.kind == EngineEvent::Kind::kAccepted) {
        accepted = true;
      } else {
        s.pending.push_back(std::move(e));
      }
    }
  }
}

}  // namespace

void HttpServer::HandleCompletion(const httplib::Request& req, httplib::Response& res, bool chat) {
  const char* route = chat ? "/v1/chat/completions" : "/v1/completions";
  auto s = std::make_shared<JobState>();
  s->start = Clock::now();
  s->id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(next_id_++);
  s->chat = chat;
  s->created = static_cast<int64_t>(std::time(nullptr));
  s->model = "-";
  auto log = [this, route](const JobState& st, int status, const std::string& extra) {
    int64_t in = 0, out = 0;
    for (size_t c = 0; c < st.results.size(); ++c) {
      if (c % st.n_per_prompt == 0) in += static_cast<int64_t>(st.results[c].prompt_ids.size());
      out += static_cast<int64_t>(st.results[c].output_ids.size());
    }
    const double total = std::chrono::duration<double>(Clock::now() - st.start).count();
    const double ttft = st.got_token ? std::chrono::duration<double>(st.first_token - st.start).count() : 0.0;
    const double decode = st.got_token ? std::chrono::duration<double>(st.last_token - st.first_token).count() : 0.0;
    char buf[512];
    std::snprintf(buf, sizeof(buf),
                  "serve: id=%s route=%s model=%s status=%d tokens_in=%lld tokens_out=%lld ttft_ms=%.1f "
                  "tokens_per_s=%.1f ms=%.1f%s",
                  st.id.c_str(), route, st.model.c_str(), status, static_cast<long long>(in),
                  static_cast<long long>(out), ttft * 1e3, total > 0 ? static_cast<double>(out) / total : 0.0,
                  total * 1e3, extra.c_str());
    LogLine(buf);
    metrics_.CountRequest(route, status);
    if (status == 200) {
      metrics_.AddTokens(in, out);
      const int64_t per_choice = st.results.empty() ? 0 : out / static_cast<int64_t>(st.results.size());
      if (st.got_token) metrics_.ObserveLatency(ttft, per_choice > 1 ? decode / static_cast<double>(per_choice - 1) : 0.0, per_choice > 1);
    }
  };
  try {
    ServerEngine& engine = Admit();
    s->guard = std::make_unique<InFlight>(in_flight_);
    CompletionRequest r = ParseCompletionRequest(req.body, chat);
    s->model = r.model;
    const Selection sel = Select(r.model);
    // The mixture: the model's, or the routing extension's.
    bool routed = sel.kind == Selection::Kind::kRouted;
    std::vector<std::pair<std::string, float>> mix;
    if (sel.kind == Selection::Kind::kAdapter) mix.emplace_back(sel.name, 1.0f);
    TokenRoutingOptions routing = options_.routing;
    if (r.has_routing) {
      if (r.routing.weights) {
        routed = false;
        mix = *r.routing.weights;
        const std::vector<std::string> loaded = AdapterNames();
        for (const auto& [name, w] : mix) {
          if (std::find(loaded.begin(), loaded.end(), name) == loaded.end()) {
            throw BadRequest("routing.weights names adapter '" + name + "', which is not loaded (GET /v1/models lists them)",
                             "routing.weights", "unknown_adapter");
          }
        }
      } else if (r.routing.wants_router()) {
        if (options_.router_name.empty()) {
          throw BadRequest("routing.every / kv_policy / policy / adapters need a router: start the server with --router",
                           "routing", "no_router");
        }
        routed = true;
        if (r.routing.adapters) {
          const std::vector<std::string> tasks = RouterTasks();
          for (const std::string& name : *r.routing.adapters) {
            if (std::find(tasks.begin(), tasks.end(), name) == tasks.end()) {
              std::string list;
              for (const std::string& t : tasks) list += (list.empty() ? "" : ", ") + t;
              throw BadRequest("routing.adapters names '" + name + "', which is not one of the router's tasks (" + list +
                                   "); the router routes among those only",
                               "routing.adapters", "unknown_adapter");
            }
          }
          routing.only_tasks = *r.routing.adapters;
        }
        if (r.routing.every) routing.route_every = *r.routing.every;
        if (r.routing.kv_policy) routing.kv_policy = *r.routing.kv_policy;
        if (r.routing.window) routing.window = *r.routing.window;
        if (r.routing.score) routing.score = *r.routing.score;
        if (r.routing.policy || r.routing.temperature) {
          const Router& router = *engine.resources().router;
          static const char* const kNames[] = {"paper", "softmax", "top-k", "uniform", "fixed"};
          const std::string name =
              r.routing.policy ? *r.routing.policy : kNames[static_cast<int>(router.policy().kind)];
          try {
            routing.policy = RoutingPolicy::Make(name, r.routing.temperature.value_or(0.0f), router.policy().top_k, "",
                                                 router.file().TaskNames());
          } catch (const InputError& e) {
            throw BadRequest(std::string("routing: ") + e.what(), "routing.policy");
          }
        }
      }
    }
    if (r.routing_trace && !routed) {
      throw BadRequest("routing_trace records the router's weights: ask for model 'routed' (or give routing.every)",
                       "routing_trace", "not_routed");
    }
    s->trace = r.routing_trace;
    s->include_usage = r.include_usage;
    s->n_per_prompt = static_cast<size_t>(r.n);
    const Tokenizer& tok = engine.resources().model->tokenizer();
    const int max_context = engine.resources().model->config().max_context;
    // Each prompt: its token ids and the text the router sees first.
    std::vector<std::pair<std::vector<int32_t>, std::string>> prompts;
    if (chat) {
      std::string last_user;
      for (const ChatMessage& m : r.messages) {
        if (m.role == "user") last_user = m.content;
      }
      try {
        const std::string text = FormatChat(DetectChatFormat(tok), r.messages, true, tok);
        prompts.emplace_back(tok.EncodeWithBos(text, /*parse_special=*/true), last_user);
      } catch (const InputError& e) {
        throw BadRequest(std::string("messages: ") + e.what(), "messages");
      }
    } else {
      for (const std::string& p : r.prompts) prompts.emplace_back(tok.EncodeWithBos(p, /*parse_special=*/false), p);
    }
    for (const auto& [ids, text] : prompts) {
      if (static_cast<int>(ids.size()) >= max_context) {
        throw BadRequest("This model's maximum context length is " + std::to_string(max_context) +
                             " tokens, but the prompt has " + std::to_string(ids.size()) + " tokens; shorten it",
                         chat ? "messages" : "prompt", "context_length_exceeded");
      }
    }
    const uint64_t seed = r.seed ? *r.seed : std::random_device{}();
    std::vector<ChoiceSpec> choices;
    for (const auto& [ids, text] : prompts) {
      for (int i = 0; i < r.n; ++i) {
        ChoiceSpec c;
        c.prompt_ids = ids;
        c.options = options_.defaults;
        c.options.max_new_tokens = r.max_tokens ? *r.max_tokens : (chat ? options_.default_chat_max_tokens : options_.default_max_tokens);
        c.options.sampling.temperature = r.temperature;
        c.options.sampling.top_p = r.top_p;
        c.options.sampling.presence_penalty = r.presence_penalty;
        c.options.sampling.frequency_penalty = r.frequency_penalty;
        c.options.sampling.seed = seed + choices.size();
        c.options.stop_strings = r.stop;
        c.routed = routed;
        c.routing = routing;
        c.router_text = text;
        c.mix = mix;
        c.mix_mode = r.routing.mix_mode;
        c.logprobs = r.logprobs;
        choices.push_back(std::move(c));
      }
    }
    const size_t n = choices.size();
    s->results.resize(n);
    s->finished.assign(n, false);
    s->texts.resize(n);
    s->tasks.resize(n);
    s->traces.assign(n, json::array());
    s->role_sent.assign(n, false);
    s->logprobs = r.logprobs;
    s->tok = &tok;
    s->logprobs_all.assign(n, json());
    s->logprobs_offset.assign(n, 0);
    s->channel = engine.Submit(std::move(choices), r.routing_trace);
    AwaitAccepted(*s, max_context);
    if (!r.stream) {
      for (EngineEvent& e : s->pending) s->Record(e);
      // The client may hang up before the answer: free its sequences then.
      const ClientSocket client(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
      auto checked = Clock::now();
      while (!s->all_done()) {
        for (EngineEvent& e : s->channel->Wait(std::chrono::milliseconds(100))) s->Record(e);
        if (s->all_done() || Clock::now() - checked < std::chrono::milliseconds(50)) continue;
        checked = Clock::now();
        if (client.HungUp()) {
          s->channel->Cancel();
          // nginx's 499 "client closed request": nobody reads it, the log and /metrics do.
          SendError(res, ApiError(499, "the client closed the connection before the answer; its sequences were "
                                       "cancelled", "invalid_request_error", "", "client_closed_request"));
          log(*s, 499, " client_gone");
          return;
        }
      }
      json out = s->Envelope(false);
      json list = json::array();
      for (size_t c = 0; c < n; ++c) {
        const GenerateResult& g = s->results[c];
        json choice = {{"index", c}, {"logprobs", nullptr}, {"finish_reason", FinishReason(g.stop_reason)}};
        if (s->logprobs >= 0) {
          choice["logprobs"] = s->logprobs_all[c].is_null() ? LogprobsJson(tok, {}, chat, s->logprobs_offset[c])
                                                            : s->logprobs_all[c];
        }
        if (chat) {
          choice["message"] = {{"role", "assistant"}, {"content", g.text}};
        } else {
          choice["text"] = g.text;
        }
        if (s->trace) choice["routing_trace"] = {{"tasks", s->tasks[c]}, {"steps", s->traces[c]}};
        list.push_back(std::move(choice));
      }
      out["choices"] = std::move(list);
      out["usage"] = s->Usage();
      res.set_content(Dump(out), "application/json");
      log(*s, 200, "");
      return;
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");  // nginx: pass each event on at once
    res.set_chunked_content_provider(
        "text/event-stream",
        [s](size_t, httplib::DataSink& sink) {
          std::vector<EngineEvent> events;
          if (!s->pending.empty()) {
            events.swap(s->pending);
          } else {
            events = s->channel->Wait(std::chrono::milliseconds(1000));
          }
          std::string out;
          for (EngineEvent& e : events) {
            const size_t c = static_cast<size_t>(e.choice);
            json steps = s->Record(e);
            json choice = {{"index", c}, {"logprobs", s->chunk_logprobs}, {"finish_reason", nullptr}};
            if (e.kind == EngineEvent::Kind::kDone) choice["finish_reason"] = FinishReason(s->results[c].stop_reason);
            const std::string text = e.kind == EngineEvent::Kind::kText ? e.text : "";
            if (e.kind == EngineEvent::Kind::kText && text.empty() && steps.empty() && s->chunk_logprobs.is_null()) continue;
            if (s->chat) {
              json delta = json::object();
              if (!s->role_sent[c]) {
                delta["role"] = "assistant";
                s->role_sent[c] = true;
              }
              if (e.kind == EngineEvent::Kind::kText) delta["content"] = text;
              choice["delta"] = delta;
            } else {
              choice["text"] = text;
            }
            if (s->trace) {
              choice["routing_trace"] = {{"steps", steps}};
              if (!s->tasks[c].empty()) choice["routing_trace"]["tasks"] = s->tasks[c];
            }
            json chunk = s->Envelope(true);
            chunk["choices"] = json::array({choice});
            if (s->include_usage) chunk["usage"] = nullptr;
            out += "data: " + Dump(chunk) + "\n\n";
          }
          if (s->all_done()) {
            if (s->include_usage) {
              json chunk = s->Envelope(true);
              chunk["choices"] = json::array();
              chunk["usage"] = s->Usage();
              out += "data: " + Dump(chunk) + "\n\n";
            }
            out += "data: [DONE]\n\n";
          } else if (out.empty()) {
            out = ": waiting\n\n";  // an SSE comment: finds a client that has gone
          }
          if (!sink.write(out.data(), out.size())) {
            s->channel->Cancel();
            return false;
          }
          if (s->all_done()) {
            s->stream_ended = true;
            sink.done();
          }
          return true;
        },
        [s, log](bool) {
          if (!s->stream_ended) s->channel->Cancel();  // the client hung up: free the sequences now
          log(*s, 200, s->stream_ended ? " stream=done" : " stream=client_gone");
          s->guard.reset();
        });
  } catch (const ApiError& e) {
    SendError(res, e);
    log(*s, e.status(), std::string(" error=\"") + e.what() + "\"");
  }
}

}  // namespace tokenlora::server
