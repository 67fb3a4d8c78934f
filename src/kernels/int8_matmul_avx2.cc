// AVX2 kernels of the int8-activation MatMul, for CPUs without AVX-512 VNNI
// (layout, numerics and scalar twins: int8_matmul.h / int8_matmul.cc). Like
// int8_matmul_vnni.cc they carry GCC target attributes and are entered only
// after a run-time CPU check.
//
// A 64-byte chunk of a panel is two 256-bit halves (rows 0-7, rows 8-15);
// lane r of a half holds 4 quants of one row. vpmaddubsw multiplies the
// unsigned quants by the broadcast signed activation bytes and adds pairs
// into 16-bit lanes, vpmaddwd with ones adds the pairs into 32-bit lanes:
//  * Q4_0/Q4_1: quants 0..15, so even all 8 steps of a block fit a 16-bit
//    lane (8·2·15·127 = 30480 < 32767): one vpmaddwd per block and half;
//  * Q5_0/Q5_1/Q5_K: quants 0..31 (the fifth bits shifted out of the
//    block's qh bytes and ORed into the nibbles), so only 4 steps fit
//    (4·2·31·127 = 31496): two vpmaddwd per block and half;
//  * Q6_K: quants 0..63 (fifth and sixth bits from two qc crumb vectors), so 2
//    steps fit (2·2·63·127 = 32004): four vpmaddwd per block and half, the
//    sums of steps 0..3 and 4..7 kept apart for the two sub-block scales;
//  * Q8_0: quants are stored +128; the sign trick (|w| times x with w's sign)
//    keeps each product pair within 16 bits (2·128·127 = 32512), and the sum
//    is Σ w·x directly, which equals the scalar twin's Σ (w+128)·x − 128·Σ x.
// The integer sums are exact, so the results are bit-identical to the twin.
#include <immintrin.h>

#include <cstring>
#include <vector>

#include "kernels/int8_matmul.h"
#include "kernels/prefetch.h"

#define TL_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace tokenlora::kernels::internal {
namespace {

template <DType kType>
constexpr size_t kQsBytes = QsBytes(kType);
template <DType kType>
constexpr bool kHasMin = HasMin(kType);

// Bit j of each byte of qh moved to bit `to` (4: the fifth bits of quant
// vector j, int8_matmul.h), other bits cleared. 16-bit
// shifts: bit `to` of a byte comes from bit j of the same byte for j in 0..7.
template <int j, int to>
TL_AVX2 inline __m256i HighBits(__m256i qh) {
  const __m256i bit = _mm256_set1_epi8(1 << to);
  if constexpr (j < to) return _mm256_and_si256(_mm256_slli_epi16(qh, to - j), bit);
  if constexpr (j == to) return _mm256_and_si256(qh, bit);
  if constexpr (j > to) return _mm256_and_si256(_mm256_srli_epi16(qh, j - to), bit);
}

// W_j |= bit j of each qh byte at bit `to`.
template <int to>
TL_AVX2 inline void OrHighBits(const uint8_t* qh_bytes, __m256i w[8]) {
  const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh_bytes));
  w[0] = _mm256_or_si256(w[0], HighBits<0, to>(qh));
  w[1] = _mm256_or_si256(w[1], HighBits<1, to>(qh));
  w[2] = _mm256_or_si256(w[2], HighBits<2, to>(qh));
  w[3] = _mm256_or_si256(w[3], HighBits<3, to>(qh));
  w[4] = _mm256_or_si256(w[4], HighBits<4, to>(qh));
  w[5] = _mm256_or_si256(w[5], HighBits<5, to>(qh));
  w[6] = _mm256_or_si256(w[6], HighBits<6, to>(qh));
  w[7] = _mm256_or_si256(w[7], HighBits<7, to>(qh));
}

// W_j |= bits 4..5 of quant vector j from the two qc crumb vectors (Q6_K;
// qc_bytes: this half's 32 bytes of the first vector).
TL_AVX2 inline void OrHighCrumbs(const uint8_t* qc_bytes, __m256i w[8]) {
  const __m256i mask = _mm256_set1_epi8(0x30);
  for (int c = 0; c < 2; ++c) {
    const __m256i qc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qc_bytes + 64 * c));
    __m256i* wc = w + 4 * c;  // crumb i of a byte to bits 4..5 (no bit of another byte lands there)
    wc[0] = _mm256_or_si256(wc[0], _mm256_and_si256(_mm256_slli_epi16(qc, 4), mask));
    wc[1] = _mm256_or_si256(wc[1], _mm256_and_si256(_mm256_slli_epi16(qc, 2), mask));
    wc[2] = _mm256_or_si256(wc[2], _mm256_and_si256(qc, mask));
    wc[3] = _mm256_or_si256(wc[3], _mm256_and_si256(_mm256_srli_epi16(qc, 2), mask));
  }
}

// The 4 activation bytes at p in every 32-bit lane, as a broadcast load
// (a load-port uop; staging the block's words in registers or on the stack
// costs vector-port uops or store-reload latency).
TL_AVX2 inline __m256i BroadcastWord(const int8_t* p) {
  int32_t word;
  std::memcpy(&word, p, 4);
  return _mm256_set1_epi32(word);
}

TL_AVX2 inline int32_t HorizontalSum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

TL_AVX2 inline float HorizontalMax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// The quants of rows 8·half .. 8·half + 7 of one panel block g (h = 32·half)
// as the kernel's 8 vectors: W_j lane r = elements 4j..4j+3 of row r.
template <DType kType>
TL_AVX2 inline void UnpackHalf(const uint8_t* g, size_t h, __m256i w[8]) {
  const __m256i low_nibbles = _mm256_set1_epi8(0x0F);
  if constexpr (kType == DType::kQ8_0) {
    for (int j = 0; j < 8; ++j) {
      const __m256i u = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 64 * j + h));
      w[j] = _mm256_xor_si256(u, _mm256_set1_epi8(static_cast<char>(0x80)));  // back to signed
    }
  } else {
    for (int j = 0; j < 4; ++j) {
      const __m256i packed = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 64 * j + h));
      w[j] = _mm256_and_si256(packed, low_nibbles);
      w[j + 4] = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_nibbles);
    }
    if constexpr (HasFifthBit(kType)) OrHighBits<4>(g + 256 + h, w);
    if constexpr (HasHighCrumbs(kType)) OrHighCrumbs(g + 256 + h, w);
  }
}

// Rows 8·half .. 8·half + 7 of one panel, tokens tok0 .. tok0 + T − 1.
// kPre: the quants come from `unpacked` ([n_blocks][8][64], UnpackPanel)
// instead of being unpacked here (prompts: once per panel, not per 2 tokens).
// `prefetch`: bytes ahead of each group to prefetch (0: none; prefetch.h).
template <DType kType, int T, bool kPre = false>
TL_AVX2 void HalfPanelTokens(const uint8_t* panel, size_t group_bytes, int half, const QuantizedActs& a,
                             int64_t tok0, float* y, int64_t y_stride, int rows, size_t prefetch,
                             const uint8_t* unpacked = nullptr) {
  __m256 acc[T], acc_m[T];
  for (int t = 0; t < T; ++t) acc[t] = acc_m[t] = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi16(1);
  const size_t h = static_cast<size_t>(half) * 32;
  [[maybe_unused]] __m256 super_d = _mm256_setzero_ps(), super_m = _mm256_setzero_ps();  // K-quants: this super-block's f16 d and −dmin, rows of this half
  for (int64_t b = 0; b < a.n_blocks; ++b) {
    const uint8_t* g = panel + static_cast<size_t>(b) * group_bytes;
    if (prefetch != 0) PrefetchLines(g + prefetch, group_bytes);
    if constexpr (HasSuperScales(kType)) {
      if (b % kBlocksPerSuper == 0) {
        alignas(32) uint8_t rec[64];
        GatherSuperRecord(kType, g, group_bytes, rec);
        super_d = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(rec + 16 * half)));
        if constexpr (kHasMin<kType>) {
          super_m = _mm256_xor_ps(_mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(rec + 32 + 16 * half))),
                                  _mm256_set1_ps(-0.0f));
        }
      }
    }
    __m256i w[8];
    if constexpr (kPre) {
      const uint8_t* u = unpacked + static_cast<size_t>(b) * 512 + h;
      for (int j = 0; j < 8; ++j) w[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(u + 64 * j));
    } else {
      UnpackHalf<kType>(g, h, w);
    }
    __m256 dw, mw = _mm256_setzero_ps();
    if constexpr (HasSuperScales(kType)) {
      // d·sc, −dmin·mn (Q6_K: d·sc of both halves), exact in f32.
      const __m128i sc = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(g + kQsBytes<kType> + 8 * half));
      const __m128i mn = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(g + kQsBytes<kType> + 16 + 8 * half));
      if constexpr (HasHalfScales(kType)) {
        dw = _mm256_mul_ps(super_d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc)));
        mw = _mm256_mul_ps(super_d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(mn)));
      } else {
        dw = _mm256_mul_ps(super_d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sc)));
        mw = _mm256_mul_ps(super_m, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(mn)));
      }
    } else {
      dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g + kQsBytes<kType> + 16 * half)));
      if constexpr (kHasMin<kType>) {
        mw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g + kQsBytes<kType> + 32 + 16 * half)));
      }
    }
    for (int t = 0; t < T; ++t) {
      const int64_t k = (tok0 + t) * a.n_blocks + b;
      const int8_t* xq = a.q + (tok0 + t) * a.n_in + b * 32;
      __m256i isum;
      [[maybe_unused]] __m256i isum_hi;  // Q6_K: steps 4..7 (elements 16..31)
      if constexpr (HasHalfScales(kType)) {
        __m256i p[4];  // steps 2i and 2i + 1 in 16 bits: |sum| <= 2·2·63·127 = 32004
        for (int i = 0; i < 4; ++i) {
          p[i] = _mm256_add_epi16(_mm256_maddubs_epi16(w[2 * i], BroadcastWord(xq + 4 * (2 * i))),
                                  _mm256_maddubs_epi16(w[2 * i + 1], BroadcastWord(xq + 4 * (2 * i + 1))));
        }
        isum = _mm256_add_epi32(_mm256_madd_epi16(p[0], ones), _mm256_madd_epi16(p[1], ones));
        isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(a.corr[k]));
        isum_hi = _mm256_add_epi32(_mm256_madd_epi16(p[2], ones), _mm256_madd_epi16(p[3], ones));
        isum_hi = _mm256_sub_epi32(isum_hi, _mm256_set1_epi32(a.corr_hi[k]));
      } else if constexpr (kType == DType::kQ8_0) {
        isum = _mm256_setzero_si256();
        for (int j = 0; j < 8; ++j) {
          const __m256i x = BroadcastWord(xq + 4 * j);
          const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w[j], w[j]), _mm256_sign_epi8(x, w[j]));
          isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, ones));
        }
      } else if constexpr (HasFifthBit(kType)) {
        __m256i lo = _mm256_maddubs_epi16(w[0], BroadcastWord(xq));
        __m256i hi = _mm256_maddubs_epi16(w[4], BroadcastWord(xq + 16));
        for (int j = 1; j < 4; ++j) {
          lo = _mm256_add_epi16(lo, _mm256_maddubs_epi16(w[j], BroadcastWord(xq + 4 * j)));
          hi = _mm256_add_epi16(hi, _mm256_maddubs_epi16(w[j + 4], BroadcastWord(xq + 4 * (j + 4))));
        }
        isum = _mm256_add_epi32(_mm256_madd_epi16(lo, ones), _mm256_madd_epi16(hi, ones));
        isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(a.corr[k]));
      } else {
        __m256i p16 = _mm256_maddubs_epi16(w[0], BroadcastWord(xq));
        for (int j = 1; j < 8; ++j) p16 = _mm256_add_epi16(p16, _mm256_maddubs_epi16(w[j], BroadcastWord(xq + 4 * j)));
        isum = _mm256_sub_epi32(_mm256_madd_epi16(p16, ones), _mm256_set1_epi32(a.corr[k]));
      }
      const __m256 dx = _mm256_set1_ps(a.d[k]);
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, dx), acc[t]);
      if constexpr (kHasMin<kType>) acc_m[t] = _mm256_fmadd_ps(mw, _mm256_set1_ps(a.s[k]), acc_m[t]);
      if constexpr (HasHalfScales(kType)) {
        acc_m[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum_hi), _mm256_mul_ps(mw, dx), acc_m[t]);
      }
    }
  }
  for (int t = 0; t < T; ++t) {
    if constexpr (kHasMin<kType> || HasHalfScales(kType)) acc[t] = _mm256_add_ps(acc[t], acc_m[t]);
    float* out = y + (tok0 + t) * y_stride + 8 * half;
    if (rows >= 8) {
      _mm256_storeu_ps(out, acc[t]);
    } else {
      alignas(32) float tmp[8];
      _mm256_store_ps(tmp, acc[t]);
      for (int r = 0; r < rows; ++r) out[r] = tmp[r];
    }
  }
}

// All blocks of a panel unpacked: [n_blocks][8][64] (both halves).
template <DType kType>
TL_AVX2 void UnpackPanel(const uint8_t* panel, size_t group_bytes, int64_t n_blocks, size_t prefetch,
                         uint8_t* out) {
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* g = panel + static_cast<size_t>(b) * group_bytes;
    if (prefetch != 0) PrefetchLines(g + prefetch, group_bytes);
    uint8_t* o = out + static_cast<size_t>(b) * 512;
    for (size_t h : {size_t{0}, size_t{32}}) {
      __m256i w[8];
      UnpackHalf<kType>(g, h, w);
      for (int j = 0; j < 8; ++j) _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 64 * j + h), w[j]);
    }
  }
}

// Prompts of at least this many tokens unpack each panel once (Q4/Q5/K-quants;
// Q8_0's quants need no unpacking): the per-block unpacking then costs less
// than redoing it for every pair of tokens.
constexpr int64_t kUnpackMinTok = 6;

template <DType kType>
TL_AVX2 void PanelsT(const PackedMatrix& w, const QuantizedActs& a, int64_t p_begin, int64_t p_end, float* y,
                     size_t prefetch) {
  if constexpr (kType != DType::kQ8_0) {
    if (a.n_tok >= kUnpackMinTok) {
      thread_local std::vector<uint8_t> unpacked;  // grows to the widest n_in, then stays
      const size_t bytes = static_cast<size_t>(a.n_blocks) * 512;
      if (unpacked.size() < bytes) unpacked.resize(bytes);
      for (int64_t p = p_begin; p < p_end; ++p) {
        UnpackPanel<kType>(w.Panel(p), w.group_bytes, a.n_blocks, prefetch, unpacked.data());
        const int64_t rows = w.n_out - p * kPanelRows < kPanelRows ? w.n_out - p * kPanelRows : kPanelRows;
        for (int half = 0; half < 2 && 8 * half < rows; ++half) {
          const int half_rows = static_cast<int>(rows - 8 * half);
          float* yp = y + p * kPanelRows;
          int64_t tok = 0;
          for (; tok + 2 <= a.n_tok; tok += 2) {
            HalfPanelTokens<kType, 2, true>(w.Panel(p), w.group_bytes, half, a, tok, yp, w.n_out, half_rows, 0,
                                            unpacked.data());
          }
          if (tok < a.n_tok) {
            HalfPanelTokens<kType, 1, true>(w.Panel(p), w.group_bytes, half, a, tok, yp, w.n_out, half_rows, 0,
                                            unpacked.data());
          }
        }
      }
      return;
    }
  }
  // The first half's pass is the one that streams each panel in.
  for (int64_t p = p_begin; p < p_end; ++p) {
    const int64_t rows = w.n_out - p * kPanelRows < kPanelRows ? w.n_out - p * kPanelRows : kPanelRows;
    for (int half = 0; half < 2 && 8 * half < rows; ++half) {
      const int half_rows = static_cast<int>(rows - 8 * half);
      float* yp = y + p * kPanelRows;
      int64_t tok = 0;
      for (; tok + 2 <= a.n_tok; tok += 2) {
        HalfPanelTokens<kType, 2>(w.Panel(p), w.group_bytes, half, a, tok, yp, w.n_out, half_rows,
                                  half == 0 ? prefetch : 0);
      }
      if (tok < a.n_tok) {
        HalfPanelTokens<kType, 1>(w.Panel(p), w.group_bytes, half, a, tok, yp, w.n_out, half_rows,
                                  half == 0 ? prefetch : 0);
      }
    }
  }
}

}  // namespace

TL_AVX2 void QuantizeActsAvx2(DType t, const float* x, int64_t tok_begin, int64_t tok_end,
                              const QuantizedActs& a) {
  const int32_t offset = ActOffset(t);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t tok = tok_begin; tok < tok_end; ++tok) {
    for (int64_t b = 0; b < a.n_blocks; ++b) {
      const float* xb = x + tok * a.n_in + b * 32;
      __m256 v[4];
      __m256 m = _mm256_setzero_ps();
      for (int i = 0; i < 4; ++i) {
        v[i] = _mm256_loadu_ps(xb + 8 * i);
        m = _mm256_max_ps(m, _mm256_and_ps(v[i], abs_mask));
      }
      const float amax = HorizontalMax(m);
      const float d = amax / 127.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      const __m256 vid = _mm256_set1_ps(id);
      __m256i q[4];
      // Round half to even (the default MXCSR mode), as std::nearbyint.
      for (int i = 0; i < 4; ++i) q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], vid));
      const int32_t sum_lo = HorizontalSum(_mm256_add_epi32(q[0], q[1]));
      const int32_t sum_hi = HorizontalSum(_mm256_add_epi32(q[2], q[3]));
      const int32_t sum = sum_lo + sum_hi;
      // Pack 32 int32 (all within ±127) into 32 bytes in element order.
      const __m256i p16a = _mm256_packs_epi32(q[0], q[1]), p16b = _mm256_packs_epi32(q[2], q[3]);
      const __m256i p8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p16a, p16b), order);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(a.q + tok * a.n_in + b * 32), p8);
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

TL_AVX2 void PanelsAvx2(const PackedMatrix& w, const QuantizedActs& a, int64_t p_begin, int64_t p_end,
                        float* y, size_t prefetch) {
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
