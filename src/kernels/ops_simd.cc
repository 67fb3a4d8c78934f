// Highway versions of the element-wise and reduction kernels, their public
// entry points (dynamic dispatch, or the scalar twin when
// TOKENLORA_SIMD=scalar) and SimdTargetName().
//
// Numerics versus the scalar twins (ops_scalar.cc):
//  * Dot, and the sums inside RmsNorm and Softmax, add in a different order
//    (4 vector accumulators, then a tree over lanes): results differ by
//    rounding only, relative to Σ|a_i·b_i|.
//  * Exp is Highway's polynomial (max error 1 ulp) versus std::exp; Axpy uses
//    a fused multiply-add.
//  * AddInPlace and ArgMaxFinite are bit-identical.
//  * LayerNorm sums in double in another order; GeluErf's polynomials use
//    fused multiply-adds (a few ulps).
// Tails shorter than a vector run the scalar formula on the remaining elements.
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/dispatch.h"
#include "kernels/kernels.h"
#include "kernels/prefetch.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/ops_simd.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace tokenlora::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;

const char* TargetNameSimd() { return hwy::TargetName(HWY_TARGET); }

float DotSimd(const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  // Four independent accumulators hide the FMA latency.
  auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
    s1 = hn::MulAdd(hn::LoadU(d, a + i + N), hn::LoadU(d, b + i + N), s1);
    s2 = hn::MulAdd(hn::LoadU(d, a + i + 2 * N), hn::LoadU(d, b + i + 2 * N), s2);
    s3 = hn::MulAdd(hn::LoadU(d, a + i + 3 * N), hn::LoadU(d, b + i + 3 * N), s3);
  }
  for (; i + N <= n; i += N) s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
  float sum = hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3))));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float StreamSumSimd(const float* HWY_RESTRICT a, int64_t n, size_t prefetch) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
  const auto* bytes = reinterpret_cast<const char*>(a);
  const size_t step_bytes = 4 * static_cast<size_t>(N) * sizeof(float);
  int64_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    if (prefetch != 0) PrefetchLines(bytes + static_cast<size_t>(i) * sizeof(float) + prefetch, step_bytes);
    s0 = hn::Add(hn::LoadU(d, a + i), s0);
    s1 = hn::Add(hn::LoadU(d, a + i + N), s1);
    s2 = hn::Add(hn::LoadU(d, a + i + 2 * N), s2);
    s3 = hn::Add(hn::LoadU(d, a + i + 3 * N), s3);
  }
  for (; i + N <= n; i += N) s0 = hn::Add(hn::LoadU(d, a + i), s0);
  float sum = hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3))));
  for (; i < n; ++i) sum += a[i];
  return sum;
}

void RmsNormSimd(const float* HWY_RESTRICT x, const float* HWY_RESTRICT weight,
                 float* HWY_RESTRICT y, int64_t n, float eps) {
  if (n <= 0) return;
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const float mean_sq = DotSimd(x, x, n) / static_cast<float>(n);
  const float scale = 1.0f / std::sqrt(mean_sq + eps);
  const auto vscale = hn::Set(d, scale);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(d, x + i), vscale), hn::LoadU(d, weight + i)), d, y + i);
  }
  for (; i < n; ++i) y[i] = (x[i] * scale) * weight[i];
}

void SoftmaxSimd(float* HWY_RESTRICT x, int64_t n) {
  if (n <= 0) return;
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const float kNegInf = -std::numeric_limits<float>::infinity();
  auto vmax = hn::Set(d, kNegInf);
  int64_t i = 0;
  for (; i + N <= n; i += N) vmax = hn::Max(vmax, hn::LoadU(d, x + i));
  float max = hn::GetLane(hn::MaxOfLanes(d, vmax));
  for (; i < n; ++i) max = std::fmax(max, x[i]);

  // exp(x - max) <= 1; Highway's Exp returns 0 below -104 (including -inf,
  // i.e. masked entries) where std::exp gives at most a subnormal.
  const auto vneg_max = hn::Set(d, -max);
  auto vsum = hn::Zero(d);
  i = 0;
  for (; i + N <= n; i += N) {
    const auto e = hn::Exp(d, hn::Add(hn::LoadU(d, x + i), vneg_max));
    hn::StoreU(e, d, x + i);
    vsum = hn::Add(vsum, e);
  }
  float sum = hn::GetLane(hn::SumOfLanes(d, vsum));
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }

  const float inv = 1.0f / sum;
  const auto vinv = hn::Set(d, inv);
  i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::LoadU(d, x + i), vinv), d, x + i);
  for (; i < n; ++i) x[i] *= inv;
}

void SiluMulSimd(float* HWY_RESTRICT gate, const float* HWY_RESTRICT up, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto one = hn::Set(d, 1.0f);
  const auto zero = hn::Zero(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    // Same formula as the scalar twin: e = exp(-|g|) stays in (0, 1], so it
    // is inside Exp's valid range for every finite g.
    const auto g = hn::LoadU(d, gate + i);
    const auto e = hn::Exp(d, hn::Neg(hn::Abs(g)));
    const auto r = hn::Div(one, hn::Add(one, e));
    const auto sigmoid = hn::IfThenElse(hn::Ge(g, zero), r, hn::Mul(e, r));
    hn::StoreU(hn::Mul(hn::Mul(g, sigmoid), hn::LoadU(d, up + i)), d, gate + i);
  }
  if (i < n) scalar::SiluMul(gate + i, up + i, n - i);
}

// Mean and variance in double as the twin (promoted half vectors; the sums
// add in another order), the normalized value rounded to float once, then
// ·weight and +bias as two float operations as there.
void LayerNormSimd(const float* x, const float* HWY_RESTRICT weight, const float* HWY_RESTRICT bias, float* y,
                   int64_t n, float eps) {
  if (n <= 0) return;
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> df;  // as many floats as dd has doubles
  const int64_t N = static_cast<int64_t>(hn::Lanes(dd));
  auto vsum = hn::Zero(dd);
  int64_t i = 0;
  for (; i + N <= n; i += N) vsum = hn::Add(vsum, hn::PromoteTo(dd, hn::LoadU(df, x + i)));
  double sum = hn::GetLane(hn::SumOfLanes(dd, vsum));
  for (; i < n; ++i) sum += x[i];
  const double mean = sum / static_cast<double>(n);
  const auto vmean = hn::Set(dd, mean);
  auto vsq = hn::Zero(dd);
  for (i = 0; i + N <= n; i += N) {
    const auto c = hn::Sub(hn::PromoteTo(dd, hn::LoadU(df, x + i)), vmean);
    vsq = hn::MulAdd(c, c, vsq);
  }
  double sq = hn::GetLane(hn::SumOfLanes(dd, vsq));
  for (; i < n; ++i) sq += (x[i] - mean) * (x[i] - mean);
  const double inv = 1.0 / std::sqrt(sq / static_cast<double>(n) + eps);
  const auto vinv = hn::Set(dd, inv);
  for (i = 0; i + N <= n; i += N) {
    const auto norm = hn::DemoteTo(df, hn::Mul(hn::Sub(hn::PromoteTo(dd, hn::LoadU(df, x + i)), vmean), vinv));
    hn::StoreU(hn::Add(hn::Mul(norm, hn::LoadU(df, weight + i)), hn::LoadU(df, bias + i)), df, y + i);
  }
  for (; i < n; ++i) y[i] = static_cast<float>((x[i] - mean) * inv) * weight[i] + bias[i];
}

// The twin's rational erf (x·P(x²)/Q(x²) on [-4, 4]) with fused
// multiply-adds in the polynomials: a few ulps from the twin.
void GeluErfSimd(float* HWY_RESTRICT x, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto inv_sqrt2 = hn::Set(d, 0.70710678118654752f), four = hn::Set(d, 4.0f);
  const auto half = hn::Set(d, 0.5f), one = hn::Set(d, 1.0f);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto v = hn::LoadU(d, x + i);
    const auto z = hn::Min(hn::Max(hn::Mul(v, inv_sqrt2), hn::Neg(four)), four);
    const auto z2 = hn::Mul(z, z);
    auto p = hn::MulAdd(z2, hn::Set(d, -2.72614225801306e-10f), hn::Set(d, 2.77068142495902e-08f));
    p = hn::MulAdd(z2, p, hn::Set(d, -2.10102402082508e-06f));
    p = hn::MulAdd(z2, p, hn::Set(d, -5.69250639462346e-05f));
    p = hn::MulAdd(z2, p, hn::Set(d, -7.34990630326855e-04f));
    p = hn::MulAdd(z2, p, hn::Set(d, -2.95459980854025e-03f));
    p = hn::MulAdd(z2, p, hn::Set(d, -1.60960333262415e-02f));
    auto q = hn::MulAdd(z2, hn::Set(d, -1.45660718464996e-05f), hn::Set(d, -2.13374055278905e-04f));
    q = hn::MulAdd(z2, q, hn::Set(d, -1.68282697438203e-03f));
    q = hn::MulAdd(z2, q, hn::Set(d, -7.37332916720468e-03f));
    q = hn::MulAdd(z2, q, hn::Set(d, -1.42647390514189e-02f));
    const auto erf = hn::Div(hn::Mul(z, p), q);
    hn::StoreU(hn::Mul(hn::Mul(half, v), hn::Add(one, erf)), d, x + i);
  }
  if (i < n) scalar::GeluErf(x + i, n - i);
}

void AddInPlaceSimd(float* HWY_RESTRICT y, const float* HWY_RESTRICT x, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::Add(hn::LoadU(d, y + i), hn::LoadU(d, x + i)), d, y + i);
  for (; i < n; ++i) y[i] += x[i];
}

void AxpySimd(float a, const float* HWY_RESTRICT x, float* HWY_RESTRICT y, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto va = hn::Set(d, a);
  int64_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::MulAdd(va, hn::LoadU(d, x + i), hn::LoadU(d, y + i)), d, y + i);
  for (; i < n; ++i) y[i] += a * x[i];
}

ArgMaxResult ArgMaxFiniteSimd(const float* HWY_RESTRICT x, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  if (n < N) return scalar::ArgMaxFinite(x, n);
  // Pass 1: the maximum, and Σ (x − x), which stays 0 unless an element is
  // an infinity or NaN (then it is NaN).
  auto vmax = hn::LoadU(d, x), probe = hn::Zero(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto v = hn::LoadU(d, x + i);
    vmax = hn::Max(vmax, v);
    probe = hn::Add(probe, hn::Sub(v, v));
  }
  float max = hn::GetLane(hn::MaxOfLanes(d, vmax));
  float tail_probe = 0.0f;
  for (; i < n; ++i) {
    max = std::fmax(max, x[i]);
    tail_probe += x[i] - x[i];
  }
  if (!hn::AllTrue(d, hn::Eq(probe, hn::Zero(d))) || tail_probe != 0.0f) return {0, false};
  // Pass 2: the first element equal to it.
  const auto vm = hn::Set(d, max);
  for (i = 0; i + N <= n; i += N) {
    const intptr_t lane = hn::FindFirstTrue(d, hn::Eq(hn::LoadU(d, x + i), vm));
    if (lane >= 0) return {i + static_cast<int64_t>(lane), true};
  }
  for (; i < n; ++i) {
    if (x[i] == max) return {i, true};
  }
  return {0, true};  // not reached: max is an element
}

}  // namespace tokenlora::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tokenlora::kernels {

HWY_EXPORT(TargetNameSimd);
HWY_EXPORT(DotSimd);
HWY_EXPORT(StreamSumSimd);
HWY_EXPORT(RmsNormSimd);
HWY_EXPORT(SoftmaxSimd);
HWY_EXPORT(SiluMulSimd);
HWY_EXPORT(LayerNormSimd);
HWY_EXPORT(GeluErfSimd);
HWY_EXPORT(AddInPlaceSimd);
HWY_EXPORT(AxpySimd);
HWY_EXPORT(ArgMaxFiniteSimd);

const char* SimdTargetName() {
  if (internal::ForceScalar()) return "SCALAR_TWINS";
  return HWY_DYNAMIC_DISPATCH(TargetNameSimd)();
}

float Dot(const float* a, const float* b, int64_t n) {
  if (internal::ForceScalar()) return scalar::Dot(a, b, n);
  return HWY_DYNAMIC_DISPATCH(DotSimd)(a, b, n);
}

float StreamSum(const float* a, int64_t n, size_t prefetch) {
  if (internal::ForceScalar()) return scalar::StreamSum(a, n, prefetch);
  return HWY_DYNAMIC_DISPATCH(StreamSumSimd)(a, n, prefetch);
}

void RmsNorm(const float* x, const float* weight, float* y, int64_t n, float eps) {
  if (internal::ForceScalar()) return scalar::RmsNorm(x, weight, y, n, eps);
  HWY_DYNAMIC_DISPATCH(RmsNormSimd)(x, weight, y, n, eps);
}

void Softmax(float* x, int64_t n) {
  if (internal::ForceScalar()) return scalar::Softmax(x, n);
  HWY_DYNAMIC_DISPATCH(SoftmaxSimd)(x, n);
}

void SiluMul(float* gate, const float* up, int64_t n) {
  if (internal::ForceScalar()) return scalar::SiluMul(gate, up, n);
  HWY_DYNAMIC_DISPATCH(SiluMulSimd)(gate, up, n);
}

void LayerNorm(const float* x, const float* weight, const float* bias, float* y, int64_t n, float eps) {
  if (internal::ForceScalar()) return scalar::LayerNorm(x, weight, bias, y, n, eps);
  HWY_DYNAMIC_DISPATCH(LayerNormSimd)(x, weight, bias, y, n, eps);
}

void GeluErf(float* x, int64_t n) {
  if (internal::ForceScalar()) return scalar::GeluErf(x, n);
  HWY_DYNAMIC_DISPATCH(GeluErfSimd)(x, n);
}

void AddInPlace(float* y, const float* x, int64_t n) {
  if (internal::ForceScalar()) return scalar::AddInPlace(y, x, n);
  HWY_DYNAMIC_DISPATCH(AddInPlaceSimd)(y, x, n);
}

void Axpy(float a, const float* x, float* y, int64_t n) {
  if (internal::ForceScalar()) return scalar::Axpy(a, x, y, n);
  HWY_DYNAMIC_DISPATCH(AxpySimd)(a, x, y, n);
}

ArgMaxResult ArgMaxFinite(const float* x, int64_t n) {
  if (internal::ForceScalar()) return scalar::ArgMaxFinite(x, n);
  return HWY_DYNAMIC_DISPATCH(ArgMaxFiniteSimd)(x, n);
}

}  // namespace tokenlora::kernels
#endif  // HWY_ONCE
