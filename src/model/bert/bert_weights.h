// Weights of a BERT encoder as views into the mapped model file; LayerNorm
// weights and biases are small and are copied to f32 at load.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/int8_matmul.h"
#include "model/bert/bert_config.h"
#include "tensor/tensor.h"

namespace tokenlora {

class BertCheckpoint;

// How the encoder's linear layers compute:
//   kF32  the weights as stored, f32 activations (exact: the reference path);
//   kInt8 weights quantized once at load to 8 bits per block of 32 (Q8_0:
//         one f16 scale per block), activations quantized per token and
//         block of 32 on the fly, integer dot products on AMX / AVX-512 VNNI
//         / AVX2 (kernels/int8_matmul.h). Attention, LayerNorm, GELU and
//         pooling stay f32.
enum class EncoderPrecision { kF32, kInt8 };
const char* EncoderPrecisionName(EncoderPrecision p);  // "f32", "int8"
// "f32", "int8", or "auto" (int8 where the CPU has int8 SIMD kernels, else
// f32). InputError naming `flag` otherwise.
EncoderPrecision ParseEncoderPrecision(std::string_view spec, std::string_view flag = "--embedder-precision");

// y = x · Wᵀ + b
struct BertLinear {
  TensorView weight;        // [n_out, n_in]
  std::vector<float> bias;  // [n_out]
  // kInt8: the weight repacked for MatMulInt8 (null: run `weight` in f32),
  // with the columns of outlier_channels zeroed: those input channels
  // (calibrated: a few channels of BERT's residual stream run 10-25x larger
  // than the rest and would set the int8 scale of their whole block of 32)
  // are left out of the int8 product and added in f32:
  //   y = int8(x with outlier channels zeroed)·packedᵀ + Σ_k x[:, c_k] ⊗ outlier_columns[k]
  std::unique_ptr<kernels::PackedMatrix> packed;
  std::vector<int32_t> outlier_channels;  // [k] input channels, ascending
  std::vector<float> outlier_columns;     // [k, n_out]: W[:, c_k]
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

// Largest |activation| per input channel of the layers whose input is the
// residual stream (q/k/v and the MLP's first matmul), from an f32 pass over
// calibration text (BertForward fills it when given one).
struct BertActivationRanges {
  std::vector<std::vector<float>> attention_input;  // [n_layers][d_model]
  std::vector<std::vector<float>> mlp_input;        // [n_layers][d_model]
};

// Channels whose peak is at least kOutlierRatio times the median channel's
// peak (the largest kMaxOutliers of them), ascending. BERT's outliers sit on
// a few tokens ([CLS], [SEP]: all-MiniLM-L6-v2's channel 99 reaches 6-10
// there against a median peak of 1.4), where they would set the int8 scale
// of their block of 32 and drown the block's other channels.
inline constexpr float kOutlierRatio = 4.0f;
inline constexpr int kMaxOutliers = 8;
std::vector<int32_t> OutlierChannels(const std::vector<float>& peaks);

// Packs every linear layer of `w` for int8 activations: Int8Packable
// weights (Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q4_K/Q5_K/Q6_K) as they are, any other type quantized
// to Q8_0 (per block of 32).
// With `ranges`, q/k/v and the MLP's first matmul keep their input's
// outlier channels in f32 (BertLinear). Measured on all-MiniLM-L6-v2: one
// channel (99) of the residual stream runs 6-10 against a median of 0.4-0.6;
// quantized with its block it moves short texts' embeddings below cosine
// 0.999 to sentence-transformers (233 of 248 golden data-set texts at 0.999;
// 247 with it in f32). Layers whose n_in is not a multiple of 32 stay f32.
void PackBertForInt8(BertWeights& w, const BertActivationRanges* ranges = nullptr);

}  // namespace tokenlora
