// Dot, RmsNorm, Softmax, SiluMul, LayerNorm, GeluErf, AddInPlace, Axpy, ArgMaxFinite: SIMD (every compiled
// target) versus the scalar twins over lengths 0 .. 2N+7 and pointers
// misaligned by 0..3 floats, plus a few long rows and special inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/kernels.h"

namespace tokenlora::kernels {
namespace {

using testing::RandomFloats;

constexpr float kEps = std::numeric_limits<float>::epsilon() / 2;  // unit roundoff 2^-24

// Lengths every kernel is checked at: every tail length for every target,
// then longer rows (a model's hidden sizes).
std::vector<int64_t> Lengths() {
  std::vector<int64_t> n;
  for (int64_t i = 0; i <= 2 * testing::kMaxLanes + 7; ++i) n.push_back(i);
  for (int64_t i : {64, 100, 576, 1000, 1536, 4096}) n.push_back(i);
  return n;
}

// A buffer holding `n` values at offset `misalign` floats past an aligned start.
struct Shifted {
  std::vector<float> storage;
  float* p;
  Shifted(const std::vector<float>& v, int misalign) : storage(v.size() + 4) {
    p = storage.data() + misalign;
    std::copy(v.begin(), v.end(), p);
  }
};

TEST(Ops, StreamSum) {
  std::mt19937 rng(12);
  for (int64_t n : Lengths()) {
    const auto a = RandomFloats(rng, static_cast<size_t>(n), -1.0f, 1.0f);
    double abs_sum = 0.0;
    for (int64_t i = 0; i < n; ++i) abs_sum += std::fabs(static_cast<double>(a[i]));
    const float want = scalar::StreamSum(a.data(), n, 0);
    for (int misalign = 0; misalign <= 3; ++misalign) {
      Shifted sa(a, misalign);
      testing::ForEachSimdTarget([&] {
        // Summation order only (the bound of Dot); prefetching ahead, also
        // past the end of the buffer, changes nothing.
        for (const size_t prefetch : {size_t{0}, size_t{64}, size_t{4096}}) {
          EXPECT_NEAR(StreamSum(sa.p, n, prefetch), want, 1e-5 * abs_sum + 1e-30)
              << "n=" << n << " misalign=" << misalign << " prefetch=" << prefetch;
        }
      });
    }
  }
}

TEST(Ops, Dot) {
  std::mt19937 rng(2);
  for (int64_t n : Lengths()) {
    const auto a = RandomFloats(rng, static_cast<size_t>(n), -1.0f, 1.0f);
    const auto b = RandomFloats(rng, static_cast<size_t>(n), -1.0f, 1.0f);
    double abs_sum = 0.0;
    for (int64_t i = 0; i < n; ++i) abs_sum += std::fabs(static_cast<double>(a[i]) * b[i]);
    const float want = scalar::Dot(a.data(), b.data(), n);
    for (int misalign = 0; misalign <= 3; ++misalign) {
      Shifted sa(a, misalign), sb(b, 3 - misalign);
      testing::ForEachSimdTarget([&] {
        // Different summation order only. With random signs the rounding error
        // of either order is about u·√n·Σ|a·b| (≤ 4e-6·Σ|a·b| at n = 4096);
        // 1e-5·Σ|a·b| leaves margin yet a wrong or missing term (≈ Σ|a·b|/n
        // ≥ 2.4e-4·Σ|a·b|) fails.
        EXPECT_NEAR(Dot(sa.p, sb.p, n), want, 1e-5 * abs_sum + 1e-30)
            << "n=" << n << " misalign=" << misalign;
      });
    }
  }
}

TEST(Ops, RmsNorm) {
  std::mt19937 rng(3);
  for (int64_t n : Lengths()) {
    const auto x = RandomFloats(rng, static_cast<size_t>(n), -3.0f, 3.0f);
    const auto w = RandomFloats(rng, static_cast<size_t>(n), 0.5f, 1.5f);
    std::vector<float> want(static_cast<size_t>(n));
    scalar::RmsNorm(x.data(), w.data(), want.data(), n, 1e-5f);
    for (int misalign = 0; misalign <= 3; ++misalign) {
      Shifted sx(x, misalign), sw(w, (misalign + 1) % 4),
          sy(std::vector<float>(static_cast<size_t>(n)), (misalign + 2) % 4);
      testing::ForEachSimdTarget([&] {
        RmsNorm(sx.p, sw.p, sy.p, n, 1e-5f);
        for (int64_t i = 0; i < n; ++i) {
          // The mean of squares differs by summation order (relative ≤ 1e-6 for
          // positive terms), then 1/sqrt and two products add 3 roundings.
          EXPECT_NEAR(sy.p[i], want[static_cast<size_t>(i)],
                      2e-6 * std::fabs(want[static_cast<size_t>(i)]))
              << "n=" << n << " i=" << i;
        }
      });
    }
  }
}

TEST(Ops, Softmax) {
  std::mt19937 rng(4);
  for (int64_t n : Lengths()) {
    for (float range : {1.0f, 30.0f}) {
      auto x = RandomFloats(rng, static_cast<size_t>(n), -range, range);
      // Masked attention scores: -inf entries must come out as exactly 0.
      for (int64_t i = 1; i < n; i += 5)
        x[static_cast<size_t>(i)] = -std::numeric_limits<float>::infinity();
      std::vector<float> want = x;
      scalar::Softmax(want.data(), n);
      for (int misalign = 0; misalign <= 3; ++misalign) {
        testing::ForEachSimdTarget([&] {
          Shifted sx(x, misalign);
          Softmax(sx.p, n);
          double total = 0.0;
          for (int64_t i = 0; i < n; ++i) {
            const float w = want[static_cast<size_t>(i)];
            // Highway's Exp is within 1 ulp and std::exp within 1 ulp; the sums
            // differ by summation order (relative ~1e-6 at n = 4096 for
            // positive terms). Values that underflow exp (x − max < −87) are
            // subnormal or 0 in either, hence the absolute 1e-37.
            EXPECT_NEAR(sx.p[i], w, 4e-6 * w + 1e-37) << "n=" << n << " i=" << i;
            if (std::isinf(x[static_cast<size_t>(i)])) {
              EXPECT_EQ(sx.p[i], 0.0f);
            }
            total += sx.p[i];
          }
          if (n > 0) {
            EXPECT_NEAR(total, 1.0, 1e-5);
          }
        });
      }
    }
  }
}

TEST(Ops, SiluMul) {
  std::mt19937 rng(5);
  for (int64_t n : Lengths()) {
    auto gate = RandomFloats(rng, static_cast<size_t>(n), -12.0f, 12.0f);
    // Far tails: exp(-|g|) underflows; silu(g) -> g for g >> 0 and -> -0 for g << 0.
    if (n > 3) {
      gate[0] = 120.0f;
      gate[1] = -120.0f;
      gate[2] = 0.0f;
      gate[3] = -88.0f;
    }
    const auto up = RandomFloats(rng, static_cast<size_t>(n), -2.0f, 2.0f);
    std::vector<float> want = gate;
    scalar::SiluMul(want.data(), up.data(), n);
    for (int misalign = 0; misalign <= 3; ++misalign) {
      testing::ForEachSimdTarget([&] {
        Shifted sg(gate, misalign), su(up, 3 - misalign);
        SiluMul(sg.p, su.p, n);
        for (int64_t i = 0; i < n; ++i) {
          // Exp within 1 ulp of std::exp, then 1/(1+e), e·r and two products:
          // a few ulps of relative error. Sigmoids that underflow are compared
          // in absolute terms.
          const float w = want[static_cast<size_t>(i)];
          EXPECT_NEAR(sg.p[i], w, 1e-6 * std::fabs(w) + 1e-37)
              << "n=" << n << " g=" << gate[static_cast<size_t>(i)];
        }
      });
    }
  }
}

TEST(Ops, LayerNorm) {
  std::mt19937 rng(13);
  for (int64_t n : Lengths()) {
    auto x = RandomFloats(rng, static_cast<size_t>(n), -4.0f, 6.0f);
    const auto w = RandomFloats(rng, static_cast<size_t>(n), 0.5f, 1.5f);
    const auto b = RandomFloats(rng, static_cast<size_t>(n), -0.5f, 0.5f);
    std::vector<float> want(static_cast<size_t>(n));
    scalar::LayerNorm(x.data(), w.data(), b.data(), want.data(), n, 1e-12f);
    // Against a double evaluation of the definition.
    double mean = 0, var = 0;
    for (float v : x) mean += v;
    mean /= std::max<int64_t>(n, 1);
    for (float v : x) var += (v - mean) * (v - mean);
    var /= std::max<int64_t>(n, 1);
    for (int64_t i = 0; i < n; ++i) {
      const size_t k = static_cast<size_t>(i);
      const double exact = (x[k] - mean) / std::sqrt(var + 1e-12) * w[k] + b[k];
      EXPECT_NEAR(want[k], exact, 1e-6 * (std::fabs(exact) + 1.0)) << "n=" << n << " i=" << i;
    }
    for (int misalign = 0; misalign <= 3; ++misalign) {
      testing::ForEachSimdTarget([&] {
        Shifted sx(x, misalign), sw(w, (misalign + 1) % 4), sb(b, (misalign + 2) % 4),
            sy(std::vector<float>(static_cast<size_t>(n)), (misalign + 3) % 4);
        LayerNorm(sx.p, sw.p, sb.p, sy.p, n, 1e-12f);
        // In place as the encoder calls it: the same values.
        LayerNorm(sx.p, sw.p, sb.p, sx.p, n, 1e-12f);
        for (int64_t i = 0; i < n; ++i) {
          // Double sums in another order, then the same float rounding: at
          // most an ulp or two of the result.
          const float v = want[static_cast<size_t>(i)];
          EXPECT_NEAR(sy.p[i], v, 4 * kEps * (std::fabs(v) + 2.0f)) << "n=" << n << " i=" << i;
          EXPECT_EQ(sx.p[i], sy.p[i]) << "in place, n=" << n << " i=" << i;
        }
      });
    }
  }
}

TEST(Ops, GeluErf) {
  // The rational erf against erf in double, over and past its [-4, 4] range.
  for (float v = -6.0f; v <= 6.0f; v += 1.0f / 64) {
    EXPECT_NEAR(scalar::Erf(v), std::erf(static_cast<double>(v)), 5e-7) << v;
  }
  std::mt19937 rng(17);
  for (int64_t n : Lengths()) {
    auto x = RandomFloats(rng, static_cast<size_t>(n), -8.0f, 8.0f);
    if (n > 2) x[0] = 0.0f, x[1] = -30.0f, x[2] = 30.0f;
    std::vector<float> want = x;
    scalar::GeluErf(want.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double v = x[static_cast<size_t>(i)];
      const double exact = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
      EXPECT_NEAR(want[static_cast<size_t>(i)], exact, 1e-6 * (std::fabs(v) + 1.0)) << v;
    }
    for (int misalign = 0; misalign <= 3; ++misalign) {
      testing::ForEachSimdTarget([&] {
        Shifted sx(x, misalign);
        GeluErf(sx.p, n);
        for (int64_t i = 0; i < n; ++i) {
          // Fused multiply-adds in the polynomials: a few ulps of |x|.
          const float w = want[static_cast<size_t>(i)];
          EXPECT_NEAR(sx.p[i], w, 8 * kEps * (std::fabs(x[static_cast<size_t>(i)]) + 1.0f))
              << "n=" << n << " x=" << x[static_cast<size_t>(i)];
        }
      });
    }
  }
}

TEST(Ops, AddInPlaceIsExact) {
  std::mt19937 rng(6);
  for (int64_t n : Lengths()) {
    const auto x = RandomFloats(rng, static_cast<size_t>(n), -1.0f, 1.0f);
    const auto y = RandomFloats(rng, static_cast<size_t>(n), -1.0f, 1.0f);
    std::vector<float> want = y;
    scalar::AddInPlace(want.data(), x.data(), n);
    for (int misalign = 0; misalign <= 3; ++misalign) {
      testing::ForEachSimdTarget([&] {
        Shifted sy(y, misalign), sx(x, 3 - misalign);
        AddInPlace(sy.p, sx.p, n);
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(sy.p[i], want[static_cast<size_t>(i)]) << "n=" << n;
      });
    }
  }
}

TEST(Ops, Axpy) {
  std::mt19937 rng(7);
  for (int64_t n : Lengths()) {
    const auto x = RandomFloats(rng, static_cast<size_t>(n), -1.0f, 1.0f);
    const auto y = RandomFloats(rng, static_cast<size_t>(n), -1.0f, 1.0f);
    const float a = 0.37f;
    std::vector<float> want = y;
    scalar::Axpy(a, x.data(), want.data(), n);
    for (int misalign = 0; misalign <= 3; ++misalign) {
      testing::ForEachSimdTarget([&] {
        Shifted sy(y, misalign), sx(x, 3 - misalign);
        Axpy(a, sx.p, sy.p, n);
        for (int64_t i = 0; i < n; ++i) {
          // Fused (one rounding) versus multiply-then-add (two roundings).
          const float tol =
              2 * kEps *
              (std::fabs(a * x[static_cast<size_t>(i)]) + std::fabs(y[static_cast<size_t>(i)]));
          ASSERT_NEAR(sy.p[i], want[static_cast<size_t>(i)], tol) << "n=" << n;
        }
      });
    }
  }
}

// The first index of the maximum, against an independent scan; ties (the
// maximum repeated, ±0) keep the lowest index; any NaN or infinity anywhere
// (also in the tail past the last full vector) reports all_finite = false.
TEST(Ops, ArgMaxFiniteIsTheFirstMaximum) {
  std::mt19937 rng(8);
  const float kInf = std::numeric_limits<float>::infinity(), kNaN = std::numeric_limits<float>::quiet_NaN();
  for (int64_t n : Lengths()) {
    if (n == 0) continue;
    auto x = RandomFloats(rng, static_cast<size_t>(n), -5.0f, 5.0f);
    if (n > 3) x[static_cast<size_t>(n) - 1] = x[static_cast<size_t>(n) / 3] = 7.0f;  // a tie
    if (n % 5 == 0) std::fill(x.begin(), x.end(), 0.0f), x[static_cast<size_t>(n) / 2] = -0.0f;
    int64_t want = 0;
    for (int64_t i = 1; i < n; ++i) {
      if (x[static_cast<size_t>(i)] > x[static_cast<size_t>(want)]) want = i;
    }
    for (int misalign = 0; misalign <= 3; ++misalign) {
      testing::ForEachSimdTarget([&] {
        Shifted sx(x, misalign);
        const ArgMaxResult r = ArgMaxFinite(sx.p, n);
        ASSERT_TRUE(r.all_finite) << "n=" << n;
        ASSERT_EQ(r.index, want) << "n=" << n;
      });
    }
    for (const float bad : {kInf, -kInf, kNaN}) {
      for (const int64_t at : {int64_t{0}, n / 2, n - 1}) {
        auto y = x;
        y[static_cast<size_t>(at)] = bad;
        testing::ForEachSimdTarget([&] {
          ASSERT_FALSE(ArgMaxFinite(y.data(), n).all_finite) << "n=" << n << " bad at " << at;
        });
      }
    }
  }
}

TEST(Ops, SimdTargetNameIsTheDispatchedTarget) {
  if (std::getenv("TOKENLORA_SIMD") != nullptr) GTEST_SKIP() << "TOKENLORA_SIMD is set";
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    EXPECT_STREQ(SimdTargetName(), hwy::TargetName(target));
  }
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace
}  // namespace tokenlora::kernels
