// Routing policies: task similarities -> adapter weights.
//   paper    the reference's similarity() (jb-01/LoRA-TLE evals.py): cosine
//            similarity to each centroid; the largest is multiplied by T
//            (default 4); softmax over the tasks. Note the reference's quirk,
//            kept: when every similarity is negative the "boost" shrinks the
//            largest one instead.
//   softmax  softmax(cos / T), T default 0.1
//   top-k    softmax(cos / T) over the k most similar tasks, others 0, renormalised
//   uniform  1 / n_tasks
//   fixed    the given weights, whatever the text
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tokenlora {

enum class PolicyKind { kPaper, kSoftmax, kTopK, kUniform, kFixed };

struct RoutingPolicy {
  PolicyKind kind = PolicyKind::kPaper;
  float temperature = 4.0f;  // paper: multiplier of the largest similarity; softmax, top-k: divisor
  int top_k = 1;
  std::vector<float> fixed;  // [n_tasks], in the router's task order

  // `name`: paper, softmax, top-k, uniform, fixed. `temperature` 0 picks
  // the policy's default (not given); otherwise it must be finite, > 0 and
  // at most kMaxTemperature. `fixed_weights`: "task=w,task=w" (fixed only;
  // tasks not named get 0). Throws InputError naming the flag as the user
  // typed it: `flag_prefix` + "policy" / "temperature" / "top-k" / "weights"
  // (generate's flags carry the prefix "route-").
  static RoutingPolicy Make(std::string_view name, float temperature, int top_k,
                            std::string_view fixed_weights, const std::vector<std::string>& task_names,
                            std::string_view flag_prefix = "");
  // Beyond this the similarities (cosines in [-1, 1]) times or over T leave
  // float range or saturate the softmax completely.
  static constexpr float kMaxTemperature = 1e6f;
  std::string Describe() const;  // "paper (T=4)"

  // Weights for one text's similarities (one per task).
  std::vector<float> Weights(std::span<const float> similarities) const;
};

// torch.nn.CosineSimilarity(dim=0, eps=1e-6): a·b / (max(‖a‖, eps) · max(‖b‖, eps)).
float CosineSimilarity(std::span<const float> a, std::span<const float> b);

}  // namespace tokenlora
