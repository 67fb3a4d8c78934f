// Block layouts of the ggml quantization formats, byte for byte as they are
// stored in GGUF files (little-endian, no padding). Written from the format
// definitions; every type below is trivially copyable so a row of blocks can
// be read straight out of a memory-mapped file.
//
// Notation: a block holds `kBlock` consecutive elements of one row. `d` and
// `dmin` are IEEE half floats kept as their raw bits (uint16_t) because the
// struct must match the file byte for byte; convert with F16ToF32.
//
//   type  elements  bytes  value of element i
//   Q8_0     32       34   d · qs[i]                       qs: int8
//   Q4_0     32       18   d · (q[i] - 8)                  q: 4 bits
//   Q4_1     32       20   d · q[i] + m                    q: 4 bits
//   Q5_0     32       22   d · (q[i] - 16)                 q: 5 bits
//   Q5_1     32       24   d · q[i] + m                    q: 5 bits
//   Q4_K    256      144   d·sc[j] · q[i] - dmin·mn[j]     q: 4 bits, j = i/32
//   Q5_K    256      176   d·sc[j] · q[i] - dmin·mn[j]     q: 5 bits, j = i/32
//   Q6_K    256      210   d·sc[j] · (q[i] - 32)           q: 6 bits, j = i/16
//
// Nibble order of the 32-element types: byte k of `qs` holds element k in its
// low nibble and element k + 16 in its high nibble. The fifth bit of element i
// (Q5_0/Q5_1) is bit i of the little-endian uint32 `qh`.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tokenlora::kernels {

inline constexpr int kBlock32 = 32;      // elements per Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 block
inline constexpr int kBlockK = 256;      // elements per K-quant super-block
inline constexpr int kKScaleBytes = 12;  // packed 6-bit scales and mins of Q4_K/Q5_K

#pragma pack(push, 1)

struct BlockQ8_0 {
  uint16_t d;           // f16 scale
  int8_t qs[kBlock32];  // [32] signed quants
};

struct BlockQ4_0 {
  uint16_t d;                // f16 scale
  uint8_t qs[kBlock32 / 2];  // [16] nibbles, see header comment
};

struct BlockQ4_1 {
  uint16_t d;                // f16 scale
  uint16_t m;                // f16 offset (the block minimum)
  uint8_t qs[kBlock32 / 2];  // [16] nibbles
};

struct BlockQ5_0 {
  uint16_t d;                // f16 scale
  uint8_t qh[4];             // little-endian uint32: bit i = fifth bit of element i
  uint8_t qs[kBlock32 / 2];  // [16] low nibbles
};

struct BlockQ5_1 {
  uint16_t d;                // f16 scale
  uint16_t m;                // f16 offset
  uint8_t qh[4];             // fifth bits
  uint8_t qs[kBlock32 / 2];  // [16] low nibbles
};

// Q4_K: 8 sub-blocks of 32 elements, each with a 6-bit scale sc[j] and a 6-bit
// min mn[j] packed into `scales` (see UnpackKScales). The 256 nibbles are
// grouped by 64 elements: byte 32·g + l of `qs` holds element 64·g + l in its
// low nibble (sub-block 2g) and element 64·g + 32 + l in its high nibble
// (sub-block 2g + 1).
struct BlockQ4_K {
  uint16_t d;                    // f16 super-block scale of the sub-block scales
  uint16_t dmin;                 // f16 super-block scale of the sub-block mins
  uint8_t scales[kKScaleBytes];  // packed 6-bit sc[8] and mn[8]
  uint8_t qs[kBlockK / 2];       // [128] nibbles
};

// Q5_K: as Q4_K plus a fifth bit per element: bit j of qh[l] is the fifth bit
// of element 32·j + l.
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kBlockK / 8];  // [32] fifth bits
  uint8_t qs[kBlockK / 2];  // [128] low nibbles
};

// Q6_K: 16 sub-blocks of 16 elements with signed 8-bit scales. The block is
// two halves of 128 elements; within half h, element 128·h + o (o in 0..127)
// takes its low 4 bits from ql[64·h + o % 64] (low nibble if o < 64, else high
// nibble) and its top 2 bits from qh[32·h + o % 32] at bit 2·(o / 32).
struct BlockQ6_K {
  uint8_t ql[kBlockK / 2];      // [128] low 4 bits
  uint8_t qh[kBlockK / 4];      // [64] high 2 bits
  int8_t scales[kBlockK / 16];  // [16] signed sub-block scales
  uint16_t d;                   // f16 super-block scale (stored last)
};

#pragma pack(pop)

static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(offsetof(BlockQ6_K, d) == 208);

// The fifth-bit word of Q5_0/Q5_1 (stored as bytes so the struct is unaligned-safe).
inline uint32_t LoadQh(const uint8_t qh[4]) {
  return static_cast<uint32_t>(qh[0]) | (static_cast<uint32_t>(qh[1]) << 8) |
         (static_cast<uint32_t>(qh[2]) << 16) | (static_cast<uint32_t>(qh[3]) << 24);
}

// Unpacks the 12 bytes of Q4_K/Q5_K scales into sc[8] and mn[8] (each 0..63).
// Bytes 0..3 hold sc[0..3] in their low 6 bits, bytes 4..7 hold mn[0..3]; the
// top 2 bits of bytes 0..3 / 4..7 are the top bits of sc[4..7] / mn[4..7],
// whose low 4 bits are the low / high nibbles of bytes 8..11.
inline void UnpackKScales(const uint8_t packed[kKScaleBytes], uint8_t sc[8], uint8_t mn[8]) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = packed[j] & 0x3F;
    mn[j] = packed[j + 4] & 0x3F;
    sc[j + 4] = static_cast<uint8_t>((packed[j + 8] & 0x0F) | ((packed[j] >> 2) & 0x30));
    mn[j + 4] = static_cast<uint8_t>((packed[j + 8] >> 4) | ((packed[j + 4] >> 2) & 0x30));
  }
}

// Inverse of UnpackKScales; sc and mn must be in 0..63.
inline void PackKScales(const uint8_t sc[8], const uint8_t mn[8], uint8_t packed[kKScaleBytes]) {
  for (int j = 0; j < 4; ++j) {
    packed[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] & 0x30) << 2));
    packed[j + 4] = static_cast<uint8_t>(mn[j] | ((mn[j + 4] & 0x30) << 2));
    packed[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0x0F) | ((mn[j + 4] & 0x0F) << 4));
  }
}

}  // namespace tokenlora::kernels
