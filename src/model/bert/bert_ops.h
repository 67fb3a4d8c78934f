// Small ops the BERT encoder needs beyond src/kernels: LayerNorm and the exact
// (erf) GELU. Plain C++ the compiler vectorises: together they are a few
// percent of an encoder call (the matmuls dominate).
#pragma once

#include <cstdint>

namespace tokenlora::bert_ops {

// y[i] = (x[i] - mean) / sqrt(var + eps) · weight[i] + bias[i], var biased
// (PyTorch's LayerNorm). Mean and variance accumulate in double. x, y: [n]; may alias.
void LayerNorm(const float* x, const float* weight, const float* bias, float* y, int64_t n, float eps);

// erf(x) within 5e-7, branch-free so loops over it vectorise.
float Erf(float x);
// x[i] = x[i] · ½ · (1 + erf(x[i] / √2)), in place: PyTorch's gelu (approximate="none").
void GeluErf(float* x, int64_t n);

// y[i] += bias[i]
void AddBias(float* y, const float* bias, int64_t n);

}  // namespace tokenlora::bert_ops
