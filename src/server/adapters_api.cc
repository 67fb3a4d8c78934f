// POST /v1/adapters {name, path} and DELETE /v1/adapters/NAME: adapters
// loaded and unloaded while the server runs, only from under --adapter-dir.
// The files are read on the handler's thread; the bank changes on the
// engine's, between two steps (ServerEngine::RunOnEngine), where a removal
// that running requests still use only retires the adapter (they keep it
// until they finish; see AdapterBank).
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json_text.h"
#include "server/adapter_dir.h"
#include "server/http_server.h"

namespace tokenlora::server {
namespace {

using nlohmann::json;

ApiError Disabled() {
  return ApiError(400,
                  "run-time adapters are off on this server: start it with --adapter-dir DIR to load adapters from "
                  "under DIR (or name them at start with --adapter NAME=PATH)",
                  "invalid_request_error", "", "adapters_disabled");
}

}  // namespace

void HttpServer::HandleAdapterLoad(const httplib::Request& req, httplib::Response& res) {
  const auto t0 = std::chrono::steady_clock::now();
  if (options_.adapter_dir.empty()) throw Disabled();
  ServerEngine* engine = engine_.load();
  if (engine == nullptr) throw ApiError(503, "the model is still loading; retry when GET /health answers 200", "server_error", "", "loading");
  json j;
  try {
    j = ParseBoundedJson(req.body);
  } catch (const json::parse_error& e) {
    throw BadRequest(std::string("the request body is not valid JSON (") + e.what() + "); send {\"name\": ..., \"path\": ...}",
                     "", "invalid_json");
  }
  if (!j.is_object()) throw BadRequest("the request body should be a JSON object {\"name\": ..., \"path\": ...}", "", "invalid_json");
  for (const auto& [key, value] : j.items()) {
    if (key != "name" && key != "path") throw BadRequest("unrecognized field '" + key + "'; this route knows name, path", key, "unknown_field");
  }
  for (const char* key : {"name", "path"}) {
    if (!j.contains(key)) throw BadRequest(std::string("'") + key + "' is required", key, "missing");
    if (!j[key].is_string()) throw BadRequest(std::string("'") + key + "' should be a string", key, "invalid_type");
  }
  const std::string name = j["name"].get<std::string>();
  const std::string path = j["path"].get<std::string>();
  CheckAdapterName(name);
  if (name == options_.base_name || name == "routed" || name == options_.router_name || name == options_.embedder_name) {
    throw ApiError(409, "the name '" + name + "' is taken by the base model, the router or the embedder; pick another",
                   "invalid_request_error", "name", "name_taken");
  }
  auto taken = [&] {
    return ApiError(409, "an adapter named '" + name + "' is already loaded; DELETE /v1/adapters/" + name +
                             " first, or pick another name",
                    "invalid_request_error", "name", "adapter_exists");
  };
  const std::string resolved = ResolveAdapterPath(options_.adapter_dir, path);
  std::lock_guard<std::mutex> op(adapter_ops_mu_);
  {
    const std::vector<std::string> names = AdapterNames();
    if (std::find(names.begin(), names.end(), name) != names.end()) throw taken();
  }
  LoraAdapter adapter;
  try {
    adapter = LoadAdapter(name, resolved, options_.adapter_load);
  } catch (const InputError& e) {
    throw BadRequest(std::string("cannot load the adapter at 'path': ") + e.what(), "path", "invalid_adapter");
  }
  int slot = -1;
  std::string described;
  engine->RunOnEngine([&] {
    AdapterBank* bank = engine->resources().bank;
    TL_CHECK_MSG(bank != nullptr, "--adapter-dir without an adapter bank");
    if (bank->Find(name) >= 0) throw taken();
    try {
      slot = bank->Add(std::move(adapter));  // checks every tensor against the base
    } catch (const InputError& e) {
      throw BadRequest(std::string("the adapter at 'path' does not fit this server's base model: ") + e.what(), "path",
                       "adapter_mismatch");
    }
    described = bank->adapter(slot)->Describe();
  });
  {
    std::lock_guard<std::mutex> lock(adapters_mu_);
    adapters_.push_back(name);
  }
  const int64_t created = static_cast<int64_t>(std::time(nullptr));
  res.set_content(json{{"id", name},
                       {"object", "model"},
                       {"created", created},
                       {"owned_by", "tokenlora"},
                       {"tokenlora_kind", "adapter"},
                       {"path", path},
                       {"description", described}}
                      .dump(-1, ' ', false, json::error_handler_t::replace),
                  "application/json");
  LogLine("serve: adapter loaded name=" + name + " path=" + resolved + " slot=" + std::to_string(slot) + " ms=" +
          std::to_string(static_cast<int>(
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count())));
}

void HttpServer::HandleAdapterUnload(const std::string& name, httplib::Response& res) {
  if (options_.adapter_dir.empty()) throw Disabled();
  ServerEngine* engine = engine_.load();
  if (engine == nullptr) throw ApiError(503, "the model is still loading; retry when GET /health answers 200", "server_error", "", "loading");
  const std::vector<std::string> tasks = RouterTasks();
  if (std::find(tasks.begin(), tasks.end(), name) != tasks.end()) {
    throw ApiError(409, "adapter '" + name + "' is one of the router's tasks: model 'routed' needs it, so it stays loaded",
                   "invalid_request_error", "name", "adapter_in_router");
  }
  std::lock_guard<std::mutex> op(adapter_ops_mu_);
  bool freed = false;
  engine->RunOnEngine([&] {
    AdapterBank* bank = engine->resources().bank;
    if (bank == nullptr || bank->Find(name) < 0) {
      std::string names;
      for (const std::string& n : AdapterNames()) names += (names.empty() ? "" : ", ") + n;
      throw ApiError(404, "no adapter named '" + name + "' is loaded (loaded: " + (names.empty() ? "none" : names) + ")",
                     "invalid_request_error", "name", "model_not_found");
    }
    freed = bank->Remove(name);
  });
  {
    std::lock_guard<std::mutex> lock(adapters_mu_);
    adapters_.erase(std::remove(adapters_.begin(), adapters_.end(), name), adapters_.end());
  }
  // in_use: requests still running with it keep it until they finish.
  res.set_content(json{{"id", name}, {"object", "model"}, {"deleted", true}, {"tokenlora_in_use", !freed}}.dump(),
                  "application/json");
  LogLine("serve: adapter unloaded name=" + name + (freed ? " (freed)" : " (retired: in use until its requests end)"));
}

}  // namespace tokenlora::server
