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
// The similarity of a task is the cosine to its centroid; a router file with
// several prototypes per task (`router build --prototypes K`) scores a task
// from the cosines to its prototypes by a PrototypeScore, and every policy
// then works on those task scores as on cosines.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tokenlora {

// How a task with several prototypes is scored from the cosines c_1..c_n to
// its prototypes. Every rule gives c_1 exactly for a task with one prototype,
// so a one-centroid (version 1) router file routes bit for bit as before.
//   max        the best prototype's cosine (nearest prototype)
//   softmax:T  a soft maximum, T·log(mean_i exp(c_i / T)): in [mean, max] of
//              the cosines (so still a cosine for the policies), → max as
//              T → 0, → the mean as T → ∞. With every task at the same
//              number of prototypes and `--policy softmax` at the same T, the
//              weights are a softmax over all prototypes summed per task.
//   centroid   the task's centroid (the mean of all its records, the paper's)
//              even when the file holds prototypes
struct PrototypeScore {
  enum class Kind { kMax, kSoftmax, kCentroid };
  Kind kind = Kind::kMax;
  float temperature = 0;  // softmax only
  static constexpr float kDefaultTemperature = 0.05f;

  // "max", "centroid", "softmax" (T = kDefaultTemperature) or "softmax:T"
  // (0 < T <= 1e6). Throws InputError naming `flag` ("--score").
  static PrototypeScore Parse(std::string_view spec, std::string_view flag);
  std::string Describe() const;  // "max", "softmax:0.05", "centroid"
  // The task's score from the cosines to its prototypes (not for centroid).
  float Combine(std::span<const float> cosines) const;
};

enum class PolicyKind { kPaper, kSoftmax, kTopK, kUniform, kFixed };

struct RoutingPolicy {
  PolicyKind kind = PolicyKind::kPaper;
  float temperature = 4.0f;  // paper: multiplier of the largest similarity; softmax, top-k: divisor
  int top_k = 1;
  std::vector<float> fixed;  // [n_tasks], in the router's task order
  PrototypeScore score;      // how Router turns a task's prototypes into its similarity

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
  // "paper (largest cosine x 4, softmax)"; a score other than max is
  // appended ("...; tasks scored by softmax:0.05 over prototypes").
  std::string Describe() const;

  // Weights for one text's similarities (one per task).
  std::vector<float> Weights(std::span<const float> similarities) const;
};

// torch.nn.CosineSimilarity(dim=0, eps=1e-6): a·b / (max(‖a‖, eps) · max(‖b‖, eps)).
float CosineSimilarity(std::span<const float> a, std::span<const float> b);

}  // namespace tokenlora
