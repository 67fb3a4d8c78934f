// Scalar twin of DequantizeRow: one element at a time, straight from the
// format definitions in quant_blocks.h. It is the reference the SIMD version
// (dequant-inl.h) is tested against and is itself checked bit for bit against
// gguf-py (tests/golden/kernels).
//
// Numerics: every value is an f16 scale times a small integer, computed in the
// same order as gguf-py (d·q, d·q + m, (d·sc)·q − dmin·mn, (d·sc)·q). All the
// products are exact in f32 (an f16 has 11 significant bits; d·sc needs at most
// 11 + 7 bits and (d·sc)·q at most 24), so the only rounding is the final
// addition/subtraction and the result is bit-identical to the reference even
// when a compiler fuses the multiply and add.
#include <cstring>

#include "core/error.h"
#include "kernels/kernels.h"
#include "kernels/quant_blocks.h"

namespace tokenlora::kernels::scalar {
namespace {

template <typename Block>
Block LoadBlock(const void* src, int64_t i) {
  // memcpy: the source is a byte stream (often an unaligned mmap offset).
  Block b;
  std::memcpy(&b, static_cast<const uint8_t*>(src) + i * static_cast<int64_t>(sizeof(Block)),
              sizeof(Block));
  return b;
}

uint16_t LoadU16(const void* src, int64_t i) {
  uint16_t h;
  std::memcpy(&h, static_cast<const uint8_t*>(src) + 2 * i, 2);
  return h;
}

void DequantQ8_0(const void* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, dst += kBlock32) {
    const auto blk = LoadBlock<BlockQ8_0>(src, b);
    const float d = F16ToF32(blk.d);
    for (int i = 0; i < kBlock32; ++i) dst[i] = static_cast<float>(blk.qs[i]) * d;
  }
}

void DequantQ4_0(const void* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, dst += kBlock32) {
    const auto blk = LoadBlock<BlockQ4_0>(src, b);
    const float d = F16ToF32(blk.d);
    for (int i = 0; i < kBlock32 / 2; ++i) {
      dst[i] = d * static_cast<float>((blk.qs[i] & 0x0F) - 8);
      dst[i + 16] = d * static_cast<float>((blk.qs[i] >> 4) - 8);
    }
  }
}

void DequantQ4_1(const void* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, dst += kBlock32) {
    const auto blk = LoadBlock<BlockQ4_1>(src, b);
    const float d = F16ToF32(blk.d);
    const float m = F16ToF32(blk.m);
    for (int i = 0; i < kBlock32 / 2; ++i) {
      dst[i] = d * static_cast<float>(blk.qs[i] & 0x0F) + m;
      dst[i + 16] = d * static_cast<float>(blk.qs[i] >> 4) + m;
    }
  }
}

// The 5-bit value of element i of a Q5_0/Q5_1 block.
int Q5Value(const uint8_t* qs, uint32_t qh, int i) {
  const int low = i < 16 ? (qs[i] & 0x0F) : (qs[i - 16] >> 4);
  return low | static_cast<int>(((qh >> i) & 1u) << 4);
}

void DequantQ5_0(const void* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, dst += kBlock32) {
    const auto blk = LoadBlock<BlockQ5_0>(src, b);
    const float d = F16ToF32(blk.d);
    const uint32_t qh = LoadQh(blk.qh);
    for (int i = 0; i < kBlock32; ++i) dst[i] = d * static_cast<float>(Q5Value(blk.qs, qh, i) - 16);
  }
}

void DequantQ5_1(const void* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, dst += kBlock32) {
    const auto blk = LoadBlock<BlockQ5_1>(src, b);
    const float d = F16ToF32(blk.d);
    const float m = F16ToF32(blk.m);
    const uint32_t qh = LoadQh(blk.qh);
    for (int i = 0; i < kBlock32; ++i) dst[i] = d * static_cast<float>(Q5Value(blk.qs, qh, i)) + m;
  }
}

// Q4_K and Q5_K share everything but the fifth bit; qh == nullptr for Q4_K.
void DequantKWithMins(const uint16_t d16, const uint16_t dmin16, const uint8_t* packed,
                      const uint8_t* qs, const uint8_t* qh, float* dst) {
  const float d = F16ToF32(d16);
  const float dmin = F16ToF32(dmin16);
  uint8_t sc[8], mn[8];
  UnpackKScales(packed, sc, mn);
  for (int j = 0; j < 8; ++j) {  // sub-block j: elements 32·j .. 32·j + 31
    const float scale = d * static_cast<float>(sc[j]);
    const float offset = dmin * static_cast<float>(mn[j]);
    const uint8_t* q = qs + 32 * (j / 2);
    const int shift = 4 * (j % 2);
    for (int l = 0; l < 32; ++l) {
      int v = (q[l] >> shift) & 0x0F;
      if (qh != nullptr) v |= ((qh[l] >> j) & 1) << 4;
      dst[32 * j + l] = scale * static_cast<float>(v) - offset;
    }
  }
}

void DequantQ4_K(const void* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, dst += kBlockK) {
    const auto blk = LoadBlock<BlockQ4_K>(src, b);
    DequantKWithMins(blk.d, blk.dmin, blk.scales, blk.qs, nullptr, dst);
  }
}

void DequantQ5_K(const void* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, dst += kBlockK) {
    const auto blk = LoadBlock<BlockQ5_K>(src, b);
    DequantKWithMins(blk.d, blk.dmin, blk.scales, blk.qs, blk.qh, dst);
  }
}

void DequantQ6_K(const void* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, dst += kBlockK) {
    const auto blk = LoadBlock<BlockQ6_K>(src, b);
    const float d = F16ToF32(blk.d);
    for (int e = 0; e < kBlockK; ++e) {
      const int h = e / 128, o = e % 128;
      const int low = (blk.ql[64 * h + o % 64] >> (4 * (o / 64))) & 0x0F;
      const int high = (blk.qh[32 * h + o % 32] >> (2 * (o / 32))) & 0x03;
      const float scale = d * static_cast<float>(blk.scales[e / 16]);
      dst[e] = scale * static_cast<float>((low | (high << 4)) - 32);
    }
  }
}

}  // namespace

void DequantizeRow(DType t, const void* src, float* dst, int64_t n) {
  const int64_t n_blocks = n / Info(t).block_size;
  switch (t) {
    case DType::kF32:
      if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = F16ToF32(LoadU16(src, i));
      return;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = BF16ToF32(LoadU16(src, i));
      return;
    case DType::kQ8_0: return DequantQ8_0(src, dst, n_blocks);
    case DType::kQ4_0: return DequantQ4_0(src, dst, n_blocks);
    case DType::kQ4_1: return DequantQ4_1(src, dst, n_blocks);
    case DType::kQ5_0: return DequantQ5_0(src, dst, n_blocks);
    case DType::kQ5_1: return DequantQ5_1(src, dst, n_blocks);
    case DType::kQ4_K: return DequantQ4_K(src, dst, n_blocks);
    case DType::kQ5_K: return DequantQ5_K(src, dst, n_blocks);
    case DType::kQ6_K: return DequantQ6_K(src, dst, n_blocks);
    case DType::kI32: break;
  }
  TL_CHECK_MSG(false, "DequantizeRow: not a weight dtype");
}

}  // namespace tokenlora::kernels::scalar
