// How far a cheaper encoder precision (int8) moves the router from the
// exact f32 encoder: embeddings, routing weights and the top task of the
// same texts under both. `tokenlora router check-precision` prints it; the
// README's accuracy bar (cosine >= 0.999 for 99% of texts, weights within
// 0.01, the same top task for >= 99.5%) is checked against it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "router/builder.h"
#include "router/embedder.h"
#include "router/policy.h"
#include "router/router_file.h"
#include "router/task_data.h"

namespace tokenlora {

struct PrecisionComparison {
  std::string reference, candidate;  // precision names ("f32", "int8")
  std::vector<std::string> tasks;    // the records' tasks, in spec order
  std::vector<int64_t> texts_per_task;
  std::vector<int> pieces;           // per text: word pieces before truncation
  std::vector<double> cosine;        // per text: cos(reference, candidate embedding)
  std::vector<double> weight_diff;   // per text: max |w_ref - w_cand| over the router's tasks
  std::vector<bool> same_top;        // per text: the same top-weighted task
  std::vector<double> top_gap;       // per text: reference's two largest similarities apart
  int max_pieces = 0;                // the embedder's window (longer texts are truncated)

  int64_t Texts() const { return static_cast<int64_t>(cosine.size()); }
  // Share of texts with cosine >= threshold / weight diff <= threshold.
  double ShareCosineAtLeast(double threshold) const;
  double ShareWeightsWithin(double threshold) const;
  double ShareSameTop() const;
  // Texts whose reference similarities are not within `gap` of a tie, and
  // how many of them keep their weights within `threshold` / their top task.
  int64_t TextsApartFromTies(double gap) const;
  double ShareWeightsWithinApartFromTies(double threshold, double gap) const;
  double ShareSameTopApartFromTies(double gap) const;
  // The q-quantile (0..1) of a per-text series.
  static double Quantile(std::vector<double> v, double q);
};

// Embeds every record of `specs` (templates as given) with both embedders
// (the same model in two precisions: checked) and routes each with `policy`
// over `file`'s centroids.
PrecisionComparison ComparePrecision(const RouterFile& file, Embedder& reference, Embedder& candidate,
                                     const RoutingPolicy& policy, const std::vector<TaskSpec>& specs,
                                     const RecordOptions& options);

// The paper's rule boosts the largest similarity 4x, so where the two
// largest are within an encoder's error of each other the boosted task can
// flip and the weights jump, whatever the precision: texts closer than this
// to a tie are reported apart.
inline constexpr double kNearTieGap = 0.002;

// The report as text: counts, cosine and weight quantiles, the bar's shares.
std::string FormatPrecisionComparison(const PrecisionComparison& c);

}  // namespace tokenlora
