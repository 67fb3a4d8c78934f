// Whitened cosines (`router build --whiten LAMBDA`; beyond the paper).
//
// The paper takes plain cosines between MiniLM embeddings. Those embeddings
// share a large common direction and most of their spread is the topic of
// the text, not its task: a SQuAD passage about chloroplasts lies nearer the
// ARC centroid than the SQuAD one. Whitening the space by the tasks'
// within-task covariance (the metric of linear discriminant analysis, fitted
// in closed form from the same training embeddings as the centroids; no
// gradient) shrinks the directions along which a task's own texts vary and
// stretches the ones that tell tasks apart:
//
//   mean = the average of the task centroids (each task counts once)
//   S    = the average over tasks of the task's covariance of its unit
//          embeddings around its centroid                         [dim, dim]
//   W    = (S + lambda · tr(S)/dim · I)^(-1/2), symmetric          [dim, dim]
//   x -> W · (x - mean), and cosines are taken between whitened vectors: of
//   the embedding of the text routed (made unit first) and of each centroid
//   or prototype (means of unit embeddings, as they are).
//
// lambda (> 0) is a ridge relative to S's mean eigenvalue: small lambda is
// full whitening, large lambda tends to plain centring (W -> c·I, and the
// cosine ignores c).
#pragma once

#include <span>
#include <vector>

#include "router/router_file.h"

namespace tokenlora {

// One task's unit embeddings, [n, dim] row-major (n >= 1).
struct TaskRows {
  std::span<const float> rows;
  size_t n = 0;
};

// The whitening of `tasks` (at least one; each with rows). Deterministic;
// computed in double. TL_CHECKs its arguments (the builder validates the
// user's lambda).
RouterWhitening FitWhitening(const std::vector<TaskRows>& tasks, size_t dim, double lambda);

// W · (x - mean) for one vector x [dim].
std::vector<float> Whiten(const RouterWhitening& whitening, std::span<const float> x);
// The same for x/‖x‖ (an embedding to route; ‖x‖ = 0 leaves it at 0).
std::vector<float> WhitenUnit(const RouterWhitening& whitening, std::span<const float> x);

}  // namespace tokenlora
