// Causal attention for prompts (many new tokens): blocks of kBlockTok query
// tokens of one head, with every inner loop along a SIMD vector and no
// horizontal sums:
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

// out[t, dc .. dc + kV·N) for the block's tokens: Σ_j p[t, j]·v[j, dc ..].
template <int kV, typename T>
HWY_INLINE void ValuesChunk(const float* HWY_RESTRICT p, size_t p_stride, int n_keys,
                            const T* HWY_RESTRICT v, size_t head_dim, size_t dc,
                            float* HWY_RESTRICT out, size_t q_stride, int n_q) {
  const DF df;
  const size_t N = hn::Lanes(df);
  using V = hn::Vec<DF>;
  V acc[kBlockTok][kV];
  for (int t = 0; t < kBlockTok; ++t) {
    for (int c = 0; c < kV; ++c) acc[t][c] = hn::Zero(df);
  }
  for (int j = 0; j < n_keys; ++j) {
    V vr[kV];
    for (int c = 0; c < kV; ++c) vr[c] = LoadKv(df, v + static_cast<size_t>(j) * head_dim + dc + c * N);
    for (int t = 0; t < kBlockTok; ++t) {
      const V pt = hn::Set(df, p[t * p_stride + static_cast<size_t>(j)]);
      for (int c = 0; c < kV; ++c) acc[t][c] = hn::MulAdd(pt, vr[c], acc[t][c]);
    }
  }
  for (int t = 0; t < n_q; ++t) {
    for (int c = 0; c < kV; ++c) hn::StoreU(acc[t][c], df, out + t * q_stride + dc + c * N);
  }
}

// One work item: query head `h`, tokens t0 .. t0 + n_q − 1 (n_q ≤ kBlockTok).
//   q:    [n_tok, q_stride] queries; out the same layout
//   keys: this head's KV group's key tiles; values: its value rows [.., head_dim]
//   p:    [kBlockTok, p_stride] scratch (p_stride ≥ n_keys rounded up to kStepKeys)
template <typename T>
void AttentionItem(const float* q, size_t q_stride, const T* keys, const T* values, float* out, int head_dim,
                   int n_past, int t0, int n_q, float scale, float* p, size_t p_stride) {
  const DF df;
  const size_t N = hn::Lanes(df);
  using V = hn::Vec<DF>;
  const size_t hd = static_cast<size_t>(head_dim);
  const int n_keys = n_past + t0 + n_q;  // keys of the block's last token
  // Queries of the block; rows past n_q repeat the last (results unused).
  const float* qr[kBlockTok];
  for (int t = 0; t < kBlockTok; ++t) qr[t] = q + static_cast<size_t>(t0 + std::min(t, n_q - 1)) * q_stride;

  const V vscale = hn::Set(df, scale);
  for (size_t kc = 0; kc < static_cast<size_t>(n_keys); kc += kStepKeys) {
    const T* ku[kKeyVectors];
    for (size_t u = 0; u < kKeyVectors; ++u) ku[u] = KeyVector(keys, hd, kc, u);
    V acc[kBlockTok][kKeyVectors];
    for (int t = 0; t < kBlockTok; ++t) {
      for (size_t u = 0; u < kKeyVectors; ++u) acc[t][u] = hn::Zero(df);
    }
    for (size_t d = 0; d < hd; ++d) {
      V k[kKeyVectors];
      for (size_t u = 0; u < kKeyVectors; ++u) k[u] = LoadKv(df, ku[u] + d * kKeyTile);
      for (int t = 0; t < kBlockTok; ++t) {
        const V qd = hn::Set(df, qr[t][d]);
        for (size_t u = 0; u < kKeyVectors; ++u) acc[t][u] = hn::MulAdd(qd, k[u], acc[t][u]);
      }
    }
    for (int t = 0; t < kBlockTok; ++t) {
      for (size_t u = 0; u < kKeyVectors; ++u) hn::Store(hn::Mul(acc[t][u], vscale), df, p + t * p_stride + kc + u * N);
    }
  }
  for (int t = 0; t < kBlockTok; ++t) {
    float* pt = p + t * p_stride;
    const int n = t < n_q ? n_past + t0 + t + 1 : 0;  // this token's causal keys
    if (n > 0) Softmax(pt, n);
    std::fill(pt + n, pt + n_keys, 0.0f);
  }
  float* ob = out + static_cast<size_t>(t0) * q_stride;
  size_t dc = 0;
  for (; dc + 4 * N <= hd; dc += 4 * N) ValuesChunk<4>(p, p_stride, n_keys, values, hd, dc, ob, q_stride, n_q);
  for (; dc + N <= hd; dc += N) ValuesChunk<1>(p, p_stride, n_keys, values, hd, dc, ob, q_stride, n_q);
}

// Every (block, head) item in [begin, end) of one call; items run later
// blocks (more keys) first for balance.
void AttentionItemsSimd(const float* q, const KvLayer& kv, float* out, const AttentionShape& s, size_t begin,
                        size_t end, float* p, size_t p_stride) {
  const size_t hd = static_cast<size_t>(s.head_dim);
  const size_t q_stride = static_cast<size_t>(s.n_heads) * hd;
  const int group = s.n_heads / s.n_kv_heads;
  const int n_blocks = (s.n_tok + kBlockTok - 1) / kBlockTok;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  for (size_t item = begin; item < end; ++item) {
    const int b = n_blocks - 1 - static_cast<int>(item / static_cast<size_t>(s.n_heads));
    const int h = static_cast<int>(item % static_cast<size_t>(s.n_heads));
    const int g = h / group;
    const int t0 = b * kBlockTok;
    const int n_q = std::min(kBlockTok, s.n_tok - t0);
    const size_t key0 = kv.KeyIndex(g, 0, 0), value0 = kv.ValueIndex(g, 0);
    const float* qh = q + static_cast<size_t>(h) * hd;
    float* oh = out + static_cast<size_t>(h) * hd;
    if (kv.type == DType::kF16) {
      AttentionItem(qh, q_stride, static_cast<const uint16_t*>(kv.keys) + key0,
                    static_cast<const uint16_t*>(kv.values) + value0, oh, s.head_dim, s.n_past, t0, n_q, scale, p,
                    p_stride);
    } else {
      AttentionItem(qh, q_stride, static_cast<const float*>(kv.keys) + key0,
                    static_cast<const float*>(kv.values) + value0, oh, s.head_dim, s.n_past, t0, n_q, scale, p,
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
HWY_EXPORT(AttentionItemsSimd);

bool SimdAttentionApplies(const AttentionShape& s) {
  return s.head_dim % static_cast<int>(HWY_DYNAMIC_DISPATCH(LanesSimd)()) == 0;
}

void BlockCausalAttention(const float* q, const KvLayer& kv, float* out, const AttentionShape& s,
                          ThreadPool& pool) {
  // Scores of a block: up to n_past + n_tok keys, rounded up to whole steps.
  const size_t p_stride = static_cast<size_t>(s.n_past + s.n_tok + kKvCapacityStep - 1) / kKvCapacityStep *
                          kKvCapacityStep;
  const int n_blocks = (s.n_tok + kBlockTok - 1) / kBlockTok;
  const auto items_fn = HWY_DYNAMIC_DISPATCH(AttentionItemsSimd);
  pool.ParallelFor(static_cast<size_t>(n_blocks) * static_cast<size_t>(s.n_heads), 1,
                   [&](size_t begin, size_t end, int) {
                     thread_local hwy::AlignedFreeUniquePtr<float[]> p;
                     thread_local size_t p_capacity = 0;
                     if (p_capacity < kBlockTok * p_stride) {
                       p = hwy::AllocateAligned<float>(kBlockTok * p_stride);
                       p_capacity = kBlockTok * p_stride;
                     }
                     items_fn(q, kv, out, s, begin, end, p.get(), p_stride);
                   });
}

}  // namespace tokenlora::kernels::internal
#endif  // HWY_ONCE
