// Weights of a BERT encoder as views into the mapped model file; LayerNorm
// weights and biases are small and are copied to f32 at load.
#pragma once

#include <string>
#include <vector>

#include "model/bert/bert_config.h"
#include "tensor/tensor.h"

namespace tokenlora {

class BertCheckpoint;

// y = x · Wᵀ + b
struct BertLinear {
  TensorView weight;        // [n_out, n_in]
  std::vector<float> bias;  // [n_out]
};

struct BertLayerNorm {
  std::vector<float> weight;  // [d_model]
  std::vector<float> bias;    // [d_model]
};

struct BertLayer {
  BertLinear query;           // [d_model, d_model]
  BertLinear key;             // [d_model, d_model]
  BertLinear value;           // [d_model, d_model]
  BertLinear attn_output;     // [d_model, d_model]
  BertLayerNorm attn_norm;    // after attention + residual (post-LN)
  BertLinear intermediate;    // [d_ff, d_model], then GELU
  BertLinear output;          // [d_model, d_ff]
  BertLayerNorm output_norm;  // after the MLP + residual
};

struct BertWeights {
  TensorView word_embeddings;        // [vocab_size, d_model]
  TensorView position_embeddings;    // [max_positions, d_model]
  TensorView token_type_embeddings;  // [type_vocab_size, d_model]
  BertLayerNorm embeddings_norm;
  std::vector<BertLayer> layers;  // [n_layers]
};

// From Hugging Face names (embeddings.word_embeddings.weight,
// encoder.layer.N.attention.self.query.weight, ...; with or without the
// "bert." prefix of task-head checkpoints), or llama.cpp's in a GGUF file
// (token_embd, position_embd, token_types, token_embd_norm,
// blk.N.attn_q/k/v/output, attn_output_norm, ffn_up/down, layer_output_norm).
// Checks presence and shape of every tensor against `config`, and that the
// file has no layers beyond config's count. The pooler, the position_ids
// buffer and task heads are not used by sentence-transformers and are not
// read. `source` names the model in errors.
BertWeights BertWeightsFromCheckpoint(const BertCheckpoint& st, const BertConfig& config,
                                      const std::string& source);

}  // namespace tokenlora
