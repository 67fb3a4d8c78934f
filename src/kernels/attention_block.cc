// Causal attention for prompts (many new tokens): blocks of kBlockTok query
// tokens of up to 3 query heads of one KV group (each key and value vector
// loaded, and converted from f16, serves 12 query rows), with every inner
// loop along a SIMD vector and no horizontal sums:
//  * scores S[t, j] = Σ_d q[t, d]·K[j, d]: the cache keeps keys in tiles of
//    16 positions transposed (KvLayer), so a step broadcasts q[t, d] and
//    multiplies the vectors of keys of dimension d;
//  * softmax per token over its causal keys (masked keys get weight 0);
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
inline constexpr int kBlockTok = 4;  // query tokens per work item
}  // namespace tokenlora::kernels
#endif

HWY_BEFORE_NAMESPACE();
namespace tokenlora::kernels::HWY_NAMESPACE {

size_t LanesSimd() { return hn::Lanes(DF()); }

// Query rows of one work item: kHP heads × kBlockTok tokens, row hh·kBlockTok + t.
template <int kHP>
inline constexpr int kRows = kHP * kBlockTok;

// out rows [.., dc .. dc + kV·N) = Σ_j p[row, j]·v[j, dc ..] for the item's rows.
//   p: [kRows, p_stride]; out_rows[row]: that row's output (nullptr: past n_q)
template <int kHP, int kV, typename T>
HWY_INLINE void ValuesChunk(const float* HWY_RESTRICT p, size_t p_stride, int n_keys, const T* HWY_RESTRICT v,
                            size_t head_dim, size_t dc, float* const* out_rows) {
  const DF df;
  const size_t N = hn::Lanes(df);
  using V = hn::Vec<DF>;
  constexpr int kR = kRows<kHP>;
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
// t0 .. t0 + n_q − 1 (n_q ≤ kBlockTok). Each key and value vector loaded
// (and converted, for f16) serves all kHP·kBlockTok query rows.
//   q:    [n_tok, q_stride] queries, offset to head h0; out the same layout
//   keys: the group's key tiles; values: its value rows [.., head_dim]
//   p:    [kRows, p_stride] scratch (p_stride ≥ n_keys rounded up to kStepKeys)
template <int kHP, typename T>
void AttentionItem(const float* q, size_t q_stride, const T* keys, const T* values, float* out, int head_dim,
                   int n_past, int t0, int n_q, float scale, float* p, size_t p_stride) {
  const DF df;
  const size_t N = hn::Lanes(df);
  using V = hn::Vec<DF>;
  constexpr int kR = kRows<kHP>;
  const size_t hd = static_cast<size_t>(head_dim);
  const int n_keys = n_past + t0 + n_q;  // keys of the block's last token
  // Query rows; tokens past n_q repeat the last (results unused).
  const float* qr[kR];
  float* out_rows[kR];
  for (int hh = 0; hh < kHP; ++hh) {
    for (int t = 0; t < kBlockTok; ++t) {
      const size_t row = static_cast<size_t>(t0 + std::min(t, n_q - 1)) * q_stride + static_cast<size_t>(hh) * hd;
      qr[hh * kBlockTok + t] = q + row;
      out_rows[hh * kBlockTok + t] = t < n_q ? out + row : nullptr;
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
    const int t = r % kBlockTok;
    float* pr = p + r * p_stride;
    const int n = t < n_q ? n_past + t0 + t + 1 : 0;  // this token's causal keys
    if (n > 0) Softmax(pr, n);
    std::fill(pr + n, pr + n_keys, 0.0f);
  }
  // Two value vectors per pass keep kR·2 accumulators in registers.
  size_t dc = 0;
  for (; dc + 2 * N <= hd; dc += 2 * N) ValuesChunk<kHP, 2>(p, p_stride, n_keys, values, hd, dc, out_rows);
  for (; dc + N <= hd; dc += N) ValuesChunk<kHP, 1>(p, p_stride, n_keys, values, hd, dc, out_rows);
}

// Query heads one item serves: 3 × 4 tokens × 2 key vectors = 24
// accumulators fit AVX-512's 32 registers; targets with 16 take one head.
inline constexpr int kMaxHeadsPerItem = (HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3) ? 1 : 3;

size_t HeadsPerItemSimd() { return kMaxHeadsPerItem; }

template <typename T>
HWY_INLINE void RunItem(int n_h, const float* q, size_t q_stride, const T* keys, const T* values, float* out,
                        int head_dim, int n_past, int t0, int n_q, float scale, float* p, size_t p_stride) {
  if constexpr (kMaxHeadsPerItem >= 3) {
    if (n_h == 3) return AttentionItem<3>(q, q_stride, keys, values, out, head_dim, n_past, t0, n_q, scale, p, p_stride);
    if (n_h == 2) return AttentionItem<2>(q, q_stride, keys, values, out, head_dim, n_past, t0, n_q, scale, p, p_stride);
  }
  AttentionItem<1>(q, q_stride, keys, values, out, head_dim, n_past, t0, n_q, scale, p, p_stride);
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
  const int n_blocks = (s.n_tok + kBlockTok - 1) / kBlockTok;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  for (size_t item = begin; item < end; ++item) {
    const int b = n_blocks - 1 - static_cast<int>(item / per_block);
    const int g = static_cast<int>(item % per_block) / passes;
    const int h0 = g * group + static_cast<int>(item % per_block) % passes * kMaxHeadsPerItem;
    const int n_h = std::min(kMaxHeadsPerItem, (g + 1) * group - h0);
    const int t0 = b * kBlockTok;
    const int n_q = std::min(kBlockTok, s.n_tok - t0);
    const size_t key0 = kv.KeyIndex(g, 0, 0), value0 = kv.ValueIndex(g, 0);
    const float* qh = q + static_cast<size_t>(h0) * hd;
    float* oh = out + static_cast<size_t>(h0) * hd;
    if (kv.type == DType::kF16) {
      RunItem(n_h, qh, q_stride, static_cast<const uint16_t*>(kv.keys) + key0,
              static_cast<const uint16_t*>(kv.values) + value0, oh, s.head_dim, s.n_past, t0, n_q, scale, p, p_stride);
    } else {
      RunItem(n_h, qh, q_stride, static_cast<const float*>(kv.keys) + key0,
              static_cast<const float*>(kv.values) + value0, oh, s.head_dim, s.n_past, t0, n_q, scale, p, p_stride);
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
  const size_t n_blocks = static_cast<size_t>((s.n_tok + kBlockTok - 1) / kBlockTok);
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
