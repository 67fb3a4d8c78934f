// AddMatMulTransposed (dx += dy·W) versus its scalar twin for every weight
// dtype, every SIMD target, 1 and 2 threads, misaligned and odd shapes.
#include <gtest/gtest.h>

#include <cmath>
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

struct Shape {
  DType t;
  int64_t n_in;
};

// The SIMD path fuses multiply and add; the scalar twin rounds twice. Both
// add the same terms in the same order, so they differ by ~u per addition:
// |got − want| ≤ 1e-5·(|dx0| + Σ_o |dy·W|), far below one missing term
// (≈ Σ|dy·W| / n_out ≥ 2e-2 of it for n_out ≤ 40).
TEST(AddMatMulTransposed, MatchesScalarTwinForEveryDtype) {
  // n_in 45 / 300: vector tails and (300 > 256) two column chunks; blocks:
  // 3 or 9 (288) blocks of 32, 2 super-blocks of 256 (two chunks of one
  // block). n_tok 70 crosses a token block (64).
  const Shape shapes[] = {{DType::kF32, 45},  {DType::kF32, 300},  {DType::kF16, 45},   {DType::kBF16, 45},
                          {DType::kQ8_0, 96}, {DType::kQ8_0, 288}, {DType::kQ4_0, 96},  {DType::kQ4_1, 288},
                          {DType::kQ5_0, 96}, {DType::kQ5_1, 96},  {DType::kQ4_K, 512}, {DType::kQ5_K, 512},
                          {DType::kQ6_K, 512}};
  ThreadPool pool1(1), pool2(2);
  std::mt19937 rng(7);
  for (const Shape& s : shapes) {
    for (int64_t n_out : {37, 16, 1}) {
      const Weights w = MakeWeights(rng, s.t, n_out, s.n_in);
      for (int64_t n_tok : {0, 1, 3, 17, 70}) {
        SCOPED_TRACE(std::string(Name(s.t)) + " n_out=" + std::to_string(n_out) + " n_in=" + std::to_string(s.n_in) +
                     " n_tok=" + std::to_string(n_tok));
        const auto dy = testing::RandomFloats(rng, static_cast<size_t>(n_tok * n_out), -1.0f, 1.0f);
        const auto dx0 = testing::RandomFloats(rng, static_cast<size_t>(n_tok * s.n_in), -1.0f, 1.0f);
        std::vector<float> want = dx0;
        scalar::AddMatMulTransposed(w.view, dy.data(), n_tok, want.data());
        for (ThreadPool* pool : {&pool1, &pool2}) {
          testing::ForEachSimdTarget([&] {
            // dx misaligned by one float, NaN sentinels on both sides.
            std::vector<float> dx(want.size() + 2, std::numeric_limits<float>::quiet_NaN());
            std::copy(dx0.begin(), dx0.end(), dx.begin() + 1);
            AddMatMulTransposed(w.view, dy.data(), n_tok, dx.data() + 1, *pool);
            ASSERT_TRUE(std::isnan(dx.front()) && std::isnan(dx.back())) << "wrote outside dx";
            for (int64_t t = 0; t < n_tok; ++t) {
              for (int64_t i = 0; i < s.n_in; ++i) {
                const size_t k = static_cast<size_t>(t * s.n_in + i);
                double abs_sum = std::fabs(dx0[k]);
                for (int64_t o = 0; o < n_out; ++o) {
                  abs_sum += std::fabs(static_cast<double>(dy[static_cast<size_t>(t * n_out + o)]) *
                                       w.dequantized[static_cast<size_t>(o * s.n_in + i)]);
                }
                ASSERT_NEAR(dx[k + 1], want[k], 1e-5 * abs_sum) << "token " << t << " input " << i;
              }
            }
          });
        }
      }
    }
  }
}

// Every f32 row length 0 .. 2·kMaxLanes + 7 (empty, partial, one and two
// vectors, every tail) with misaligned dy and dx.
TEST(AddMatMulTransposed, F32AllLengthsMisaligned) {
  std::mt19937 rng(5);
  ThreadPool pool(2);
  for (int64_t n_in = 0; n_in <= 2 * testing::kMaxLanes + 7; ++n_in) {
    const int64_t n_out = 7, n_tok = 6;
    Weights w;
    if (n_in > 0) {
      w = MakeWeights(rng, DType::kF32, n_out, n_in);
    } else {
      w.bytes.resize(1);  // a valid pointer to nothing
      w.view = {"empty.weight", DType::kF32, {n_out, 0}, w.bytes.data()};
    }
    const auto dy = testing::RandomFloats(rng, static_cast<size_t>(n_tok * n_out + 1), -1.0f, 1.0f);
    std::vector<float> want(static_cast<size_t>(n_tok * n_in), 0.5f), dx(want.size() + 1, 0.5f);
    scalar::AddMatMulTransposed(w.view, dy.data() + 1, n_tok, want.data());
    testing::ForEachSimdTarget([&] {
      std::fill(dx.begin(), dx.end(), 0.5f);
      AddMatMulTransposed(w.view, dy.data() + 1, n_tok, dx.data() + 1, pool);
      EXPECT_EQ(dx[0], 0.5f) << "wrote before dx";
      for (size_t k = 0; k < want.size(); ++k) ASSERT_NEAR(dx[k + 1], want[k], 1e-5f * (1 + n_out)) << "n_in " << n_in;
    });
  }
}

// Independent of the thread count: bit-identical with 1 and 2 threads.
TEST(AddMatMulTransposed, ThreadCountDoesNotChangeBits) {
  std::mt19937 rng(3);
  const Weights w = MakeWeights(rng, DType::kQ4_1, 100, 576);
  const int64_t n_tok = 130;
  const auto dy = testing::RandomFloats(rng, static_cast<size_t>(n_tok * 100), -1.0f, 1.0f);
  std::vector<float> a(static_cast<size_t>(n_tok * 576), 0.0f), b = a;
  ThreadPool pool1(1), pool2(2);
  AddMatMulTransposed(w.view, dy.data(), n_tok, a.data(), pool1);
  AddMatMulTransposed(w.view, dy.data(), n_tok, b.data(), pool2);
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace tokenlora::kernels
