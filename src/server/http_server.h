// `tokenlora serve`'s HTTP layer (cpp-httplib): OpenAI-compatible routes
// that turn JSON into engine jobs and engine events into JSON / server-sent
// events. No math here; the model runs on the ServerEngine's thread.
//
// Routes: GET /health, GET /v1/models, POST /v1/completions,
// POST /v1/chat/completions, POST /v1/embeddings, GET /metrics, and with
// --adapter-dir POST /v1/adapters, DELETE /v1/adapters/NAME.
// Stateless between requests (replicas behind a load balancer need no
// stickiness; run-time adapters are per replica: load them on each).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "generate/generator.h"
#include "generate/token_routing.h"
#include "server/api_request.h"
#include "server/metrics.h"
#include "server/server_engine.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace tokenlora::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                 // 0: any free port (printed)
  std::string api_key;             // empty: no auth
  size_t max_body_bytes = 1 << 20;
  int read_timeout_seconds = 30;   // a request's head and body
  int idle_timeout_seconds = 5;    // keep-alive connection with no request (shutdown waits for these too)
  int http_threads = 32;
  int max_in_flight = 64;          // requests beyond this get 429 (Retry-After)
  double drain_seconds = 10;       // SIGTERM: time in-flight requests get to finish
  int default_max_tokens = 16;     // completions without max_tokens (OpenAI's default)
  int default_chat_max_tokens = 512;
  // The names GET /v1/models lists and `model` selects by.
  std::string base_name;
  std::vector<std::string> adapter_names;  // --adapter's (the list then changes at run time)
  // Run-time adapters (POST /v1/adapters) load from under this directory
  // only (canonical path); empty: the adapter routes are off.
  std::string adapter_dir;
  AdapterLoadOptions adapter_load;
  std::string router_name;    // the router file's name ("" without a router)
  std::string embedder_name;  // "" without an embedder
  int64_t created = 0;        // unix time the server started
  TokenRoutingOptions routing;  // the server's routing defaults
  GenerateOptions defaults;     // kv_type, ctx_size, ...
};

// What `model` (and `routing`) select.
struct Selection {
  enum class Kind { kBase, kAdapter, kRouted };
  Kind kind = Kind::kBase;
  std::string name;  // echoed as the response's model
};

class HttpServer {
 public:
  explicit HttpServer(ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port; InputError (naming the address) when it cannot. Returns the port.
  int Bind();
  // Serves until Stop(); call after Bind(), from its own thread.
  void Serve();
  // The model is loaded: /health turns 200 and the API opens.
  void Attach(ServerEngine* engine);
  // Graceful shutdown: refuse new requests (503), give the ones in flight up
  // to drain_seconds, cancel the rest, then stop listening.
  void Shutdown();

 private:
  void Routes();
  bool Authorized(const httplib::Request& req, httplib::Response& res);
  void HandleCompletion(const httplib::Request& req, httplib::Response& res, bool chat);
  void HandleEmbeddings(const httplib::Request& req, httplib::Response& res);
  void HandleModels(httplib::Response& res);
  void HandleAdapterLoad(const httplib::Request& req, httplib::Response& res);
  void HandleAdapterUnload(const std::string& name, httplib::Response& res);
  // The adapters `model` selects by and GET /v1/models lists (any thread).
  std::vector<std::string> AdapterNames() const;
  // The router's task names (empty without a router).
  std::vector<std::string> RouterTasks() const;
  // The engine, or an ApiError 503 while loading / shutting down, 429 when full.
  ServerEngine& Admit();
  Selection Select(const std::string& model) const;
  void SendError(httplib::Response& res, const ApiError& e);
  void LogLine(const std::string& line);

  ServerOptions options_;
  std::unique_ptr<httplib::Server> http_;
  std::atomic<ServerEngine*> engine_{nullptr};
  std::atomic<bool> draining_{false};
  std::atomic<int> in_flight_{0};
  std::atomic<int64_t> next_id_{1};
  Metrics metrics_;
  std::mutex log_mu_;
  mutable std::mutex adapters_mu_;
  std::vector<std::string> adapters_;  // --adapter's, then run-time ones, in load order
  std::mutex adapter_ops_mu_;          // one load / unload at a time
  friend class InFlight;
};

}  // namespace tokenlora::server
