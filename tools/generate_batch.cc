#include "generate_batch.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "generate/token_routing.h"
#include "io/json_text.h"
#include "router/progress.h"

namespace tokenlora::cli {
namespace {

using nlohmann::json;

constexpr size_t kMaxLineBytes = 16 << 20;   // one prompt
constexpr size_t kMaxFileBytes = 512 << 20;  // the whole file

// One input line, parsed and checked.
struct BatchLine {
  int64_t line = 0;
  json id;  // null when not given
  std::string prompt;
  GenerateOptions options;
  bool has_mix = false;
  std::vector<std::pair<std::string, float>> mix;
  std::string router;  // the line's own router file
  bool has_route_every = false, has_kv_policy = false;
  std::string route_policy;          // "" : the command's
  float route_temperature = 0;       // 0: the policy's default
  std::string route_window;          // "" : the command's
  std::optional<PrototypeScore> route_score;  // nothing: the command's
  TokenRoutingOptions routing;
  bool trace = false;
};

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot read " + path + " (check the path of -f)");
  std::vector<std::string> lines;
  std::string line;
  size_t total = 0;
  while (true) {
    line.clear();
    char c;
    bool any = false;
    while (in.get(c)) {
      any = true;
      if (c == '\n') break;
      line.push_back(c);
      if (line.size() > kMaxLineBytes) {
        throw InputError(path + " line " + std::to_string(lines.size() + 1) + " is longer than " +
                         std::to_string(kMaxLineBytes >> 20) + " MiB — is this a JSONL file (one JSON object a line)?");
      }
    }
    if (!any) break;
    total += line.size() + 1;
    if (total > kMaxFileBytes) {
      throw InputError(path + " is larger than " + std::to_string(kMaxFileBytes >> 20) +
                       " MiB; split it into several files");
    }
    lines.push_back(line);
  }
  return lines;
}

template <typename T>
T Field(const json& j, const char* key, const std::string& where, const char* expected) {
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    throw InputError(where + ": field '" + key + "' should be " + expected + ", got " + j.at(key).dump());
  }
}

BatchLine ParseLine(const std::string& text, int64_t number, const std::string& file, const GenerateOptions& defaults) {
  const std::string where = file + " line " + std::to_string(number);
  json j;
  try {
    j = ParseBoundedJson(text);
  } catch (const json::parse_error& e) {
    throw InputError(where + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) throw InputError(where + ": expected a JSON object like {\"prompt\": \"...\"}, got " + j.dump().substr(0, 60));
  static const char* kKnown[] = {"prompt", "id", "mix", "router", "route_every", "kv_policy", "route_policy",
                                 "route_temperature", "route_window", "route_score", "max_tokens", "temperature", "top_p",
                                 "top_k", "seed", "stop", "trace"};
  for (const auto& [key, value] : j.items()) {
    if (std::find(std::begin(kKnown), std::end(kKnown), key) == std::end(kKnown)) {
      std::string known;
      for (const char* k : kKnown) known += (known.empty() ? "" : ", ") + std::string(k);
      throw InputError(where + ": unknown field '" + key + "'; expected " + known);
    }
  }
  BatchLine l;
  l.line = number;
  l.options = defaults;
  if (!j.contains("prompt")) throw InputError(where + ": no \"prompt\" field");
  l.prompt = Field<std::string>(j, "prompt", where, "a string");
  if (j.contains("id")) l.id = j["id"];
  if (j.contains("mix")) {
    if (!j["mix"].is_object()) throw InputError(where + ": field 'mix' should be an object {adapter: weight}, got " + j["mix"].dump());
    l.has_mix = true;
    for (const auto& [name, w] : j["mix"].items()) {
      if (!w.is_number() || !std::isfinite(w.get<double>())) {
        throw InputError(where + ": mix weight of '" + name + "' should be a finite number, got " + w.dump());
      }
      l.mix.emplace_back(name, w.get<float>());
    }
  }
  if (j.contains("router")) l.router = Field<std::string>(j, "router", where, "a router file path");
  if (l.has_mix && !l.router.empty()) throw InputError(where + ": 'mix' fixes the weights, 'router' picks them: give one");
  if (j.contains("route_every")) {
    l.has_route_every = true;
    const json& v = j["route_every"];
    try {
      l.routing.route_every = ParseRouteEvery(v.is_string() ? v.get<std::string>() : v.dump());
    } catch (const InputError& e) {
      throw InputError(where + ": route_every: " + e.what());
    }
  }
  if (j.contains("kv_policy")) {
    l.has_kv_policy = true;
    try {
      l.routing.kv_policy = ParseKvPolicy(Field<std::string>(j, "kv_policy", where, "\"keep\" or \"recompute\""));
    } catch (const InputError& e) {
      throw InputError(where + ": kv_policy: " + e.what());
    }
  }
  if (j.contains("route_policy")) l.route_policy = Field<std::string>(j, "route_policy", where, "a policy name");
  if (j.contains("route_score")) {
    try {
      l.route_score =
          PrototypeScore::Parse(Field<std::string>(j, "route_score", where, "max, softmax:T or centroid"), "");
    } catch (const InputError& e) {
      throw InputError(where + ": route_score: " + e.what());
    }
  }
  if (j.contains("route_window")) {
    l.route_window = Field<std::string>(j, "route_window", where, "\"whole\" or \"last:N\"");
    try {
      RouteWindow::Parse(l.route_window);
    } catch (const InputError& e) {
      throw InputError(where + ": route_window: " + e.what());
    }
  }
  auto whole = [&](const char* key, int lo) {
    const json& v = j[key];
    if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > (1 << 30)) {
      throw InputError(where + ": field '" + key + "' should be a whole number >= " + std::to_string(lo) + ", got " + v.dump());
    }
    return v.get<int64_t>();
  };
  auto finite = [&](const char* key) {
    const json& v = j[key];
    if (!v.is_number() || !std::isfinite(v.get<double>())) {
      throw InputError(where + ": field '" + key + "' should be a finite number, got " + v.dump());
    }
    return v.get<float>();
  };
  if (j.contains("route_temperature")) {
    l.route_temperature = finite("route_temperature");
    if (!(l.route_temperature > 0)) {
      throw InputError(where + ": field 'route_temperature' should be > 0, got " + j["route_temperature"].dump());
    }
  }
  if (j.contains("max_tokens")) l.options.max_new_tokens = static_cast<int>(whole("max_tokens", 0));
  if (j.contains("temperature")) l.options.sampling.temperature = finite("temperature");
  if (j.contains("top_p")) l.options.sampling.top_p = finite("top_p");
  if (j.contains("top_k")) l.options.sampling.top_k = static_cast<int>(whole("top_k", 0));
  if (j.contains("seed")) l.options.sampling.seed = static_cast<uint64_t>(whole("seed", 0));
  if (j.contains("stop")) {
    const json& v = j["stop"];
    l.options.stop_strings.clear();
    if (v.is_string()) {
      l.options.stop_strings.push_back(v.get<std::string>());
    } else if (v.is_array()) {
      for (const json& s : v) {
        if (!s.is_string()) throw InputError(where + ": field 'stop' should hold strings, got " + s.dump());
        l.options.stop_strings.push_back(s.get<std::string>());
      }
    } else {
      throw InputError(where + ": field 'stop' should be a string or a list of strings, got " + v.dump());
    }
  }
  if (j.contains("trace")) l.trace = Field<bool>(j, "trace", where, "true or false");
  try {
    l.options.sampling.Validate();
  } catch (const InputError& e) {
    throw InputError(where + ": " + e.what());
  }
  return l;
}

json TraceJson(const TokenRouting& routing) {
  json steps = json::array();
  for (const RoutingTraceStep& s : routing.trace()) {
    json w = json::object();
    for (size_t t = 0; t < s.weights.size(); ++t) w[routing.task_names()[t]] = s.weights[t];
    steps.push_back({{"token", s.token}, {"text", s.text}, {"rerouted", s.rerouted}, {"weights", w}});
  }
  return steps;
}

}  // namespace

bool IsBatchFile(const std::string& path) {
  return path.size() > 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0;
}

int RunGenerateBatch(const BatchGenerateArgs& args, const Model& model, ThreadPool& pool, MixtureSetup& mixture) {
  const Tokenizer& tok = model.tokenizer();
  const std::vector<std::string> texts = ReadLines(args.file);
  // Parse and check every line before any work, so a bad line 900 does not
  // cost the 899 before it.
  std::vector<BatchLine> lines;
  for (size_t i = 0; i < texts.size(); ++i) {
    if (texts[i].find_first_not_of(" \t\r") == std::string::npos) continue;  // blank lines are skipped
    lines.push_back(ParseLine(texts[i], static_cast<int64_t>(i + 1), args.file, args.defaults));
  }
  if (lines.empty()) throw InputError(args.file + " holds no requests (one JSON object a line, e.g. {\"prompt\": \"...\"})");

  const size_t n = lines.size();
  std::vector<SequenceRequest> requests(n);
  std::vector<std::unique_ptr<TokenRouting>> routings(n);  // kept past their sequences for the traces
  for (size_t i = 0; i < n; ++i) {
    BatchLine& l = lines[i];
    const std::string where = args.file + " line " + std::to_string(l.line);
    SequenceRequest& r = requests[i];
    try {
      if (args.chat) {
        std::vector<ChatMessage> messages;
        if (!args.system.empty()) messages.push_back({"system", args.system});
        messages.push_back({"user", l.prompt});
        r.prompt_ids = tok.EncodeWithBos(FormatChat(DetectChatFormat(tok), messages, true, tok), true);
      } else {
        r.prompt_ids = tok.EncodeWithBos(l.prompt, false);
      }
      r.options = l.options;
      const bool routed = !l.router.empty() || (!l.has_mix && mixture.routed());
      const bool route_fields = l.has_route_every || l.has_kv_policy || !l.route_policy.empty() ||
                                l.route_temperature > 0 || !l.route_window.empty() || l.route_score.has_value();
      if (route_fields && !routed) {
        throw InputError("route_every / kv_policy / route_* need a router: give the line a \"router\" or the "
                         "command --router");
      }
      if (l.trace && !routed) throw InputError("\"trace\" records routing weights: the line is not routed");
      if (routed) {
        TokenRoutingOptions o = mixture.routing_options();
        if (l.has_route_every) o.route_every = l.routing.route_every;
        if (l.has_kv_policy) o.kv_policy = l.routing.kv_policy;
        if (!l.route_window.empty()) o.window = RouteWindow::Parse(l.route_window);
        if (l.route_score) o.score = l.route_score;
        if (!l.route_policy.empty() || l.route_temperature > 0) {
          o.policy = mixture.PolicyFor(l.router, l.route_policy, l.route_temperature);
        }
        routings[i] = mixture.RoutingFor(l.prompt, l.router, o);
        r.schedule = routings[i].get();
      } else if (l.has_mix) {
        r.weights = mixture.WeightsFor(l.mix, where);
      } else {
        r.weights = mixture.DefaultWeights();
      }
    } catch (const InputError& e) {
      const std::string what = e.what();
      throw InputError(what.rfind(where, 0) == 0 ? what : where + ": " + what);
    }
  }

  Scheduler scheduler(model, pool, mixture.mixer(), args.scheduler);
  std::vector<GenerateResult> results(n);
  std::vector<bool> done(n, false);
  size_t printed = 0, finished = 0;
  int64_t output_tokens = 0, prompt_tokens = 0;
  ProgressBar progress("generate", static_cast<int64_t>(n));
  auto print_ready = [&] {
    while (printed < n && done[printed]) {
      const BatchLine& l = lines[printed];
      const GenerateResult& g = results[printed];
      json out = {{"line", l.line}};
      if (!l.id.is_null()) out["id"] = l.id;
      out["text"] = g.text;
      out["stop_reason"] = g.stop_reason;
      if (!g.error.empty()) out["error"] = g.error;
      out["prompt_tokens"] = g.prompt_ids.size();
      out["output_tokens"] = g.output_ids.size();
      if (l.trace && routings[printed] != nullptr) out["trace"] = TraceJson(*routings[printed]);
      std::printf("%s\n", out.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
      std::fflush(stdout);
      ++printed;
    }
  };
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < n; ++i) {
    requests[i].on_done = [&, i](GenerateResult&& g) {
      output_tokens += static_cast<int64_t>(g.output_ids.size());
      prompt_tokens += static_cast<int64_t>(g.prompt_ids.size());
      results[i] = std::move(g);
      done[i] = true;
      ++finished;
    };
    try {
      scheduler.Submit(std::move(requests[i]));
    } catch (const InputError& e) {
      throw InputError(args.file + " line " + std::to_string(lines[i].line) + ": " + e.what());
    }
  }
  while (!scheduler.idle()) {
    scheduler.Step();
    print_ready();
    if (args.progress) progress.Update(static_cast<int64_t>(finished));
  }
  print_ready();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (args.progress) progress.Finish(static_cast<int64_t>(finished));
  const SchedulerStats& st = scheduler.stats();
  std::fprintf(stderr,
               "batch: %zu requests, %lld prompt + %lld output tokens in %.2f s (%.1f output tokens/s) | parallel %d | "
               "%lld steps, %.1f rows per step | router: %lld routings in %lld encoder calls, %.1f%% of the time\n",
               n, static_cast<long long>(prompt_tokens), static_cast<long long>(output_tokens), seconds,
               seconds > 0 ? static_cast<double>(output_tokens) / seconds : 0.0, args.scheduler.max_sequences,
               static_cast<long long>(st.steps), st.steps > 0 ? static_cast<double>(st.rows) / st.steps : 0.0,
               static_cast<long long>(st.routed), static_cast<long long>(st.encoder_batches),
               seconds > 0 ? 100.0 * st.routing_seconds / seconds : 0.0);
  return 0;
}

}  // namespace tokenlora::cli
