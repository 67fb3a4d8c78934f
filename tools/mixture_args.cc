#include "mixture_args.h"

#include <cstdio>

#include "commands.h"
#include "core/error.h"
#include "lora/mix_spec.h"
#include "router/router_file.h"

namespace tokenlora::cli {
namespace {
constexpr const char* kRoutingGroup = "Token-level routing (the adapters are re-weighted from the running text)";
constexpr const char* kRoutingOnlyFlags[] = {"--embedder",          "--embedder-precision", "--route-every", "--kv-policy",
                                             "--route-policy",      "--route-temperature",
                                             "--route-top-k",       "--route-weights", "--route-window",
                                             "--route-score"};
}  // namespace

void MixtureArgs::Add(CLI::App* cmd) {
  cmd->add_option("--adapter", adapters, "LoRA adapter NAME=PATH: a PEFT directory or a llama.cpp LoRA .gguf (repeatable)");
  cmd->add_option("--mix", mix, "adapter weights NAME=W,... for every token (default: every --adapter at weight 1)");
  cmd->add_option("--mix-mode", mix_mode, "how weighted adapters combine: exact (default), peft-linear or peft04-linear")
      ->check(CLI::IsMember({"exact", "peft-linear", "peft04-linear"}));
  cmd->add_option("--adapter-type", adapter_type,
                  "adapter storage: f32 (default, exact), f16 (half the memory traffic) or q8_0 (a quarter)");
  AddLoraActivationsOption(cmd, &lora_activations);
  cmd->add_option("--router", router,
                  "router file (tokenlora router build): re-weight the adapters from the running text; "
                  "every --adapter must be named after a router task")
      ->group(kRoutingGroup);
  cmd->add_option("--embedder", embedder, "the router's embedder directory (default: the built-in all-MiniLM-L6-v2)")
      ->group(kRoutingGroup);
  AddEmbedderPrecisionOption(cmd, &embedder_precision);
  cmd->get_option("--embedder-precision")->group(kRoutingGroup);
  cmd->add_option("--route-every", route_every,
                  "re-route every K new tokens (K >= 1; the paper's best: 2), or 'prompt' to route once")
      ->capture_default_str()
      ->group(kRoutingGroup);
  cmd->add_option("--kv-policy", kv_policy,
                  "keep: past keys/values stay as computed under their step's weights (fast); recompute: re-run "
                  "the text when the weights change (the reference, no KV cache)")
      ->capture_default_str()
      ->group(kRoutingGroup);
  routing.Add(cmd, "route-");
  cmd->add_option("--route-window", routing.window, "text the router embeds: whole (the reference) or last:N word pieces")
      ->capture_default_str()
      ->group(kRoutingGroup);
  for (const char* name :
       {"--route-policy", "--route-temperature", "--route-top-k", "--route-weights", "--route-score"}) {
    cmd->get_option(name)->group(kRoutingGroup);
  }
}

void MixtureArgs::Validate(const CLI::App& cmd, const std::string& command, bool per_request_routers) const {
  if (router.empty()) {
    for (const char* flag : kRoutingOnlyFlags) {
      if (per_request_routers) break;  // they set the defaults of the requests' own routers
      if (cmd.count(flag) > 0) {
        throw InputError(command + ": " + flag + " needs a router: add --router FILE (made by `tokenlora router build`)");
      }
    }
  } else {
    if (adapters.empty()) {
      throw InputError(command + ": --router needs adapters to weigh: add --adapter TASK=PATH for each router task");
    }
    if (!mix.empty()) {
      throw InputError(command + ": --mix fixes the weights, --router picks them: give one or the other");
    }
  }
  if (adapters.empty() && !mix.empty()) {
    throw InputError(command + ": --mix needs adapters: add --adapter NAME=PATH for each name");
  }
}

std::unique_ptr<AdapterBank> LoadAdapterBank(const Model& model, const std::vector<std::string>& specs,
                                             const std::string& storage) {
  auto bank = std::make_unique<AdapterBank>(model);
  const AdapterLoadOptions load{ParseAdapterStorage(storage)};
  for (const std::string& s : specs) {
    const AdapterSpec spec = ParseAdapterSpec(s);
    bank->Load(spec.name, spec.path, load);
  }
  return bank;
}

MixtureSetup::MixtureSetup(const MixtureArgs& args, const Model& model, ThreadPool& pool)
    : embedder_dir_(args.embedder),
      embedder_precision_(ParseEncoderPrecision(args.embedder_precision)),
      policy_args_(args.routing),
      pool_(&pool) {
  routing_options_.route_every = ParseRouteEvery(args.route_every);
  routing_options_.kv_policy = ParseKvPolicy(args.kv_policy);
  if (args.adapters.empty()) return;
  bank_ = LoadAdapterBank(model, args.adapters, args.adapter_type);
  mixer_ = std::make_unique<LoraMixer>(*bank_, MixerOptionsFor(model, args.mix_mode, args.lora_activations));
  if (!args.router.empty()) {
    RouterFile file = RouterFile::Load(args.router);
    const RoutingPolicy policy = args.routing.Make(file);
    const RouteWindow window = args.routing.Window();
    embedder_ = Embedder::Load(EmbedderPath(args.embedder), pool, embedder_precision_);
    router_ = std::make_unique<Router>(std::move(file), args.router, *embedder_, policy, window);
    // Fails early (adapter names vs router tasks) and names the tasks.
    const std::unique_ptr<TokenRouting> probe = RoutingFor("");
    std::fprintf(stderr, "router %s: tasks", args.router.c_str());
    for (const std::string& t : probe->task_names()) std::fprintf(stderr, " %s", t.c_str());
    std::fprintf(stderr, " | encoder %s | policy %s%s | window %s | route every %s | kv %s | mix %s\n",
                 EncoderPrecisionName(embedder_precision_), policy.Describe().c_str(),
                 SimilarityNote(router_->file()).c_str(),
                 window.Describe().c_str(),
                 routing_options_.route_every == 0 ? "prompt (once)"
                                                   : std::to_string(routing_options_.route_every).c_str(),
                 KvPolicyName(routing_options_.kv_policy), MixModeName(mixer_->mode()));
    for (const std::string& name : bank_->Names()) {
      std::fprintf(stderr, "adapter %s: %s\n", name.c_str(), bank_->adapter(bank_->Require(name))->Describe().c_str());
    }
    return;
  }
  std::vector<std::pair<std::string, float>> mix;
  if (args.mix.empty()) {
    for (const std::string& name : bank_->Names()) mix.emplace_back(name, 1.0f);
  } else {
    mix = ParseMixSpec(args.mix);
  }
  mixer_->SetMixture(mix);
  default_weights_ = mixer_->UniformWeights();
  for (const auto& [name, w] : mix) {
    std::fprintf(stderr, "adapter %s weight %g: %s\n", name.c_str(), static_cast<double>(w),
                 bank_->adapter(bank_->Require(name))->Describe().c_str());
  }
}

std::unique_ptr<TokenRouting> MixtureSetup::RoutingFor(const std::string& prompt_text) const {
  if (router_ == nullptr) return nullptr;
  return std::make_unique<TokenRouting>(*router_, *bank_, prompt_text, routing_options_);
}

std::unique_ptr<TokenRouting> MixtureSetup::RoutingFor(const std::string& prompt_text, const std::string& router_path,
                                                       const TokenRoutingOptions& options) {
  if (bank_ == nullptr) throw InputError("routing needs adapters: add --adapter TASK=PATH for each router task");
  if (router_path.empty()) {
    if (router_ == nullptr) throw InputError("no router: add --router FILE, or give the request its own router");
    return std::make_unique<TokenRouting>(*router_, *bank_, prompt_text, options);
  }
  auto it = routers_by_path_.find(router_path);
  if (it == routers_by_path_.end()) {
    RouterFile file = RouterFile::Load(router_path);
    const RoutingPolicy policy = policy_args_.Make(file);
    const RouteWindow window = policy_args_.Window();
    if (embedder_ == nullptr) embedder_ = Embedder::Load(EmbedderPath(embedder_dir_), *pool_, embedder_precision_);
    it = routers_by_path_.emplace(router_path, std::make_unique<Router>(std::move(file), router_path, *embedder_,
                                                                         policy, window)).first;
  }
  TokenRoutingOptions o = options;
  o.require_all_adapters = false;  // the bank may hold adapters this router has no task for
  return std::make_unique<TokenRouting>(*it->second, *bank_, prompt_text, o);
}

RoutingPolicy MixtureSetup::PolicyFor(const std::string& router_path, const std::string& name, float temperature) {
  const Router* r = router_.get();
  if (!router_path.empty()) {
    RoutingFor("", router_path, routing_options_);  // loads it once
    r = routers_by_path_.at(router_path).get();
  }
  if (r == nullptr) throw InputError("no router: add --router FILE, or give the request its own router");
  RoutingPolicy p = RoutingPolicy::Make(name.empty() ? policy_args_.policy : name, temperature, policy_args_.top_k,
                                        policy_args_.weights, r->file().TaskNames());
  p.score = r->policy().score;  // the router scores the tasks; this policy only weighs them
  return p;
}

std::vector<float> MixtureSetup::DefaultWeights() const { return default_weights_; }

std::vector<float> MixtureSetup::WeightsFor(const std::vector<std::pair<std::string, float>>& mix,
                                            const std::string& where) const {
  std::vector<float> row;
  for (const auto& [name, w] : mix) {
    if (bank_ == nullptr || bank_->Find(name) < 0) {
      std::string loaded;
      if (bank_ != nullptr) {
        for (const std::string& n : bank_->Names()) loaded += (loaded.empty() ? "" : ", ") + n;
      }
      throw InputError(where + ": mix names adapter '" + name + "', but the loaded adapters are [" +
                       (loaded.empty() ? "none" : loaded) + "] — load it with --adapter " + name + "=PATH");
    }
    const size_t slot = static_cast<size_t>(bank_->Find(name));
    if (row.size() <= slot) row.resize(slot + 1, 0.0f);
    row[slot] += w;
  }
  return row;
}

}  // namespace tokenlora::cli
