// Causal multi-head attention with grouped key/value heads over a KV cache.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/thread_pool.h"
#include "tensor/dtype.h"

namespace tokenlora::kernels {

// Positions per key tile (see KvLayer).
inline constexpr int kKeyTile = 16;
// A KV layer's capacity is a multiple of this (the SIMD paths read keys two
// tiles at a time).
inline constexpr int kKvCapacityStep = 2 * kKeyTile;

// One layer's KV cache, as attention reads and writes it. Elements are f32 or
// f16 (`type`); the layout serves the SIMD kernels:
//   keys:   [n_kv_heads][capacity / kKeyTile][head_dim][kKeyTile] — each tile
//           of 16 positions transposed, so a tile's 16 scores are head_dim
//           broadcast multiply-adds with no horizontal sums;
//   values: [n_kv_heads][capacity][head_dim] — one head's rows contiguous.
struct KvLayer {
  DType type = DType::kF32;  // kF32 or kF16
  void* keys = nullptr;
  void* values = nullptr;
  int capacity = 0;  // positions, a multiple of kKvCapacityStep
  int n_kv_heads = 0;
  int head_dim = 0;

  size_t ElementBytes() const { return type == DType::kF16 ? 2 : 4; }
  // Element offsets of key (g, pos, d) and of value row (g, pos).
  size_t KeyIndex(int g, int pos, int d) const {
    const size_t tile = static_cast<size_t>(g) * static_cast<size_t>(capacity / kKeyTile) +
                        static_cast<size_t>(pos / kKeyTile);
    return (tile * static_cast<size_t>(head_dim) + static_cast<size_t>(d)) * kKeyTile +
           static_cast<size_t>(pos % kKeyTile);
  }
  size_t ValueIndex(int g, int pos) const {
    return (static_cast<size_t>(g) * static_cast<size_t>(capacity) + static_cast<size_t>(pos)) *
           static_cast<size_t>(head_dim);
  }
};

// Writes position `pos` (< capacity): k, v [n_kv_heads · head_dim], rounded
// to nearest even for an f16 cache (head_dim <= 1024). SIMD in kv_store.cc.
void StoreKv(const KvLayer& kv, int pos, const float* k, const float* v);
// Reads one element back (as f32).
float KeyAt(const KvLayer& kv, int g, int pos, int d);
float ValueAt(const KvLayer& kv, int g, int pos, int d);

struct AttentionShape {
  int n_tok;       // new tokens in this batch
  int n_past;      // cached positions before the batch
  int n_heads;     // query heads
  int n_kv_heads;  // key/value heads (n_heads % n_kv_heads == 0)
  int head_dim;
  // false: every token attends to all n_past + n_tok positions (an encoder
  // such as BERT); true: token t to positions 0 .. n_past + t.
  bool causal = true;
};

// q:   [n_tok, n_heads, head_dim]
// kv:  the layer's cache with positions 0 .. n_past + n_tok − 1 written
// out: [n_tok, n_heads, head_dim]
// Token t attends to positions 0 .. n_past + t (all n_past + n_tok positions
// when !shape.causal); scores scaled by 1/√head_dim,
// softmax in f32 with the max subtracted. SIMD paths: attention_block.cc for
// prompts (n_tok >= 4), attention_decode.cc for a few tokens; head sizes they
// do not take run the scalar twin in parallel; TOKENLORA_SIMD=scalar runs the
// scalar twin.
void CausalAttention(const float* q, const KvLayer& kv, float* out, const AttentionShape& shape,
                     ThreadPool& pool);

// One sequence's attention in a batch of sequences (arguments as
// CausalAttention's).
struct AttentionJob {
  const float* q = nullptr;  // [shape.n_tok, n_heads, head_dim]
  KvLayer kv;
  float* out = nullptr;      // [shape.n_tok, n_heads, head_dim]
  AttentionShape shape{};
};
// CausalAttention for every job, each on its own cache. The jobs that decode
// (a few tokens) share one parallel region over all their work items, so 16
// sequences of one token cost one wake-up of the pool, not 16; prompts run
// one call each. Every job's output is bit-identical to its CausalAttention.
void CausalAttentionBatch(std::span<const AttentionJob> jobs, ThreadPool& pool);

namespace scalar {
void StoreKv(const KvLayer& kv, int pos, const float* k, const float* v);
void CausalAttention(const float* q, const KvLayer& kv, float* out, const AttentionShape& shape);
}  // namespace scalar

namespace internal {
// Whether the SIMD paths take this shape (head_dim a multiple of the vector
// length).
bool SimdAttentionApplies(const AttentionShape& shape);
void StoreKvSimd(const KvLayer& kv, int pos, const float* k, const float* v);
void BlockCausalAttention(const float* q, const KvLayer& kv, float* out, const AttentionShape& shape,
                          ThreadPool& pool);
// Causal jobs with n_tok < 4 whose shapes SimdAttentionApplies takes.
void DecodeCausalAttention(std::span<const AttentionJob> jobs, ThreadPool& pool);
}  // namespace internal

}  // namespace tokenlora::kernels
