// Building a router file (task centroids from data sets) and measuring how
// well a router sends held-out prompts to their own task.
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
};

// Streams each task's records, embeds them in batches and averages the
// (normalised) embeddings. Task names must be unique. Throws InputError.
RouterFile BuildRouter(const std::vector<TaskSpec>& tasks, Embedder& embedder, const RecordOptions& options);

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
// goes. Ties go to the first task, as in the reference's max().
RouterEval EvaluateRouter(const RouterFile& file, Embedder& embedder, const RoutingPolicy& policy,
                          const std::vector<TaskSpec>& specs, const RecordOptions& options);

// The confusion matrix and per-task accuracy as a text table.
std::string FormatRouterEval(const RouterEval& eval);

}  // namespace tokenlora
