// CausalAttention (blocked prompt path, per-token decode path, per-key path
// for other head sizes) and its scalar twin against attention written out in
// double precision, on every SIMD target, 1 and 2 threads.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/attention.h"

namespace tokenlora::kernels {
namespace {

std::vector<double> Reference(const std::vector<float>& q, const std::vector<float>& k,
                              const std::vector<float>& v, const AttentionShape& s) {
  const int group = s.n_heads / s.n_kv_heads;
  const size_t hd = static_cast<size_t>(s.head_dim);
  const size_t q_stride = static_cast<size_t>(s.n_heads) * hd, kv_stride = static_cast<size_t>(s.n_kv_heads) * hd;
  std::vector<double> out(static_cast<size_t>(s.n_tok) * q_stride);
  for (int t = 0; t < s.n_tok; ++t) {
    for (int h = 0; h < s.n_heads; ++h) {
      const size_t g = static_cast<size_t>(h / group);
      const int n = s.n_past + t + 1;
      std::vector<double> p(static_cast<size_t>(n));
      double mx = -1e300;
      for (int j = 0; j < n; ++j) {
        double dot = 0;
        for (size_t d = 0; d < hd; ++d) {
          dot += static_cast<double>(q[static_cast<size_t>(t) * q_stride + static_cast<size_t>(h) * hd + d]) *
                 k[static_cast<size_t>(j) * kv_stride + g * hd + d];
        }
        p[static_cast<size_t>(j)] = dot / std::sqrt(static_cast<double>(s.head_dim));
        mx = std::max(mx, p[static_cast<size_t>(j)]);
      }
      double sum = 0;
      for (double& x : p) sum += (x = std::exp(x - mx));
      for (size_t d = 0; d < hd; ++d) {
        double o = 0;
        for (int j = 0; j < n; ++j) o += p[static_cast<size_t>(j)] / sum * v[static_cast<size_t>(j) * kv_stride + g * hd + d];
        out[static_cast<size_t>(t) * q_stride + static_cast<size_t>(h) * hd + d] = o;
      }
    }
  }
  return out;
}

struct Case {
  int n_heads, n_kv_heads, head_dim;
};

TEST(CausalAttention, MatchesDoubleReferenceOnEveryPath) {
  std::mt19937 rng(17);
  ThreadPool one(1), two(2);
  for (const Case c : {Case{9, 3, 64}, Case{4, 4, 16}, Case{8, 1, 128}, Case{2, 1, 80}, Case{3, 3, 20}}) {
    for (int n_past : {0, 5, 37}) {
      for (int n_tok : {1, 2, 3, 4, 5, 9, 33}) {
        const AttentionShape s{n_tok, n_past, c.n_heads, c.n_kv_heads, c.head_dim};
        SCOPED_TRACE("heads " + std::to_string(c.n_heads) + "/" + std::to_string(c.n_kv_heads) + " dim " +
                     std::to_string(c.head_dim) + " past " + std::to_string(n_past) + " new " + std::to_string(n_tok));
        const size_t q_n = static_cast<size_t>(n_tok * c.n_heads * c.head_dim);
        const size_t kv_n = static_cast<size_t>((n_past + n_tok) * c.n_kv_heads * c.head_dim);
        const auto q = testing::RandomFloats(rng, q_n, -2.0f, 2.0f);
        const auto k = testing::RandomFloats(rng, kv_n, -2.0f, 2.0f);
        const auto v = testing::RandomFloats(rng, kv_n, -1.0f, 1.0f);
        const auto want = Reference(q, k, v, s);
        auto check = [&](const std::vector<float>& got, const char* what) {
          for (size_t i = 0; i < q_n; ++i) ASSERT_NEAR(got[i], want[i], 2e-5) << what << " " << i;
        };
        std::vector<float> out(q_n, -9.0f);
        scalar::CausalAttention(q.data(), k.data(), v.data(), out.data(), s);
        check(out, "scalar twin");
        testing::ForEachSimdTarget([&] {
          for (ThreadPool* pool : {&one, &two}) {
            std::vector<float> got(q_n, -9.0f);
            CausalAttention(q.data(), k.data(), v.data(), got.data(), s, *pool);
            check(got, pool->size() == 1 ? "1 thread" : "2 threads");
          }
        });
      }
    }
  }
}

}  // namespace
}  // namespace tokenlora::kernels
