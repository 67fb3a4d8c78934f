// Math kernels over plain spans and dimensions; they never see model types
// and never throw. Each has a scalar twin (namespace scalar) that the SIMD
// version is tested against; TOKENLORA_SIMD=scalar forces the scalar path.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/thread_pool.h"
#include "tensor/tensor.h"

namespace tokenlora::kernels {

// dst[0..n) = dequantized src row of `n` elements (n % BlockSize(t) == 0).
void DequantizeRow(DType t, const void* src, float* dst, int64_t n);

// y = x · Wᵀ:  w: [n_out, n_in] in any weight dtype, x: [n_tok, n_in] f32,
// y: [n_tok, n_out] f32. Activations stay f32 (weights are dequantized inside
// the kernel), so results match an f32 reference up to summation order.
void MatMul(const TensorView& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool);
// MatMul whose every row y[t] is computed by the same instructions in the
// same order whatever n_tok is (the decode path, on groups of up to 4
// tokens), so a row's bits do not depend on which other rows share the call.
// The LoRA mixer runs its products through it: a sequence's adapters then
// give the same bits alone or batched with others. Slower than MatMul for
// many tokens (no register-blocked prefill micro-kernel).
void MatMulRowInvariant(const TensorView& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool);
// ys[i] = x·Wᵢᵀ for up to kMaxShared matrices with the same n_in (q/k/v,
// gate/up; dtypes may differ): one parallel region over all their tiles, so
// decoding streams them as one range per thread. Bit-identical to n MatMul
// calls.
inline constexpr int kMaxShared = 8;
void MatMulShared(const TensorView* const* ws, float* const* ys, int n, const float* x,
                  int64_t n_tok, ThreadPool& pool);
// dx += dy · W: the input gradient of y = x·Wᵀ (training). w: [n_out, n_in]
// in any weight dtype, dy: [n_tok, n_out] f32, dx: [n_tok, n_in] f32
// (accumulated into). Each dx element adds its terms in ascending output
// feature order, so results do not depend on the thread count.
void AddMatMulTransposed(const TensorView& w, const float* dy, int64_t n_tok, float* dx, ThreadPool& pool);

// Σ a[i]·b[i]
float Dot(const float* a, const float* b, int64_t n);
// Σ a[i], read as one forward stream with the lines `prefetch` bytes ahead
// prefetched (0: none; the result does not depend on it). The DRAM
// bandwidth probes use it, so the bound they measure is the best stream the
// decode kernels could get (prefetch.h).
float StreamSum(const float* a, int64_t n, size_t prefetch);
// y[i] = x[i] / sqrt(mean(x²) + eps) · weight[i]
void RmsNorm(const float* x, const float* weight, float* y, int64_t n, float eps);
// In place, numerically stable (max subtracted).
void Softmax(float* x, int64_t n);
// gate[i] = silu(gate[i]) · up[i]
void SiluMul(float* gate, const float* up, int64_t n);
// y[i] = (x[i] - mean) / sqrt(var + eps) · weight[i] + bias[i], var biased
// (PyTorch's LayerNorm; BERT's). Mean and variance accumulate in double. x
// and y may alias.
void LayerNorm(const float* x, const float* weight, const float* bias, float* y, int64_t n, float eps);
// x[i] = x[i] · ½ · (1 + erf(x[i] / √2)) in place (PyTorch's exact gelu), with
// a rational erf within 5e-7 of erf in double.
void GeluErf(float* x, int64_t n);
// y[i] += x[i]
void AddInPlace(float* y, const float* x, int64_t n);
// y[i] += a · x[i]
void Axpy(float a, const float* x, float* y, int64_t n);
// The index of the largest x[i] (the lowest such index on ties) and whether
// every element is finite, in two passes over x (the samplers' greedy pick
// and logit check over a vocabulary). n > 0; with a NaN or an infinity in x
// `all_finite` is false and `index` is unspecified.
struct ArgMaxResult {
  int64_t index = 0;
  bool all_finite = true;
};
ArgMaxResult ArgMaxFinite(const float* x, int64_t n);

// The SIMD target the dispatcher picked ("AVX3", "AVX2", "SCALAR", ...).
const char* SimdTargetName();

namespace scalar {
void DequantizeRow(DType t, const void* src, float* dst, int64_t n);
void MatMul(const TensorView& w, const float* x, int64_t n_tok, float* y);
void AddMatMulTransposed(const TensorView& w, const float* dy, int64_t n_tok, float* dx);
float Dot(const float* a, const float* b, int64_t n);
float StreamSum(const float* a, int64_t n, size_t prefetch);
void RmsNorm(const float* x, const float* weight, float* y, int64_t n, float eps);
void Softmax(float* x, int64_t n);
void SiluMul(float* gate, const float* up, int64_t n);
void LayerNorm(const float* x, const float* weight, const float* bias, float* y, int64_t n, float eps);
void GeluErf(float* x, int64_t n);
float Erf(float x);  // the rational erf GeluErf uses
void AddInPlace(float* y, const float* x, int64_t n);
void Axpy(float a, const float* x, float* y, int64_t n);
ArgMaxResult ArgMaxFinite(const float* x, int64_t n);
}  // namespace scalar

}  // namespace tokenlora::kernels
