// The router file (JSON): which embedder the centroids were made with, and
// one centroid per task. Written atomically by `tokenlora router build`.
//
//   {"format": "tokenlora-router", "version": 1,
//    "embedder": {"name": "all-MiniLM-L6-v2", "sha256": "<weights>", "dim": 384,
//                 "max_seq_length": 256, "pooling": "mean", "normalize": true},
//    "tasks": [{"name": "gsm8k", "source": "train.jsonl[:100]", "template": "gsm8k",
//               "records": 7473, "skipped": 0, "centroid": [384 numbers]}, ...]}
//
// A centroid is the mean of the tasks' L2-normalised record embeddings (as
// the reference computes it: not re-normalised).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tokenlora {

struct EmbedderIdentity {
  std::string name;    // the model directory's name
  std::string sha256;  // of the weight file bytes (all shards, in order)
  int dim = 0;
  int max_seq_length = 0;
  std::string pooling;  // "mean", "cls", "max"
  bool normalize = false;
};

struct RouterTask {
  std::string name;
  std::string source;  // FILE[SLICE] the records came from
  std::string template_spec;
  int64_t records = 0;          // records embedded
  int64_t skipped = 0;          // bad records skipped (--skip-bad)
  std::vector<float> centroid;  // [dim]
};

struct RouterFile {
  EmbedderIdentity embedder;
  std::vector<RouterTask> tasks;

  std::vector<std::string> TaskNames() const;
  // Throws InputError naming the file and field.
  static RouterFile Load(const std::string& path);
  static RouterFile Parse(const std::string& json_text, const std::string& name);
  std::string Serialize() const;
  void Save(const std::string& path) const;  // atomic
};

}  // namespace tokenlora
