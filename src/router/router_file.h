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
//
// Version 2 (`router build --prototypes K`, K > 1) adds several prototypes
// per task — the clusters of spherical k-means over the task's embeddings —
// and the k-means settings; every task keeps its centroid:
//
//   {"format": "tokenlora-router", "version": 2, "embedder": {...},
//    "kmeans": {"k": 8, "seed": 0},
//    "tasks": [{"name": ..., "records": 7473, "skipped": 0, "centroid": [384 numbers],
//               "prototypes": [[384 numbers], ...]}, ...]}
//
// A task has 1..k prototypes (fewer when it has fewer distinct records), at
// most `records`, largest cluster first; each is its cluster's mean embedding,
// not re-normalised, like the centroid (cosine ignores the length). A file
// whose tasks have one prototype each is written as version 1 (`--prototypes
// 1` writes today's file byte for byte), and version 1 files load unchanged:
// the centroid is then the task's one prototype. Builds that read only
// version 1 refuse version 2 by its number instead of silently ignoring the
// prototypes.
#pragma once

#include <cstdint>
#include <optional>
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
  // [n_prototypes][dim] in a version 2 file; empty in a version 1 file
  // (the centroid is then the one prototype; router.h TaskSimilarities).
  std::vector<std::vector<float>> prototypes;
};

// x -> matrix · (x - mean), `matrix` symmetric (router/whitening.h).
struct RouterWhitening {
  static constexpr double kMaxLambda = 1e6;
  double lambda = 0;         // the ridge added to the within-task covariance, relative to its mean eigenvalue
  std::vector<float> mean;   // [dim]
  std::vector<float> matrix;  // [dim, dim], row-major
};

// The k-means settings of a version 2 file (k = 0: version 1, none).
struct KMeansSettings {
  static constexpr int kMaxK = 4096;
  int k = 0;          // prototypes asked for per task, 0 or 1..kMaxK
  uint64_t seed = 0;  // k-means++ seeding
};

struct RouterFile {
  EmbedderIdentity embedder;
  std::vector<RouterTask> tasks;
  KMeansSettings kmeans;  // k > 0 iff the tasks carry prototypes (version 2, or 3)
  std::optional<RouterWhitening> whitening;  // version 3

  int version() const { return whitening ? 3 : kmeans.k > 0 ? 2 : 1; }

  std::vector<std::string> TaskNames() const;
  // Throws InputError naming the file and field.
  static RouterFile Load(const std::string& path);
  static RouterFile Parse(const std::string& json_text, const std::string& name);
  std::string Serialize() const;
  void Save(const std::string& path) const;  // atomic
};

}  // namespace tokenlora
