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
void CausalAttention(const float* q, const float* k, const float* v, float* out,
                     const AttentionShape& shape, ThreadPool& pool);

}  // namespace tokenlora::kernels
