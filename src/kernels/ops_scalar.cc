// Scalar twins of the element-wise and reduction kernels: plain loops in the
// obvious order. They are the references for the SIMD versions (ops_simd.cc)
// and what TOKENLORA_SIMD=scalar runs.
#include <bit>
#include <cmath>
#include <limits>

#include "kernels/kernels.h"

namespace tokenlora::kernels::scalar {

float Dot(const float* a, const float* b, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float StreamSum(const float* a, int64_t n, size_t /*prefetch*/) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += a[i];
  return sum;
}

void RmsNorm(const float* x, const float* weight, float* y, int64_t n, float eps) {
  if (n <= 0) return;
  // As PyTorch's LlamaRMSNorm: mean of squares in f32, rsqrt, x·scale, then ·weight.
  const float mean_sq = Dot(x, x, n) / static_cast<float>(n);
  const float scale = 1.0f / std::sqrt(mean_sq + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * scale) * weight[i];
}

void Softmax(float* x, int64_t n) {
  if (n <= 0) return;
  float max = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) max = std::fmax(max, x[i]);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void SiluMul(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    // sigmoid(g) from e = exp(-|g|) <= 1, which never overflows: 1/(1+e) for
    // g >= 0 and e/(1+e) for g < 0.
    const float g = gate[i];
    const float e = std::exp(-std::fabs(g));
    const float r = 1.0f / (1.0f + e);
    const float sigmoid = g >= 0.0f ? r : e * r;
    gate[i] = (g * sigmoid) * up[i];
  }
}

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

void AddInPlace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void Axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

ArgMaxResult ArgMaxFinite(const float* x, int64_t n) {
  ArgMaxResult r;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return {0, false};
    if (x[i] > x[r.index]) r.index = i;
  }
  return r;
}

}  // namespace tokenlora::kernels::scalar
