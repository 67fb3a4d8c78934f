// Quantization of f32 rows into the weight dtypes (model conversion, tiny
// test models). Offline work: scalar code, no dispatch.
//
//  * F32, F16, BF16: copy / round to nearest even (F32ToF16, F32ToBF16).
//  * Q8_0, Q4_0, Q4_1, Q5_0, Q5_1: bit for bit what gguf-py's
//    gguf.quants.quantize produces, checked against goldens made by
//    scripts/make_golden_kernels.py.
//  * Q4_K, Q5_K, Q6_K: our own min/max scale choice (quantize_k.cc), not
//    llama.cpp's iterative search; the error bound it guarantees is stated there.
#pragma once

#include <cstdint>

#include "tensor/dtype.h"

namespace tokenlora::kernels {

// src: [n] f32 (finite values); dst: RowBytes(t, n) bytes;
// n % Info(t).block_size == 0. Aborts on I32 or a partial block.
void QuantizeRow(DType t, const float* src, void* dst, int64_t n);

namespace internal {
// K-quant blocks (quantize_k.cc); src: [n_blocks · 256], dst: n_blocks blocks.
void QuantizeQ4_K(const float* src, uint8_t* dst, int64_t n_blocks);
void QuantizeQ5_K(const float* src, uint8_t* dst, int64_t n_blocks);
void QuantizeQ6_K(const float* src, uint8_t* dst, int64_t n_blocks);
}  // namespace internal

}  // namespace tokenlora::kernels
