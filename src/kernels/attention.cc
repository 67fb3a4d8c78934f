#include "kernels/attention.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "kernels/dispatch.h"

namespace tokenlora::kernels {
namespace {

void StoreElement(const KvLayer& kv, void* base, size_t index, float x) {
  if (kv.type == DType::kF16) {
    static_cast<uint16_t*>(base)[index] = F32ToF16(x);
  } else {
    static_cast<float*>(base)[index] = x;
  }
}

float LoadElement(const KvLayer& kv, const void* base, size_t index) {
  if (kv.type == DType::kF16) return F16ToF32(static_cast<const uint16_t*>(base)[index]);
  return static_cast<const float*>(base)[index];
}

// Per (token, head), in plain C++: scores against every visible key, softmax,
// weighted sum of the values. Runs items [begin, end) of n_tok · n_heads.
void ScalarItems(const float* q, const KvLayer& kv, float* out, const AttentionShape& s, size_t begin,
                 size_t end) {
  const int group = s.n_heads / s.n_kv_heads;
  const size_t hd = static_cast<size_t>(s.head_dim);
  const size_t q_stride = static_cast<size_t>(s.n_heads) * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  std::vector<float> p(static_cast<size_t>(s.n_past + s.n_tok));
  for (size_t item = begin; item < end; ++item) {
    const size_t t = item / static_cast<size_t>(s.n_heads);
    const size_t h = item % static_cast<size_t>(s.n_heads);
    const int g = static_cast<int>(h) / group;
    const float* qh = q + t * q_stride + h * hd;
    const int n_keys = s.causal ? s.n_past + static_cast<int>(t) + 1 : s.n_past + s.n_tok;
    float max = -INFINITY;
    for (int j = 0; j < n_keys; ++j) {
      float dot = 0;
      for (int d = 0; d < s.head_dim; ++d) dot += qh[d] * KeyAt(kv, g, j, d);
      p[static_cast<size_t>(j)] = dot * scale;
      max = std::fmax(max, dot * scale);
    }
    float sum = 0;
    for (int j = 0; j < n_keys; ++j) sum += (p[static_cast<size_t>(j)] = std::exp(p[static_cast<size_t>(j)] - max));
    float* oh = out + t * q_stride + h * hd;
    for (size_t d = 0; d < hd; ++d) oh[d] = 0.0f;
    for (int j = 0; j < n_keys; ++j) {
      const float w = p[static_cast<size_t>(j)] / sum;
      for (int d = 0; d < s.head_dim; ++d) oh[d] += w * ValueAt(kv, g, j, d);
    }
  }
}

void CheckShape(const KvLayer& kv, const AttentionShape& s) {
  TL_CHECK(kv.type == DType::kF32 || kv.type == DType::kF16);
  TL_CHECK(kv.capacity % kKvCapacityStep == 0 && s.n_past + s.n_tok <= kv.capacity);
  TL_CHECK(kv.n_kv_heads == s.n_kv_heads && kv.head_dim == s.head_dim);
  TL_CHECK(s.n_kv_heads > 0 && s.n_heads % s.n_kv_heads == 0);
}

}  // namespace

void StoreKv(const KvLayer& kv, int pos, const float* k, const float* v) {
  TL_CHECK(pos >= 0 && pos < kv.capacity && kv.head_dim <= 1024);
  TL_CHECK(kv.type == DType::kF32 || kv.type == DType::kF16);
  if (internal::ForceScalar()) return scalar::StoreKv(kv, pos, k, v);
  internal::StoreKvSimd(kv, pos, k, v);
}

namespace scalar {
void StoreKv(const KvLayer& kv, int pos, const float* k, const float* v) {
  TL_CHECK(pos >= 0 && pos < kv.capacity);
  for (int g = 0; g < kv.n_kv_heads; ++g) {
    const float* kg = k + static_cast<size_t>(g) * static_cast<size_t>(kv.head_dim);
    const float* vg = v + static_cast<size_t>(g) * static_cast<size_t>(kv.head_dim);
    const size_t row = kv.ValueIndex(g, pos);
    for (int d = 0; d < kv.head_dim; ++d) {
      StoreElement(kv, kv.keys, kv.KeyIndex(g, pos, d), kg[d]);
      StoreElement(kv, kv.values, row + static_cast<size_t>(d), vg[d]);
    }
  }
}
}  // namespace scalar

float KeyAt(const KvLayer& kv, int g, int pos, int d) { return LoadElement(kv, kv.keys, kv.KeyIndex(g, pos, d)); }

float ValueAt(const KvLayer& kv, int g, int pos, int d) {
  return LoadElement(kv, kv.values, kv.ValueIndex(g, pos) + static_cast<size_t>(d));
}

void CausalAttention(const float* q, const KvLayer& kv, float* out, const AttentionShape& s, ThreadPool& pool) {
  CheckShape(kv, s);
  if (internal::ForceScalar()) return scalar::CausalAttention(q, kv, out, s);
  if (internal::SimdAttentionApplies(s)) {
    // The block kernel takes any n_tok; the decode kernel only causal rows.
    if (s.n_tok >= 4 || !s.causal) return internal::BlockCausalAttention(q, kv, out, s, pool);
    const AttentionJob job{q, kv, out, s};
    return internal::DecodeCausalAttention({&job, 1}, pool);
  }
  // Head sizes the SIMD paths do not take: the scalar twin, in parallel.
  pool.ParallelFor(static_cast<size_t>(s.n_tok) * static_cast<size_t>(s.n_heads), 1,
                   [&](size_t begin, size_t end, int) { ScalarItems(q, kv, out, s, begin, end); });
}

void CausalAttentionBatch(std::span<const AttentionJob> jobs, ThreadPool& pool) {
  thread_local std::vector<AttentionJob> decode;
  decode.clear();
  for (const AttentionJob& job : jobs) {
    CheckShape(job.kv, job.shape);
    const bool batched = !internal::ForceScalar() && job.shape.n_tok < 4 && job.shape.causal &&
                         internal::SimdAttentionApplies(job.shape);
    if (batched) {
      decode.push_back(job);
    } else {
      CausalAttention(job.q, job.kv, job.out, job.shape, pool);
    }
  }
  if (!decode.empty()) internal::DecodeCausalAttention(decode, pool);
}

namespace scalar {
void CausalAttention(const float* q, const KvLayer& kv, float* out, const AttentionShape& s) {
  CheckShape(kv, s);
  ScalarItems(q, kv, out, s, 0, static_cast<size_t>(s.n_tok) * static_cast<size_t>(s.n_heads));
}
}  // namespace scalar

}  // namespace tokenlora::kernels
