#include "model/bert/bert_ops.h"

#include <bit>
#include <cmath>
#include <cstdint>

namespace tokenlora::bert_ops {

void LayerNorm(const float* x, const float* weight, const float* bias, float* y, int64_t n, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const double mean = sum / static_cast<double>(n);
  double sq = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = x[i] - mean;
    sq += d * d;
  }
  const double inv = 1.0 / std::sqrt(sq / static_cast<double>(n) + eps);
  for (int64_t i = 0; i < n; ++i) {
    y[i] = static_cast<float>((x[i] - mean) * inv) * weight[i] + bias[i];
  }
}

namespace {

inline float ErfInline(float x) {
  // Rational approximation x·P(x²)/Q(x²) on [-4, 4] (beyond, erf is ±1 in
  // float), with the coefficients Eigen and XLA use for float erf. No call and
  // no branch, so the loop below vectorises; libm's erff was a third of the
  // encoder's non-matmul time. Error ≤ 5e-7 against erf in double (tested).
  // Clamp to ±4 on the bit pattern: a float compare may trap (GCC's default
  // -ftrapping-math), which keeps the loop from vectorising; an integer
  // compare of |x|'s bits does not. NaN clamps to ±4 (GELU stays NaN: x·...).
  constexpr uint32_t kFour = 0x40800000u;  // 4.0f
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint32_t abs_bits = bits & 0x7FFFFFFFu;
  x = std::bit_cast<float>((abs_bits > kFour ? kFour : abs_bits) | (bits & 0x80000000u));
  const float x2 = x * x;
  float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
  p = x2 * p + -2.10102402082508e-06f;
  p = x2 * p + -5.69250639462346e-05f;
  p = x2 * p + -7.34990630326855e-04f;
  p = x2 * p + -2.95459980854025e-03f;
  p = x2 * p + -1.60960333262415e-02f;
  float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
  q = x2 * q + -1.68282697438203e-03f;
  q = x2 * q + -7.37332916720468e-03f;
  q = x2 * q + -1.42647390514189e-02f;
  return x * p / q;
}

}  // namespace

float Erf(float x) { return ErfInline(x); }

void GeluErf(float* x, int64_t n) {
  constexpr float kInvSqrt2 = 0.70710678118654752f;
  for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + ErfInline(x[i] * kInvSqrt2));
}

void AddBias(float* y, const float* bias, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += bias[i];
}

}  // namespace tokenlora::bert_ops
