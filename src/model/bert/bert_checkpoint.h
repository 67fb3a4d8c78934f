// The tensors of a BERT model: a directory with model.safetensors or the
// shards of model.safetensors.index.json, or a GGUF file (llama.cpp's `bert`).
//
// Why not SafetensorsModel alone: checkpoints saved by transformers < 4.31
// (the all-MiniLM-L6-v2 copy scripts/fetch-models brings among them) carry the
// buffer `embeddings.position_ids` as I64, a dtype the safetensors reader
// refuses. The encoder never reads that buffer (positions are 0..n-1), so for
// a single-file checkpoint its header entry is replaced before parsing by an
// I32 placeholder over the same bytes (so the tensors still tile the data
// section, which the reader checks): the file is mapped copy-on-write and the rewritten header, padded with spaces
// to its old length, overwrites the first page(s) in memory only. Any other
// tensor of an unsupported dtype still fails with the reader's error.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "io/safetensors.h"

namespace tokenlora {

class BertCheckpoint {
 public:
  // `path`: a model directory or a .gguf file. Throws InputError naming it.
  static std::unique_ptr<BertCheckpoint> Open(const std::string& path);
  ~BertCheckpoint();
  BertCheckpoint(const BertCheckpoint&) = delete;
  BertCheckpoint& operator=(const BertCheckpoint&) = delete;

  const TensorView* Find(const std::string& name) const;
  std::vector<const TensorView*> All() const;
  // The weight files, in the order their bytes identify the model.
  const std::vector<std::string>& files() const { return files_; }
  // Header entries left out ("embeddings.position_ids (I64 [1, 512])").
  const std::vector<std::string>& dropped() const { return dropped_; }
  // The GGUF file (metadata holds config and vocabulary), or null.
  const GgufFile* gguf() const { return gguf_ ? &*gguf_ : nullptr; }

 private:
  BertCheckpoint() = default;

  void* mapping_ = nullptr;  // private writable mapping of the single file, or null
  size_t mapping_bytes_ = 0;
  std::optional<SafetensorsFile> single_;
  std::optional<SafetensorsModel> sharded_;
  std::optional<GgufFile> gguf_;
  std::vector<TensorView> gguf_views_;  // [n_tensors] views into gguf_
  std::vector<std::string> files_;
  std::vector<std::string> dropped_;
};

}  // namespace tokenlora
