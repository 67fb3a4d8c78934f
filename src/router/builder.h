// Building a router file (task centroids, and optionally k-means prototypes,
// from data sets) and measuring how well a router sends held-out prompts to
// their own task.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "router/embedder.h"
#include "router/policy.h"
#include "router/router_file.h"
#include "router/task_data.h"

namespace tokenlora {

struct RecordOptions {
  int64_t limit = -1;     // records per task after the slice; < 0 = all
  bool skip_bad = false;  // count and skip bad records instead of failing
  int batch = 32;         // texts per encoder batch
  bool progress = true;   // progress bar on stderr
  std::string embeddings_cache;  // folder of embeddings kept between runs (embedding_cache.h); "" = none
};

// One task's selected records, embedded (the embedder's output as it is).
struct TaskEmbeddings {
  size_t dim = 0;
  std::vector<float> rows;  // [n, dim]
  int64_t skipped = 0;      // bad records skipped (--skip-bad)
  size_t size() const { return dim ? rows.size() / dim : 0; }
};

// Reads and formats the records of `spec`, then embeds them in batches with
// a progress bar, or reads them from the embeddings cache (keyed by the
// embedder's identity, its precision and the texts). Throws InputError.
TaskEmbeddings EmbedTask(const TaskSpec& spec, Embedder& embedder, const RecordOptions& options);

// Prototypes per task: k = 1 keeps the centroid alone (a version 1 file);
// k > 1 adds spherical k-means clusters (kmeans.h) and writes version 2.
// whiten > 0 also fits a whitening of the space (whitening.h, lambda =
// whiten) from the same unit embeddings and writes version 3.
struct PrototypeOptions {
  int k = 1;
  uint64_t seed = 0;
  int max_iterations = 100;
  double whiten = 0;  // 0: none; else (0, RouterWhitening::kMaxLambda]
};

// Embeds each task's records and averages the (normalised) embeddings into
// the task's centroid; with prototypes.k > 1 also clusters them. Task names
// must be unique. Throws InputError.
RouterFile BuildRouter(const std::vector<TaskSpec>& tasks, Embedder& embedder, const RecordOptions& options,
                       const PrototypeOptions& prototypes = {});
// The same from embeddings already made (one per task, in order), without
// touching an embedder: `identity` is the embedder's.
RouterFile BuildRouterFromEmbeddings(const std::vector<TaskSpec>& tasks, const EmbedderIdentity& identity,
                                     const std::vector<TaskEmbeddings>& embeddings,
                                     const PrototypeOptions& prototypes);

struct RouterEval {
  std::vector<std::string> tasks;               // the router's tasks (columns)
  std::vector<std::string> eval_tasks;          // the evaluated tasks (rows), each a router task
  std::vector<std::vector<int64_t>> confusion;  // [row][column]: prompts of row whose top weight is column
  std::vector<int64_t> skipped;                 // per row
  int64_t Total(size_t row) const;
  int64_t Correct(size_t row) const;  // top weight on its own task
  double Accuracy() const;            // over all prompts
};

// Routes every record of each spec (its name must be a router task; the
// template usually keeps the question only) and counts where the top weight
// goes. Ties go to the first task, as in the reference's max(). Tasks are
// scored from their prototypes by policy.score.
RouterEval EvaluateRouter(const RouterFile& file, Embedder& embedder, const RoutingPolicy& policy,
                          const std::vector<TaskSpec>& specs, const RecordOptions& options);

// The confusion matrix and per-task accuracy as a text table.
std::string FormatRouterEval(const RouterEval& eval);

}  // namespace tokenlora
