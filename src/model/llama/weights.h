// Weights of a Llama-family decoder, as views into the memory-mapped model
// file (quantized weights stay quantized; kernels dequantize them). Small
// vectors (norms, biases) are converted to f32 copies at load.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "model/llama/config.h"
#include "tensor/tensor.h"

namespace tokenlora {
namespace kernels {
struct PackedMatrix;
}  // namespace kernels

class GgufFile;
class SafetensorsModel;

// Which projection a Linear is; LoRA adapters target these by name.
enum class ModuleKind { kQ, kK, kV, kO, kGate, kUp, kDown, kOutput };
const char* ModuleName(ModuleKind m);  // "q_proj", ..., "lm_head"

struct Linear {
  ModuleKind kind = ModuleKind::kQ;
  int layer = -1;                // -1 for the output head
  TensorView weight;             // [n_out, n_in]
  std::vector<float> bias;       // [n_out] or empty
  // The weight repacked for int8 activations (Model::Load with
  // int8_activations); null: f32 activations through kernels::MatMul.
  std::shared_ptr<const kernels::PackedMatrix> packed;
  int64_t n_out() const { return weight.shape[0]; }
  int64_t n_in() const { return weight.shape[1]; }
};

struct LlamaLayer {
  std::vector<float> attn_norm;  // [d_model]
  Linear q;                      // [q_dim, d_model]
  Linear k;                      // [kv_dim, d_model]
  Linear v;                      // [kv_dim, d_model]
  Linear o;                      // [d_model, q_dim]
  std::vector<float> ffn_norm;   // [d_model]
  Linear gate;                   // [d_ff, d_model]
  Linear up;                     // [d_ff, d_model]
  Linear down;                   // [d_model, d_ff]
  // The seven projections in forward order.
  std::array<Linear*, 7> Projections() { return {&q, &k, &v, &o, &gate, &up, &down}; }
  std::array<const Linear*, 7> Projections() const { return {&q, &k, &v, &o, &gate, &up, &down}; }
};

struct LlamaWeights {
  TensorView token_embd;           // [vocab, d_model]
  std::vector<LlamaLayer> layers;  // [n_layers]
  std::vector<float> output_norm;  // [d_model]
  Linear output;                   // [vocab, d_model]; token_embd when tied
  std::vector<float> rope_freq_factors;  // [head_dim / 2] (llama3 GGUF) or empty
};

// Builds the weights from GGUF tensor names (blk.N.attn_q.weight, ...),
// checking presence, dtype and shape of every tensor against `config`.
LlamaWeights WeightsFromGguf(const GgufFile& gguf, const LlamaConfig& config);
// Same from Hugging Face names (model.layers.N.self_attn.q_proj.weight, ...).
LlamaWeights WeightsFromSafetensors(const SafetensorsModel& st, const LlamaConfig& config,
                                    const std::string& dir);

}  // namespace tokenlora
