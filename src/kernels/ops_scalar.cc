// Scalar twins of the element-wise and reduction kernels: plain loops in the
// obvious order. They are the references for the SIMD versions (ops_simd.cc)
// and what TOKENLORA_SIMD=scalar runs.
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

void AddInPlace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void Axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace tokenlora::kernels::scalar
