// Hyper-parameters of a Llama-family decoder (llama: Llama 2/3, SmolLM2,
// TinyLlama, Mistral without sliding window; qwen2: adds q/k/v biases).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tokenlora {

class GgufFile;

// How RoPE pairs up the dimensions of a head.
enum class RopeStyle {
  kAdjacentPairs,  // (x[2i], x[2i+1]): ggml "normal" mode; GGUF llama q/k rows are permuted for it
  kHalfSplit,      // (x[i], x[i+d/2]): Hugging Face rotate_half, ggml "neox" mode
};

struct RopeScaling {
  enum class Type { kNone, kLinear, kLlama3 } type = Type::kNone;
  float factor = 1.0f;
  float low_freq_factor = 1.0f;   // llama3
  float high_freq_factor = 4.0f;  // llama3
  int original_max_positions = 8192;  // llama3
};

struct LlamaConfig {
  std::string arch;  // "llama" or "qwen2"
  int n_layers = 0;
  int d_model = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int d_ff = 0;
  int vocab_size = 0;
  int max_context = 0;
  float rms_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopeStyle rope_style = RopeStyle::kHalfSplit;
  RopeScaling rope_scaling;
  bool qkv_bias = false;
  bool tied_embeddings = false;

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
  // Validates ranges and divisibility; `source` names the file in errors.
  void Validate(const std::string& source) const;
};

// From GGUF metadata ({arch}.block_count, ...). Throws InputError naming the key.
LlamaConfig ConfigFromGguf(const GgufFile& gguf);
// From a Hugging Face config.json's text; `path` names it in errors.
LlamaConfig ConfigFromHfJson(const std::string& json_text, const std::string& path);

// Inverse frequency of each rotated pair (head_dim / 2 values), with
// rope scaling applied; `freq_factors` (GGUF rope_freqs.weight) divides them
// when given.
std::vector<float> RopeInverseFrequencies(const LlamaConfig& config,
                                          const std::vector<float>& freq_factors);

}  // namespace tokenlora
