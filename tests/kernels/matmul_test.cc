// MatMul versus scalar::MatMul for every weight dtype, every SIMD target,
// 1 and 2 threads, token counts that hit every micro-kernel remainder, odd
// n_out (partial tiles and partial 4-row groups) and n_in with vector tails.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/kernels.h"
#include "kernels/quantize.h"

namespace tokenlora::kernels {
namespace {

using testing::MakeWeights;
using testing::Weights;

// |got − want| ≤ 1e-5·Σ_i |w_oi·x_ti|: the two differ only in summation order
// (FMA lanes and a tree versus one running sum). As in ops_test.cc, the
// rounding error of either is ~u·√n_in·Σ|w·x| (≤ 2e-6 for n_in ≤ 1024),
// while one wrong or missing product would be ≈ Σ|w·x| / n_in ≥ 1e-3·Σ|w·x|.
void ExpectClose(const Weights& w, const std::vector<float>& x, int64_t n_tok, const float* got,
                 const std::vector<float>& want) {
  const int64_t n_out = w.view.shape[0], n_in = w.view.shape[1];
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int64_t o = 0; o < n_out; ++o) {
      double abs_sum = 0.0;
      for (int64_t i = 0; i < n_in; ++i) {
        abs_sum += std::fabs(static_cast<double>(w.dequantized[static_cast<size_t>(o * n_in + i)]) *
                             x[static_cast<size_t>(t * n_in + i)]);
      }
      const size_t k = static_cast<size_t>(t * n_out + o);
      ASSERT_NEAR(got[k], want[k], 1e-5 * abs_sum + 1e-30) << "token " << t << " output " << o;
    }
  }
}

struct Shape {
  DType t;
  int64_t n_in;
};

TEST(MatMul, MatchesScalarTwinForEveryDtype) {
  // n_in: 45 leaves a tail for every vector width; block types use 3 blocks
  // (96) or 2 super-blocks (512). n_out 37 = 2 full tiles + a 5-row tile
  // (one 4-row group + 1 row). n_tok 1..4 take the decode path, 5..17 the
  // scratch path with every token remainder of the AVX-512 micro-kernel
  // (6 tokens: 5, 6·1 + 1..5, 6·2 + 5) and of AVX2's (2 tokens); 256 and 279
  // the transposed-tile path (16 tokens at a time on AVX-512, 6 on AVX2,
  // then 4, 2, 1: 279 = 17·16 + 4 + 2 + 1), with n_in 45's odd row length.
  const Shape shapes[] = {{DType::kF32, 45},   {DType::kF16, 45},  {DType::kBF16, 45},
                          {DType::kQ8_0, 96},  {DType::kQ4_0, 96}, {DType::kQ4_1, 96},
                          {DType::kQ5_0, 96},  {DType::kQ5_1, 96}, {DType::kQ4_K, 512},
                          {DType::kQ5_K, 512}, {DType::kQ6_K, 512}};
  ThreadPool pool1(1), pool2(2);
  std::mt19937 rng(11);
  for (const Shape& s : shapes) {
    for (int64_t n_out : {37, 16, 1}) {
      const Weights w = MakeWeights(rng, s.t, n_out, s.n_in);
      for (int64_t n_tok : {1, 3, 4, 5, 7, 8, 9, 10, 11, 17, 256, 279}) {
        SCOPED_TRACE(std::string(Name(s.t)) + " n_out=" + std::to_string(n_out) +
                     " n_in=" + std::to_string(s.n_in) + " n_tok=" + std::to_string(n_tok));
        const auto x = testing::RandomFloats(rng, static_cast<size_t>(n_tok * s.n_in), -1.0f, 1.0f);
        std::vector<float> want(static_cast<size_t>(n_tok * n_out));
        scalar::MatMul(w.view, x.data(), n_tok, want.data());
        for (ThreadPool* pool : {&pool1, &pool2}) {
          testing::ForEachSimdTarget([&] {
            // y misaligned by one float, guarded by NaN sentinels on both sides.
            std::vector<float> y(want.size() + 2, std::numeric_limits<float>::quiet_NaN());
            MatMul(w.view, x.data(), n_tok, y.data() + 1, *pool);
            ASSERT_TRUE(std::isnan(y.front()) && std::isnan(y.back())) << "wrote outside y";
            ExpectClose(w, x, n_tok, y.data() + 1, want);
          });
        }
      }
    }
  }
}

// Prefill-sized: several token blocks of the tile kernel (its activation block
// is 128 KiB, i.e. 64 tokens at n_in = 512) and many tiles across 2 threads.
TEST(MatMul, ManyTokensCrossTokenBlocks) {
  ThreadPool pool(2);
  std::mt19937 rng(12);
  for (DType t : {DType::kQ4_0, DType::kF32}) {
    const int64_t n_out = 70, n_in = 512, n_tok = 133;
    const Weights w = MakeWeights(rng, t, n_out, n_in);
    const auto x = testing::RandomFloats(rng, static_cast<size_t>(n_tok * n_in), -1.0f, 1.0f);
    std::vector<float> want(static_cast<size_t>(n_tok * n_out)), got(want.size());
    scalar::MatMul(w.view, x.data(), n_tok, want.data());
    MatMul(w.view, x.data(), n_tok, got.data(), pool);
    ExpectClose(w, x, n_tok, got.data(), want);
  }
}

TEST(MatMul, SharedRegionEqualsSeparateCallsBitForBit) {
  // q/k/v-like shapes (row counts not multiples of the 16-row tile, so
  // chunks cross from one matrix into the next mid-tile-count), mixed dtypes.
  ThreadPool pool1(1), pool2(2);
  std::mt19937 rng(31);
  const int64_t n_in = 64;
  const Weights a = MakeWeights(rng, DType::kF16, 40, n_in);
  const Weights b = MakeWeights(rng, DType::kF32, 17, n_in);
  const Weights c = MakeWeights(rng, DType::kQ8_0, 33, n_in);
  const TensorView* ws[] = {&a.view, &b.view, &c.view};
  for (int64_t n_tok : {1, 2, 3, 5, 64}) {
    const auto x = testing::RandomFloats(rng, static_cast<size_t>(n_tok * n_in), -1.0f, 1.0f);
    for (ThreadPool* pool : {&pool1, &pool2}) {
      std::vector<std::vector<float>> want(3), got(3);
      float* ys[3];
      for (int i = 0; i < 3; ++i) {
        const size_t n_y = static_cast<size_t>(n_tok * ws[i]->Rows());
        want[static_cast<size_t>(i)].assign(n_y, 0.0f);
        got[static_cast<size_t>(i)].assign(n_y, -7.0f);
        MatMul(*ws[i], x.data(), n_tok, want[static_cast<size_t>(i)].data(), *pool);
        ys[i] = got[static_cast<size_t>(i)].data();
      }
      MatMulShared(ws, ys, 3, x.data(), n_tok, *pool);
      for (size_t i = 0; i < 3; ++i) {
        ASSERT_EQ(std::memcmp(got[i].data(), want[i].data(), got[i].size() * sizeof(float)), 0)
            << "matrix " << i << " n_tok " << n_tok << " threads " << pool->size();
      }
    }
  }
}

// The LoRA mixer's products: every row has the same bits at any token count
// (1 token, several groups of 4, a ragged tail, hundreds of tokens), on every
// target and thread count, and matches the scalar twin as MatMul does.
TEST(MatMulRowInvariant, EachRowHasTheSameBitsAtAnyTokenCount) {
  ThreadPool pool1(1), pool2(2);
  std::mt19937 rng(41);
  for (DType t : {DType::kF32, DType::kF16, DType::kQ8_0}) {
    const int64_t n_out = 37, n_in = 256, max_tok = 300;
    const Weights w = MakeWeights(rng, t, n_out, n_in);
    const auto x = testing::RandomFloats(rng, static_cast<size_t>(max_tok * n_in), -1.0f, 1.0f);
    testing::ForEachSimdTarget([&] {
      std::vector<float> one(static_cast<size_t>(max_tok * n_out));
      for (int64_t tok = 0; tok < max_tok; ++tok) {
        MatMulRowInvariant(w.view, x.data() + tok * n_in, 1, one.data() + tok * n_out, pool1);
      }
      for (int64_t n_tok : {2, 4, 5, 7, 64, 255, 256, 300}) {
        for (ThreadPool* pool : {&pool1, &pool2}) {
          std::vector<float> got(static_cast<size_t>(n_tok * n_out), -7.0f);
          MatMulRowInvariant(w.view, x.data(), n_tok, got.data(), *pool);
          ASSERT_EQ(std::memcmp(got.data(), one.data(), got.size() * sizeof(float)), 0)
              << Name(t) << " n_tok " << n_tok << " threads " << pool->size();
        }
      }
      std::vector<float> want(one.size());
      scalar::MatMul(w.view, x.data(), max_tok, want.data());
      ExpectClose(w, x, max_tok, one.data(), want);
    });
  }
}

TEST(MatMul, EmptyShapesWriteNothing) {
  ThreadPool pool(2);
  std::mt19937 rng(13);
  const Weights w = MakeWeights(rng, DType::kQ8_0, 5, 32);
  float y = 42.0f;
  MatMul(w.view, nullptr, 0, &y, pool);
  EXPECT_EQ(y, 42.0f);
}

// Body of the child process below: 0 when every kernel ran its scalar twin.
int ForcedScalarChild() {
  setenv("TOKENLORA_SIMD", "scalar", 1);
  ThreadPool pool(2);
  std::mt19937 rng(14);
  const Weights w = MakeWeights(rng, DType::kQ4_K, 37, 256);
  const auto x = testing::RandomFloats(rng, 3 * 256, -1.0f, 1.0f);
  std::vector<float> want(3 * 37), got(3 * 37);
  scalar::MatMul(w.view, x.data(), 3, want.data());
  MatMul(w.view, x.data(), 3, got.data(), pool);
  const bool same_matmul = std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0;
  const bool same_dot =
      Dot(x.data(), x.data() + 1, 255) == scalar::Dot(x.data(), x.data() + 1, 255);
  const bool name_ok = std::string(SimdTargetName()) == "SCALAR_TWINS";
  return same_matmul && same_dot && name_ok ? 0 : 1;
}

// TOKENLORA_SIMD=scalar is read once per process, so it is checked in a
// re-executed child (the "threadsafe" death-test style starts a fresh
// process): every kernel then runs its scalar twin, and MatMul equals
// scalar::MatMul exactly (same dequantization, same dot order).
TEST(MatMulDeathTest, EnvVarForcesScalarTwins) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(std::exit(ForcedScalarChild()), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace tokenlora::kernels
