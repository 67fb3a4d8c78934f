#include "kernels/attention.h"

#include <cmath>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/kernels.h"

namespace tokenlora::kernels {
namespace {

using DotFn = float (*)(const float*, const float*, int64_t);
using SoftmaxFn = void (*)(float*, int64_t);
using AxpyFn = void (*)(float, const float*, float*, int64_t);

// Per (token, head): scores against every causal key, softmax, weighted sum
// of the values, with the given primitives (SIMD or scalar twins).
void PerKeyAttention(const float* q, const float* k, const float* v, float* out,
                     const AttentionShape& s, ThreadPool* pool, DotFn dot, SoftmaxFn softmax,
                     AxpyFn axpy) {
  const int group = s.n_heads / s.n_kv_heads;
  const int64_t kv_stride = static_cast<int64_t>(s.n_kv_heads) * s.head_dim;
  const int64_t q_stride = static_cast<int64_t>(s.n_heads) * s.head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  const size_t n_items = static_cast<size_t>(s.n_tok) * static_cast<size_t>(s.n_heads);
  auto run = [&](size_t begin, size_t end, int) {
    // Scores for one (token, head); reused across the items of this chunk.
    thread_local std::vector<float> scores;
    scores.resize(static_cast<size_t>(s.n_past + s.n_tok));
    for (size_t item = begin; item < end; ++item) {
      const int t = static_cast<int>(item / static_cast<size_t>(s.n_heads));
      const int h = static_cast<int>(item % static_cast<size_t>(s.n_heads));
      const int kv_h = h / group;
      const float* qh = q + t * q_stride + static_cast<int64_t>(h) * s.head_dim;
      const int n_keys = s.n_past + t + 1;
      for (int j = 0; j < n_keys; ++j) {
        scores[static_cast<size_t>(j)] =
            dot(qh, k + j * kv_stride + static_cast<int64_t>(kv_h) * s.head_dim, s.head_dim) * scale;
      }
      softmax(scores.data(), n_keys);
      float* oh = out + t * q_stride + static_cast<int64_t>(h) * s.head_dim;
      for (int d = 0; d < s.head_dim; ++d) oh[d] = 0.0f;
      for (int j = 0; j < n_keys; ++j) {
        axpy(scores[static_cast<size_t>(j)], v + j * kv_stride + static_cast<int64_t>(kv_h) * s.head_dim,
             oh, s.head_dim);
      }
    }
  };
  if (pool != nullptr) {
    pool->ParallelFor(n_items, 1, run);
  } else {
    run(0, n_items, 0);
  }
}

}  // namespace

void CausalAttention(const float* q, const float* k, const float* v, float* out,
                     const AttentionShape& s, ThreadPool& pool) {
  if (internal::ForceScalar()) return scalar::CausalAttention(q, k, v, out, s);
  if (internal::SimdAttentionApplies(s)) {
    if (s.n_tok >= 4) return internal::BlockCausalAttention(q, k, v, out, s, pool);
    return internal::RowCausalAttention(q, k, v, out, s, pool);
  }
  PerKeyAttention(q, k, v, out, s, &pool, &Dot, &Softmax, &Axpy);
}

namespace scalar {
void CausalAttention(const float* q, const float* k, const float* v, float* out,
                     const AttentionShape& s) {
  PerKeyAttention(q, k, v, out, s, nullptr, &scalar::Dot, &scalar::Softmax, &scalar::Axpy);
}
}  // namespace scalar

}  // namespace tokenlora::kernels
