// The OpenAI-compatible API's request bodies as plain structs, and its error
// shape. Pure: JSON in, structs (or an ApiError naming the field) out; no
// model, no HTTP. The routes (server/http_server.cc) and the engine
// (server/server_engine.cc) work on these structs only.
//
// Extensions where OpenAI has no word:
//   "routing": {"every": K | "prompt", "kv_policy": "keep"|"recompute",
//               "policy": NAME, "temperature": T, "window": "whole"|"last:N",
//               "adapters": [names],       — route among these router tasks only
//               "mix_mode": "exact"|"peft-linear"|"peft04-linear",
//               "weights": {adapter: w}}   — a fixed mixture instead of the
//               router's, or the router's route-every / KV policy;
//   "routing_trace": true                  — the per-token adapter weights.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "generate/token_routing.h"
#include "lora/mixer.h"
#include "tokenizer/tokenizer.h"

namespace tokenlora::server {

// An error the client sees: HTTP `status` and OpenAI's body
// {"error": {"message", "type", "param", "code"}}.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message, std::string type, std::string param = "", std::string code = "")
      : std::runtime_error(message), status_(status), type_(std::move(type)), param_(std::move(param)),
        code_(std::move(code)) {}
  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::string& param() const { return param_; }
  const std::string& code() const { return code_; }

 private:
  int status_;
  std::string type_, param_, code_;
};

// 400 invalid_request_error naming `param`.
ApiError BadRequest(const std::string& message, const std::string& param = "", const std::string& code = "invalid_value");
// OpenAI's error body for `e` (param/code null when empty).
std::string ErrorBody(const ApiError& e);

struct RoutingRequest {
  std::optional<int> every;            // route every K tokens (0: once, on the prompt)
  std::optional<KvPolicy> kv_policy;
  std::optional<std::string> policy;   // a routing policy name (paper, softmax, top-k, uniform)
  std::optional<float> temperature;    // that policy's temperature
  std::optional<RouteWindow> window;   // whole or last:N word pieces
  // A fixed mixture {adapter: weight} instead of the router (in body order).
  std::optional<std::vector<std::pair<std::string, float>>> weights;
  std::optional<std::vector<std::string>> adapters;  // route among these router tasks only
  std::optional<MixMode> mix_mode;                   // how a row's adapters are mixed
  std::optional<PrototypeScore> score;               // a task's score from its prototypes (max, softmax:T, centroid)
  // Whether a router field is given (every ... window, adapters, score): the request is routed.
  bool wants_router() const { return every || kv_policy || policy || temperature || window || adapters || score; }
};

// POST /v1/completions and /v1/chat/completions.
struct CompletionRequest {
  bool chat = false;
  std::string model;
  std::vector<std::string> prompts;   // completions: each gets n choices
  std::vector<ChatMessage> messages;  // chat
  std::optional<int> max_tokens;      // absent: the server's default
  float temperature = 1.0f;           // OpenAI's default
  float top_p = 1.0f;
  float presence_penalty = 0.0f;   // OpenAI's, in [-2, 2]
  float frequency_penalty = 0.0f;  // OpenAI's, in [-2, 2]
  std::vector<std::string> stop;
  std::optional<uint64_t> seed;
  int n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  // Log-probabilities: -1 none; else each token's, with this many most
  // likely alternatives (completions: logprobs N; chat: logprobs true +
  // top_logprobs N).
  int logprobs = -1;
  RoutingRequest routing;
  bool has_routing = false;
  bool routing_trace = false;
};

// Parses and checks a body. Throws ApiError (400) naming the field: not
// JSON, not an object, an unknown field, a wrong type or value, or a feature
// this server cannot honour (logprobs, penalties, echo, best_of, ...).
CompletionRequest ParseCompletionRequest(std::string_view body, bool chat);

// POST /v1/embeddings: {"model", "input": string | [string], "encoding_format"?: "float" | "base64"}.
struct EmbeddingRequest {
  std::string model;
  std::vector<std::string> inputs;
  bool base64 = false;  // little-endian float32 bytes, base64 (the openai client's default)
};
EmbeddingRequest ParseEmbeddingRequest(std::string_view body);

// OpenAI's finish_reason for a GenerateResult::stop_reason: "stop" or "length".
const char* FinishReason(const std::string& stop_reason);

}  // namespace tokenlora::server
