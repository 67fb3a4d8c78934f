// A sentence-transformers BERT model (all-MiniLM-L6-v2): tokenizer, encoder,
// pooling and normalisation, loaded from a model directory. Immutable after
// load; callers bring their own BertWorkspace and thread pool.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/bert/bert_checkpoint.h"
#include "model/bert/bert_config.h"
#include "model/bert/bert_encoder.h"
#include "model/bert/bert_weights.h"
#include "tokenizer/wordpiece.h"

namespace tokenlora {

class BertModel {
 public:
  // `path`: a sentence-transformers directory (modules.json, 1_Pooling/,
  // sentence_bert_config.json, and the Transformer module's config.json,
  // model.safetensors or its shards, tokenizer.json or vocab.txt), a plain
  // Hugging Face BERT directory, or a GGUF file of llama.cpp's `bert`
  // architecture (sentence-transformers files beside it, when present, set
  // pooling, normalisation and max_seq_length). Throws InputError naming the file.
  // `precision`: how the linear layers compute (bert_weights.h); kInt8
  // packs them at load.
  static std::unique_ptr<BertModel> Load(const std::string& path,
                                         EncoderPrecision precision = EncoderPrecision::kF32);

  const BertConfig& config() const { return config_; }
  const SentenceConfig& sentence() const { return sentence_; }
  const WordPieceTokenizer& tokenizer() const { return tokenizer_; }
  const std::string& dir() const { return dir_; }  // the path given to Load
  // The weight files, in the order their bytes identify the model.
  const std::vector<std::string>& weight_files() const { return checkpoint_->files(); }
  int dim() const { return config_.d_model; }
  EncoderPrecision precision() const { return precision_; }
  // Word pieces that fit between [CLS] and [SEP] (max_seq_length - 2).
  int max_pieces() const { return sentence_.max_seq_length - 2; }

  // [CLS] + the first max_pieces() pieces of `text` + [SEP], as
  // sentence-transformers truncates.
  std::vector<int32_t> Tokenize(std::string_view text) const;
  // [CLS] + pieces (at most max_pieces(): checked) + [SEP].
  std::vector<int32_t> WithSpecialTokens(std::span<const int32_t> pieces) const;

  // Sentence embeddings of token sequences made by Tokenize / WithSpecialTokens.
  // out: [batch.size(), dim()]
  void Embed(std::span<const std::vector<int32_t>> batch, ThreadPool& pool, BertWorkspace& ws,
             float* out) const;
  // Tokenize + Embed. out: [texts.size(), dim()]
  void EmbedTexts(std::span<const std::string> texts, ThreadPool& pool, BertWorkspace& ws, float* out) const;

 private:
  explicit BertModel(WordPieceTokenizer tokenizer) : tokenizer_(std::move(tokenizer)) {}
  static std::unique_ptr<BertModel> LoadF32(const std::string& path);

  std::string dir_;
  std::unique_ptr<BertCheckpoint> checkpoint_;  // the mapping the weight views point into
  BertConfig config_;
  SentenceConfig sentence_;
  BertWeights weights_;
  EncoderPrecision precision_ = EncoderPrecision::kF32;
  WordPieceTokenizer tokenizer_;
};

}  // namespace tokenlora
