#include "server/http_server.h"

#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.h"
#include "server/in_flight.h"
#include "server/playground.h"

namespace tokenlora::server {
namespace {

using nlohmann::json;

const char* kJson = "application/json";

bool SameSecret(const std::string& a, const std::string& b) {
  // Constant time in the length of the secret.
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

ApiError StatusError(int status) {
  switch (status) {
    case 404: return ApiError(404, "no such route — the API is under /v1 (GET /v1/models lists the models)", "invalid_request_error", "", "not_found");
    case 405: return ApiError(405, "method not allowed on this route", "invalid_request_error", "", "method_not_allowed");
    case 413: return ApiError(413, "the request body is larger than the server's limit (--max-body)", "invalid_request_error", "", "request_too_large");
    case 408: return ApiError(408, "the request did not arrive in time (--read-timeout)", "invalid_request_error", "", "timeout");
    default: return ApiError(status, "request failed with HTTP status " + std::to_string(status), status >= 500 ? "server_error" : "invalid_request_error");
  }
}

// base64 of raw bytes (the openai client asks for embeddings this way).
std::string Base64(const void* data, size_t n) {
  static const char* kChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = static_cast<const unsigned char*>(data);
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (i + 1 < n ? uint32_t{p[i + 1]} << 8 : 0u) | (i + 2 < n ? p[i + 2] : 0u);
    out += kChars[(v >> 18) & 63];
    out += kChars[(v >> 12) & 63];
    out += i + 1 < n ? kChars[(v >> 6) & 63] : '=';
    out += i + 2 < n ? kChars[v & 63] : '=';
  }
  return out;
}

}  // namespace

HttpServer::HttpServer(ServerOptions options)
    : options_(std::move(options)), http_(std::make_unique<httplib::Server>()), adapters_(options_.adapter_names) {
  const int threads = options_.http_threads;
  // httplib owns the queue it is given (its API takes a raw pointer).
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http_->set_payload_max_length(options_.max_body_bytes);
  http_->set_read_timeout(options_.read_timeout_seconds, 0);
  http_->set_keep_alive_timeout(options_.idle_timeout_seconds);
  Routes();
}

HttpServer::~HttpServer() = default;

int HttpServer::Bind() {
  int port = options_.port;
  if (port == 0) {
    port = http_->bind_to_any_port(options_.host);
    if (port < 0) throw InputError("serve: cannot listen on " + options_.host + " (is --host an address of this machine?)");
  } else if (!http_->bind_to_port(options_.host, port)) {
    throw InputError("serve: cannot listen on " + options_.host + ":" + std::to_string(port) +
                     " — is another server on that port? (--port 0 picks a free one)");
  }
  options_.port = port;
  return port;
}

void HttpServer::Serve() { http_->listen_after_bind(); }

void HttpServer::Attach(ServerEngine* engine) { engine_ = engine; }

void HttpServer::Shutdown() {
  draining_ = true;
  LogLine("serve: shutting down: " + std::to_string(in_flight_.load()) + " requests in flight, up to " +
          std::to_string(options_.drain_seconds) + " s to finish");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(options_.drain_seconds);
  while (in_flight_ > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (ServerEngine* engine = engine_.load(); engine != nullptr && in_flight_ > 0) {
    LogLine("serve: cancelling " + std::to_string(in_flight_.load()) + " requests still in flight");
    engine->CancelAll();
    const auto hard = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (in_flight_ > 0 && std::chrono::steady_clock::now() < hard) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  http_->stop();
}

void HttpServer::LogLine(const std::string& line) {
  std::lock_guard<std::mutex> lock(log_mu_);
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

void HttpServer::SendError(httplib::Response& res, const ApiError& e) {
  res.status = e.status();
  if (e.status() == 429 || e.status() == 503) res.set_header("Retry-After", "1");
  res.set_content(ErrorBody(e), kJson);
}

ServerEngine& HttpServer::Admit() {
  if (draining_) throw ApiError(503, "the server is shutting down; retry on another replica", "server_error", "", "shutting_down");
  ServerEngine* engine = engine_.load();
  if (engine == nullptr) throw ApiError(503, "the model is still loading; retry when GET /health answers 200", "server_error", "", "loading");
  if (in_flight_ >= options_.max_in_flight) {
    throw ApiError(429, "the server is at capacity (" + std::to_string(options_.max_in_flight) +
                            " requests in flight, --max-queue); retry after a second",
                   "rate_limit_error", "", "queue_full");
  }
  return *engine;
}

std::vector<std::string> HttpServer::AdapterNames() const {
  std::lock_guard<std::mutex> lock(adapters_mu_);
  return adapters_;
}

std::vector<std::string> HttpServer::RouterTasks() const {
  ServerEngine* engine = engine_.load();
  if (engine == nullptr || engine->resources().router == nullptr) return {};
  return engine->resources().router->file().TaskNames();  // the router does not change after load
}

Selection HttpServer::Select(const std::string& model) const {
  if (model == options_.base_name) return {Selection::Kind::kBase, model};
  const std::vector<std::string> adapters = AdapterNames();
  for (const std::string& a : adapters) {
    if (model == a) return {Selection::Kind::kAdapter, model};
  }
  if (!options_.router_name.empty() && (model == "routed" || model == options_.router_name)) {
    return {Selection::Kind::kRouted, model};
  }
  std::string names = options_.base_name;
  for (const std::string& a : adapters) names += ", " + a;
  if (!options_.router_name.empty()) names += ", routed";
  throw ApiError(404, "The model '" + model + "' does not exist; this server has " + names, "invalid_request_error",
                 "model", "model_not_found");
}

bool HttpServer::Authorized(const httplib::Request& req, httplib::Response& res) {
  if (options_.api_key.empty() || req.path == "/health" || req.path == "/") return true;
  const std::string auth = req.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  if (auth.rfind(prefix, 0) == 0 && SameSecret(auth.substr(prefix.size()), options_.api_key)) return true;
  SendError(res, ApiError(401, auth.empty() ? "no API key: send the header Authorization: Bearer KEY"
                                            : "incorrect API key in the Authorization header",
                          "invalid_request_error", "", "invalid_api_key"));
  metrics_.CountRequest(req.path, 401);
  return false;
}

void HttpServer::Routes() {
  httplib::Server& s = *http_;
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    return Authorized(req, res) ? httplib::Server::HandlerResponse::Unhandled : httplib::Server::HandlerResponse::Handled;
  });
  s.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (res.body.empty() && !res.content_provider_) {
      SendError(res, StatusError(res.status));
      metrics_.CountRequest("other", res.status);
    }
  });
  s.set_exception_handler([this](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    LogLine("serve: internal error on " + req.path + ": " + what);
    SendError(res, ApiError(500, "internal server error: " + what, "server_error"));
  });
  s.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(PlaygroundHtml(), "text/html; charset=utf-8");
  });
  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (engine_.load() == nullptr) {
      res.status = 503;
      res.set_content(R"({"status":"loading"})", kJson);
    } else if (draining_) {
      res.status = 503;
      res.set_content(R"({"status":"shutting_down"})", kJson);
    } else {
      res.set_content(R"({"status":"ok"})", kJson);
    }
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    ServerEngine* engine = engine_.load();
    res.set_content(metrics_.Prometheus(engine != nullptr ? engine->Snapshot() : EngineSnapshot{}),
                    "text/plain; version=0.0.4");
  });
  s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    HandleModels(res);
    metrics_.CountRequest("/v1/models", res.status);
  });
  s.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) { HandleCompletion(req, res, false); });
  s.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) { HandleCompletion(req, res, true); });
  s.Post("/v1/adapters", [this](const httplib::Request& req, httplib::Response& res) {
    try {
      HandleAdapterLoad(req, res);
    } catch (const ApiError& e) {
      SendError(res, e);
    }
    metrics_.CountRequest("/v1/adapters", res.status);
  });
  s.Delete(R"(/v1/adapters/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    try {
      HandleAdapterUnload(req.matches[1].str(), res);
    } catch (const ApiError& e) {
      SendError(res, e);
    }
    metrics_.CountRequest("/v1/adapters", res.status);
  });
  s.Post("/v1/embeddings", [this](const httplib::Request& req, httplib::Response& res) {
    try {
      HandleEmbeddings(req, res);
    } catch (const ApiError& e) {
      SendError(res, e);
    }
    metrics_.CountRequest("/v1/embeddings", res.status);
  });
}

void HttpServer::HandleModels(httplib::Response& res) {
  json data = json::array();
  auto add = [&](const std::string& id, const std::string& owner, json extra) {
    json m = {{"id", id}, {"object", "model"}, {"created", options_.created}, {"owned_by", owner}};
    m.update(extra);
    data.push_back(std::move(m));
  };
  add(options_.base_name, "tokenlora", {{"tokenlora_kind", "base"}});
  for (const std::string& a : AdapterNames()) add(a, "tokenlora", {{"tokenlora_kind", "adapter"}});
  if (!options_.router_name.empty()) {
    add("routed", "tokenlora", {{"tokenlora_kind", "routed"}, {"router", options_.router_name}, {"adapters", RouterTasks()}});
  }
  if (!options_.embedder_name.empty()) add(options_.embedder_name, "sentence-transformers", {{"tokenlora_kind", "embedder"}});
  res.set_content(json{{"object", "list"}, {"data", data}}.dump(), kJson);
}

void HttpServer::HandleEmbeddings(const httplib::Request& req, httplib::Response& res) {
  const auto t0 = std::chrono::steady_clock::now();
  ServerEngine& engine = Admit();
  InFlight guard(in_flight_);
  const EmbeddingRequest r = ParseEmbeddingRequest(req.body);
  if (options_.embedder_name.empty() || r.model != options_.embedder_name) {
    throw ApiError(404, "The model '" + r.model + "' is not an embedder; this server embeds with " +
                            (options_.embedder_name.empty() ? std::string("none (no embedder loaded)") : "'" + options_.embedder_name + "'"),
                   "invalid_request_error", "model", "model_not_found");
  }
  Embedder* embedder = engine.resources().embedder;
  std::vector<float> out;
  int64_t tokens = 0;
  engine.RunOnEngine([&] {
    out.resize(r.inputs.size() * static_cast<size_t>(embedder->dim()));
    embedder->EmbedBatch(r.inputs, out.data());
    for (const std::string& text : r.inputs) tokens += static_cast<int64_t>(embedder->model().Tokenize(text).size()) + 2;
  });
  const size_t dim = static_cast<size_t>(embedder->dim());
  json data = json::array();
  for (size_t i = 0; i < r.inputs.size(); ++i) {
    json e = {{"object", "embedding"}, {"index", i}};
    if (r.base64) {
      e["embedding"] = Base64(out.data() + i * dim, dim * sizeof(float));
    } else {
      e["embedding"] = std::vector<float>(out.begin() + static_cast<std::ptrdiff_t>(i * dim),
                                          out.begin() + static_cast<std::ptrdiff_t>((i + 1) * dim));
    }
    data.push_back(std::move(e));
  }
  res.set_content(json{{"object", "list"}, {"data", data}, {"model", r.model},
                       {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}}.dump(), kJson);
  LogLine("serve: embeddings model=" + r.model + " inputs=" + std::to_string(r.inputs.size()) + " tokens=" +
          std::to_string(tokens) + " ms=" +
          std::to_string(static_cast<int>(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count())) +
          " status=200");
}

}  // namespace tokenlora::server
