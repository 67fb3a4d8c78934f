// Causal attention for prompts (many new tokens): blocks of kBlockTok query
// tokens of one head, with every inner loop along a SIMD vector and no
// horizontal sums (the per-key Dot/Axpy path of attention.cc spends most of
// its time reducing 64-float dot products and in call overhead):
//  * scores S[t, j] = Σ_d q[t, d]·Kᵀ[d, j]: K of the head's KV group is
//    transposed once per call (kt: [head_dim, kt_stride], zero-padded), so a
//    step broadcasts q[t, d] and multiplies 2 vectors of keys;
//  * softmax per token over its causal keys (masked keys get weight 0);
//  * out[t, :] = Σ_j P[t, j]·V[j, :]: a step loads V row j (up to 4 vectors)
//    and broadcasts P[t, j] for the block's tokens.
// Results match the per-key path up to summation order.
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

#ifndef TOKENLORA_KERNELS_ATTENTION_BLOCK_ONCE_
#define TOKENLORA_KERNELS_ATTENTION_BLOCK_ONCE_
namespace tokenlora::kernels {
inline constexpr int kBlockTok = 4;  // query tokens per work item
}  // namespace tokenlora::kernels
#endif

HWY_BEFORE_NAMESPACE();
namespace tokenlora::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;

size_t LanesSimd() { return hn::Lanes(DF()); }

// out[t, dc .. dc + kV·N) for the block's tokens: Σ_j p[t, j]·v[j, dc ..].
template <int kV>
HWY_INLINE void ValuesChunk(const float* HWY_RESTRICT p, size_t p_stride, int n_keys,
                            const float* HWY_RESTRICT v, size_t kv_stride, size_t dc,
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
    for (int c = 0; c < kV; ++c) vr[c] = hn::LoadU(df, v + static_cast<size_t>(j) * kv_stride + dc + c * N);
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
//   q:   [n_tok, q_stride] queries; out the same layout
//   kt:  [head_dim, kt_stride] this head's transposed keys (zero past the end)
//   v:   cache rows, already offset to this head's KV group; row stride kv_stride
//   p:   [kBlockTok, kt_stride] scratch
void AttentionItemSimd(const float* q, size_t q_stride, const float* kt, size_t kt_stride,
                       const float* v, size_t kv_stride, float* out, int head_dim, int n_past,
                       int t0, int n_q, float scale, float* p) {
  const DF df;
  const size_t N = hn::Lanes(df);
  using V = hn::Vec<DF>;
  const int n_keys = n_past + t0 + n_q;  // keys of the block's last token
  // Queries of the block; rows past n_q repeat the last (results unused).
  const float* qr[kBlockTok];
  for (int t = 0; t < kBlockTok; ++t) qr[t] = q + static_cast<size_t>(t0 + std::min(t, n_q - 1)) * q_stride;

  const V vscale = hn::Set(df, scale);
  for (size_t kc = 0; kc < static_cast<size_t>(n_keys); kc += 2 * N) {
    V a0[kBlockTok], a1[kBlockTok];
    for (int t = 0; t < kBlockTok; ++t) a0[t] = a1[t] = hn::Zero(df);
    for (int d = 0; d < head_dim; ++d) {
      const float* kd = kt + static_cast<size_t>(d) * kt_stride + kc;
      const V k0 = hn::Load(df, kd), k1 = hn::Load(df, kd + N);
      for (int t = 0; t < kBlockTok; ++t) {
        const V qd = hn::Set(df, qr[t][d]);
        a0[t] = hn::MulAdd(qd, k0, a0[t]);
        a1[t] = hn::MulAdd(qd, k1, a1[t]);
      }
    }
    for (int t = 0; t < kBlockTok; ++t) {
      hn::Store(hn::Mul(a0[t], vscale), df, p + t * kt_stride + kc);
      hn::Store(hn::Mul(a1[t], vscale), df, p + t * kt_stride + kc + N);
    }
  }
  for (int t = 0; t < kBlockTok; ++t) {
    float* pt = p + t * kt_stride;
    const int n = t < n_q ? n_past + t0 + t + 1 : 0;  // this token's causal keys
    if (n > 0) Softmax(pt, n);
    std::fill(pt + n, pt + n_keys, 0.0f);
  }
  float* ob = out + static_cast<size_t>(t0) * q_stride;
  size_t dc = 0;
  const size_t hd = static_cast<size_t>(head_dim);
  for (; dc + 4 * N <= hd; dc += 4 * N) ValuesChunk<4>(p, kt_stride, n_keys, v, kv_stride, dc, ob, q_stride, n_q);
  for (; dc + N <= hd; dc += N) ValuesChunk<1>(p, kt_stride, n_keys, v, kv_stride, dc, ob, q_stride, n_q);
}

// One (token, head) of a few new tokens (decode): scores by dot products
// along head_dim (inline, one horizontal sum per key), softmax, then
// out = Σ_j p_j·v_j with up to 4 vectors of out in registers.
//   q: the head's query [head_dim]; k, v: cache rows offset to its KV group
//   out: [head_dim]; scores: [n_keys] scratch
void AttentionRowSimd(const float* HWY_RESTRICT q, const float* HWY_RESTRICT k,
                      const float* HWY_RESTRICT v, size_t kv_stride, float* HWY_RESTRICT out,
                      int head_dim, int n_keys, float scale, float* HWY_RESTRICT scores) {
  const DF df;
  const size_t N = hn::Lanes(df);
  using V = hn::Vec<DF>;
  const size_t hd = static_cast<size_t>(head_dim);
  for (int j = 0; j < n_keys; ++j) {
    const float* kj = k + static_cast<size_t>(j) * kv_stride;
    V a = hn::Zero(df), b = hn::Zero(df);
    size_t d = 0;
    for (; d + 2 * N <= hd; d += 2 * N) {
      a = hn::MulAdd(hn::LoadU(df, q + d), hn::LoadU(df, kj + d), a);
      b = hn::MulAdd(hn::LoadU(df, q + d + N), hn::LoadU(df, kj + d + N), b);
    }
    if (d < hd) a = hn::MulAdd(hn::LoadU(df, q + d), hn::LoadU(df, kj + d), a);
    scores[j] = hn::GetLane(hn::SumOfLanes(df, hn::Add(a, b))) * scale;
  }
  Softmax(scores, n_keys);
  size_t dc = 0;
  for (; dc < hd; dc += 4 * N) {
    const size_t nv = std::min<size_t>(4, (hd - dc) / N);
    V acc[4] = {hn::Zero(df), hn::Zero(df), hn::Zero(df), hn::Zero(df)};
    for (int j = 0; j < n_keys; ++j) {
      const V p = hn::Set(df, scores[j]);
      const float* vj = v + static_cast<size_t>(j) * kv_stride + dc;
      for (size_t c = 0; c < 4; ++c) {
        if (c < nv) acc[c] = hn::MulAdd(p, hn::LoadU(df, vj + c * N), acc[c]);
      }
    }
    for (size_t c = 0; c < nv; ++c) hn::StoreU(acc[c], df, out + dc + c * N);
  }
}

}  // namespace tokenlora::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "hwy/aligned_allocator.h"

namespace tokenlora::kernels::internal {

HWY_EXPORT(LanesSimd);
HWY_EXPORT(AttentionItemSimd);
HWY_EXPORT(AttentionRowSimd);

bool SimdAttentionApplies(const AttentionShape& s) {
  return s.head_dim % static_cast<int>(HWY_DYNAMIC_DISPATCH(LanesSimd)()) == 0;
}

void RowCausalAttention(const float* q, const float* k, const float* v, float* out,
                        const AttentionShape& s, ThreadPool& pool) {
  const int group = s.n_heads / s.n_kv_heads;
  const size_t hd = static_cast<size_t>(s.head_dim);
  const size_t kv_stride = static_cast<size_t>(s.n_kv_heads) * hd;
  const size_t q_stride = static_cast<size_t>(s.n_heads) * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  const auto row_fn = HWY_DYNAMIC_DISPATCH(AttentionRowSimd);
  const size_t n_items = static_cast<size_t>(s.n_tok) * static_cast<size_t>(s.n_heads);
  pool.ParallelFor(n_items, 1, [&](size_t begin, size_t end, int) {
    thread_local std::vector<float> scores;
    scores.resize(static_cast<size_t>(s.n_past + s.n_tok));
    for (size_t item = begin; item < end; ++item) {
      const size_t t = item / static_cast<size_t>(s.n_heads);
      const size_t h = item % static_cast<size_t>(s.n_heads);
      const size_t g = h / static_cast<size_t>(group);
      row_fn(q + t * q_stride + h * hd, k + g * hd, v + g * hd, kv_stride, out + t * q_stride + h * hd,
             s.head_dim, s.n_past + static_cast<int>(t) + 1, scale, scores.data());
    }
  });
}

void BlockCausalAttention(const float* q, const float* k, const float* v, float* out,
                          const AttentionShape& s, ThreadPool& pool) {
  const size_t N = HWY_DYNAMIC_DISPATCH(LanesSimd)();
  const int n_total = s.n_past + s.n_tok;
  const size_t kt_stride = (static_cast<size_t>(n_total) + 2 * N - 1) / (2 * N) * (2 * N);
  const size_t hd = static_cast<size_t>(s.head_dim);
  const size_t kv_stride = static_cast<size_t>(s.n_kv_heads) * hd;
  const size_t q_stride = static_cast<size_t>(s.n_heads) * hd;

  // kt[g]: [head_dim, kt_stride] keys of KV group g, transposed, zero-padded.
  thread_local hwy::AlignedFreeUniquePtr<float[]> kt;
  thread_local size_t kt_capacity = 0;
  const size_t kt_floats = static_cast<size_t>(s.n_kv_heads) * hd * kt_stride;
  if (kt_capacity < kt_floats) {
    kt = hwy::AllocateAligned<float>(kt_floats);
    kt_capacity = kt_floats;
  }
  float* kt_all = kt.get();
  pool.ParallelFor(static_cast<size_t>(s.n_kv_heads) * hd, 16, [&](size_t begin, size_t end, int) {
    for (size_t row = begin; row < end; ++row) {  // row = g·head_dim + d
      const size_t g = row / hd, d = row % hd;
      float* dst = kt_all + row * kt_stride;
      const float* src = k + g * hd + d;
      for (int j = 0; j < n_total; ++j) dst[j] = src[static_cast<size_t>(j) * kv_stride];
      std::fill(dst + n_total, dst + kt_stride, 0.0f);
    }
  });

  const int group = s.n_heads / s.n_kv_heads;
  const int n_blocks = (s.n_tok + kBlockTok - 1) / kBlockTok;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  const auto item_fn = HWY_DYNAMIC_DISPATCH(AttentionItemSimd);
  // Items: (block, head), later blocks (more keys) first for balance.
  pool.ParallelFor(static_cast<size_t>(n_blocks) * static_cast<size_t>(s.n_heads), 1,
                   [&](size_t begin, size_t end, int) {
                     thread_local hwy::AlignedFreeUniquePtr<float[]> p;
                     thread_local size_t p_capacity = 0;
                     if (p_capacity < kBlockTok * kt_stride) {
                       p = hwy::AllocateAligned<float>(kBlockTok * kt_stride);
                       p_capacity = kBlockTok * kt_stride;
                     }
                     for (size_t item = begin; item < end; ++item) {
                       const int b = n_blocks - 1 - static_cast<int>(item / static_cast<size_t>(s.n_heads));
                       const int h = static_cast<int>(item % static_cast<size_t>(s.n_heads));
                       const int g = h / group;
                       const int t0 = b * kBlockTok;
                       const int n_q = std::min(kBlockTok, s.n_tok - t0);
                       item_fn(q + static_cast<size_t>(h) * hd, q_stride,
                               kt_all + static_cast<size_t>(g) * hd * kt_stride, kt_stride,
                               v + static_cast<size_t>(g) * hd, kv_stride,
                               out + static_cast<size_t>(h) * hd, s.head_dim, s.n_past, t0, n_q, scale,
                               p.get());
                     }
                   });
}

}  // namespace tokenlora::kernels::internal
#endif  // HWY_ONCE
