// The suite's per-item cache: one JSONL file per configuration × task ×
// decoding run, a line per scored item, keyed by the item and every option
// that changes its output (the run identity: model and adapter file
// fingerprints, router, mixture, decoding, limits, precisions). An
// interrupted suite resumes from it without redoing finished items, and a
// later run with more configurations reuses what is there. Lines are
// appended and flushed as items finish; a line cut short by a kill does not
// parse and is dropped.
#pragma once

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/task_eval.h"

namespace tokenlora::eval {

// A cheap identity of a file's content: its size and a 64-bit FNV-1a hash of
// its first and last MiB; of a directory: the same of every regular file in
// it (sorted by name). "missing" when it does not exist.
std::string FileFingerprint(const std::string& path);

// The cache key of `item` under `run_identity` (16 hex digits).
std::string CacheKey(const nlohmann::json& run_identity, const EvalItem& item);

class RunCache {
 public:
  // Reads `path` when it exists (creating its directory otherwise) and
  // rewrites it clean. `read_only`: reads only (another process may be
  // appending to it); Append and Rewrite must not be called.
  explicit RunCache(std::string path, bool read_only = false);
  // The cached line for `key`, or nullptr.
  const nlohmann::json* Find(const std::string& key) const;
  // Appends `line` (which holds "key") and flushes.
  void Append(const nlohmann::json& line);
  // The cached lines whose "index" (the item's position in its task's list)
  // is `first` or more, in index order: items past a run's --limit, which a
  // later run with a larger limit uses.
  std::vector<nlohmann::json> LinesFrom(size_t first) const;
  // Replaces the file with `lines` (e.g. in item order, without stale entries
  // of the items asked for).
  void Rewrite(const std::vector<nlohmann::json>& lines);
  size_t size() const { return by_key_.size(); }

 private:
  std::string path_;
  std::map<std::string, nlohmann::json> by_key_;
  std::ofstream out_;
};

}  // namespace tokenlora::eval
