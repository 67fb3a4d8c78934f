// The forward pass of a Llama-family decoder, read top to bottom like
// llama2.c: embed → per layer (RMSNorm → q/k/v → RoPE → attention → o →
// residual → RMSNorm → SwiGLU MLP → residual) → RMSNorm → logits.
//
// One pass runs the new tokens of one or many sequences together: their rows
// are stacked, so every projection is one matmul over all rows (the weights
// are read once per pass), while RoPE positions, the KV cache and attention
// are each sequence's own. A row's result does not depend on which other
// rows share its pass, up to the summation order of the f32-activation
// matmuls (the int8-activation kernels give the same bits at any row count).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kernels/attention.h"
#include "model/llama/kv_cache.h"
#include "model/model.h"
#include "model/project.h"

namespace tokenlora {

// The new tokens of one sequence in a batched pass.
struct ForwardSegment {
  std::span<const int32_t> tokens;  // run at positions kv->n_past() .. + tokens.size() - 1
  KvCache* kv = nullptr;            // the sequence's cache; the tokens' keys/values are appended
  enum class Logits { kNone, kLast, kAll } logits = Logits::kLast;
};

class LlamaForward {
 public:
  // `max_batch`: most rows run at once; longer inputs are split (Run) or
  // refused (RunSegments).
  LlamaForward(const Model& model, int max_batch = 256);

  // Runs `tokens` at positions kv.n_past() .. n_past + n - 1 and appends
  // their keys/values to `kv`. logits: [n, vocab] when all_logits, else
  // [1, vocab] for the last token. Throws InputError if the cache is full
  // or a token id is out of range.
  void Run(std::span<const int32_t> tokens, KvCache& kv, const ForwardContext& ctx,
           float* logits, bool all_logits);

  // One pass over the rows of every segment, in segment order (at most
  // max_batch rows in all; each segment on its own cache). ctx.hook sees
  // the stacked rows [Σ tokens, ·]. logits: the rows each segment asks for,
  // segment after segment, [rows, vocab]. Throws InputError as Run does;
  // nothing is written to any cache then.
  void RunSegments(std::span<const ForwardSegment> segments, const ForwardContext& ctx, float* logits);

  // Rows of logits RunSegments writes for `segments`.
  static int64_t LogitRows(std::span<const ForwardSegment> segments);

  const Model& model() const { return model_; }
  int max_batch() const { return max_batch_; }

 private:
  void Check(std::span<const int32_t> tokens, const KvCache& kv) const;

  const Model& model_;
  int max_batch_;
  // Scratch, sized for max_batch rows.
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
  std::vector<int32_t> pos_;  // [n] each row's position in its sequence
  std::vector<kernels::AttentionJob> jobs_;  // [segments] one layer's attention
};

}  // namespace tokenlora
