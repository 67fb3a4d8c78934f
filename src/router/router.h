// A loaded router: the router file's centroids, an embedder whose weights
// match the file's, a policy and a window. Route(text) gives one weight per
// task, in the file's task order.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "router/embedder.h"
#include "router/policy.h"
#include "router/router_file.h"

namespace tokenlora {

struct RouteResult {
  std::vector<float> weights;       // [n_tasks], the policy's output
  std::vector<float> similarities;  // [n_tasks], cosine to each centroid (TaskSimilarities)
};

// A router file's centroids and prototypes in the space cosines are taken
// in: as stored, or whitened once here (a version 3 file, whitening.h).
class TaskScorer {
 public:
  explicit TaskScorer(const RouterFile& file);
  // Each task's similarity to `embedding` ([dim]): the cosine to its one
  // prototype (a version 1 file, or `score` centroid: its centroid), else
  // its prototypes' cosines combined by `score`; with whitening, cosines
  // between the whitened embedding and the whitened prototypes. In the
  // file's task order.
  std::vector<float> Similarities(std::span<const float> embedding, const PrototypeScore& score) const;

 private:
  struct Task {
    std::vector<float> centroid;                 // [dim]
    std::vector<std::vector<float>> prototypes;  // [n][dim], empty: the centroid alone
  };
  std::vector<Task> tasks_;
  std::optional<RouterWhitening> whitening_;
};

class Router {
 public:
  // Throws InputError when the embedder is not the one the file was built
  // with (sha256 of its weights) or its pipeline differs. `source` names the
  // router file in errors.
  Router(RouterFile file, const std::string& source, Embedder& embedder, RoutingPolicy policy,
         RouteWindow window);

  RouteResult Route(std::string_view text);
  // Similarities and weights of a given embedding ([dim]).
  RouteResult FromEmbedding(const std::vector<float>& embedding) const;

  const RouterFile& file() const { return file_; }
  const TaskScorer& scorer() const { return scorer_; }
  const RoutingPolicy& policy() const { return policy_; }
  const RouteWindow& window() const { return window_; }
  Embedder& embedder() { return embedder_; }

 private:
  RouterFile file_;
  TaskScorer scorer_;
  Embedder& embedder_;
  RoutingPolicy policy_;
  RouteWindow window_;
};

// TaskScorer(file).Similarities(embedding, score), for one embedding (a
// loop over many should keep one TaskScorer: whitening is done per scorer).
std::vector<float> TaskSimilarities(const RouterFile& file, std::span<const float> embedding,
                                    const PrototypeScore& score);

// What a status line appends to the policy's description: "" for the
// paper's plain cosines, "; cosines whitened (lambda 0.1)" for a version 3
// file.
std::string SimilarityNote(const RouterFile& file);

// InputError unless `embedder` is the one `file` was built with.
void CheckEmbedderMatches(const RouterFile& file, const Embedder& embedder, const std::string& file_name);

}  // namespace tokenlora
