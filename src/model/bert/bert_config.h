// Hyper-parameters of a BERT encoder (all-MiniLM-L6-v2: 6 layers, d_model
// 384, 12 heads, d_ff 1536) and the sentence-transformers pipeline around it
// (pooling, normalisation, max_seq_length).
#pragma once

#include <cstdint>
#include <string>

namespace tokenlora {

class GgufFile;

struct BertConfig {
  int n_layers = 0;
  int d_model = 0;
  int n_heads = 0;
  int head_dim = 0;
  int d_ff = 0;
  int vocab_size = 0;
  int max_positions = 0;    // rows of the position embedding table
  int type_vocab_size = 0;  // rows of the token-type table (2 for BERT)
  float ln_eps = 1e-12f;

  // Ranges and divisibility; `source` names the file in errors.
  void Validate(const std::string& source) const;
};

// From a Hugging Face config.json (model_type "bert", hidden_act "gelu",
// position_embedding_type "absolute"). Throws InputError naming the key.
BertConfig BertConfigFromJson(const std::string& path);
// From GGUF metadata of llama.cpp's `bert` architecture (bert.block_count,
// bert.embedding_length, ...; general.architecture must be "bert").
BertConfig BertConfigFromGguf(const GgufFile& gguf);

// Floating-point operations of the encoder on one sequence of n tokens
// ([CLS] and [SEP] included): every layer's four attention projections, the
// two feed-forward matmuls, and the n² scores and weighted sums.
double BertEncoderFlops(const BertConfig& c, int64_t n_tokens);

enum class Pooling { kMean, kCls, kMax };
const char* PoolingName(Pooling p);  // "mean", "cls", "max"

// What sentence-transformers does after the encoder.
struct SentenceConfig {
  Pooling pooling = Pooling::kMean;  // over the tokens of the attention mask
  bool normalize = false;            // L2, when modules.json lists Normalize
  int max_seq_length = 0;            // tokens including [CLS] and [SEP]; longer input is cut on the
                                     // right. 0 until the model's max_positions fills it in
  int pooling_dim = 0;               // the Pooling module's word_embedding_dimension; 0 = not given
  std::string transformer_path;      // directory of the Transformer module's files, relative ("" = root)

  // Checks pooling_dim and max_seq_length against the encoder (filling in
  // max_seq_length when absent). `source` names the directory in errors.
  void Resolve(const BertConfig& config, const std::string& source);
};

// From a sentence-transformers directory: modules.json (Transformer, Pooling,
// Normalize; any other module is refused by name), the Pooling module's
// config.json and sentence_bert_config.json. Without modules.json, as
// sentence-transformers does for a plain BERT directory: mean pooling, no
// normalisation, max_seq_length = max_positions. Call Resolve() once the
// encoder's config is known.
SentenceConfig SentenceConfigFromDirectory(const std::string& dir);
// For a GGUF file: pooling from bert.pooling_type (1 mean, 2 cls), L2
// normalisation on (GGUF has no Normalize module; llama.cpp normalises
// embeddings by default), max_seq_length = context_length.
SentenceConfig SentenceConfigFromGguf(const GgufFile& gguf);

}  // namespace tokenlora
