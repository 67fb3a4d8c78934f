#include "server/api_request.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json_text.h"

namespace tokenlora::server {
namespace {

using nlohmann::json;

constexpr int kMaxN = 16;
constexpr int kMaxStops = 4;
constexpr int kMaxTokensLimit = 1 << 20;

std::string Short(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

json ParseObject(std::string_view body) {
  json j;
  try {
    j = ParseBoundedJson(body);
  } catch (const json::parse_error& e) {
    throw BadRequest(std::string("the request body is not valid JSON (") + e.what() +
                         ") — send a JSON object with Content-Type: application/json",
                     "", "invalid_json");
  }
  if (!j.is_object()) throw BadRequest("the request body should be a JSON object, got " + Short(j), "", "invalid_json");
  return j;
}

void CheckKnown(const json& j, std::initializer_list<const char*> known, const std::string& where) {
  for (const auto& [key, value] : j.items()) {
    if (std::find_if(known.begin(), known.end(), [&](const char* k) { return key == k; }) == known.end()) {
      std::string list;
      for (const char* k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      throw BadRequest("unrecognized " + where + "field '" + key + "'; this server knows " + list, key,
                       "unknown_field");
    }
  }
}

std::string String(const json& v, const std::string& param) {
  if (!v.is_string()) throw BadRequest("'" + param + "' should be a string, got " + Short(v), param, "invalid_type");
  return v.get<std::string>();
}

float Number(const json& v, const std::string& param, double lo, double hi) {
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < lo || v.get<double>() > hi) {
    throw BadRequest("'" + param + "' should be a number in [" + Short(json(lo)) + ", " + Short(json(hi)) + "], got " +
                         Short(v),
                     param, v.is_number() ? "invalid_value" : "invalid_type");
  }
  return v.get<float>();
}

int64_t Whole(const json& v, const std::string& param, int64_t lo, int64_t hi) {
  if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi) {
    throw BadRequest("'" + param + "' should be a whole number in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                         "], got " + Short(v),
                     param, v.is_number() ? "invalid_value" : "invalid_type");
  }
  return v.get<int64_t>();
}

bool Bool(const json& v, const std::string& param) {
  if (!v.is_boolean()) throw BadRequest("'" + param + "' should be true or false, got " + Short(v), param, "invalid_type");
  return v.get<bool>();
}

// Fields OpenAI has that this server cannot honour: accepted at their
// neutral value only.
void RefuseUnlessNeutral(const json& j, const char* key, const json& neutral, const std::string& why) {
  if (!j.contains(key) || j[key].is_null() || j[key] == neutral) return;
  throw BadRequest(std::string("'") + key + "' is not supported by this server (" + why + "); got " + Short(j[key]),
                   key, "unsupported_value");
}

std::string MessageContent(const json& m, size_t i) {
  const std::string param = "messages[" + std::to_string(i) + "].content";
  const json& c = m.at("content");
  if (c.is_string()) return c.get<std::string>();
  if (c.is_null()) return "";
  if (c.is_array()) {  // [{"type": "text", "text": "..."}]
    std::string text;
    for (const json& part : c) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string()) {
        throw BadRequest(param + " parts should be {\"type\": \"text\", \"text\": \"...\"} (text only), got " +
                             Short(part),
                         param, "invalid_type");
      }
      text += part["text"].get<std::string>();
    }
    return text;
  }
  throw BadRequest(param + " should be a string or a list of text parts, got " + Short(c), param, "invalid_type");
}

RoutingRequest ParseRouting(const json& r) {
  if (!r.is_object()) {
    throw BadRequest("'routing' should be an object like {\"every\": 2, \"kv_policy\": \"keep\"}, got " + Short(r),
                     "routing", "invalid_type");
  }
  CheckKnown(r, {"every", "kv_policy", "policy", "temperature", "window", "weights", "adapters", "mix_mode", "score"},
             "routing ");
  RoutingRequest out;
  if (r.contains("every")) {
    const json& v = r["every"];
    try {
      out.every = ParseRouteEvery(v.is_string() ? v.get<std::string>() : v.dump());
    } catch (const InputError& e) {
      throw BadRequest(std::string("routing.every: ") + e.what(), "routing.every");
    }
  }
  if (r.contains("kv_policy")) {
    try {
      out.kv_policy = ParseKvPolicy(String(r["kv_policy"], "routing.kv_policy"));
    } catch (const InputError& e) {
      throw BadRequest(std::string("routing.kv_policy: ") + e.what(), "routing.kv_policy");
    }
  }
  if (r.contains("policy")) {
    const std::string p = String(r["policy"], "routing.policy");
    if (p != "paper" && p != "softmax" && p != "top-k" && p != "uniform") {
      throw BadRequest("routing.policy: expected paper, softmax, top-k or uniform, got '" + p + "'", "routing.policy",
                       "invalid_value");
    }
    out.policy = p;
  }
  if (r.contains("temperature")) out.temperature = Number(r["temperature"], "routing.temperature", 1e-6, 1e6);
  if (r.contains("window")) {
    try {
      out.window = RouteWindow::Parse(String(r["window"], "routing.window"));
    } catch (const InputError& e) {
      throw BadRequest(std::string("routing.window: ") + e.what(), "routing.window");
    }
  }
  if (r.contains("score")) {
    try {
      out.score = PrototypeScore::Parse(String(r["score"], "routing.score"), "routing.score");
    } catch (const InputError& e) {
      throw BadRequest(e.what(), "routing.score");
    }
  }
  if (r.contains("weights")) {
    const json& w = r["weights"];
    if (!w.is_object()) {
      throw BadRequest("routing.weights should be an object {adapter: weight}, got " + Short(w), "routing.weights",
                       "invalid_type");
    }
    std::vector<std::pair<std::string, float>> mix;
    for (const auto& [name, v] : w.items()) mix.emplace_back(name, Number(v, "routing.weights." + name, -100, 100));
    out.weights = std::move(mix);
  }
  if (r.contains("adapters")) {
    const json& a = r["adapters"];
    if (!a.is_array() || a.empty() || !std::all_of(a.begin(), a.end(), [](const json& x) { return x.is_string(); })) {
      throw BadRequest("routing.adapters should be a non-empty list of adapter names (router tasks) to route among, got " +
                           Short(a),
                       "routing.adapters", "invalid_type");
    }
    std::vector<std::string> names;
    for (const json& x : a) {
      if (std::find(names.begin(), names.end(), x.get<std::string>()) != names.end()) {
        throw BadRequest("routing.adapters names '" + x.get<std::string>() + "' twice", "routing.adapters");
      }
      names.push_back(x.get<std::string>());
    }
    out.adapters = std::move(names);
  }
  if (r.contains("mix_mode")) {
    try {
      out.mix_mode = ParseMixMode(String(r["mix_mode"], "routing.mix_mode"));
    } catch (const InputError& e) {
      throw BadRequest(std::string("routing.mix_mode: ") + e.what(), "routing.mix_mode");
    }
  }
  if (out.weights && out.wants_router()) {
    throw BadRequest("routing.weights fixes the mixture; routing.every / kv_policy / policy / temperature / window / "
                     "adapters are for the router: give one or the other",
                     "routing.weights");
  }
  return out;
}

}  // namespace

ApiError BadRequest(const std::string& message, const std::string& param, const std::string& code) {
  return ApiError(400, message, "invalid_request_error", param, code);
}

std::string ErrorBody(const ApiError& e) {
  json err = {{"message", e.what()}, {"type", e.type()}, {"param", nullptr}, {"code", nullptr}};
  if (!e.param().empty()) err["param"] = e.param();
  if (!e.code().empty()) err["code"] = e.code();
  return json{{"error", err}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

CompletionRequest ParseCompletionRequest(std::string_view body, bool chat) {
  const json j = ParseObject(body);
  if (chat) {
    CheckKnown(j, {"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "seed",
                   "n", "stream", "stream_options", "logprobs", "top_logprobs", "presence_penalty",
                   "frequency_penalty", "logit_bias", "user", "response_format", "routing", "routing_trace"},
               "");
  } else {
    CheckKnown(j, {"model", "prompt", "max_tokens", "temperature", "top_p", "stop", "seed", "n", "stream",
                   "stream_options", "logprobs", "echo", "best_of", "suffix", "presence_penalty", "frequency_penalty",
                   "logit_bias", "user", "routing", "routing_trace"},
               "");
  }
  CompletionRequest r;
  r.chat = chat;
  if (!j.contains("model")) throw BadRequest("'model' is required (GET /v1/models lists them)", "model", "missing");
  r.model = String(j["model"], "model");
  if (chat) {
    if (!j.contains("messages")) throw BadRequest("'messages' is required", "messages", "missing");
    const json& ms = j["messages"];
    if (!ms.is_array() || ms.empty()) {
      throw BadRequest("'messages' should be a non-empty list of {\"role\", \"content\"}, got " + Short(ms), "messages",
                       "invalid_type");
    }
    for (size_t i = 0; i < ms.size(); ++i) {
      const json& m = ms[i];
      const std::string where = "messages[" + std::to_string(i) + "]";
      if (!m.is_object() || !m.contains("role") || !m.contains("content")) {
        throw BadRequest(where + " should be {\"role\": ..., \"content\": ...}, got " + Short(m), where, "invalid_type");
      }
      std::string role = String(m["role"], where + ".role");
      if (role == "developer") role = "system";
      if (role != "system" && role != "user" && role != "assistant") {
        throw BadRequest(where + ".role should be system, user or assistant, got '" + role + "'", where + ".role");
      }
      r.messages.push_back({role, MessageContent(m, i)});
    }
  } else {
    if (!j.contains("prompt")) throw BadRequest("'prompt' is required", "prompt", "missing");
    const json& p = j["prompt"];
    if (p.is_string()) {
      r.prompts.push_back(p.get<std::string>());
    } else if (p.is_array() && !p.empty() && std::all_of(p.begin(), p.end(), [](const json& s) { return s.is_string(); })) {
      for (const json& s : p) r.prompts.push_back(s.get<std::string>());
    } else {
      throw BadRequest("'prompt' should be a string or a non-empty list of strings (token-id prompts are not "
                       "supported), got " + Short(p),
                       "prompt", "invalid_type");
    }
    if (r.prompts.size() > 64) throw BadRequest("at most 64 prompts in one request", "prompt");
  }
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (j.contains(key) && !j[key].is_null()) r.max_tokens = static_cast<int>(Whole(j[key], key, 0, kMaxTokensLimit));
  }
  if (j.contains("temperature") && !j["temperature"].is_null()) r.temperature = Number(j["temperature"], "temperature", 0, 2);
  if (j.contains("top_p") && !j["top_p"].is_null()) r.top_p = Number(j["top_p"], "top_p", 0, 1);
  if (r.top_p <= 0.0f) r.top_p = 1e-6f;  // OpenAI allows 0: the most likely token only
  if (j.contains("stop") && !j["stop"].is_null()) {
    const json& s = j["stop"];
    if (s.is_string()) {
      r.stop.push_back(s.get<std::string>());
    } else if (s.is_array() && s.size() <= kMaxStops) {
      for (const json& x : s) r.stop.push_back(String(x, "stop"));
    } else {
      throw BadRequest("'stop' should be a string or a list of at most 4 strings, got " + Short(s), "stop",
                       "invalid_type");
    }
    for (const std::string& x : r.stop) {
      if (x.empty()) throw BadRequest("'stop' strings should not be empty", "stop");
    }
  }
  if (j.contains("seed") && !j["seed"].is_null()) {
    r.seed = static_cast<uint64_t>(Whole(j["seed"], "seed", INT64_MIN / 2, INT64_MAX / 2));
  }
  if (j.contains("n") && !j["n"].is_null()) r.n = static_cast<int>(Whole(j["n"], "n", 1, kMaxN));
  if (!chat && r.prompts.size() * static_cast<size_t>(r.n) > 64) {
    throw BadRequest("prompts x n is " + std::to_string(r.prompts.size() * static_cast<size_t>(r.n)) +
                         ", at most 64 sequences per request; split the request",
                     "n");
  }
  if (j.contains("stream") && !j["stream"].is_null()) r.stream = Bool(j["stream"], "stream");
  if (j.contains("stream_options") && !j["stream_options"].is_null()) {
    const json& so = j["stream_options"];
    if (!so.is_object()) throw BadRequest("'stream_options' should be an object", "stream_options", "invalid_type");
    CheckKnown(so, {"include_usage"}, "stream_options ");
    if (so.contains("include_usage")) r.include_usage = Bool(so["include_usage"], "stream_options.include_usage");
    if (!r.stream) throw BadRequest("'stream_options' is only allowed with stream: true", "stream_options");
  }
  for (const char* key : {"presence_penalty", "frequency_penalty"}) {
    if (!j.contains(key) || j[key].is_null()) continue;
    (std::string_view(key) == "presence_penalty" ? r.presence_penalty : r.frequency_penalty) = Number(j[key], key, -2, 2);
  }
  RefuseUnlessNeutral(j, "logit_bias", json::object(), "no logit bias in the sampler");
  if (chat) {
    const bool want = j.contains("logprobs") && !j["logprobs"].is_null() && Bool(j["logprobs"], "logprobs");
    const bool has_top = j.contains("top_logprobs") && !j["top_logprobs"].is_null();
    if (has_top && !want) throw BadRequest("'top_logprobs' needs \"logprobs\": true", "top_logprobs");
    if (want) r.logprobs = has_top ? static_cast<int>(Whole(j["top_logprobs"], "top_logprobs", 0, 20)) : 0;
  } else if (j.contains("logprobs") && !j["logprobs"].is_null()) {
    r.logprobs = static_cast<int>(Whole(j["logprobs"], "logprobs", 0, 5));
  }
  RefuseUnlessNeutral(j, "echo", false, "the prompt is not echoed");
  RefuseUnlessNeutral(j, "best_of", 1, "use n");
  RefuseUnlessNeutral(j, "suffix", "", "no insertion mode");
  if (j.contains("response_format") && !j["response_format"].is_null() &&
      !(j["response_format"].is_object() && j["response_format"].value("type", "") == "text")) {
    throw BadRequest("'response_format' other than {\"type\": \"text\"} is not supported", "response_format",
                     "unsupported_value");
  }
  if (j.contains("routing") && !j["routing"].is_null()) {
    r.routing = ParseRouting(j["routing"]);
    r.has_routing = true;
  }
  if (j.contains("routing_trace") && !j["routing_trace"].is_null()) r.routing_trace = Bool(j["routing_trace"], "routing_trace");
  if (j.contains("user") && !j["user"].is_null()) String(j["user"], "user");  // checked, then ignored
  return r;
}

EmbeddingRequest ParseEmbeddingRequest(std::string_view body) {
  const json j = ParseObject(body);
  CheckKnown(j, {"model", "input", "encoding_format", "user", "dimensions"}, "");
  EmbeddingRequest r;
  if (!j.contains("model")) throw BadRequest("'model' is required (GET /v1/models lists them)", "model", "missing");
  r.model = String(j["model"], "model");
  if (!j.contains("input")) throw BadRequest("'input' is required", "input", "missing");
  const json& in = j["input"];
  if (in.is_string()) {
    r.inputs.push_back(in.get<std::string>());
  } else if (in.is_array() && !in.empty() && in.size() <= 256 &&
             std::all_of(in.begin(), in.end(), [](const json& s) { return s.is_string(); })) {
    for (const json& s : in) r.inputs.push_back(s.get<std::string>());
  } else {
    throw BadRequest("'input' should be a string or a list of 1 to 256 strings (token ids are not supported), got " +
                         Short(in),
                     "input", "invalid_type");
  }
  if (j.contains("encoding_format") && !j["encoding_format"].is_null()) {
    const json& f = j["encoding_format"];
    if (f != "float" && f != "base64") {
      throw BadRequest("'encoding_format' should be \"float\" or \"base64\", got " + Short(f), "encoding_format");
    }
    r.base64 = f == "base64";
  }
  RefuseUnlessNeutral(j, "dimensions", nullptr, "the embedder's dimension is fixed");
  return r;
}

const char* FinishReason(const std::string& stop_reason) {
  if (stop_reason == "length" || stop_reason == "context_full") return "length";
  return "stop";
}

}  // namespace tokenlora::server
