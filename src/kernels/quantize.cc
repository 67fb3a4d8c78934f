// QuantizeRow for the plain types and the 32-element block types. The block
// quantizers reproduce gguf-py's gguf.quants.quantize bit for bit, so every
// operation below is an f32 operation in the order numpy performs it:
//   Q8_0  d = amax/127,            q = round_half_away(x·(1/d))
//   Q4_0  d = x[argmax|x|]/−8,     q = min(15, trunc(x·(1/d) + 8.5))
//   Q5_0  d = x[argmax|x|]/−16,    q = min(31, trunc(x·(1/d) + 16.5))
//   Q4_1  d = (max−min)/15,        q = min(15, trunc((x−min)·(1/d) + 0.5)), m = min
//   Q5_1  d = (max−min)/31,        q = min(31, trunc((x−min)·(1/d) + 0.5)), m = min
// with 1/d replaced by 0 when d == 0, scales stored as f16 (round to nearest
// even) and argmax taking the first of equal magnitudes.
#include "kernels/quantize.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "kernels/quant_blocks.h"

// x·id + 8.5 must round twice, as numpy does; a fused multiply-add (which
// GCC and clang form by default where the target has FMA) would change q.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace tokenlora::kernels {
namespace {

float InverseOrZero(float d) { return d == 0.0f ? 0.0f : 1.0f / d; }

// The element of largest magnitude, with its sign (first one on ties).
float SignedAbsMax(const float* x, int n) {
  float best = x[0];
  for (int i = 1; i < n; ++i) {
    if (std::fabs(x[i]) > std::fabs(best)) best = x[i];
  }
  return best;
}

void MinMax(const float* x, int n, float* lo, float* hi) {
  *lo = *hi = x[0];
  for (int i = 1; i < n; ++i) {
    *lo = std::fmin(*lo, x[i]);
    *hi = std::fmax(*hi, x[i]);
  }
}

// trunc(v) as uint8 clamped to max_q; v >= 0 for finite inputs (see header).
uint8_t TruncClamp(float v, int max_q) {
  const float t = std::trunc(v);
  if (!(t > 0.0f)) return 0;
  return static_cast<uint8_t>(t >= static_cast<float>(max_q) ? max_q : static_cast<int>(t));
}

void QuantizeQ8_0(const float* x, BlockQ8_0* out) {
  float amax = 0.0f;
  for (int i = 0; i < kBlock32; ++i) amax = std::fmax(amax, std::fabs(x[i]));
  const float d = amax / 127.0f;
  const float id = InverseOrZero(d);
  out->d = F32ToF16(d);
  for (int i = 0; i < kBlock32; ++i) {
    const float p = x[i] * id;
    out->qs[i] = static_cast<int8_t>(std::round(p));  // |p| <= 127 (+ rounding)
  }
}

// Q4_0 (kBits 4) and Q5_0 (kBits 5): symmetric, the largest magnitude maps to −2^(kBits−1).
template <int kBits>
void QuantizeSymmetric(const float* x, uint16_t* d_out, uint8_t q[kBlock32]) {
  constexpr int kHalf = 1 << (kBits - 1);
  const float d = SignedAbsMax(x, kBlock32) / static_cast<float>(-kHalf);
  const float id = InverseOrZero(d);
  *d_out = F32ToF16(d);
  const float shift = static_cast<float>(kHalf) + 0.5f;
  for (int i = 0; i < kBlock32; ++i) {
    const float p = x[i] * id;
    q[i] = TruncClamp(p + shift, 2 * kHalf - 1);
  }
}

// Q4_1 (kBits 4) and Q5_1 (kBits 5): affine from the block minimum.
template <int kBits>
void QuantizeAffine(const float* x, uint16_t* d_out, uint16_t* m_out, uint8_t q[kBlock32]) {
  constexpr int kMaxQ = (1 << kBits) - 1;
  float lo, hi;
  MinMax(x, kBlock32, &lo, &hi);
  const float d = (hi - lo) / static_cast<float>(kMaxQ);
  const float id = InverseOrZero(d);
  *d_out = F32ToF16(d);
  *m_out = F32ToF16(lo);
  for (int i = 0; i < kBlock32; ++i) {
    const float p = (x[i] - lo) * id;
    q[i] = TruncClamp(p + 0.5f, kMaxQ);
  }
}

// Element i in the low nibble of byte i, element i + 16 in the high nibble.
void PackNibbles(const uint8_t q[kBlock32], uint8_t qs[kBlock32 / 2]) {
  for (int i = 0; i < kBlock32 / 2; ++i) {
    qs[i] = static_cast<uint8_t>((q[i] & 0x0F) | ((q[i + 16] & 0x0F) << 4));
  }
}

// Bit i of the little-endian word = fifth bit of element i.
void PackFifthBits(const uint8_t q[kBlock32], uint8_t qh[4]) {
  uint32_t bits = 0;
  for (int i = 0; i < kBlock32; ++i) bits |= static_cast<uint32_t>((q[i] >> 4) & 1) << i;
  for (int k = 0; k < 4; ++k) qh[k] = static_cast<uint8_t>(bits >> (8 * k));
}

template <typename Block, typename Fn>
void ForEachBlock(const float* src, void* dst, int64_t n_blocks, Fn fn) {
  auto* out = static_cast<uint8_t*>(dst);
  for (int64_t b = 0; b < n_blocks; ++b) {
    Block blk;
    std::memset(&blk, 0, sizeof(blk));
    fn(src + b * kBlock32, &blk);
    std::memcpy(out + b * static_cast<int64_t>(sizeof(Block)), &blk,
                sizeof(Block));  // unaligned dst
  }
}

}  // namespace

void QuantizeRow(DType t, const float* src, void* dst, int64_t n) {
  TL_CHECK_MSG(t != DType::kI32 && n >= 0 && n % Info(t).block_size == 0,
               "QuantizeRow: not a weight dtype, or n is not a whole number of blocks");
  const int64_t n_blocks = n / Info(t).block_size;
  auto* out = static_cast<uint8_t*>(dst);
  switch (t) {
    case DType::kF32:
      if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::kF16:
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = t == DType::kF16 ? F32ToF16(src[i]) : F32ToBF16(src[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      return;
    case DType::kQ8_0:
      return ForEachBlock<BlockQ8_0>(src, dst, n_blocks,
                                     [](const float* x, BlockQ8_0* b) { QuantizeQ8_0(x, b); });
    case DType::kQ4_0:
      return ForEachBlock<BlockQ4_0>(src, dst, n_blocks, [](const float* x, BlockQ4_0* b) {
        uint8_t q[kBlock32];
        QuantizeSymmetric<4>(x, &b->d, q);
        PackNibbles(q, b->qs);
      });
    case DType::kQ5_0:
      return ForEachBlock<BlockQ5_0>(src, dst, n_blocks, [](const float* x, BlockQ5_0* b) {
        uint8_t q[kBlock32];
        QuantizeSymmetric<5>(x, &b->d, q);
        PackNibbles(q, b->qs);
        PackFifthBits(q, b->qh);
      });
    case DType::kQ4_1:
      return ForEachBlock<BlockQ4_1>(src, dst, n_blocks, [](const float* x, BlockQ4_1* b) {
        uint8_t q[kBlock32];
        QuantizeAffine<4>(x, &b->d, &b->m, q);
        PackNibbles(q, b->qs);
      });
    case DType::kQ5_1:
      return ForEachBlock<BlockQ5_1>(src, dst, n_blocks, [](const float* x, BlockQ5_1* b) {
        uint8_t q[kBlock32];
        QuantizeAffine<5>(x, &b->d, &b->m, q);
        PackNibbles(q, b->qs);
        PackFifthBits(q, b->qh);
      });
    case DType::kQ4_K: return internal::QuantizeQ4_K(src, out, n_blocks);
    case DType::kQ5_K: return internal::QuantizeQ5_K(src, out, n_blocks);
    case DType::kQ6_K: return internal::QuantizeQ6_K(src, out, n_blocks);
    case DType::kI32: break;
  }
}

}  // namespace tokenlora::kernels
