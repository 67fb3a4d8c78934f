// SIMD dequantization, per Highway target: a decoder per block type, shared
// by DequantizeRowT (dequant_simd.cc, the public DequantizeRow, and the
// scratch path of MatMul) and by MatMul's fused decode kernel (matmul-inl.h),
// plus the F16/BF16 row conversions.
//
// Numerics: identical to the scalar twin (dequant_scalar.cc) and to gguf-py,
// bit for bit. Integers are widened to i32 and converted to f32 exactly; the
// products d·q, (d·sc)·q are exact in f32 (see dequant_scalar.cc), so whether
// the compiler or MulAdd fuses the final add makes no difference.
//
// Vectors are capped at 16 f32 lanes so that a vector never straddles a
// 16-element sub-block (Q6_K) or the two nibble halves of a 32-element block.

// Normal include guard for the target-independent part.
#ifndef TOKENLORA_KERNELS_DEQUANT_INL_COMMON_H_
#define TOKENLORA_KERNELS_DEQUANT_INL_COMMON_H_
#include <cstdint>
#include <cstring>

#include "kernels/quant_blocks.h"
#include "tensor/dtype.h"
#endif

// Per-target part: re-included once per target by foreach_target.h.
#if defined(TOKENLORA_KERNELS_DEQUANT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TOKENLORA_KERNELS_DEQUANT_INL_H_
#undef TOKENLORA_KERNELS_DEQUANT_INL_H_
#else
#define TOKENLORA_KERNELS_DEQUANT_INL_H_
#endif

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace tokenlora::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// f16 bits -> f32, inline and branch-light (the out-of-line F16ToF32 would
// cost more than dequantizing the 32 elements it scales). Exact for every
// input: shifting exponent and mantissa into f32 position and multiplying by
// 2^112 rebiases the exponent; for subnormal halves the shifted bits are an
// f32 subnormal and the product is still exact. Inf/NaN are patched.
HWY_INLINE float HalfBitsToF32(uint16_t h) {
  const uint32_t exp_mant = h & 0x7FFFu;
  uint32_t bits = exp_mant << 13;
  float f;
  if (exp_mant >= 0x7C00u) {
    bits |= 0x7F800000u;
    std::memcpy(&f, &bits, 4);
  } else {
    std::memcpy(&f, &bits, 4);
    f *= 0x1p112f;
    std::memcpy(&bits, &f, 4);
  }
  bits |= static_cast<uint32_t>(h & 0x8000u) << 16;
  std::memcpy(&f, &bits, 4);
  return f;
}

// One f16 at p (any alignment) -> f32. x86 targets from AVX2 on have F16C:
// one vcvtph2ps instead of about ten scalar instructions per block scale.
HWY_INLINE float LoadHalf(const uint8_t* p) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  const hn::CappedTag<float, 1> d1;
  const hn::Rebind<hwy::float16_t, decltype(d1)> dh1;
  return hn::GetLane(hn::PromoteTo(d1, hn::LoadU(dh1, reinterpret_cast<const hwy::float16_t*>(p))));
#else
  uint16_t h;
  std::memcpy(&h, p, 2);
  return HalfBitsToF32(h);
#endif
}

using DF = hn::CappedTag<float, 16>;
using DI = hn::Rebind<int32_t, DF>;
using DU8 = hn::Rebind<uint8_t, DF>;
using DI8 = hn::Rebind<int8_t, DF>;

// Lanes(DF) bytes at p widened to i32 lanes.
HWY_INLINE hn::Vec<DI> LoadBytes(const uint8_t* p) {
  return hn::PromoteTo(DI(), hn::LoadU(DU8(), p));
}

// Lanes(d) halves at p -> f32. x86 targets from AVX2 on convert natively
// (F16C). Highway 1.0.3's emulation for the other targets maps inf/NaN halves
// to finite values, so those use the HalfBitsToF32 recipe lane-wise instead.
template <class D>
HWY_INLINE hn::Vec<D> LoadHalves(D df, const uint8_t* p) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  const hn::Rebind<hwy::float16_t, D> dh;
  return hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
#else
  const hn::Rebind<uint32_t, D> du;
  const hn::Rebind<uint16_t, D> du16;
  const auto h = hn::PromoteTo(du, hn::LoadU(du16, reinterpret_cast<const uint16_t*>(p)));
  const auto exp_mant = hn::And(h, hn::Set(du, 0x7FFFu));
  const auto shifted = hn::ShiftLeft<13>(exp_mant);
  const auto finite = hn::Mul(hn::BitCast(df, shifted), hn::Set(df, 0x1p112f));
  const auto inf_nan = hn::BitCast(df, hn::Or(shifted, hn::Set(du, 0x7F800000u)));
  const hn::Rebind<int32_t, D> di;  // signed compare: 1.0.3 lacks u32 Gt on SSE4
  const auto is_inf_nan =
      hn::RebindMask(df, hn::Gt(hn::BitCast(di, exp_mant), hn::Set(di, 0x7BFF)));
  const auto magnitude = hn::BitCast(du, hn::IfThenElse(is_inf_nan, inf_nan, finite));
  const auto sign = hn::ShiftLeft<16>(hn::And(h, hn::Set(du, 0x8000u)));
  return hn::BitCast(df, hn::Or(magnitude, sign));
#endif
}

HWY_INLINE void DequantF16(const uint8_t* src, float* HWY_RESTRICT dst, int64_t n) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(LoadHalves(df, src + 2 * i), df, dst + i);
  for (; i < n; ++i) dst[i] = LoadHalf(src + 2 * i);
}

HWY_INLINE void DequantBF16(const uint8_t* src, float* HWY_RESTRICT dst, int64_t n) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::bfloat16_t, decltype(df)> dbf;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const auto* h = reinterpret_cast<const hwy::bfloat16_t*>(src);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::PromoteTo(df, hn::LoadU(dbf, h + i)), df, dst + i);
  for (; i < n; ++i) {
    uint16_t b;
    std::memcpy(&b, src + 2 * i, 2);
    const uint32_t bits = static_cast<uint32_t>(b) << 16;
    std::memcpy(dst + i, &bits, 4);
  }
}

// Block decoders. Decode(block, sink) calls sink(offset_a, a, offset_b, b)
// with two Lanes(DF)-element vectors of dequantized values at a time (offsets
// = index of their first element within the block) until the block is
// covered. The same decoder feeds DequantizeRowT (sink = store) and the
// decode path of matmul-inl.h (sink = FMA against the activations), so both
// see identical values; handing over independent pairs lets the FMA sink keep
// two accumulator chains, halving the dependency chain of a row.

struct DecoderQ8_0 {
  using Block = BlockQ8_0;
  static constexpr int kElems = kBlock32;
  template <class Sink>
  static HWY_INLINE void Decode(const uint8_t* src, Sink&& sink) {
    const DF df;
    const auto d = hn::Set(df, LoadHalf(src + offsetof(Block, d)));
    const auto* qs = reinterpret_cast<const int8_t*>(src + offsetof(Block, qs));
    for (size_t i = 0; i < kBlock32 / 2; i += hn::Lanes(df)) {
      const auto lo = hn::ConvertTo(df, hn::PromoteTo(DI(), hn::LoadU(DI8(), qs + i)));
      const auto hi = hn::ConvertTo(df, hn::PromoteTo(DI(), hn::LoadU(DI8(), qs + i + 16)));
      sink(i, hn::Mul(lo, d), i + 16, hn::Mul(hi, d));
    }
  }
};

// Q4_0 / Q4_1: element i (< 16) is the low nibble of qs[i], element i + 16 the
// high nibble. kHasMin selects d·q + m (Q4_1) over d·(q − 8) (Q4_0).
template <bool kHasMin, class BlockT>
struct DecoderQ4 {
  using Block = BlockT;
  static constexpr int kElems = kBlock32;
  template <class Sink>
  static HWY_INLINE void Decode(const uint8_t* src, Sink&& sink) {
    const DF df;
    const DI di;
    const auto mask = hn::Set(di, 0x0F);
    const auto bias = hn::Set(di, kHasMin ? 0 : 8);
    const auto d = hn::Set(df, LoadHalf(src + offsetof(Block, d)));
    float m_scalar = 0.0f;
    if constexpr (kHasMin) m_scalar = LoadHalf(src + offsetof(BlockQ4_1, m));
    const auto m = hn::Set(df, m_scalar);
    const uint8_t* qs = src + offsetof(Block, qs);
    for (size_t i = 0; i < kBlock32 / 2; i += hn::Lanes(df)) {
      const auto bytes = LoadBytes(qs + i);
      const auto lo = hn::ConvertTo(df, hn::Sub(hn::And(bytes, mask), bias));
      const auto hi = hn::ConvertTo(df, hn::Sub(hn::ShiftRight<4>(bytes), bias));
      if constexpr (kHasMin) {
        sink(i, hn::MulAdd(d, lo, m), i + 16, hn::MulAdd(d, hi, m));
      } else {
        sink(i, hn::Mul(d, lo), i + 16, hn::Mul(d, hi));
      }
    }
  }
};

// Q5_0 / Q5_1: as Q4 plus bit i of qh as the fifth bit of element i.
template <bool kHasMin, class BlockT>
struct DecoderQ5 {
  using Block = BlockT;
  static constexpr int kElems = kBlock32;
  template <class Sink>
  static HWY_INLINE void Decode(const uint8_t* src, Sink&& sink) {
    const DF df;
    const DI di;
    const hn::Rebind<uint32_t, DF> du;
    const auto mask = hn::Set(di, 0x0F);
    const auto one = hn::Set(du, 1u);
    const auto bias = hn::Set(di, kHasMin ? 0 : 16);
    const auto d = hn::Set(df, LoadHalf(src + offsetof(Block, d)));
    float m_scalar = 0.0f;
    if constexpr (kHasMin) m_scalar = LoadHalf(src + offsetof(BlockQ5_1, m));
    const auto m = hn::Set(df, m_scalar);
    const auto qh = hn::Set(du, LoadQh(src + offsetof(Block, qh)));
    const uint8_t* qs = src + offsetof(Block, qs);
    for (size_t i = 0; i < kBlock32 / 2; i += hn::Lanes(df)) {
      const auto bytes = LoadBytes(qs + i);
      // Fifth bits of elements i.. and i + 16.., moved to bit 4.
      const auto h_lo = hn::ShiftLeft<4>(hn::And(qh >> hn::Iota(du, i), one));
      const auto h_hi = hn::ShiftLeft<4>(hn::And(qh >> hn::Iota(du, i + 16), one));
      const auto q_lo = hn::Or(hn::And(bytes, mask), hn::BitCast(di, h_lo));
      const auto q_hi = hn::Or(hn::ShiftRight<4>(bytes), hn::BitCast(di, h_hi));
      const auto lo = hn::ConvertTo(df, hn::Sub(q_lo, bias));
      const auto hi = hn::ConvertTo(df, hn::Sub(q_hi, bias));
      if constexpr (kHasMin) {
        sink(i, hn::MulAdd(d, lo, m), i + 16, hn::MulAdd(d, hi, m));
      } else {
        sink(i, hn::Mul(d, lo), i + 16, hn::Mul(d, hi));
      }
    }
  }
};

// Q4_K / Q5_K: sub-block j = 2g (low nibbles of qs[32g..]) and 2g + 1 (high
// nibbles); value (d·sc[j])·q − dmin·mn[j].
template <bool kFiveBits, class BlockT>
struct DecoderKWithMins {
  using Block = BlockT;
  static constexpr int kElems = kBlockK;
  template <class Sink>
  static HWY_INLINE void Decode(const uint8_t* src, Sink&& sink) {
    const DF df;
    const DI di;
    const size_t N = hn::Lanes(df);
    const auto mask = hn::Set(di, 0x0F);
    const auto one = hn::Set(di, 1);
    const float d = LoadHalf(src + offsetof(Block, d));
    const float dmin = LoadHalf(src + offsetof(Block, dmin));
    uint8_t sc[8], mn[8];
    UnpackKScales(src + offsetof(Block, scales), sc, mn);
    const uint8_t* qs = src + offsetof(Block, qs);
    for (int g = 0; g < 4; ++g) {  // sub-blocks 2g (low nibbles) and 2g + 1 (high)
      const int j0 = 2 * g, j1 = 2 * g + 1;
      const auto scale0 = hn::Set(df, d * static_cast<float>(sc[j0]));
      const auto scale1 = hn::Set(df, d * static_cast<float>(sc[j1]));
      const auto offset0 = hn::Set(df, dmin * static_cast<float>(mn[j0]));
      const auto offset1 = hn::Set(df, dmin * static_cast<float>(mn[j1]));
      for (size_t l = 0; l < 32; l += N) {
        const auto bytes = LoadBytes(qs + 32 * g + l);
        auto v0 = hn::And(bytes, mask);
        auto v1 = hn::ShiftRight<4>(bytes);
        if constexpr (kFiveBits) {
          const auto high = LoadBytes(src + offsetof(BlockQ5_K, qh) + l);
          v0 = hn::Or(v0, hn::ShiftLeft<4>(hn::And(hn::ShiftRightSame(high, j0), one)));
          v1 = hn::Or(v1, hn::ShiftLeft<4>(hn::And(hn::ShiftRightSame(high, j1), one)));
        }
        sink(32 * j0 + l, hn::MulSub(scale0, hn::ConvertTo(df, v0), offset0),  //
             32 * j1 + l, hn::MulSub(scale1, hn::ConvertTo(df, v1), offset1));
      }
    }
  }
};

// Q6_K: see quant_blocks.h for where the 4 + 2 bits of each element live.
struct DecoderQ6_K {
  using Block = BlockQ6_K;
  static constexpr int kElems = kBlockK;
  template <class Sink>
  static HWY_INLINE void Decode(const uint8_t* src, Sink&& sink) {
    const DF df;
    const DI di;
    const size_t N = hn::Lanes(df);
    const auto mask4 = hn::Set(di, 0x0F);
    const auto mask2 = hn::Set(di, 0x03);
    const auto bias = hn::Set(di, 32);
    // The 16 sub-block scales d·sc_j, computed once per block with vectors.
    const auto d = hn::Set(df, LoadHalf(src + offsetof(Block, d)));
    const auto* sc = reinterpret_cast<const int8_t*>(src + offsetof(Block, scales));
    HWY_ALIGN float scales[16];
    for (size_t j = 0; j < 16; j += N) {
      hn::Store(hn::Mul(d, hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(DI8(), sc + j)))), df,
                scales + j);
    }
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = src + offsetof(Block, ql) + 64 * h;
      const uint8_t* qh = src + offsetof(Block, qh) + 32 * h;
      for (size_t l = 0; l < 32; l += N) {
        // Elements 128·h + 32·s + l for s = 0..3 share the qh bytes.
        const auto high = LoadBytes(qh + l);
        const auto ql_a = LoadBytes(ql + l);       // nibbles of s = 0 (low), 2 (high)
        const auto ql_b = LoadBytes(ql + 32 + l);  // nibbles of s = 1 (low), 3 (high)
        const hn::Vec<DI> low[4] = {hn::And(ql_a, mask4), hn::And(ql_b, mask4),
                                    hn::ShiftRight<4>(ql_a), hn::ShiftRight<4>(ql_b)};
        const hn::Vec<DI> top[4] = {hn::And(high, mask2), hn::And(hn::ShiftRight<2>(high), mask2),
                                    hn::And(hn::ShiftRight<4>(high), mask2),
                                    hn::ShiftRight<6>(high)};
        // N <= 16 divides 16, so all N lanes of a vector share sub-block e / 16.
        auto value = [&](int s, size_t e) HWY_ATTR {
          const auto q = hn::Sub(hn::Or(low[s], hn::ShiftLeft<4>(top[s])), bias);
          return hn::Mul(hn::Set(df, scales[e / 16]), hn::ConvertTo(df, q));
        };
        for (int s = 0; s < 4; s += 2) {
          const size_t e0 = static_cast<size_t>(128 * h + 32 * s) + l, e1 = e0 + 32;
          sink(e0, value(s, e0), e1, value(s + 1, e1));
        }
      }
    }
  }
};

template <class Decoder>
HWY_INLINE void DequantBlocks(const uint8_t* src, float* HWY_RESTRICT dst, int64_t n_blocks) {
  const DF df;
  for (int64_t b = 0; b < n_blocks; ++b) {
    float* out = dst + b * Decoder::kElems;
    Decoder::Decode(src + b * static_cast<int64_t>(sizeof(typename Decoder::Block)),
                    [&](size_t offset_a, hn::Vec<DF> a, size_t offset_b, hn::Vec<DF> b) HWY_ATTR {
                      hn::StoreU(a, df, out + offset_a);
                      hn::StoreU(b, df, out + offset_b);
                    });
  }
}

using DecoderQ4_0 = DecoderQ4<false, BlockQ4_0>;
using DecoderQ4_1 = DecoderQ4<true, BlockQ4_1>;
using DecoderQ5_0 = DecoderQ5<false, BlockQ5_0>;
using DecoderQ5_1 = DecoderQ5<true, BlockQ5_1>;
using DecoderQ4_K = DecoderKWithMins<false, BlockQ4_K>;
using DecoderQ5_K = DecoderKWithMins<true, BlockQ5_K>;

// dst[0..n) = dequantized row; n is a multiple of the block size (checked by callers).
HWY_INLINE void DequantizeRowT(DType t, const void* src_void, float* HWY_RESTRICT dst, int64_t n) {
  const auto* src = static_cast<const uint8_t*>(src_void);
  const int64_t n_blocks = n / Info(t).block_size;
  switch (t) {
    case DType::kF32:
      if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::kF16: return DequantF16(src, dst, n);
    case DType::kBF16: return DequantBF16(src, dst, n);
    case DType::kQ8_0: return DequantBlocks<DecoderQ8_0>(src, dst, n_blocks);
    case DType::kQ4_0: return DequantBlocks<DecoderQ4_0>(src, dst, n_blocks);
    case DType::kQ4_1: return DequantBlocks<DecoderQ4_1>(src, dst, n_blocks);
    case DType::kQ5_0: return DequantBlocks<DecoderQ5_0>(src, dst, n_blocks);
    case DType::kQ5_1: return DequantBlocks<DecoderQ5_1>(src, dst, n_blocks);
    case DType::kQ4_K: return DequantBlocks<DecoderQ4_K>(src, dst, n_blocks);
    case DType::kQ5_K: return DequantBlocks<DecoderQ5_K>(src, dst, n_blocks);
    case DType::kQ6_K: return DequantBlocks<DecoderQ6_K>(src, dst, n_blocks);
    case DType::kI32: return;  // not a weight type; rejected by the callers
  }
}

}  // namespace tokenlora::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
