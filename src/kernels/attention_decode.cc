// Causal attention for a few new tokens (decoding): one work item is a token,
// a KV group and a chunk of kDecodeChunk keys, and serves every query head of
// the group, so each key and value is read once per token, not once per head
// (SmolLM2: 3 heads per group; Llama-3 style models: 4-8).
//  * scores: the cache keeps keys in tiles of 16 positions transposed
//    (KvLayer), so a step broadcasts q[h, d] and multiplies the vectors of
//    keys of dimension d: no horizontal sums;
//  * per head, exp(score − chunk max) and their sum;
//  * out[h] = Σ_j p[h, j]·V[j]: a step loads V row j (up to 4 vectors) once
//    for up to 4 heads.
// Long contexts split into chunks (split-K, as flash-decoding does), so 2
// threads share one group's keys; the chunks' partial results (max, sum,
// unnormalized output) are combined exactly afterwards. Chunks depend only
// on the key count, never on the thread count: results do not change with
// threads. f16 caches are converted as they are loaded; arithmetic is f32.
// Keys and values are prefetched StreamPrefetchBytes() ahead, as the weights
// are: at long contexts the cache streams from DRAM (F16 SmolLM2 at 4096
// tokens of context, alternated runs: decode 57-60 -> 70-79 t/s; Q4_0
// 174-211 -> 191-229).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/attention.h"
#include "kernels/prefetch.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/attention_decode.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"
#include "kernels/attention-inl.h"

#ifndef TOKENLORA_KERNELS_ATTENTION_DECODE_ONCE_
#define TOKENLORA_KERNELS_ATTENTION_DECODE_ONCE_
namespace tokenlora::kernels {
inline constexpr int kDecodeChunk = 256;  // keys per work item (a multiple of kKvCapacityStep)
inline constexpr int kMaxHeadsPerPass = 4;  // query heads sharing one pass over keys or values
// One head's partial result of a chunk: max score, Σ exp, Σ exp·v [head_dim].
inline size_t PartialFloats(int head_dim) { return static_cast<size_t>(head_dim) + 2; }
}  // namespace tokenlora::kernels
#endif

HWY_BEFORE_NAMESPACE();
namespace tokenlora::kernels::HWY_NAMESPACE {

// scores[h][kc - c0 ...] for kH heads and the keys of kSteps steps from kc.
//   q: kH query rows (q[h] → head_dim floats); keys: the group's key tiles
template <int kH, int kSteps, typename T>
HWY_INLINE void ScoreSteps(const float* const* q, const T* keys, size_t hd, size_t kc, size_t c0, float scale,
                           float* const* scores, size_t prefetch) {
  const DF df;
  const size_t N = hn::Lanes(df);
  using V = hn::Vec<DF>;
  constexpr size_t kU = kKeyVectors * kSteps;
  const T* ku[kU];
  for (size_t u = 0; u < kU; ++u) ku[u] = KeyVector(keys, hd, kc + (u / kKeyVectors) * kStepKeys, u % kKeyVectors);
  // The steps' key tiles are contiguous: prefetch as many bytes, `prefetch` ahead.
  if (prefetch != 0) PrefetchLines(reinterpret_cast<const char*>(ku[0]) + prefetch, kSteps * kStepKeys * hd * sizeof(T));
  V acc[kH][kU];
  for (int h = 0; h < kH; ++h) {
    for (size_t u = 0; u < kU; ++u) acc[h][u] = hn::Zero(df);
  }
  for (size_t d = 0; d < hd; ++d) {
    V k[kU];
    for (size_t u = 0; u < kU; ++u) k[u] = LoadKv(df, ku[u] + d * kKeyTile);
    for (int h = 0; h < kH; ++h) {
      const V qd = hn::Set(df, q[h][d]);
      for (size_t u = 0; u < kU; ++u) acc[h][u] = hn::MulAdd(qd, k[u], acc[h][u]);
    }
  }
  const V vscale = hn::Set(df, scale);
  for (int h = 0; h < kH; ++h) {
    for (size_t u = 0; u < kU; ++u) hn::Store(hn::Mul(acc[h][u], vscale), df, scores[h] + kc - c0 + u * N);
  }
}

// Scores of kH heads over keys [c0, c1): several steps at a time while the
// accumulators fit (few heads), then one.
template <int kH, typename T>
HWY_INLINE void Scores(const float* const* q, const T* keys, size_t hd, size_t c0, size_t c1, float scale,
                       float* const* scores, size_t prefetch) {
  constexpr int kSteps = kH == 1 ? 4 : kH == 2 ? 2 : 1;
  size_t kc = c0;
  for (; kc + kSteps * kStepKeys <= c1; kc += kSteps * kStepKeys) {
    ScoreSteps<kH, kSteps>(q, keys, hd, kc, c0, scale, scores, prefetch);
  }
  for (; kc < c1; kc += kStepKeys) ScoreSteps<kH, 1>(q, keys, hd, kc, c0, scale, scores, prefetch);
}

// out[h][dc .. dc + kV·N) = Σ_j p[h][j]·v[j][dc ..] for kH heads, keys [0, n).
template <int kH, int kV, typename T>
HWY_INLINE void WeightedValues(const float* const* p, const T* v, size_t hd, size_t dc, int n, float* const* out,
                               size_t prefetch) {
  const DF df;
  const size_t N = hn::Lanes(df);
  using V = hn::Vec<DF>;
  V acc[kH][kV];
  for (int h = 0; h < kH; ++h) {
    for (int c = 0; c < kV; ++c) acc[h][c] = hn::Zero(df);
  }
  for (int j = 0; j < n; ++j) {
    // Rows are contiguous: the first pass over them prefetches, `prefetch` ahead.
    if (prefetch != 0 && dc == 0) {
      PrefetchLines(reinterpret_cast<const char*>(v + static_cast<size_t>(j) * hd) + prefetch, hd * sizeof(T));
    }
    V vr[kV];
    for (int c = 0; c < kV; ++c) vr[c] = LoadKv(df, v + static_cast<size_t>(j) * hd + dc + c * N);
    for (int h = 0; h < kH; ++h) {
      const V pj = hn::Set(df, p[h][j]);
      for (int c = 0; c < kV; ++c) acc[h][c] = hn::MulAdd(pj, vr[c], acc[h][c]);
    }
  }
  for (int h = 0; h < kH; ++h) {
    for (int c = 0; c < kV; ++c) hn::StoreU(acc[h][c], df, out[h] + dc + c * N);
  }
}

template <int kH, typename T>
HWY_INLINE void Values(const float* const* p, const T* v, size_t hd, int n, float* const* out, size_t prefetch) {
  const size_t N = hn::Lanes(DF());
  size_t dc = 0;
  for (; dc + 4 * N <= hd; dc += 4 * N) WeightedValues<kH, 4>(p, v, hd, dc, n, out, prefetch);
  for (; dc + N <= hd; dc += N) WeightedValues<kH, 1>(p, v, hd, dc, n, out, prefetch);
}

// In place: x[i] = exp(x[i] − max) over [0, n); returns {max, Σ}.
HWY_INLINE void ExpFromMax(float* HWY_RESTRICT x, int n, float& max_out, float& sum_out) {
  const DF d;
  const int N = static_cast<int>(hn::Lanes(d));
  auto vmax = hn::Set(d, -std::numeric_limits<float>::infinity());
  int i = 0;
  for (; i + N <= n; i += N) vmax = hn::Max(vmax, hn::LoadU(d, x + i));
  float max = hn::GetLane(hn::MaxOfLanes(d, vmax));
  for (; i < n; ++i) max = std::fmax(max, x[i]);
  const auto vneg_max = hn::Set(d, -max);
  auto vsum = hn::Zero(d);
  i = 0;
  for (; i + N <= n; i += N) {
    const auto e = hn::Exp(d, hn::Add(hn::LoadU(d, x + i), vneg_max));
    hn::StoreU(e, d, x + i);
    vsum = hn::Add(vsum, e);
  }
  float sum = hn::GetLane(hn::SumOfLanes(d, vsum));
  for (; i < n; ++i) sum += (x[i] = std::exp(x[i] - max));
  max_out = max;
  sum_out = sum;
}

// kH heads of one chunk: scores, exp, weighted values.
//   q[h]: query rows; partial[h]: [max, sum, out[head_dim]]; scores[h]: scratch
template <int kH, typename T>
HWY_INLINE void HeadsOfChunk(const float* const* q, const T* keys, const T* values, size_t hd, size_t c0, size_t c1,
                             float scale, float* const* scores, float* const* partial, size_t prefetch) {
  Scores<kH>(q, keys, hd, c0, c1, scale, scores, prefetch);
  float* out[kH];
  for (int h = 0; h < kH; ++h) {
    ExpFromMax(scores[h], static_cast<int>(c1 - c0), partial[h][0], partial[h][1]);
    out[h] = partial[h] + 2;
  }
  Values<kH>(scores, values + c0 * hd, hd, static_cast<int>(c1 - c0), out, prefetch);
}

// Items [begin, end) of (token, group, chunk); writes each item's partials:
// [items][group heads][PartialFloats]. scratch: [kMaxHeadsPerPass][kDecodeChunk].
void DecodeItemsSimd(const float* q, const KvLayer& kv, const AttentionShape& s, int n_chunks, size_t begin,
                     size_t end, float* partials, float* scratch, size_t prefetch) {
  const size_t hd = static_cast<size_t>(s.head_dim);
  const size_t q_stride = static_cast<size_t>(s.n_heads) * hd;
  const int group = s.n_heads / s.n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  const size_t per_item = static_cast<size_t>(group) * PartialFloats(s.head_dim);
  for (size_t item = begin; item < end; ++item) {
    const int c = static_cast<int>(item % static_cast<size_t>(n_chunks));
    const int g = static_cast<int>(item / static_cast<size_t>(n_chunks) % static_cast<size_t>(s.n_kv_heads));
    const int t = static_cast<int>(item / static_cast<size_t>(n_chunks) / static_cast<size_t>(s.n_kv_heads));
    const size_t n_keys = static_cast<size_t>(s.n_past + t + 1);
    const size_t c0 = static_cast<size_t>(c) * kDecodeChunk;
    float* item_partials = partials + item * per_item;
    if (c0 >= n_keys) {  // an earlier token has fewer keys than the last
      for (int h = 0; h < group; ++h) item_partials[static_cast<size_t>(h) * PartialFloats(s.head_dim)] = -INFINITY;
      continue;
    }
    const size_t c1 = std::min(n_keys, c0 + kDecodeChunk);
    for (int h0 = 0; h0 < group; h0 += kMaxHeadsPerPass) {
      const int n_h = std::min(kMaxHeadsPerPass, group - h0);
      const float* qh[kMaxHeadsPerPass];
      float* sc[kMaxHeadsPerPass];
      float* part[kMaxHeadsPerPass];
      for (int h = 0; h < n_h; ++h) {
        qh[h] = q + static_cast<size_t>(t) * q_stride + static_cast<size_t>(g * group + h0 + h) * hd;
        sc[h] = scratch + static_cast<size_t>(h) * kDecodeChunk;
        part[h] = item_partials + static_cast<size_t>(h0 + h) * PartialFloats(s.head_dim);
      }
      auto run = [&](auto keys, auto values) {
        switch (n_h) {
          case 1: return HeadsOfChunk<1>(qh, keys, values, hd, c0, c1, scale, sc, part, prefetch);
          case 2: return HeadsOfChunk<2>(qh, keys, values, hd, c0, c1, scale, sc, part, prefetch);
          case 3: return HeadsOfChunk<3>(qh, keys, values, hd, c0, c1, scale, sc, part, prefetch);
          default: return HeadsOfChunk<4>(qh, keys, values, hd, c0, c1, scale, sc, part, prefetch);
        }
      };
      const size_t key0 = kv.KeyIndex(g, 0, 0), value0 = kv.ValueIndex(g, 0);
      if (kv.type == DType::kF16) {
        run(static_cast<const uint16_t*>(kv.keys) + key0, static_cast<const uint16_t*>(kv.values) + value0);
      } else {
        run(static_cast<const float*>(kv.keys) + key0, static_cast<const float*>(kv.values) + value0);
      }
    }
  }
}

}  // namespace tokenlora::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "hwy/aligned_allocator.h"

namespace tokenlora::kernels::internal {

HWY_EXPORT(DecodeItemsSimd);

namespace {

// Where one job's items and partials start in the batch's shared lists.
struct DecodeJobLayout {
  size_t first_item = 0;     // index of the job's first item in the batch
  size_t first_partial = 0;  // float offset of its partials
  int n_chunks = 0;
};

// out = Σ_c e^(m_c − M)·o_c / Σ_c e^(m_c − M)·s_c over the chunks of each
// (token, head) of one job.
void CombineChunks(const AttentionJob& job, int n_chunks, const float* all) {
  const AttentionShape& s = job.shape;
  const int group = s.n_heads / s.n_kv_heads;
  const size_t pf = PartialFloats(s.head_dim);
  const size_t hd = static_cast<size_t>(s.head_dim);
  for (int t = 0; t < s.n_tok; ++t) {
    for (int h = 0; h < s.n_heads; ++h) {
      const int g = h / group;
      auto part = [&](int c) {
        const size_t item = (static_cast<size_t>(t) * static_cast<size_t>(s.n_kv_heads) + static_cast<size_t>(g)) *
                                static_cast<size_t>(n_chunks) + static_cast<size_t>(c);
        return all + (item * static_cast<size_t>(group) + static_cast<size_t>(h % group)) * pf;
      };
      float max = -INFINITY;
      for (int c = 0; c < n_chunks; ++c) max = std::max(max, part(c)[0]);
      float* o = job.out + (static_cast<size_t>(t) * static_cast<size_t>(s.n_heads) + static_cast<size_t>(h)) * hd;
      float sum = 0;
      std::fill(o, o + hd, 0.0f);
      for (int c = 0; c < n_chunks; ++c) {
        const float* pc = part(c);
        if (pc[0] == -INFINITY) continue;  // a chunk past this token's keys
        const float w = n_chunks == 1 ? 1.0f : std::exp(pc[0] - max);
        sum += w * pc[1];
        for (size_t d = 0; d < hd; ++d) o[d] += w * pc[2 + d];
      }
      const float inv = 1.0f / sum;
      for (size_t d = 0; d < hd; ++d) o[d] *= inv;
    }
  }
}

}  // namespace

void DecodeCausalAttention(std::span<const AttentionJob> jobs, ThreadPool& pool) {
  // Items of every job in one list: (job, token, group, chunk). A job's items
  // and their results are exactly those of the job run alone.
  thread_local std::vector<DecodeJobLayout> layout;
  layout.resize(jobs.size());
  size_t n_items = 0, n_partials = 0;
  for (size_t j = 0; j < jobs.size(); ++j) {
    const AttentionShape& s = jobs[j].shape;
    const int n_chunks = (s.n_past + s.n_tok + kDecodeChunk - 1) / kDecodeChunk;
    const size_t items = static_cast<size_t>(s.n_tok) * static_cast<size_t>(s.n_kv_heads) * static_cast<size_t>(n_chunks);
    layout[j] = {n_items, n_partials, n_chunks};
    n_items += items;
    n_partials += items * static_cast<size_t>(s.n_heads / s.n_kv_heads) * PartialFloats(s.head_dim);
  }
  // Partials of every item, kept across calls (no allocation once grown).
  thread_local std::vector<float> partials;
  partials.resize(std::max(partials.size(), n_partials));
  const auto items_fn = HWY_DYNAMIC_DISPATCH(DecodeItemsSimd);
  const size_t prefetch = StreamPrefetchBytes();  // the cache streams from DRAM at long contexts, as weights do
  float* all = partials.data();
  const DecodeJobLayout* lay = layout.data();
  pool.ParallelFor(n_items, 1, [&](size_t begin, size_t end, int) {
    thread_local hwy::AlignedFreeUniquePtr<float[]> scratch;
    if (!scratch) scratch = hwy::AllocateAligned<float>(static_cast<size_t>(kMaxHeadsPerPass) * kDecodeChunk);
    // The job holding `begin`, then each job's share of [begin, end).
    size_t j = static_cast<size_t>(std::upper_bound(lay, lay + jobs.size(), begin,
                                                    [](size_t item, const DecodeJobLayout& l) {
                                                      return item < l.first_item;
                                                    }) - lay) - 1;
    while (begin < end) {
      const size_t job_end = j + 1 < jobs.size() ? lay[j + 1].first_item : n_items;
      const size_t stop = std::min(end, job_end);
      if (stop > begin) {
        const AttentionJob& job = jobs[j];
        items_fn(job.q, job.kv, job.shape, lay[j].n_chunks, begin - lay[j].first_item, stop - lay[j].first_item,
                 all + lay[j].first_partial, scratch.get(), prefetch);
      }
      begin = stop;
      ++j;
    }
  });
  for (size_t j = 0; j < jobs.size(); ++j) CombineChunks(jobs[j], layout[j].n_chunks, all + layout[j].first_partial);
}

}  // namespace tokenlora::kernels::internal
#endif  // HWY_ONCE
