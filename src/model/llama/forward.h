// The forward pass of a Llama-family decoder, read top to bottom like
// llama2.c: embed → per layer (RMSNorm → q/k/v → RoPE → attention → o →
// residual → RMSNorm → SwiGLU MLP → residual) → RMSNorm → logits.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/llama/kv_cache.h"
#include "model/model.h"
#include "model/project.h"

namespace tokenlora {

class LlamaForward {
 public:
  // `max_batch`: most tokens run at once; longer inputs are split.
  LlamaForward(const Model& model, int max_batch = 256);

  // Runs `tokens` at positions kv.n_past() .. n_past + n - 1 and appends
  // their keys/values to `kv`. logits: [n, vocab] when all_logits, else
  // [1, vocab] for the last token. Throws InputError if the cache is full
  // or a token id is out of range.
  void Run(std::span<const int32_t> tokens, KvCache& kv, const ForwardContext& ctx,
           float* logits, bool all_logits);

  const Model& model() const { return model_; }

 private:
  void RunBatch(std::span<const int32_t> tokens, KvCache& kv, const ForwardContext& ctx,
                float* logits, bool all_logits);

  const Model& model_;
  int max_batch_;
  // Scratch, sized for max_batch tokens.
  std::vector<float> x_;      // [n, d_model]  residual stream
  std::vector<float> xn_;     // [n, d_model]  normalised input of a block
  std::vector<float> q_;      // [n, q_dim]
  std::vector<float> k_;      // [n, kv_dim]
  std::vector<float> v_;      // [n, kv_dim]
  std::vector<float> att_;    // [n, q_dim]
  std::vector<float> proj_;   // [n, d_model]
  std::vector<float> gate_;   // [n, d_ff]
  std::vector<float> up_;     // [n, d_ff]
  std::vector<float> cos_;    // [n, head_dim / 2]
  std::vector<float> sin_;    // [n, head_dim / 2]
};

}  // namespace tokenlora
