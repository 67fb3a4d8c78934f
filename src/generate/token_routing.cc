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

TokenRouting::TokenRouting(Router& router, const AdapterBank& bank, std::string prompt_text,
                           TokenRoutingOptions options)
    : router_(router),
      running_text_(std::move(prompt_text)),
      prompt_size_(running_text_.size()),
      options_(options),
      task_names_(router.file().TaskNames()) {
  if (options_.route_every < 0) {
    throw InputError("route_every is " + std::to_string(options_.route_every) + ", expected >= 0");
  }
  if (options_.policy && options_.policy->kind == PolicyKind::kFixed &&
      options_.policy->fixed.size() != task_names_.size()) {
    throw InputError("a fixed routing policy gives " + std::to_string(options_.policy->fixed.size()) +
                     " weights but the router has " + std::to_string(task_names_.size()) + " tasks");
  }
  const std::vector<std::string> adapters = bank.Names();
  std::vector<std::string> missing, unknown;
  for (const std::string& t : task_names_) {
    if (bank.Find(t) < 0) missing.push_back(t);
  }
  for (const std::string& a : adapters) {
    if (!options_.require_all_adapters) break;
    if (std::find(task_names_.begin(), task_names_.end(), a) == task_names_.end()) unknown.push_back(a);
  }
  if (!missing.empty() || !unknown.empty()) {
    std::string msg = "the router's tasks are [" + JoinNames(task_names_) + "] but the adapters are [" +
                      JoinNames(adapters) + "]";
    if (!missing.empty()) msg += "; no adapter for task(s): " + JoinNames(missing);
    if (!unknown.empty()) msg += "; adapter(s) the router has no task for: " + JoinNames(unknown);
    throw InputError(msg + " — name each --adapter after a router task (--adapter TASK=PATH)");
  }
  for (const std::string& name : options_.only_tasks) {
    const auto it = std::find(task_names_.begin(), task_names_.end(), name);
    if (it == task_names_.end()) {
      throw InputError("cannot route among '" + name + "': it is not one of the router's tasks [" +
                       JoinNames(task_names_) + "]");
    }
    const size_t t = static_cast<size_t>(it - task_names_.begin());
    if (std::find(subset_.begin(), subset_.end(), t) != subset_.end()) {
      throw InputError("the tasks to route among name '" + name + "' twice");
    }
    subset_.push_back(t);
  }
  std::sort(subset_.begin(), subset_.end());
  int n_cols = 0;
  for (const std::string& t : task_names_) {
    slot_of_task_.push_back(bank.Find(t));
    n_cols = std::max(n_cols, slot_of_task_.back() + 1);
  }
  slot_weights_.assign(static_cast<size_t>(n_cols), 0.0f);
}

std::vector<float> TokenRouting::SubsetWeights(const RoutingPolicy& policy, std::span<const float> sims) const {
  std::vector<float> w(sims.size(), 0.0f);
  if (policy.kind == PolicyKind::kFixed) {  // the given weights, outside the subset 0
    for (size_t t : subset_) w[t] = policy.fixed[t];
    return w;
  }
  std::vector<float> sub;
  for (size_t t : subset_) sub.push_back(sims[t]);
  RoutingPolicy p = policy;
  p.top_k = std::min(p.top_k, static_cast<int>(sub.size()));
  const std::vector<float> sw = p.Weights(sub);
  for (size_t i = 0; i < subset_.size(); ++i) w[subset_[i]] = sw[i];
  return w;
}

uint64_t TokenRouting::possible_slots() const {
  uint64_t mask = 0;
  for (size_t t = 0; t < slot_of_task_.size(); ++t) {
    if (subset_.empty() || std::find(subset_.begin(), subset_.end(), t) != subset_.end()) {
      mask |= uint64_t{1} << slot_of_task_[t];
    }
  }
  return mask;
}

bool TokenRouting::DueAt(int step) const {
  return step == 0 || (options_.route_every > 0 && step % options_.route_every == 0);
}

MixtureSchedule::EncoderRequest TokenRouting::BeginStep(int step, std::string_view output_text) {
  pending_rerouted_ = DueAt(step);
  pending_ms_ = 0;
  begun_step_ = step;
  begun_encoder_ = false;
  if (!pending_rerouted_) return {};
  const auto t0 = std::chrono::steady_clock::now();
  running_text_.resize(prompt_size_);
  running_text_.append(output_text);
  const RouteWindow& window = options_.window ? *options_.window : router_.window();
  begun_encoder_ = router_.embedder().PrepareWindow(embedder_state_, running_text_, window);
  begun_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!begun_encoder_) return {};
  return {&router_.embedder(), &embedder_state_};
}

bool TokenRouting::FinishStep(double encoder_ms) {
  TL_CHECK_MSG(begun_step_ >= 0, "FinishStep without BeginStep");
  const int step = begun_step_;
  begun_step_ = -1;
  if (!pending_rerouted_) return false;
  const auto t0 = std::chrono::steady_clock::now();
  TL_CHECK_MSG(embedder_state_.has_last, "the embedder did not embed the pending window");
  if (begun_encoder_) ++stats_.encoder_runs;
  ++stats_.route_calls;
  // One scoring and one weighing, with this sequence's score and policy where
  // it has its own (a whitened router's scoring is a [dim, dim] product).
  const PrototypeScore& score = options_.score ? *options_.score : router_.policy().score;
  const RoutingPolicy& policy = options_.policy ? *options_.policy : router_.policy();
  similarities_ = router_.scorer().Similarities(embedder_state_.last_embedding, score);
  std::vector<float> weights = subset_.empty() ? policy.Weights(similarities_) : SubsetWeights(policy, similarities_);
  const bool changed = step == 0 || weights != weights_;
  if (changed) {
    if (step > 0) ++stats_.weight_changes;
    weights_ = std::move(weights);
    std::fill(slot_weights_.begin(), slot_weights_.end(), 0.0f);
    for (size_t t = 0; t < weights_.size(); ++t) slot_weights_[static_cast<size_t>(slot_of_task_[t])] = weights_[t];
  }
  // This sequence's own work (tokenizing, policy) plus its share of the encoder call.
  pending_ms_ = begun_ms_ + encoder_ms +
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  stats_.router_ms += pending_ms_;
  return changed;
}

bool TokenRouting::BeforeStep(int step, std::string_view output_text) {
  const EncoderRequest request = BeginStep(step, output_text);
  double ms = 0;
  if (request.state != nullptr) {
    const auto t0 = std::chrono::steady_clock::now();
    EmbedderState* one[1] = {request.state};
    request.embedder->EmbedPending(one);
    ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  return FinishStep(ms);
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
