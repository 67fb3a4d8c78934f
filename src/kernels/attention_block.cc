// Causal attention for prompts (many new tokens): blocks of query tokens of
// up to 3 query heads of one KV group — 4 tokens × 3 heads, 6 × 2, or 12 × 1
// for groups of one head (MHA, BERT), so each key and value vector loaded
// (and converted from f16) serves 12 query rows — with every inner
// loop along a SIMD vector and no horizontal sums:
//  * scores S[t, j] = Σ_d q[t, d]·K[j, d]: the cache keeps keys in tiles of
//    16 positions transposed (KvLayer), so a step broadcasts q[t, d] and
//    multiplies the vectors of keys of dimension d;
//  * softmax per token over its causal keys (masked keys get weight 0), or
//    over all keys for a non-causal (encoder) shape;
//  * out[t, :] = Σ_j P[t, j]·V[j, :]: a step loads V row j (up to 4 vectors)
//    and broadcasts P[t, j] for the block's tokens.
// f16 caches are converted to f32 as they are loaded; all arithmetic is f32.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/attention.h"
#include "kernels/kernels.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/attention_block.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "kernels/attention-inl.h"

#ifndef TOKENLORA_KERNELS_ATTENTION_BLOCK_ONCE_
#define TOKENLORA_KERNELS_ATTENTION_BLOCK_ONCE_
namespace tokenlora::kernels {
inline constexpr int kBlockTok = 4;  // query tokens per work item of 3 heads (or on AVX2)
inline constexpr int kItemRows = 12;  // query rows per work item on AVX-512
}  // namespace tokenlora::kernels
#endif

HWY_BEFORE_NAMESPACE();
namespace tokenlora::kernels::HWY_NAMESPACE {

size_t LanesSimd() { return hn::Lanes(DF()); }

// Query rows of one work item: kHP heads × kTok tokens, row hh·kTok + t.
template <int kHP, int kTok>
inline constexpr int kRows = kHP * kTok;

// out rows [.., dc .. dc + kV·N) = Σ_j p[row, j]·v[j, dc ..] for the item's rows.
//   p: [kRows, p_stride]; out_rows[row]: that row's output (nullptr: past n_q)
template <int kHP, int kTok, int kV, typename T>
HWY_INLINE void ValuesChunk(const float* HWY_RESTRICT p, size_t p_stride, int n_keys, const T* HWY_RESTRICT v,
                            size_t head_dim, size_t dc, float* const* out_rows) {
  const DF df;
  const size_t N = hn::Lanes(df);
  using V = hn::Vec<DF>;
  constexpr int kR = kRows<kHP, kTok>;
  V acc[kR][kV];
  for (int r = 0; r < kR; ++r) {
    for (int c = 0; c < kV; ++c) acc[r][c] = hn::Zero(df);
  }
  for (int j = 0; j < n_keys; ++j) {
    V vr[kV];
    for (int c = 0; c < kV; ++c) vr[c] = LoadKv(df, v + static_cast<size_t>(j) * head_dim + dc + c * N);
    for (int r = 0; r < kR; ++r) {
      const V pr = hn::Set(df, p[r * p_stride + static_cast<size_t>(j)]);
      for (int c = 0; c < kV; ++c) acc[r][c] = hn::MulAdd(pr, vr[c], acc[r][c]);
    }
  }
  for (int r = 0; r < kR; ++r) {
    if (out_rows[r] == nullptr) continue;
    for (int c = 0; c < kV; ++c) hn::StoreU(acc[r][c], df, out_rows[r] + dc + c * N);
  }
}

// One work item: query heads h0 .. h0 + kHP − 1 of one KV group, tokens
// t0 .. t0 + n_q − 1 (n_q ≤ kTok). Each key and value vector loaded
// (and converted, for f16) serves all kHP·kTok query rows.
//   q:    [n_tok, q_stride] queries, offset to head h0; out the same layout
//   keys: the group's key tiles; values: its value rows [.., head_dim]
//   p:    [kRows, p_stride] scratch (p_stride ≥ n_keys rounded up to kStepKeys)
//   all_keys: 0 for causal rows; else every row attends to keys 0 .. all_keys − 1
template <int kHP, int kTok, typename T>
void AttentionItem(const float* q, size_t q_stride, const T* keys, const T* values, float* out, int head_dim,
                   int n_past, int t0, int n_q, int all_keys, float scale, float* p, size_t p_stride) {
  const DF df;
  const size_t N = hn::Lanes(df);
  using V = hn::Vec<DF>;
  constexpr int kR = kRows<kHP, kTok>;
  const size_t hd = static_cast<size_t>(head_dim);
  const int n_keys = all_keys > 0 ? all_keys : n_past + t0 + n_q;  // keys of the block's last token
  // Query rows; tokens past n_q repeat the last (results unused).
  const float* qr[kR];
  float* out_rows[kR];
  for (int hh = 0; hh < kHP; ++hh) {
    for (int t = 0; t < kTok; ++t) {
      const size_t row = static_cast<size_t>(t0 + std::min(t, n_q - 1)) * q_stride + static_cast<size_t>(hh) * hd;
      qr[hh * kTok + t] = q + row;
      out_rows[hh * kTok + t] = t < n_q ? out + row : nullptr;
    }
  }

  const V vscale = hn::Set(df, scale);
  for (size_t kc = 0; kc < static_cast<size_t>(n_keys); kc += kStepKeys) {
    const T* ku[kKeyVectors];
    for (size_t u = 0; u < kKeyVectors; ++u) ku[u] = KeyVector(keys, hd, kc, u);
    V acc[kR][kKeyVectors];
    for (int r = 0; r < kR; ++r) {
      for (size_t u = 0; u < kKeyVectors; ++u) acc[r][u] = hn::Zero(df);
    }
    for (size_t d = 0; d < hd; ++d) {
      V k[kKeyVectors];
      for (size_t u = 0; u < kKeyVectors; ++u) k[u] = LoadKv(df, ku[u] + d * kKeyTile);
      for (int r = 0; r < kR; ++r) {
        const V qd = hn::Set(df, qr[r][d]);
        for (size_t u = 0; u < kKeyVectors; ++u) acc[r][u] = hn::MulAdd(qd, k[u], acc[r][u]);
      }
    }
    for (int r = 0; r < kR; ++r) {
      for (size_t u = 0; u < kKeyVectors; ++u) hn::Store(hn::Mul(acc[r][u], vscale), df, p + r * p_stride + kc + u * N);
    }
  }
  for (int r = 0; r < kR; ++r) {
    const int t = r % kTok;
    float* pr = p + r * p_stride;
    const int n = t >= n_q ? 0 : all_keys > 0 ? all_keys : n_past + t0 + t + 1;  // this token's keys
    if (n > 0) Softmax(pr, n);
    std::fill(pr + n, pr + n_keys, 0.0f);
  }
  // Two value vectors per pass keep kR·2 accumulators in registers.
  size_t dc = 0;
  for (; dc + 2 * N <= hd; dc += 2 * N) ValuesChunk<kHP, kTok, 2>(p, p_stride, n_keys, values, hd, dc, out_rows);
  for (; dc + N <= hd; dc += N) ValuesChunk<kHP, kTok, 1>(p, p_stride, n_keys, values, hd, dc, out_rows);
}

// Query heads one item serves: 3 × 4 tokens × 2 key vectors = 24
// accumulators fit AVX-512's 32 registers; targets with 16 take one head.
inline constexpr int kMaxHeadsPerItem = (HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3) ? 1 : 3;

size_t HeadsPerItemSimd() { return kMaxHeadsPerItem; }
// Query tokens per item for KV groups of `group` heads: 12 query rows on
// AVX-512 (12 tokens of one head, 6 of two, 4 of three or more), 4 tokens
// of one head elsewhere.
int TokensPerItemSimd(int group) {
  if constexpr (kMaxHeadsPerItem >= 3) return kItemRows / std::min(group, kMaxHeadsPerItem);
  return kBlockTok;
}

// An item of n_h heads × n_tok_item tokens (n_tok_item = TokensPerItemSimd).
template <typename T>
HWY_INLINE void RunItem(int n_h, int n_tok_item, const float* q, size_t q_stride, const T* keys, const T* values,
                        float* out, int head_dim, int n_past, int t0, int n_q, int all_keys, float scale, float* p,
                        size_t p_stride) {
#define TOKENLORA_ATTENTION_ITEM(HP, TOK)                                                                    \
  return AttentionItem<HP, TOK>(q, q_stride, keys, values, out, head_dim, n_past, t0, n_q, all_keys, scale, p, \
                                p_stride)
  if constexpr (kMaxHeadsPerItem >= 3) {
    if (n_h == 3) TOKENLORA_ATTENTION_ITEM(3, 4);
    if (n_h == 2 && n_tok_item == 6) TOKENLORA_ATTENTION_ITEM(2, 6);
    if (n_h == 2) TOKENLORA_ATTENTION_ITEM(2, 4);
    if (n_tok_item == 12) TOKENLORA_ATTENTION_ITEM(1, 12);
  }
  TOKENLORA_ATTENTION_ITEM(1, 4);
#undef TOKENLORA_ATTENTION_ITEM
}

// Every (block, KV group, head pass) item in [begin, end) of one call; items
// run later blocks (more keys) first for balance.
void AttentionItemsSimd(const float* q, const KvLayer& kv, float* out, const AttentionShape& s, size_t begin,
                        size_t end, float* p, size_t p_stride) {
  const size_t hd = static_cast<size_t>(s.head_dim);
  const size_t q_stride = static_cast<size_t>(s.n_heads) * hd;
  const int group = s.n_heads / s.n_kv_heads;
  const int passes = (group + kMaxHeadsPerItem - 1) / kMaxHeadsPerItem;
  const size_t per_block = static_cast<size_t>(s.n_kv_heads) * static_cast<size_t>(passes);
  const int tok_per_item = TokensPerItemSimd(group);
  const int n_blocks = (s.n_tok + tok_per_item - 1) / tok_per_item;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  const int all_keys = s.causal ? 0 : s.n_past + s.n_tok;
  for (size_t item = begin; item < end; ++item) {
    const int b = n_blocks - 1 - static_cast<int>(item / per_block);
    const int g = static_cast<int>(item % per_block) / passes;
    const int h0 = g * group + static_cast<int>(item % per_block) % passes * kMaxHeadsPerItem;
    const int n_h = std::min(kMaxHeadsPerItem, (g + 1) * group - h0);
    const int t0 = b * tok_per_item;
    const int n_q = std::min(tok_per_item, s.n_tok - t0);
    const size_t key0 = kv.KeyIndex(g, 0, 0), value0 = kv.ValueIndex(g, 0);
    const float* qh = q + static_cast<size_t>(h0) * hd;
    float* oh = out + static_cast<size_t>(h0) * hd;
    if (kv.type == DType::kF16) {
      RunItem(n_h, tok_per_item, qh, q_stride, static_cast<const uint16_t*>(kv.keys) + key0,
              static_cast<const uint16_t*>(kv.values) + value0, oh, s.head_dim, s.n_past, t0, n_q, all_keys, scale, p,
              p_stride);
    } else {
      RunItem(n_h, tok_per_item, qh, q_stride, static_cast<const float*>(kv.keys) + key0,
              static_cast<const float*>(kv.values) + value0, oh, s.head_dim, s.n_past, t0, n_q, all_keys, scale, p,
              p_stride);
    }
  }
}

}  // namespace tokenlora::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "hwy/aligned_allocator.h"

namespace tokenlora::kernels::internal {

HWY_EXPORT(LanesSimd);
HWY_EXPORT(HeadsPerItemSimd);
HWY_EXPORT(TokensPerItemSimd);
HWY_EXPORT(AttentionItemsSimd);

bool SimdAttentionApplies(const AttentionShape& s) {
  return s.head_dim % static_cast<int>(HWY_DYNAMIC_DISPATCH(LanesSimd)()) == 0;
}

void BlockCausalAttention(const float* q, const KvLayer& kv, float* out, const AttentionShape& s,
                          ThreadPool& pool) {
  // Scores of a block: up to n_past + n_tok keys, rounded up to whole steps.
  const size_t p_stride = static_cast<size_t>(s.n_past + s.n_tok + kKvCapacityStep - 1) / kKvCapacityStep *
                          kKvCapacityStep;
  const int heads_per_item = static_cast<int>(HWY_DYNAMIC_DISPATCH(HeadsPerItemSimd)());
  const int group = s.n_heads / s.n_kv_heads;
  const size_t passes = static_cast<size_t>((group + heads_per_item - 1) / heads_per_item);
  const int tok_per_item = HWY_DYNAMIC_DISPATCH(TokensPerItemSimd)(group);
  const size_t n_blocks = static_cast<size_t>((s.n_tok + tok_per_item - 1) / tok_per_item);
  // Rows of an item: at most heads_per_item · kBlockTok (12 on AVX-512).
  const size_t p_floats = static_cast<size_t>(heads_per_item * kBlockTok) * p_stride;
  const auto items_fn = HWY_DYNAMIC_DISPATCH(AttentionItemsSimd);
  pool.ParallelFor(n_blocks * static_cast<size_t>(s.n_kv_heads) * passes, 1, [&](size_t begin, size_t end, int) {
    thread_local hwy::AlignedFreeUniquePtr<float[]> p;
    thread_local size_t p_capacity = 0;
    if (p_capacity < p_floats) {
      p = hwy::AllocateAligned<float>(p_floats);
      p_capacity = p_floats;
    }
    items_fn(q, kv, out, s, begin, end, p.get(), p_stride);
  });
}

}  // namespace tokenlora::kernels::internal
#endif  // HWY_ONCE
