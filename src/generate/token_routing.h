// Token-level adaptation (the seed paper's method): while a generation runs,
// the router embeds the running text (prompt + output so far) every K new
// tokens and the LoRA mixer applies the resulting adapter weights.
//
// Step t picks new token t. Its logits come from a forward pass run under
// the weights routed at step r = t - t % K on the text that existed then
// (prompt + tokens 0..r-1); K = 0 routes once, on the prompt. What happens
// to the past when the weights change is the KV policy:
//   keep       every position keeps the keys/values computed under the
//              weights of the step that ran it (one new position per step)
//   recompute  the whole text is re-run under the new weights, so every
//              step equals a fresh forward of the text under its weights
//              (the reference code: no KV cache)
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "generate/mixture_schedule.h"
#include "lora/adapter_bank.h"
#include "router/embedder.h"
#include "router/policy.h"
#include "router/router.h"

namespace tokenlora {

enum class KvPolicy { kKeep, kRecompute };
const char* KvPolicyName(KvPolicy policy);  // "keep", "recompute"
// Throws InputError listing the policies.
KvPolicy ParseKvPolicy(const std::string& text);

// K of --route-every: a whole number >= 1, or "prompt" (0: route once).
// Throws InputError naming the flag.
int ParseRouteEvery(const std::string& text);

struct TokenRoutingOptions {
  int route_every = 2;  // K; 0: route once, on the prompt
  KvPolicy kv_policy = KvPolicy::kKeep;
  // Refuse a bank holding adapters the router has no task for (a typo in a
  // name); false lets a bank shared by several routers hold more.
  bool require_all_adapters = true;
  // This sequence's own policy and window instead of the Router's (one
  // loaded router serves sequences that weigh or window differently).
  std::optional<RoutingPolicy> policy = std::nullopt;
  std::optional<RouteWindow> window = std::nullopt;
  // Route among these router tasks only (names; empty: all): the policy
  // weighs the subset's similarities alone, the other tasks weigh 0.
  std::vector<std::string> only_tasks = {};
  // This sequence's own task score over a multi-prototype router's
  // prototypes (policy.h PrototypeScore) instead of the Router's policy's.
  std::optional<PrototypeScore> score = std::nullopt;
};

// One generated token and the weights its logits were computed under.
struct RoutingTraceStep {
  int step = 0;
  int32_t token = -1;
  std::string text;                 // the text the token completed
  bool rerouted = false;            // the router ran (or was asked) at this step
  std::vector<float> weights;       // [n_tasks], router task order
  std::vector<float> similarities;  // [n_tasks] of the routing in effect
  double router_ms = 0;             // time of this step's routing call (0 without one)
};

struct RoutingStats {
  int64_t route_calls = 0;    // routings asked for
  int64_t encoder_runs = 0;   // of which ran the encoder (the rest reused an embedding)
  double router_ms = 0;       // total time in routing (tokenizing, encoder, policy, mixer update)
  int64_t weight_changes = 0; // routings whose weights differed from the previous ones
};

class TokenRouting final : public MixtureSchedule {
 public:
  // `bank` must hold exactly the router's tasks as adapter names (InputError
  // listing both otherwise); the weights are by its slots. `prompt_text` is
  // the text the router sees before any output (the user's prompt, without
  // chat markup). Each TokenRouting keeps its own embedder state, so many
  // sequences can route with one Router.
  TokenRouting(Router& router, const AdapterBank& bank, std::string prompt_text, TokenRoutingOptions options);

  bool BeforeStep(int step, std::string_view output_text) override;
  EncoderRequest BeginStep(int step, std::string_view output_text) override;
  bool FinishStep(double encoder_ms) override;
  void AfterToken(int step, int32_t token, std::string_view piece) override;
  bool recompute_past() const override { return options_.kv_policy == KvPolicy::kRecompute; }
  std::span<const float> slot_weights() const override { return slot_weights_; }
  uint64_t possible_slots() const override;

  // Whether step `step` re-routes.
  bool DueAt(int step) const;
  const std::vector<RoutingTraceStep>& trace() const { return trace_; }
  const RoutingStats& stats() const { return stats_; }
  const std::vector<std::string>& task_names() const { return task_names_; }
  const std::vector<float>& current_weights() const { return weights_; }
  const TokenRoutingOptions& options() const { return options_; }

 private:
  // The policy's weights over subset_'s similarities, 0 elsewhere ([n_tasks]).
  std::vector<float> SubsetWeights(const RoutingPolicy& policy, std::span<const float> sims) const;

  Router& router_;
  EmbedderState embedder_state_;
  std::string running_text_;  // prompt_text + output so far (reused buffer)
  size_t prompt_size_ = 0;
  TokenRoutingOptions options_;
  std::vector<std::string> task_names_;
  std::vector<int> slot_of_task_;  // [n_tasks] bank slot
  std::vector<size_t> subset_;     // task indices of only_tasks, in task order (empty: all)
  std::vector<float> slot_weights_;  // [max slot + 1] the weights in effect, by bank slot
  std::vector<float> weights_;       // [n_tasks] in effect
  std::vector<float> similarities_;  // [n_tasks] in effect
  int begun_step_ = -1;              // the step BeginStep prepared (-1: none pending)
  bool begun_encoder_ = false;       // and whether it asked for the encoder
  double begun_ms_ = 0;               // time BeginStep took
  bool pending_rerouted_ = false;
  double pending_ms_ = 0;
  std::vector<RoutingTraceStep> trace_;
  RoutingStats stats_;
};

}  // namespace tokenlora
