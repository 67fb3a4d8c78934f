// CausalAttention (blocked prompt path, per-token decode path, per-key path
// for other head sizes) and its scalar twin against attention written out in
// double precision, on every SIMD target, 1 and 2 threads, over f32 and f16
// caches.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/attention.h"

namespace tokenlora::kernels {
namespace {

// A layer cache of `type` holding k, v [n_pos, n_kv_heads, head_dim].
struct TestCache {
  std::vector<uint8_t> keys, values;
  KvLayer layer;
  TestCache(DType type, const std::vector<float>& k, const std::vector<float>& v, int n_pos, int n_kv_heads,
            int head_dim) {
    layer.type = type;
    layer.capacity = (n_pos + kKvCapacityStep - 1) / kKvCapacityStep * kKvCapacityStep;
    layer.n_kv_heads = n_kv_heads;
    layer.head_dim = head_dim;
    const size_t bytes = static_cast<size_t>(layer.capacity) * static_cast<size_t>(n_kv_heads * head_dim) *
                         layer.ElementBytes();
    keys.assign(bytes, 0xFF);  // NaN patterns: positions not written must never be read as keys
    values.assign(bytes, 0xFF);
    layer.keys = keys.data();
    layer.values = values.data();
    const size_t row = static_cast<size_t>(n_kv_heads * head_dim);
    for (int pos = 0; pos < n_pos; ++pos) {
      StoreKv(layer, pos, &k[static_cast<size_t>(pos) * row], &v[static_cast<size_t>(pos) * row]);
    }
  }
};

// Attention in double precision over the values the cache holds (f16 caches
// hold rounded ones).
std::vector<double> Reference(const std::vector<float>& q, const KvLayer& kv, const AttentionShape& s) {
  const int group = s.n_heads / s.n_kv_heads;
  const size_t hd = static_cast<size_t>(s.head_dim);
  const size_t q_stride = static_cast<size_t>(s.n_heads) * hd;
  std::vector<double> out(static_cast<size_t>(s.n_tok) * q_stride);
  for (int t = 0; t < s.n_tok; ++t) {
    for (int h = 0; h < s.n_heads; ++h) {
      const int g = h / group;
      const int n = s.causal ? s.n_past + t + 1 : s.n_past + s.n_tok;
      std::vector<double> p(static_cast<size_t>(n));
      double mx = -1e300;
      for (int j = 0; j < n; ++j) {
        double dot = 0;
        for (size_t d = 0; d < hd; ++d) {
          dot += static_cast<double>(q[static_cast<size_t>(t) * q_stride + static_cast<size_t>(h) * hd + d]) *
                 KeyAt(kv, g, j, static_cast<int>(d));
        }
        p[static_cast<size_t>(j)] = dot / std::sqrt(static_cast<double>(s.head_dim));
        mx = std::max(mx, p[static_cast<size_t>(j)]);
      }
      double sum = 0;
      for (double& x : p) sum += (x = std::exp(x - mx));
      for (size_t d = 0; d < hd; ++d) {
        double o = 0;
        for (int j = 0; j < n; ++j) o += p[static_cast<size_t>(j)] / sum * ValueAt(kv, g, j, static_cast<int>(d));
        out[static_cast<size_t>(t) * q_stride + static_cast<size_t>(h) * hd + d] = o;
      }
    }
  }
  return out;
}

struct Case {
  int n_heads, n_kv_heads, head_dim;
};

void CheckShapes(const std::vector<int>& pasts, const std::vector<int>& toks, const std::vector<Case>& cases,
                 DType type, bool causal = true) {
  std::mt19937 rng(17);
  ThreadPool one(1), two(2);
  for (const Case c : cases) {
    for (int n_past : pasts) {
      for (int n_tok : toks) {
        const AttentionShape s{n_tok, n_past, c.n_heads, c.n_kv_heads, c.head_dim, causal};
        SCOPED_TRACE(std::string(causal ? "causal " : "non-causal ") + std::string(Name(type)) + " heads " + std::to_string(c.n_heads) + "/" +
                     std::to_string(c.n_kv_heads) + " dim " + std::to_string(c.head_dim) + " past " +
                     std::to_string(n_past) + " new " + std::to_string(n_tok));
        const size_t q_n = static_cast<size_t>(n_tok * c.n_heads * c.head_dim);
        const size_t kv_n = static_cast<size_t>((n_past + n_tok) * c.n_kv_heads * c.head_dim);
        const auto q = testing::RandomFloats(rng, q_n, -2.0f, 2.0f);
        const auto k = testing::RandomFloats(rng, kv_n, -2.0f, 2.0f);
        const auto v = testing::RandomFloats(rng, kv_n, -1.0f, 1.0f);
        const TestCache cache(type, k, v, n_past + n_tok, c.n_kv_heads, c.head_dim);
        const auto want = Reference(q, cache.layer, s);
        auto check = [&](const std::vector<float>& got, const char* what) {
          for (size_t i = 0; i < q_n; ++i) ASSERT_NEAR(got[i], want[i], 2e-5) << what << " " << i;
        };
        std::vector<float> out(q_n, -9.0f);
        scalar::CausalAttention(q.data(), cache.layer, out.data(), s);
        check(out, "scalar twin");
        testing::ForEachSimdTarget([&] {
          for (ThreadPool* pool : {&one, &two}) {
            std::vector<float> got(q_n, -9.0f);
            CausalAttention(q.data(), cache.layer, got.data(), s, *pool);
            check(got, pool->size() == 1 ? "1 thread" : "2 threads");
          }
        });
      }
    }
  }
}

const std::vector<Case> kCases = {Case{9, 3, 64}, Case{4, 4, 16}, Case{8, 1, 128}, Case{2, 1, 80}, Case{3, 3, 20},
                                  Case{10, 2, 32}};

TEST(CausalAttention, MatchesDoubleReferenceOnEveryPathF32) {
  CheckShapes({0, 5, 37}, {1, 2, 3, 4, 5, 9, 33}, kCases, DType::kF32);
}

TEST(CausalAttention, MatchesDoubleReferenceOnEveryPathF16) {
  CheckShapes({0, 5, 37}, {1, 2, 3, 4, 5, 9, 33}, kCases, DType::kF16);
}

// Encoder (BERT) attention: every token sees every position, on the block
// kernel for any token count (the decode kernel takes causal rows only).
TEST(CausalAttention, NonCausalMatchesDoubleReference) {
  for (DType type : {DType::kF32, DType::kF16}) {
    CheckShapes({0, 5}, {1, 2, 3, 4, 5, 9, 33, 70}, {Case{12, 12, 32}, Case{9, 3, 64}, Case{3, 3, 20}}, type,
                /*causal=*/false);
  }
}

// Contexts over one decode chunk (256 keys): the split-K partials and their
// combination, with a token whose keys end inside a chunk boundary.
TEST(CausalAttention, LongContextsSplitIntoChunks) {
  for (DType type : {DType::kF32, DType::kF16}) {
    CheckShapes({254, 255, 300, 530}, {1, 2, 3, 6}, {Case{9, 3, 64}, Case{4, 1, 32}}, type);
  }
}

// The SIMD StoreKv writes exactly the scalar twin's bytes on every target,
// f16 rounding included (ties, subnormals, overflow to inf, NaN).
// Many sequences at once (the batched engine): each job, decoding or not, of
// any context length and cache type, gives bit for bit what CausalAttention
// gives it alone, on every SIMD target and thread count.
TEST(CausalAttentionBatch, EachJobEqualsItsCallAloneBitForBit) {
  std::mt19937 rng(23);
  ThreadPool one(1), two(2);
  struct JobSpec {
    DType type;
    int n_tok, n_past;
    Case c;
  };
  const std::vector<JobSpec> specs = {
      {DType::kF16, 1, 0, {9, 3, 64}},   {DType::kF32, 1, 300, {9, 3, 64}}, {DType::kF16, 2, 17, {9, 3, 64}},
      {DType::kF16, 1, 600, {9, 3, 64}}, {DType::kF32, 3, 31, {4, 4, 16}},  {DType::kF16, 7, 40, {9, 3, 64}},
      {DType::kF32, 1, 5, {2, 1, 80}},   {DType::kF16, 1, 255, {8, 1, 128}}};
  std::vector<std::unique_ptr<TestCache>> caches;
  std::vector<std::vector<float>> qs;
  std::vector<AttentionJob> jobs;
  for (const JobSpec& j : specs) {
    const AttentionShape s{j.n_tok, j.n_past, j.c.n_heads, j.c.n_kv_heads, j.c.head_dim};
    const size_t kv_n = static_cast<size_t>((j.n_past + j.n_tok) * j.c.n_kv_heads * j.c.head_dim);
    qs.push_back(testing::RandomFloats(rng, static_cast<size_t>(j.n_tok * j.c.n_heads * j.c.head_dim), -2.0f, 2.0f));
    caches.push_back(std::make_unique<TestCache>(j.type, testing::RandomFloats(rng, kv_n, -2.0f, 2.0f),
                                                 testing::RandomFloats(rng, kv_n, -1.0f, 1.0f), j.n_past + j.n_tok,
                                                 j.c.n_kv_heads, j.c.head_dim));
    jobs.push_back({qs.back().data(), caches.back()->layer, nullptr, s});
  }
  testing::ForEachSimdTarget([&] {
    for (ThreadPool* pool : {&one, &two}) {
      std::vector<std::vector<float>> alone(jobs.size()), batched(jobs.size());
      std::vector<AttentionJob> run = jobs;
      for (size_t i = 0; i < jobs.size(); ++i) {
        alone[i].assign(qs[i].size(), -9.0f);
        batched[i].assign(qs[i].size(), -7.0f);
        CausalAttention(jobs[i].q, jobs[i].kv, alone[i].data(), jobs[i].shape, *pool);
        run[i].out = batched[i].data();
      }
      CausalAttentionBatch(run, *pool);
      for (size_t i = 0; i < jobs.size(); ++i) EXPECT_EQ(batched[i], alone[i]) << "job " << i;
    }
  });
}

TEST(KvLayer, SimdStoreEqualsScalarTwinBitForBit) {
  std::mt19937 rng(5);
  for (const int dim : {16, 20, 64, 80, 128}) {
    const int heads = 3, n_pos = 40;
    std::vector<float> k = testing::RandomFloats(rng, static_cast<size_t>(n_pos * heads * dim), -70000.0f, 70000.0f);
    std::vector<float> v = testing::RandomFloats(rng, k.size(), -2.0f, 2.0f);
    const float specials[] = {0.0f, -0.0f, 1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, 0x1p-20f, -0x1p-25f, 65520.0f,
                              INFINITY, -INFINITY, NAN, 1e-8f, 6.1e-5f};
    for (size_t i = 0; i < std::size(specials); ++i) k[i * 7] = v[i * 5] = specials[i];
    for (DType type : {DType::kF32, DType::kF16}) {
      const TestCache shape(type, k, v, n_pos, heads, dim);
      std::vector<uint8_t> want_keys(shape.keys.size(), 0xFF), want_values(shape.values.size(), 0xFF);
      KvLayer layer = shape.layer;
      layer.keys = want_keys.data();
      layer.values = want_values.data();
      for (int pos = 0; pos < n_pos; ++pos) {
        const size_t at = static_cast<size_t>(pos * heads * dim);
        scalar::StoreKv(layer, pos, &k[at], &v[at]);
      }
      testing::ForEachSimdTarget([&] {
        const TestCache got(type, k, v, n_pos, heads, dim);
        EXPECT_EQ(got.keys, want_keys) << Name(type) << " dim " << dim;
        EXPECT_EQ(got.values, want_values) << Name(type) << " dim " << dim;
      });
    }
  }
}

TEST(KvLayer, StoresAndReadsBackEveryElement) {
  std::mt19937 rng(3);
  const int n_pos = 70, heads = 3, dim = 64;
  const auto k = testing::RandomFloats(rng, static_cast<size_t>(n_pos * heads * dim), -3.0f, 3.0f);
  const auto v = testing::RandomFloats(rng, static_cast<size_t>(n_pos * heads * dim), -3.0f, 3.0f);
  for (DType type : {DType::kF32, DType::kF16}) {
    const TestCache cache(type, k, v, n_pos, heads, dim);
    EXPECT_EQ(cache.layer.capacity, 96);
    for (int pos = 0; pos < n_pos; ++pos) {
      for (int g = 0; g < heads; ++g) {
        for (int d = 0; d < dim; ++d) {
          const size_t i = (static_cast<size_t>(pos) * heads + static_cast<size_t>(g)) * dim + static_cast<size_t>(d);
          const float want_k = type == DType::kF16 ? F16ToF32(F32ToF16(k[i])) : k[i];
          const float want_v = type == DType::kF16 ? F16ToF32(F32ToF16(v[i])) : v[i];
          ASSERT_EQ(KeyAt(cache.layer, g, pos, d), want_k) << pos << " " << g << " " << d;
          ASSERT_EQ(ValueAt(cache.layer, g, pos, d), want_v) << pos << " " << g << " " << d;
        }
      }
    }
  }
}

}  // namespace
}  // namespace tokenlora::kernels
