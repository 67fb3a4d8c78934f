// AVX-512 VNNI kernels of the int8-activation MatMul (layout, numerics and
// scalar twins: int8_matmul.h / int8_matmul.cc).
//
// Highway 1.0.3 reaches no VNNI target, so these functions carry GCC target
// attributes instead of the file being built with -mavx512vnni: nothing else
// in this translation unit (no inline library code) is compiled for AVX-512,
// and the driver calls in only after CpuHasVnni() checked the CPU.
//
// Kernel: a panel of 16 rows × T tokens. Per 32-element block, the 16 rows'
// quants are unpacked into 8 vectors W_j (lane r = 4 unsigned quants of row
// r, elements 4j..4j+3); each token's 4 activation bytes of the same elements
// are broadcast (straight from memory: a load-port uop, leaving the vector
// ports to the arithmetic) and vpdpbusd adds the 4 products into lane r. After the 8
// steps lane r holds the block's exact integer dot product for row r; it is
// converted once and scaled: 8 vpdpbusd + 3 float ops per 512 multiply-adds.
// Q5_0/Q5_1/Q5_K OR each W_j's fifth bits in from the block's qh vector: one
// shift and one vpternlogd per W_j, shared by all tokens; Q6_K ORs its
// fifth and sixth bits in from its two qc crumb vectors, also one shift and
// one vpternlogd per W_j. Q6_K keeps two integer sums per
// block, W_0..W_3 (elements 0..15) and W_4..W_7 (16..31), each scaled by its
// own sub-block scale.
// GCC 12's _mm512_reduce_* helpers start from _mm512_undefined_*(), which
// -Wmaybe-uninitialized reports inside the system header.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "kernels/int8_matmul.h"
#include "kernels/prefetch.h"

#define TL_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c,fma")))

namespace tokenlora::kernels::internal {
namespace {

constexpr int kMaxTok = 8;  // tokens per kernel call: 8 int + 8 float accumulators + 8 W_j

template <DType kType>
constexpr size_t kQsBytes = QsBytes(kType);
template <DType kType>
constexpr bool kHasMin = HasMin(kType);
template <DType kType>
constexpr bool kHalves = HasHalfScales(kType);  // Q6_K

// Bit `from` of each byte of v moved to bit `to`, other bits cleared (the
// 16-bit shifts move no bit across bytes for these distances).
template <int from, int to>
TL_VNNI inline __m512i BitTo(__m512i v) {
  if constexpr (from < to) return _mm512_slli_epi16(v, to - from);
  if constexpr (from == to) return v;
  if constexpr (from > to) return _mm512_srli_epi16(v, from - to);
}

// W_j |= bit j of each qh byte, at bit `to` (4: the fifth bits).
template <int to>
TL_VNNI inline void OrHighBits(const uint8_t* qh_bytes, __m512i w[8]) {
  const __m512i qh = _mm512_loadu_si512(qh_bytes), bit = _mm512_set1_epi8(1 << to);
  w[0] = _mm512_ternarylogic_epi32(w[0], BitTo<0, to>(qh), bit, 0xF8);  // w | (shifted & bit)
  w[1] = _mm512_ternarylogic_epi32(w[1], BitTo<1, to>(qh), bit, 0xF8);
  w[2] = _mm512_ternarylogic_epi32(w[2], BitTo<2, to>(qh), bit, 0xF8);
  w[3] = _mm512_ternarylogic_epi32(w[3], BitTo<3, to>(qh), bit, 0xF8);
  w[4] = _mm512_ternarylogic_epi32(w[4], BitTo<4, to>(qh), bit, 0xF8);
  w[5] = _mm512_ternarylogic_epi32(w[5], BitTo<5, to>(qh), bit, 0xF8);
  w[6] = _mm512_ternarylogic_epi32(w[6], BitTo<6, to>(qh), bit, 0xF8);
  w[7] = _mm512_ternarylogic_epi32(w[7], BitTo<7, to>(qh), bit, 0xF8);
}

// W_j |= bits 4..5 of quant vector j from the two qc crumb vectors (Q6_K).
TL_VNNI inline void OrHighCrumbs(const uint8_t* qc_bytes, __m512i w[8]) {
  const __m512i mask = _mm512_set1_epi8(0x30);
  for (int c = 0; c < 2; ++c) {
    const __m512i qc = _mm512_loadu_si512(qc_bytes + 64 * c);
    __m512i* wc = w + 4 * c;  // crumb i of a byte (bits 2i, 2i+1) to bits 4..5: 16-bit shifts move no
                              // bit of another byte into bits 4..5
    wc[0] = _mm512_ternarylogic_epi32(wc[0], _mm512_slli_epi16(qc, 4), mask, 0xF8);  // w | (shifted & mask)
    wc[1] = _mm512_ternarylogic_epi32(wc[1], _mm512_slli_epi16(qc, 2), mask, 0xF8);
    wc[2] = _mm512_ternarylogic_epi32(wc[2], qc, mask, 0xF8);
    wc[3] = _mm512_ternarylogic_epi32(wc[3], _mm512_srli_epi16(qc, 2), mask, 0xF8);
  }
}

// The 4 activation bytes at p in every 32-bit lane: a broadcast load
// (vpbroadcastd from memory runs on a load port only; a value first held in a
// general register costs two more uops on the vector shuffle port, which the
// kernel needs for its float work).
TL_VNNI inline __m512i BroadcastWord(const int8_t* p) {
  int32_t word;
  std::memcpy(&word, p, 4);
  return _mm512_set1_epi32(word);
}

// v − *c in every lane (vpsubd with an embedded broadcast of c).
TL_VNNI inline __m512i SubBroadcast(__m512i v, const int32_t* c) {
  return _mm512_sub_epi32(v, _mm512_set1_epi32(*c));
}

// `prefetch`: bytes ahead of each group to prefetch (0: none; prefetch.h).
template <DType kType, int T>
TL_VNNI void PanelTokens(const uint8_t* panel, size_t group_bytes, const QuantizedActs& a,
                         int64_t tok0, float* y, int64_t y_stride, __mmask16 row_mask,
                         size_t prefetch) {
  __m512 acc[T], acc_m[T];  // the types with a min add their offset terms, Q6_K its second halves, into acc_m
  for (int t = 0; t < T; ++t) acc[t] = acc_m[t] = _mm512_setzero_ps();
  const __m512i low_nibbles = _mm512_set1_epi8(0x0F);
  [[maybe_unused]] __m512 super_d = _mm512_setzero_ps(), super_m = _mm512_setzero_ps();  // K-quants: this super-block's f16 d and −dmin per row
  for (int64_t b = 0; b < a.n_blocks; ++b) {
    const uint8_t* g = panel + static_cast<size_t>(b) * group_bytes;
    if (prefetch != 0) PrefetchLines(g + prefetch, group_bytes);
    if constexpr (HasSuperScales(kType)) {
      if (b % kBlocksPerSuper == 0) {
        alignas(64) uint8_t rec[64];
        GatherSuperRecord(kType, g, group_bytes, rec);
        super_d = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(rec)));
        if constexpr (kHasMin<kType>) {
          super_m = _mm512_xor_ps(_mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(rec + 32))),
                                  _mm512_set1_ps(-0.0f));
        }
      }
    }
    __m512i w[8];
    if constexpr (kType == DType::kQ8_0) {
      for (int j = 0; j < 8; ++j) w[j] = _mm512_loadu_si512(g + 64 * j);
    } else {
      for (int j = 0; j < 4; ++j) {
        const __m512i packed = _mm512_loadu_si512(g + 64 * j);
        w[j] = _mm512_and_si512(packed, low_nibbles);
        w[j + 4] = _mm512_and_si512(_mm512_srli_epi16(packed, 4), low_nibbles);
      }
      if constexpr (HasFifthBit(kType)) OrHighBits<4>(g + 256, w);
      if constexpr (HasHighCrumbs(kType)) OrHighCrumbs(g + 256, w);
    }
    __m512 dw, mw;
    if constexpr (HasSuperScales(kType)) {
      // d·sc, −dmin·mn (Q6_K: d·sc of both halves), exact in f32.
      const __m128i sc = _mm_loadu_si128(reinterpret_cast<const __m128i*>(g + kQsBytes<kType>));
      const __m128i mn = _mm_loadu_si128(reinterpret_cast<const __m128i*>(g + kQsBytes<kType> + 16));
      if constexpr (kHalves<kType>) {
        dw = _mm512_mul_ps(super_d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc)));
        mw = _mm512_mul_ps(super_d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(mn)));
      } else {
        dw = _mm512_mul_ps(super_d, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(sc)));
        mw = _mm512_mul_ps(super_m, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(mn)));
      }
    } else {
      dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + kQsBytes<kType>)));
      if constexpr (kHasMin<kType>) {
        mw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + kQsBytes<kType> + 32)));
      }
    }
#pragma GCC unroll 8  // acc[] and acc_m[] stay in registers
    for (int t = 0; t < T; ++t) {
      const int64_t k = (tok0 + t) * a.n_blocks + b;
      const int8_t* xq = a.q + (tok0 + t) * a.n_in + b * 32;
      __m512i isum;
      [[maybe_unused]] __m512i isum_hi;  // Q6_K: elements 16..31
      if constexpr (kHalves<kType>) {
        // Two sums in two chains: elements 0..15 (scale dw), 16..31 (scale mw).
        isum = _mm512_setzero_si512();
        isum_hi = _mm512_setzero_si512();
        for (int j = 0; j < 4; ++j) {
          isum = _mm512_dpbusd_epi32(isum, w[j], BroadcastWord(xq + 4 * j));
          isum_hi = _mm512_dpbusd_epi32(isum_hi, w[j + 4], BroadcastWord(xq + 4 * (j + 4)));
        }
        isum = SubBroadcast(isum, a.corr + k);
        isum_hi = SubBroadcast(isum_hi, a.corr_hi + k);
      } else if constexpr (T <= 2) {
        // Few tokens: two chains so the 8 dependent vpdpbusd do not serialize.
        __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
        for (int j = 0; j < 8; j += 2) {
          s0 = _mm512_dpbusd_epi32(s0, w[j], BroadcastWord(xq + 4 * j));
          s1 = _mm512_dpbusd_epi32(s1, w[j + 1], BroadcastWord(xq + 4 * (j + 1)));
        }
        isum = SubBroadcast(_mm512_add_epi32(s0, s1), a.corr + k);
      } else {
        isum = _mm512_setzero_si512();
        for (int j = 0; j < 8; ++j) isum = _mm512_dpbusd_epi32(isum, w[j], BroadcastWord(xq + 4 * j));
        isum = SubBroadcast(isum, a.corr + k);
      }
      const __m512 dx = _mm512_set1_ps(a.d[k]);
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dw, dx), acc[t]);
      if constexpr (kHasMin<kType>) acc_m[t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(a.s[k]), acc_m[t]);
      if constexpr (kHalves<kType>) {
        acc_m[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum_hi), _mm512_mul_ps(mw, dx), acc_m[t]);
      }
    }
  }
  for (int t = 0; t < T; ++t) {
    if constexpr (kHasMin<kType> || kHalves<kType>) acc[t] = _mm512_add_ps(acc[t], acc_m[t]);
    _mm512_mask_storeu_ps(y + (tok0 + t) * y_stride, row_mask, acc[t]);
  }
}

template <DType kType>
TL_VNNI void PanelsT(const PackedMatrix& w, const QuantizedActs& a, int64_t p_begin, int64_t p_end,
                     float* y, size_t pf) {
  for (int64_t p = p_begin; p < p_end; ++p) {
    const uint8_t* panel = w.Panel(p);
    const int64_t rows = w.n_out - p * kPanelRows < kPanelRows ? w.n_out - p * kPanelRows : kPanelRows;
    const __mmask16 mask = static_cast<__mmask16>((1u << rows) - 1u);
    float* yp = y + p * kPanelRows;
    const size_t gb = w.group_bytes;
    int64_t tok = 0;
    for (; tok + kMaxTok <= a.n_tok; tok += kMaxTok) {
      PanelTokens<kType, kMaxTok>(panel, gb, a, tok, yp, w.n_out, mask, pf);
    }
    switch (a.n_tok - tok) {
      case 1: PanelTokens<kType, 1>(panel, gb, a, tok, yp, w.n_out, mask, pf); break;
      case 2: PanelTokens<kType, 2>(panel, gb, a, tok, yp, w.n_out, mask, pf); break;
      case 3: PanelTokens<kType, 3>(panel, gb, a, tok, yp, w.n_out, mask, pf); break;
      case 4: PanelTokens<kType, 4>(panel, gb, a, tok, yp, w.n_out, mask, pf); break;
      case 5: PanelTokens<kType, 5>(panel, gb, a, tok, yp, w.n_out, mask, pf); break;
      case 6: PanelTokens<kType, 6>(panel, gb, a, tok, yp, w.n_out, mask, pf); break;
      case 7: PanelTokens<kType, 7>(panel, gb, a, tok, yp, w.n_out, mask, pf); break;
      default: break;
    }
  }
}

}  // namespace

TL_VNNI void QuantizeActsVnni(DType t, const float* x, int64_t tok_begin, int64_t tok_end,
                              const QuantizedActs& a) {
  const int32_t offset = ActOffset(t);
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  for (int64_t tok = tok_begin; tok < tok_end; ++tok) {
    for (int64_t b = 0; b < a.n_blocks; ++b) {
      const float* xb = x + tok * a.n_in + b * 32;
      const __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16);
      const float amax = _mm512_reduce_max_ps(
          _mm512_max_ps(_mm512_and_ps(x0, abs_mask), _mm512_and_ps(x1, abs_mask)));
      const float d = amax / 127.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      const __m512 vid = _mm512_set1_ps(id);
      // Round half to even (the default MXCSR mode), as std::nearbyint.
      const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, vid));
      const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, vid));
      int8_t* q = a.q + tok * a.n_in + b * 32;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtepi32_epi8(q0));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtepi32_epi8(q1));
      const int32_t sum_lo = _mm512_reduce_add_epi32(q0), sum_hi = _mm512_reduce_add_epi32(q1);
      const int32_t sum = sum_lo + sum_hi;
      const int64_t k = tok * a.n_blocks + b;
      a.d[k] = d;
      a.s[k] = d * static_cast<float>(sum);
      if (HasHalfScales(t)) {
        a.corr[k] = offset * sum_lo;
        a.corr_hi[k] = offset * sum_hi;
      } else {
        a.corr[k] = offset * sum;
      }
    }
  }
}

TL_VNNI void PanelsVnni(const PackedMatrix& w, const QuantizedActs& a, int64_t p_begin,
                        int64_t p_end, float* y, size_t prefetch) {
  switch (w.dtype) {
    case DType::kQ4_0: return PanelsT<DType::kQ4_0>(w, a, p_begin, p_end, y, prefetch);
    case DType::kQ4_1: return PanelsT<DType::kQ4_1>(w, a, p_begin, p_end, y, prefetch);
    case DType::kQ5_0: return PanelsT<DType::kQ5_0>(w, a, p_begin, p_end, y, prefetch);
    case DType::kQ5_1: return PanelsT<DType::kQ5_1>(w, a, p_begin, p_end, y, prefetch);
    case DType::kQ8_0: return PanelsT<DType::kQ8_0>(w, a, p_begin, p_end, y, prefetch);
    case DType::kQ4_K: return PanelsT<DType::kQ4_K>(w, a, p_begin, p_end, y, prefetch);
    case DType::kQ5_K: return PanelsT<DType::kQ5_K>(w, a, p_begin, p_end, y, prefetch);
    case DType::kQ6_K: return PanelsT<DType::kQ6_K>(w, a, p_begin, p_end, y, prefetch);
    default: return;
  }
}

}  // namespace tokenlora::kernels::internal
