// Sentence embeddings kept on disk between runs of `router build` and
// `router eval` (--embeddings-cache DIR): embedding ~15,000 texts takes
// minutes on 2 cores, k-means and routing over them take seconds, so routers
// with several K, scores and policies are built and measured from one
// encoder pass per data set.
//
// One file per list of texts, DIR/<key>.emb, where the key is the SHA-256 of
// the embedder's identity (name, weights sha256, dim, max_seq_length,
// pooling, normalize, and `variant`: the encoder's precision, "" for f32,
// "int8"; anything else that changes the numbers)
// and of every text, length-prefixed, in order. A changed record, template,
// slice, limit or embedder is a different key, so a stale entry is never
// read; entries are never deleted (remove the folder to clear it).
//
// File: "tokenlora-emb1\n", the key as 64 hex digits and '\n', uint64 n,
// uint64 dim (little-endian), then n·dim float32 (little-endian), written
// atomically.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "router/router_file.h"

namespace tokenlora {

class EmbeddingCache {
 public:
  // `dir` is made on the first Store.
  explicit EmbeddingCache(std::string dir) : dir_(std::move(dir)) {}

  static std::string Key(const EmbedderIdentity& embedder, const std::string& variant,
                         const std::vector<std::string>& texts);
  std::string PathOf(const std::string& key) const;

  // The [n, dim] embeddings stored under `key`, or nothing when absent.
  // InputError naming the file when it exists but is not a whole entry of
  // n × dim (a truncated or foreign file: delete it).
  std::optional<std::vector<float>> Load(const std::string& key, size_t n, size_t dim) const;
  // InputError naming the folder or file when it cannot be written.
  void Store(const std::string& key, size_t n, size_t dim, const std::vector<float>& embeddings) const;

 private:
  std::string dir_;
};

}  // namespace tokenlora
