// `tokenlora serve`: the OpenAI-compatible server (src/server/). Flags and
// loading only: the HTTP server binds first (GET /health answers "loading"),
// then the model, adapters, router and embedder load and the API opens.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <thread>

#include "commands.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "lora/mix_spec.h"
#include "mixture_args.h"
#include "router/router_file.h"
#include "server/adapter_dir.h"
#include "server/http_server.h"
#include "server/server_engine.h"

namespace tokenlora::cli {
namespace {

bool IsLoopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

std::string Stem(const std::string& path) {
  std::filesystem::path p(path);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();  // a directory given with a trailing slash
  std::string name = p.filename().string();
  for (const char* ext : {".gguf", ".json", ".safetensors"}) {
    const std::string e(ext);
    if (name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0) name.resize(name.size() - e.size());
  }
  return name;
}

}  // namespace

RunFn AddServeCommand(CLI::App& app) {
  struct Args {
    std::string model, activations = "int8", kv_type = "f16";
    MixtureArgs mixture;
    server::ServerOptions server;
    bool insecure_no_auth = false, no_embedder = false;
    int threads = 0, parallel = 8, batch_tokens = 512, ctx_size = 0, max_queue = 64;
    double kv_memory_mib = 0, max_body_mib = 1;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("serve", "Serve the model and adapters over an OpenAI-compatible HTTP API");
  cmd->add_option("-m,--model", a->model, "model: a .gguf file or a Hugging Face directory (default: the built-in SmolLM2-135M-Instruct)");
  a->mixture.Add(cmd);
  cmd->add_option("--host", a->server.host, "address to listen on; other than loopback needs --api-key")->capture_default_str();
  cmd->add_option("--port", a->server.port, "port (0: any free port, printed)")->check(CLI::Range(0, 65535))->capture_default_str();
  cmd->add_option("--api-key", a->server.api_key, "require Authorization: Bearer KEY on every route but /health (default: $TOKENLORA_API_KEY)");
  cmd->add_flag("--insecure-no-auth", a->insecure_no_auth, "allow a non-loopback --host without --api-key");
  cmd->add_option("--parallel", a->parallel, "sequences generated at once (the batch)")->check(CLI::Range(1, 4096))->capture_default_str();
  cmd->add_option("--max-queue", a->max_queue, "requests waiting beyond --parallel before new ones get 429")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--batch-tokens", a->batch_tokens, "most tokens in one forward pass")->check(CLI::Range(1, 1 << 16))->capture_default_str();
  cmd->add_option("--kv-memory", a->kv_memory_mib, "MiB of KV cache for all sequences (default: half the available memory)")
      ->check(CLI::Range(0.0, 1e9));
  cmd->add_option("-c,--ctx-size", a->ctx_size, "context of each sequence (default: prompt + max_tokens)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-body", a->max_body_mib, "largest request body in MiB (bigger: 413)")->check(CLI::Range(0.001, 1024.0))->capture_default_str();
  cmd->add_option("--read-timeout", a->server.read_timeout_seconds, "seconds to receive a request")->check(CLI::Range(1, 3600))->capture_default_str();
  cmd->add_option("--idle-timeout", a->server.idle_timeout_seconds, "seconds a keep-alive connection may sit idle")->check(CLI::Range(1, 3600))->capture_default_str();
  cmd->add_option("--drain-seconds", a->server.drain_seconds, "on SIGTERM/SIGINT: time in-flight requests get before they are cancelled")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  cmd->add_option("--http-threads", a->server.http_threads, "connections served at once")->check(CLI::Range(2, 1024))->capture_default_str();
  cmd->add_option("--default-max-tokens", a->server.default_chat_max_tokens, "chat completions' max_tokens when the request gives none")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--adapter-dir", a->server.adapter_dir,
                  "allow POST /v1/adapters {name, path} / DELETE /v1/adapters/NAME to load and unload adapters from "
                  "under this directory while serving");
  cmd->add_flag("--no-embedder", a->no_embedder, "do not load the embedder for /v1/embeddings (without --router)");
  cmd->add_option("-t,--threads", a->threads, "worker threads (default: physical cores)")->check(CLI::Range(1, 256));
  AddActivationsOption(cmd, &a->activations);
  AddKvTypeOption(cmd, &a->kv_type);
  return [a, cmd] {
    a->mixture.Validate(*cmd, "serve");
    if (!a->mixture.mix.empty()) {
      throw InputError("serve: --mix is per request here: ask for an adapter as `model`, or give \"routing\": "
                       "{\"weights\": {...}} in the request");
    }
    server::ServerOptions& so = a->server;
    if (so.api_key.empty()) {
      if (const char* k = std::getenv("TOKENLORA_API_KEY")) so.api_key = k;
    }
    if (!IsLoopback(so.host) && so.api_key.empty() && !a->insecure_no_auth) {
      throw InputError("serve: --host " + so.host + " is reachable from other machines: give --api-key KEY (clients send "
                       "Authorization: Bearer KEY), or --insecure-no-auth if the network is trusted");
    }
    so.max_body_bytes = static_cast<size_t>(a->max_body_mib * (1 << 20));
    so.max_in_flight = a->parallel + a->max_queue;
    so.created = static_cast<int64_t>(std::time(nullptr));
    if (!so.adapter_dir.empty()) so.adapter_dir = server::CanonicalAdapterDir(so.adapter_dir);
    so.adapter_load = AdapterLoadOptions{ParseAdapterStorage(a->mixture.adapter_type)};
    const std::string model_path = a->model.empty() ? DefaultModelPath() : a->model;
    so.base_name = Stem(model_path);
    so.routing.route_every = ParseRouteEvery(a->mixture.route_every);
    so.routing.kv_policy = ParseKvPolicy(a->mixture.kv_policy);
    // Requests route among the router's tasks; adapters loaded at run time
    // need no task (the --adapter ones are checked against the router below).
    so.routing.require_all_adapters = false;
    so.defaults.kv_type = ParseKvType(a->kv_type);
    so.defaults.ctx_size = a->ctx_size;
    std::vector<AdapterSpec> specs;
    for (const std::string& s : a->mixture.adapters) {
      specs.push_back(ParseAdapterSpec(s));
      so.adapter_names.push_back(specs.back().name);
    }
    if (!a->mixture.router.empty()) so.router_name = Stem(a->mixture.router);
    const std::string embedder_dir = EmbedderPath(a->mixture.embedder);
    const bool want_embedder = !a->mixture.router.empty() || (!a->no_embedder && std::filesystem::exists(embedder_dir));
    if (want_embedder) so.embedder_name = Stem(embedder_dir);

    // SIGTERM/SIGINT go to one thread that drains the server; no other
    // thread sees them (the mask is inherited by every thread made below).
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    server::HttpServer http(so);
    const int port = http.Bind();
    std::fprintf(stderr, "serve: listening on http://%s:%d (loading the model)\n", so.host.c_str(), port);
    std::thread serving([&] { http.Serve(); });
    std::thread signaller([&] {
      int sig = 0;
      sigwait(&signals, &sig);
      std::fprintf(stderr, "serve: %s received\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      http.Shutdown();
    });
    auto stop = [&] {
      // Wakes the signal thread, which drains and stops the server.
      pthread_kill(signaller.native_handle(), SIGTERM);
      serving.join();
      signaller.join();
    };
    std::unique_ptr<Model> model;
    std::unique_ptr<ThreadPool> pool;
    std::unique_ptr<AdapterBank> bank;
    std::unique_ptr<LoraMixer> mixer;
    std::unique_ptr<Embedder> embedder;
    std::unique_ptr<Router> router;
    try {
      model = Model::Load(model_path, ModelOptionsFor(a->activations, a->threads));
      pool = std::make_unique<ThreadPool>(a->threads > 0 ? a->threads : DefaultThreads());
      if (!specs.empty() || !so.adapter_dir.empty()) {
        bank = std::make_unique<AdapterBank>(*model);
        for (const AdapterSpec& spec : specs) bank->Load(spec.name, spec.path, so.adapter_load);
        mixer = std::make_unique<LoraMixer>(
            *bank, MixerOptionsFor(*model, a->mixture.mix_mode, a->mixture.lora_activations));
      }
      if (want_embedder) {
        embedder = Embedder::Load(embedder_dir, *pool, ParseEncoderPrecision(a->mixture.embedder_precision));
      }
      if (!a->mixture.router.empty()) {
        RouterFile file = RouterFile::Load(a->mixture.router);
        const RoutingPolicy policy = a->mixture.routing.Make(file);
        const RouteWindow window = RouteWindow::Parse(a->mixture.routing.window);
        router = std::make_unique<Router>(std::move(file), a->mixture.router, *embedder, policy, window);
        TokenRoutingOptions strict = so.routing;
        strict.require_all_adapters = true;
        TokenRouting probe(*router, *bank, "", strict);  // --adapter names vs router tasks, now
      }
    } catch (...) {
      stop();
      throw;
    }
    server::EngineResources res;
    res.model = model.get();
    res.pool = pool.get();
    res.bank = bank.get();
    res.mixer = mixer.get();
    res.router = router.get();
    res.embedder = embedder.get();
    res.scheduler.max_sequences = a->parallel;
    res.scheduler.max_tokens_per_step = a->batch_tokens;
    res.scheduler.prefill_chunk = std::min(a->batch_tokens, 256);
    res.scheduler.kv_memory_bytes = static_cast<size_t>(a->kv_memory_mib * (1 << 20));
    {
      server::ServerEngine engine(res);
      http.Attach(&engine);
      std::fprintf(stderr, "serve: ready on http://%s:%d | model %s | adapters %zu | router %s | embedder %s | parallel %d\n",
                   so.host.c_str(), port, so.base_name.c_str(), so.adapter_names.size(),
                   so.router_name.empty() ? "none" : so.router_name.c_str(),
                   so.embedder_name.empty() ? "none" : so.embedder_name.c_str(), a->parallel);
      serving.join();
      signaller.join();
      http.Attach(nullptr);
    }
    std::fprintf(stderr, "serve: stopped\n");
    return 0;
  };
}

}  // namespace tokenlora::cli
