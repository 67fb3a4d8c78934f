#include "generate/token_routing.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"

namespace tokenlora {
namespace {

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "(none)" : out;
}

}  // namespace

const char* KvPolicyName(KvPolicy policy) { return policy == KvPolicy::kKeep ? "keep" : "recompute"; }

KvPolicy ParseKvPolicy(const std::string& text) {
  if (text == "keep") return KvPolicy::kKeep;
  if (text == "recompute") return KvPolicy::kRecompute;
  throw InputError("--kv-policy: expected keep (past keys/values stay as computed) or recompute (re-run the "
                   "text when the weights change, as the reference), got '" + text + "'");
}

int ParseRouteEvery(const std::string& text) {
  if (text == "prompt") return 0;
  size_t used = 0;
  int k = 0;
  try {
    k = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty() || k < 1) {
    throw InputError("--route-every: expected a whole number of tokens >= 1 (the paper's best: 2) or "
                     "'prompt' (route once, on the prompt), got '" + text + "'");
  }
  return k;
}

TokenRouting::TokenRouting(Router& router, const AdapterBank& bank, LoraMixer& mixer, std::string prompt_text,
                           TokenRoutingOptions options)
    : router_(router),
      mixer_(mixer),
      running_text_(std::move(prompt_text)),
      prompt_size_(running_text_.size()),
      options_(options),
      task_names_(router.file().TaskNames()) {
  if (options_.route_every < 0) {
    throw InputError("route_every is " + std::to_string(options_.route_every) + ", expected >= 0");
  }
  const std::vector<std::string> adapters = bank.Names();
  std::vector<std::string> missing, unknown;
  for (const std::string& t : task_names_) {
    if (bank.Find(t) < 0) missing.push_back(t);
  }
  for (const std::string& a : adapters) {
    if (std::find(task_names_.begin(), task_names_.end(), a) == task_names_.end()) unknown.push_back(a);
  }
  if (!missing.empty() || !unknown.empty()) {
    std::string msg = "the router's tasks are [" + JoinNames(task_names_) + "] but the adapters are [" +
                      JoinNames(adapters) + "]";
    if (!missing.empty()) msg += "; no adapter for task(s): " + JoinNames(missing);
    if (!unknown.empty()) msg += "; adapter(s) the router has no task for: " + JoinNames(unknown);
    throw InputError(msg + " — name each --adapter after a router task (--adapter TASK=PATH)");
  }
  int n_cols = 0;
  for (const std::string& t : task_names_) {
    slot_of_task_.push_back(bank.Find(t));
    n_cols = std::max(n_cols, slot_of_task_.back() + 1);
  }
  slot_weights_.assign(static_cast<size_t>(n_cols), 0.0f);
}

bool TokenRouting::BeforeStep(int step, std::string_view output_text) {
  const bool route = step == 0 || (options_.route_every > 0 && step % options_.route_every == 0);
  pending_rerouted_ = route;
  pending_ms_ = 0;
  if (!route) return false;
  const auto t0 = std::chrono::steady_clock::now();
  running_text_.resize(prompt_size_);
  running_text_.append(output_text);
  const int64_t runs_before = router_.embedder().stats().encoder_runs;
  RouteResult r = router_.Route(running_text_);
  stats_.encoder_runs += router_.embedder().stats().encoder_runs - runs_before;
  ++stats_.route_calls;
  similarities_ = std::move(r.similarities);
  const bool changed = step == 0 || r.weights != weights_;
  if (changed) {
    if (step > 0) ++stats_.weight_changes;
    weights_ = std::move(r.weights);
    std::fill(slot_weights_.begin(), slot_weights_.end(), 0.0f);
    for (size_t t = 0; t < weights_.size(); ++t) slot_weights_[static_cast<size_t>(slot_of_task_[t])] = weights_[t];
    mixer_.SetTokenWeights(slot_weights_, 1, static_cast<int>(slot_weights_.size()));
  }
  pending_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  stats_.router_ms += pending_ms_;
  return changed;
}

void TokenRouting::AfterToken(int step, int32_t token, std::string_view piece) {
  RoutingTraceStep s;
  s.step = step;
  s.token = token;
  s.text = std::string(piece);
  s.rerouted = pending_rerouted_;
  s.weights = weights_;
  s.similarities = similarities_;
  s.router_ms = pending_ms_;
  trace_.push_back(std::move(s));
}

}  // namespace tokenlora
