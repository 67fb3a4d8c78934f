// Adapter and routing flags shared by `generate` and `eval`: --adapter,
// --mix, --mix-mode, --adapter-type, and token-level routing (--router,
// --route-every, --kv-policy, --route-*). Builds the adapter bank, the mixer
// and the router once; a TokenRouting is made per prompt.
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "generate/token_routing.h"
#include "lora/adapter_bank.h"
#include "lora/mixer.h"
#include "model/model.h"
#include "router/embedder.h"
#include "router/router.h"
#include "routing_args.h"

namespace tokenlora::cli {

struct MixtureArgs {
  std::vector<std::string> adapters;
  std::string mix, mix_mode = "exact", adapter_type = "f32", lora_activations = "int8";
  std::string router, embedder, embedder_precision = "auto", route_every = "2", kv_policy = "keep";
  RoutingPolicyArgs routing;

  // Registers the flags on `cmd`; the routing ones in their own help group.
  void Add(CLI::App* cmd);
  // Flag combinations that cannot work, before any model is loaded: routing
  // flags without --router, --router without adapters, --router with --mix,
  // --mix without adapters. InputError naming `command` and the flag.
  // `per_request_routers`: requests may name their own router files, so the
  // routing flags (their defaults) are allowed without --router.
  void Validate(const CLI::App& cmd, const std::string& command, bool per_request_routers = false) const;
};

// An adapter bank for `model` holding --adapter NAME=PATH `specs`, stored
// as `storage` (--adapter-type: f32, f16 or q8_0). InputError naming the
// adapter that fails.
std::unique_ptr<AdapterBank> LoadAdapterBank(const Model& model, const std::vector<std::string>& specs,
                                             const std::string& storage);

// The loaded adapters and router of one command run.
class MixtureSetup {
 public:
  // Loads the adapters (none: the base model alone) and, with --router, the
  // router and its embedder; without a router, sets the fixed --mix (default:
  // every adapter at weight 1). Describes what it loaded on stderr.
  MixtureSetup(const MixtureArgs& args, const Model& model, ThreadPool& pool);

  // The projection hook to generate with (nullptr without adapters).
  LoraMixer* mixer() const { return mixer_.get(); }
  bool routed() const { return router_ != nullptr; }
  // A token-level schedule for one prompt (nullptr without --router).
  // `prompt_text` is what the router sees before any output.
  std::unique_ptr<TokenRouting> RoutingFor(const std::string& prompt_text) const;
  // The same with the command's --route-every / --kv-policy replaced by
  // `options`, and with `router_path` (loaded once per path, on the
  // command's embedder; empty: --router) instead of --router.
  std::unique_ptr<TokenRouting> RoutingFor(const std::string& prompt_text, const std::string& router_path,
                                           const TokenRoutingOptions& options);  // loads routers: not const
  const TokenRoutingOptions& routing_options() const { return routing_options_; }
  // A routing policy for the tasks of `router_path` (empty: --router): policy
  // `name` (empty: --route-policy) at `temperature` (0: the policy's
  // default); top-k and fixed weights as --route-top-k / --route-weights.
  RoutingPolicy PolicyFor(const std::string& router_path, const std::string& name, float temperature);
  // The fixed weights of --mix (or every adapter at 1) by bank slot; empty
  // without adapters or with --router.
  std::vector<float> DefaultWeights() const;
  // Weights by bank slot for {adapter name: weight} (InputError naming an
  // unknown adapter; `where` prefixes the message).
  std::vector<float> WeightsFor(const std::vector<std::pair<std::string, float>>& mix, const std::string& where) const;
  const Router* router() const { return router_.get(); }
  const AdapterBank* bank() const { return bank_.get(); }
  // --embedder-precision as resolved ("auto": int8 where the CPU has the
  // int8 kernels, else f32).
  EncoderPrecision embedder_precision() const { return embedder_precision_; }

 private:
  std::unique_ptr<AdapterBank> bank_;
  std::unique_ptr<LoraMixer> mixer_;
  std::unique_ptr<Embedder> embedder_;
  std::unique_ptr<Router> router_;
  TokenRoutingOptions routing_options_;
  std::vector<float> default_weights_;
  // What per-request routers need: the embedder directory and policy flags.
  std::string embedder_dir_;
  EncoderPrecision embedder_precision_ = EncoderPrecision::kF32;
  RoutingPolicyArgs policy_args_;
  ThreadPool* pool_ = nullptr;
  std::map<std::string, std::unique_ptr<Router>> routers_by_path_;
};

}  // namespace tokenlora::cli
