// Causal multi-head attention with grouped key/value heads over a KV cache.
#pragma once

#include <cstdint>

#include "core/thread_pool.h"

namespace tokenlora::kernels {

struct AttentionShape {
  int n_tok;       // new tokens in this batch
  int n_past;      // cached positions before the batch
  int n_heads;     // query heads
  int n_kv_heads;  // key/value heads (n_heads % n_kv_heads == 0)
  int head_dim;
};

// q:   [n_tok, n_heads, head_dim]
// k,v: [n_past + n_tok, n_kv_heads, head_dim] (the cache, batch already written)
// out: [n_tok, n_heads, head_dim]
// Token t attends to positions 0 .. n_past + t; scores scaled by 1/√head_dim,
// softmax in f32 with the max subtracted. Parallel over (token, head).
// SIMD paths of attention_block.cc (blocked for n_tok >= 4, per token
// below); head sizes they do not take run the per-key path of Dot/Axpy;
// TOKENLORA_SIMD=scalar runs the scalar twin.
void CausalAttention(const float* q, const float* k, const float* v, float* out,
                     const AttentionShape& shape, ThreadPool& pool);

namespace scalar {
void CausalAttention(const float* q, const float* k, const float* v, float* out,
                     const AttentionShape& shape);
}  // namespace scalar

namespace internal {
// attention_block.cc: whether the SIMD paths take this shape (head_dim a
// multiple of the vector length), the blocked path for prompts (n_tok >= 4)
// and the per-token path for decoding.
bool SimdAttentionApplies(const AttentionShape& shape);
void BlockCausalAttention(const float* q, const float* k, const float* v, float* out,
                          const AttentionShape& shape, ThreadPool& pool);
void RowCausalAttention(const float* q, const float* k, const float* v, float* out,
                        const AttentionShape& shape, ThreadPool& pool);
}  // namespace internal

}  // namespace tokenlora::kernels
