// Per-target tile kernels of MatMul (driver and dispatch: matmul.cc).
//
// A tile is up to kTileRows output features for all tokens. Two ways to
// compute one:
//  * Decode (n_tok <= kDecodeMaxTok): one weight row at a time, in memory
//    order; each block is decoded into registers (dequant-inl.h decoders) and
//    multiplied straight into one accumulator per token. Nothing is stored:
//    writing and re-reading f32 scratch costs about as much as decoding (on
//    Zen 4 a 64-byte store per 16 weights takes 2 cycles; Q4_0 measured 0.17
//    cycles per weight fused vs 0.26 via scratch).
//  * Prefill: dequantize the tile's rows once into f32 scratch (F32 weights
//    are read in place), then for each block of tokens whose activations fit
//    in L2 run a register-blocked micro-kernel over kMicroRows × kMicroTok
//    (row, token) pairs: each step loads kMicroRows weight vectors and
//    kMicroTok activation vectors for kMicroRows·kMicroTok FMAs.
//
// Numerics: every y[t, o] is an f32 dot product of the dequantized row with
// x[t, :] — lane-wise FMA accumulation, a tree over lanes, then any tail
// elements in order — so it matches the scalar twin up to summation order.

#ifndef TOKENLORA_KERNELS_MATMUL_INL_COMMON_H_
#define TOKENLORA_KERNELS_MATMUL_INL_COMMON_H_
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/prefetch.h"
#include "tensor/dtype.h"

namespace tokenlora::kernels {
// Output features per tile: the unit of threading (a tile writes 16
// consecutive floats = one 64-byte line of each y row) and of dequantization.
inline constexpr int64_t kTileRows = 16;
// Activations of one token block are kept under this many bytes (L2-resident).
inline constexpr int64_t kTokBlockBytes = 128 * 1024;
}  // namespace tokenlora::kernels
#endif

#if defined(TOKENLORA_KERNELS_MATMUL_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TOKENLORA_KERNELS_MATMUL_INL_H_
#undef TOKENLORA_KERNELS_MATMUL_INL_H_
#else
#define TOKENLORA_KERNELS_MATMUL_INL_H_
#endif

#include "hwy/highway.h"
#include "kernels/dequant-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tokenlora::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

inline constexpr int kMicroRows = 4;
// 4×6 accumulators plus 6 + 1 operand vectors fit the 32 registers of
// AVX-512/NEON/SVE (measured on Zen 4: 4×6 runs 155-180 GFLOP/s on 2
// threads where 4×4 ran 147-164); x86 targets before AVX-512 have 16 vector
// registers.
inline constexpr int kMicroTok = (HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3) ? 2 : 6;
// Up to this many tokens take the decode path (two accumulator chains per
// token for block types, four for f32/f16/bf16 rows).
inline constexpr int kDecodeMaxTok = 4;

// y[t·y_stride + r] = Σ_i w[r·w_stride + i] · x[t·x_stride + i]
// for r < kR, t < kT.
//   w: [kR, n_in] rows of f32 weights, row stride w_stride
//   x: [kT, n_in] activations, row stride x_stride
//   y: [kT, ...] outputs, row stride y_stride (one column per weight row)
template <int kR, int kT>
HWY_INLINE void MicroKernel(const float* HWY_RESTRICT w, size_t w_stride,
                            const float* HWY_RESTRICT x, size_t x_stride, size_t n_in,
                            float* HWY_RESTRICT y, size_t y_stride) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const size_t N = hn::Lanes(d);
  V acc[kR][kT];
  for (int r = 0; r < kR; ++r) {
    for (int t = 0; t < kT; ++t) acc[r][t] = hn::Zero(d);
  }
  size_t i = 0;
  for (; i + N <= n_in; i += N) {
    V xv[kT];
    for (int t = 0; t < kT; ++t) xv[t] = hn::LoadU(d, x + t * x_stride + i);
    for (int r = 0; r < kR; ++r) {
      const V wv = hn::LoadU(d, w + r * w_stride + i);
      for (int t = 0; t < kT; ++t) acc[r][t] = hn::MulAdd(wv, xv[t], acc[r][t]);
    }
  }
  for (int r = 0; r < kR; ++r) {
    for (int t = 0; t < kT; ++t) {
      float sum = hn::GetLane(hn::SumOfLanes(d, acc[r][t]));
      for (size_t j = i; j < n_in; ++j) sum += w[r * w_stride + j] * x[t * x_stride + j];
      y[t * y_stride + r] = sum;
    }
  }
}

// MicroKernel with run-time extents (rows <= kMicroRows, toks <= kMicroTok).
template <int kR>
HWY_INLINE void MicroKernelRows(int toks, const float* w, size_t w_stride, const float* x,
                                size_t x_stride, size_t n_in, float* y, size_t y_stride) {
  switch (toks) {
    case 1: return MicroKernel<kR, 1>(w, w_stride, x, x_stride, n_in, y, y_stride);
    case 2: return MicroKernel<kR, 2>(w, w_stride, x, x_stride, n_in, y, y_stride);
    default: break;
  }
  if constexpr (kMicroTok >= 4) {
    if (toks == 3) return MicroKernel<kR, 3>(w, w_stride, x, x_stride, n_in, y, y_stride);
    if (toks == 4) return MicroKernel<kR, 4>(w, w_stride, x, x_stride, n_in, y, y_stride);
  }
  if constexpr (kMicroTok >= 6) {
    if (toks == 5) return MicroKernel<kR, 5>(w, w_stride, x, x_stride, n_in, y, y_stride);
    return MicroKernel<kR, 6>(w, w_stride, x, x_stride, n_in, y, y_stride);
  }
}

HWY_INLINE void MicroKernelAny(int rows, int toks, const float* w, size_t w_stride, const float* x,
                               size_t x_stride, size_t n_in, float* y, size_t y_stride) {
  switch (rows) {
    case 1: return MicroKernelRows<1>(toks, w, w_stride, x, x_stride, n_in, y, y_stride);
    case 2: return MicroKernelRows<2>(toks, w, w_stride, x, x_stride, n_in, y, y_stride);
    case 3: return MicroKernelRows<3>(toks, w, w_stride, x, x_stride, n_in, y, y_stride);
    default: return MicroKernelRows<4>(toks, w, w_stride, x, x_stride, n_in, y, y_stride);
  }
}

// Prefill micro-kernel over a tile stored transposed (outer products, no
// horizontal sums): y[t·y_stride + r] = Σ_i wt[i·kTileRows + r]·x[t·x_stride + i]
// for r < n_rows, t < kT. A step loads the 16 rows' weights of input i (one
// AVX-512 vector) and multiplies them by x[t, i] broadcast for kT tokens.
//   wt: [n_in, kTileRows] the tile's weights transposed (rows past n_rows zero)
//   x:  [kT, n_in] activations, row stride x_stride
//   y:  [kT, ...] outputs, row stride y_stride; only n_rows columns written
template <int kT>
HWY_INLINE void MicroKernelT(const float* HWY_RESTRICT wt, const float* HWY_RESTRICT x, size_t x_stride,
                             size_t n_in, float* HWY_RESTRICT y, size_t y_stride, int n_rows) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const size_t N = hn::Lanes(d);
  constexpr size_t kRV = kTileRows / hn::MaxLanes(hn::ScalableTag<float>()) > 0
                             ? kTileRows / hn::MaxLanes(hn::ScalableTag<float>()) : 1;
  V acc[kT][kRV];
  for (int t = 0; t < kT; ++t) {
    for (size_t v = 0; v < kRV; ++v) acc[t][v] = hn::Zero(d);
  }
  for (size_t i = 0; i < n_in; ++i) {
    V w[kRV];
    for (size_t v = 0; v < kRV; ++v) w[v] = hn::Load(d, wt + i * kTileRows + v * N);
    for (int t = 0; t < kT; ++t) {
      const V xb = hn::Set(d, x[t * x_stride + i]);
      for (size_t v = 0; v < kRV; ++v) acc[t][v] = hn::MulAdd(w[v], xb, acc[t][v]);
    }
  }
  if (n_rows == kTileRows) {
    for (int t = 0; t < kT; ++t) {
      for (size_t v = 0; v < kRV; ++v) hn::StoreU(acc[t][v], d, y + t * y_stride + v * N);
    }
    return;
  }
  HWY_ALIGN float row[kTileRows];  // a partial tile: the columns past n_rows belong to the next tile
  for (int t = 0; t < kT; ++t) {
    for (size_t v = 0; v < kRV; ++v) hn::Store(acc[t][v], d, row + v * N);
    for (int r = 0; r < n_rows; ++r) y[t * y_stride + r] = row[r];
  }
}

// From this many tokens on, prefill tiles are transposed and run
// MicroKernelT, whose outer products need no horizontal sums (MicroKernel
// spends ~13% of its time in them); the transposition is paid once per tile
// and call. Microbenchmarks, 2 threads, f32 path on F16 and F32 weights, the
// four SmolLM2 shapes, alternated binaries, a fast phase: 512 tokens 184-285
// -> 254-291 GFLOP/s (F16 207-222 -> 256-291); at 64 tokens MicroKernel
// stays ahead (256-286 against 225-266), so fewer tokens keep it.
inline constexpr int64_t kTransposedMinTok = 256;

// wt[(i0 + c)·kTileRows + r] = rows[r][i0 + c] for r, c < 16: one 16×16
// block of the tile transposed. AVX-512: in registers, 64 shuffles per 256
// floats (unpack, shuffle within 128-bit lanes, then across lanes twice);
// other targets element by element.
HWY_INLINE void TransposeBlock16(const float* const* rows, int64_t i0, float* HWY_RESTRICT wt) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(rows[i] + i0);
  for (int k = 0; k < 8; ++k) {
    t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
  for (int k = 0; k < 4; ++k) {
    r[4 * k + 0] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], 0x44);
    r[4 * k + 1] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], 0xEE);
    r[4 * k + 2] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0x44);
    r[4 * k + 3] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0xEE);
  }
  for (int k = 0; k < 4; ++k) {
    t[k] = _mm512_shuffle_f32x4(r[k], r[k + 4], 0x88);
    t[k + 4] = _mm512_shuffle_f32x4(r[k], r[k + 4], 0xDD);
    t[k + 8] = _mm512_shuffle_f32x4(r[k + 8], r[k + 12], 0x88);
    t[k + 12] = _mm512_shuffle_f32x4(r[k + 8], r[k + 12], 0xDD);
  }
  for (int k = 0; k < 8; ++k) {
    r[k] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0x88);
    r[k + 8] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0xDD);
  }
  for (int c = 0; c < 16; ++c) _mm512_store_ps(wt + (i0 + c) * kTileRows, r[c]);
#else
  for (int64_t r = 0; r < kTileRows; ++r) {
    for (int64_t c = 0; c < 16; ++c) wt[(i0 + c) * kTileRows + r] = rows[r][i0 + c];
  }
#endif
}

// Tokens per MicroKernelT call: kMicroTokT accumulators (×16/N vectors)
// and the weight vectors fit the register file.
inline constexpr int kMicroTokT = (HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3) ? 6 : 16;

// MicroKernelT over `toks` tokens: kMicroTokT at a time, the rest by 4, 2, 1.
HWY_INLINE void MicroKernelTAny(int toks, const float* wt, const float* x, size_t x_stride, size_t n_in, float* y,
                                size_t y_stride, int n_rows) {
  int t = 0;
  for (; t + kMicroTokT <= toks; t += kMicroTokT) {
    MicroKernelT<kMicroTokT>(wt, x + t * x_stride, x_stride, n_in, y + t * y_stride, y_stride, n_rows);
  }
  for (; t + 4 <= toks; t += 4) MicroKernelT<4>(wt, x + t * x_stride, x_stride, n_in, y + t * y_stride, y_stride, n_rows);
  for (; t + 2 <= toks; t += 2) MicroKernelT<2>(wt, x + t * x_stride, x_stride, n_in, y + t * y_stride, y_stride, n_rows);
  for (; t < toks; ++t) MicroKernelT<1>(wt, x + t * x_stride, x_stride, n_in, y + t * y_stride, y_stride, n_rows);
}

// Decode path, one weight row at a time: y[t·y_stride] = Σ_i w[i]·x[t·n_in + i]
// for t < kT, decoding the row's blocks in registers.
//   w: one row of n_in / Decoder::kElems blocks
//   x: [kT, n_in] activations
// Rows are walked in memory order so the weights arrive as one sequential
// stream: interleaving 4 rows block by block (4 short streams) measured
// 5.5 GB/s from DRAM on this Zen 4 VM against 18 GB/s for one row at a time.
// Two accumulator chains per token (the decoders hand over vector pairs);
// out-of-order execution overlaps what remains of a row's chain with the
// decoding of the next row. `prefetch`: bytes ahead to prefetch (0: none;
// see prefetch.h); the stream runs on past the row into the next ones.
template <class Decoder, int kT>
HWY_INLINE void DecodeRowBlocks(const uint8_t* HWY_RESTRICT w, const float* HWY_RESTRICT x,
                                size_t n_in, float* HWY_RESTRICT y, size_t y_stride,
                                size_t prefetch) {
  const DF df;  // the decoders' vector type (at most 16 lanes)
  using V = hn::Vec<DF>;
  V acc_a[kT], acc_b[kT];  // two chains per token, fed by the decoder's pairs
  for (int t = 0; t < kT; ++t) acc_a[t] = acc_b[t] = hn::Zero(df);
  constexpr size_t kBlockBytes = sizeof(typename Decoder::Block);
  const size_t n_blocks = n_in / Decoder::kElems;
  for (size_t b = 0; b < n_blocks; ++b) {
    if (prefetch != 0) PrefetchLines(w + b * kBlockBytes + prefetch, kBlockBytes);
    const float* xb = x + b * Decoder::kElems;
    Decoder::Decode(
        w + b * kBlockBytes, [&](size_t offset_a, V wa, size_t offset_b, V wb) HWY_ATTR {
          for (int t = 0; t < kT; ++t) {
            acc_a[t] = hn::MulAdd(wa, hn::LoadU(df, xb + t * n_in + offset_a), acc_a[t]);
            acc_b[t] = hn::MulAdd(wb, hn::LoadU(df, xb + t * n_in + offset_b), acc_b[t]);
          }
        });
  }
  for (int t = 0; t < kT; ++t)
    y[t * y_stride] = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc_a[t], acc_b[t])));
}

// The same for F32/F16/BF16 rows (any n_in: the tail is done in scalar).
template <DType kType, int kT>
HWY_INLINE void DecodeRowPlain(const uint8_t* HWY_RESTRICT w, const float* HWY_RESTRICT x,
                               size_t n_in, float* HWY_RESTRICT y, size_t y_stride,
                               size_t prefetch) {
  const DF df;
  using V = hn::Vec<DF>;
  const size_t N = hn::Lanes(df);
  constexpr size_t kBytes = kType == DType::kF32 ? 4 : 2;
  auto load = [&](size_t i) HWY_ATTR -> V {
    if constexpr (kType == DType::kF32) return hn::LoadU(df, reinterpret_cast<const float*>(w) + i);
    if constexpr (kType == DType::kF16) return LoadHalves(df, w + 2 * i);
    const hn::Rebind<hwy::bfloat16_t, DF> dbf;
    return hn::PromoteTo(df, hn::LoadU(dbf, reinterpret_cast<const hwy::bfloat16_t*>(w) + i));
  };
  V acc[kT], acc_b[kT];
  for (int t = 0; t < kT; ++t) acc[t] = acc_b[t] = hn::Zero(df);
  size_t i = 0;
  {
    // Four chains per token while whole groups of 4 vectors last: cache-
    // resident rows are bound by the FMA latency (measured, alternating
    // binaries: f16/bf16/f32 hot +3-18%). The same order for every kT, so a
    // token's result does not depend on the batch it is decoded in.
    V acc_c[kT], acc_d[kT];
    for (int t = 0; t < kT; ++t) acc_c[t] = acc_d[t] = hn::Zero(df);
    for (; i + 4 * N <= n_in; i += 4 * N) {
      if (prefetch != 0) PrefetchLines(w + kBytes * i + prefetch, 4 * N * kBytes);
      const V wa = load(i), wb = load(i + N), wc = load(i + 2 * N), wd = load(i + 3 * N);
      for (int t = 0; t < kT; ++t) {
        const float* xt = x + t * n_in + i;
        acc[t] = hn::MulAdd(wa, hn::LoadU(df, xt), acc[t]);
        acc_b[t] = hn::MulAdd(wb, hn::LoadU(df, xt + N), acc_b[t]);
        acc_c[t] = hn::MulAdd(wc, hn::LoadU(df, xt + 2 * N), acc_c[t]);
        acc_d[t] = hn::MulAdd(wd, hn::LoadU(df, xt + 3 * N), acc_d[t]);
      }
    }
    for (int t = 0; t < kT; ++t) {
      acc[t] = hn::Add(acc[t], acc_c[t]);
      acc_b[t] = hn::Add(acc_b[t], acc_d[t]);
    }
  }
  for (; i + 2 * N <= n_in; i += 2 * N) {
    if (prefetch != 0) PrefetchLines(w + kBytes * i + prefetch, 2 * N * kBytes);
    const V wa = load(i), wb = load(i + N);
    for (int t = 0; t < kT; ++t) {
      acc[t] = hn::MulAdd(wa, hn::LoadU(df, x + t * n_in + i), acc[t]);
      acc_b[t] = hn::MulAdd(wb, hn::LoadU(df, x + t * n_in + i + N), acc_b[t]);
    }
  }
  for (int t = 0; t < kT; ++t) acc[t] = hn::Add(acc[t], acc_b[t]);
  for (; i + N <= n_in; i += N) {
    const V wv = load(i);
    for (int t = 0; t < kT; ++t) acc[t] = hn::MulAdd(wv, hn::LoadU(df, x + t * n_in + i), acc[t]);
  }
  float tail[kT] = {};
  if (i < n_in) {
    HWY_ALIGN float rest[16] = {};  // the last n_in − i (< N <= 16) weights
    DequantizeRowT(kType, w + kBytes * i, rest, static_cast<int64_t>(n_in - i));
    for (size_t j = i; j < n_in; ++j) {
      for (int t = 0; t < kT; ++t) tail[t] += rest[j - i] * x[t * n_in + j];
    }
  }
  for (int t = 0; t < kT; ++t) y[t * y_stride] = hn::GetLane(hn::SumOfLanes(df, acc[t])) + tail[t];
}

template <int kT>
HWY_INLINE void DecodeRow(DType t, const uint8_t* w, const float* x, size_t n_in, float* y,
                          size_t y_stride, size_t pf) {
  switch (t) {
    case DType::kF32: return DecodeRowPlain<DType::kF32, kT>(w, x, n_in, y, y_stride, pf);
    case DType::kF16: return DecodeRowPlain<DType::kF16, kT>(w, x, n_in, y, y_stride, pf);
    case DType::kBF16: return DecodeRowPlain<DType::kBF16, kT>(w, x, n_in, y, y_stride, pf);
    case DType::kQ8_0: return DecodeRowBlocks<DecoderQ8_0, kT>(w, x, n_in, y, y_stride, pf);
    case DType::kQ4_0: return DecodeRowBlocks<DecoderQ4_0, kT>(w, x, n_in, y, y_stride, pf);
    case DType::kQ4_1: return DecodeRowBlocks<DecoderQ4_1, kT>(w, x, n_in, y, y_stride, pf);
    case DType::kQ5_0: return DecodeRowBlocks<DecoderQ5_0, kT>(w, x, n_in, y, y_stride, pf);
    case DType::kQ5_1: return DecodeRowBlocks<DecoderQ5_1, kT>(w, x, n_in, y, y_stride, pf);
    case DType::kQ4_K: return DecodeRowBlocks<DecoderQ4_K, kT>(w, x, n_in, y, y_stride, pf);
    case DType::kQ5_K: return DecodeRowBlocks<DecoderQ5_K, kT>(w, x, n_in, y, y_stride, pf);
    case DType::kQ6_K: return DecodeRowBlocks<DecoderQ6_K, kT>(w, x, n_in, y, y_stride, pf);
    case DType::kI32: return;  // rejected by MatMul
  }
}

// Decode path for a tile (n_tok <= kDecodeMaxTok): rows in memory order.
template <int kT>
HWY_INLINE void DecodeTile(DType t, const uint8_t* w, size_t row_bytes, int64_t n_rows,
                           const float* x, size_t n_in, float* y, size_t y_stride, size_t pf) {
  for (int64_t r = 0; r < n_rows; ++r) {
    DecodeRow<kT>(t, w + static_cast<size_t>(r) * row_bytes, x, n_in, y + r, y_stride, pf);
  }
}

// One tile: y[t, o] for o < n_rows (relative to the tile) and all tokens.
//   w:       [n_rows, row_bytes] weight rows in dtype `t`, first row of the tile
//   x:       [n_tok, n_in] f32 activations
//   y:       [n_tok, y_stride] f32 outputs, pointing at the tile's first column
//   scratch: [2·kTileRows, scratch_stride] f32, 64-byte aligned, thread-local
//   prefetch: bytes ahead the decode path prefetches (0: none; prefetch.h)
//   row_invariant: every token group of up to kDecodeMaxTok takes the decode
//   path, whose summation order is the same for any token count, so a row's
//   result does not depend on n_tok (MatMulRowInvariant)
HWY_INLINE void MatMulTileT(DType t, const uint8_t* w, size_t row_bytes, int64_t n_rows,
                            int64_t n_in, const float* x, int64_t n_tok, float* y, int64_t y_stride,
                            float* HWY_RESTRICT scratch, int64_t scratch_stride, size_t prefetch,
                            bool row_invariant = false) {
  if (row_invariant && n_tok > kDecodeMaxTok) {
    // The tile's rows stay in L1 across the token groups.
    for (int64_t tb = 0; tb < n_tok; tb += kDecodeMaxTok) {
      MatMulTileT(t, w, row_bytes, n_rows, n_in, x + tb * n_in, std::min<int64_t>(kDecodeMaxTok, n_tok - tb),
                  y + tb * y_stride, y_stride, scratch, scratch_stride, 0);
    }
    return;
  }
  if (n_tok <= kDecodeMaxTok) {
    const size_t n = static_cast<size_t>(n_in), ys = static_cast<size_t>(y_stride);
    switch (n_tok) {
      case 1: return DecodeTile<1>(t, w, row_bytes, n_rows, x, n, y, ys, prefetch);
      case 2: return DecodeTile<2>(t, w, row_bytes, n_rows, x, n, y, ys, prefetch);
      case 3: return DecodeTile<3>(t, w, row_bytes, n_rows, x, n, y, ys, prefetch);
      default: return DecodeTile<4>(t, w, row_bytes, n_rows, x, n, y, ys, prefetch);
    }
  }
  if (n_tok >= kTransposedMinTok) {
    // The tile's rows in f32 (scratch rows 0..15; F32 weights read in
    // place), then transposed in 16×16 blocks (L1-resident) into wt =
    // scratch rows 16.. as [n_in, kTileRows]; rows past n_rows are zero.
    float* HWY_RESTRICT wt = scratch + kTileRows * scratch_stride;
    const float* rows[kTileRows];
    for (int64_t r = 0; r < kTileRows; ++r) {
      float* dst = scratch + r * scratch_stride;
      rows[r] = dst;
      if (r >= n_rows) {
        std::fill(dst, dst + n_in, 0.0f);
      } else if (t == DType::kF32) {
        rows[r] = reinterpret_cast<const float*>(w + static_cast<size_t>(r) * row_bytes);
      } else {
        DequantizeRowT(t, w + static_cast<size_t>(r) * row_bytes, dst, n_in);
      }
    }
    int64_t i0 = 0;
    for (; i0 + 16 <= n_in; i0 += 16) TransposeBlock16(rows, i0, wt);
    for (int64_t r = 0; r < kTileRows; ++r) {
      for (int64_t i = i0; i < n_in; ++i) wt[i * kTileRows + r] = rows[r][i];
    }
    const int64_t tok_block =
        std::max<int64_t>(kMicroTokT, kTokBlockBytes / (n_in * static_cast<int64_t>(sizeof(float))) /
                                          kMicroTokT * kMicroTokT);
    for (int64_t tb = 0; tb < n_tok; tb += tok_block) {
      const int toks = static_cast<int>(std::min(n_tok, tb + tok_block) - tb);
      MicroKernelTAny(toks, wt, x + tb * n_in, static_cast<size_t>(n_in), static_cast<size_t>(n_in),
                      y + tb * y_stride, static_cast<size_t>(y_stride), static_cast<int>(n_rows));
    }
    return;
  }
  const float* wf = scratch;
  size_t w_stride = static_cast<size_t>(scratch_stride);
  if (t == DType::kF32) {
    wf = reinterpret_cast<const float*>(w);
    w_stride = static_cast<size_t>(n_in);
  } else {
    for (int64_t r = 0; r < n_rows; ++r) {
      DequantizeRowT(t, w + static_cast<size_t>(r) * row_bytes, scratch + r * scratch_stride, n_in);
    }
  }
  const int64_t tok_block =
      std::max<int64_t>(kMicroTok, kTokBlockBytes / (n_in * static_cast<int64_t>(sizeof(float))) /
                                       kMicroTok * kMicroTok);
  for (int64_t tb = 0; tb < n_tok; tb += tok_block) {
    const int64_t tb_end = std::min(n_tok, tb + tok_block);
    for (int64_t r = 0; r < n_rows; r += kMicroRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kMicroRows, n_rows - r));
      for (int64_t tok = tb; tok < tb_end; tok += kMicroTok) {
        const int toks = static_cast<int>(std::min<int64_t>(kMicroTok, tb_end - tok));
        MicroKernelAny(rows, toks, wf + static_cast<size_t>(r) * w_stride, w_stride, x + tok * n_in,
                       static_cast<size_t>(n_in), static_cast<size_t>(n_in), y + tok * y_stride + r,
                       static_cast<size_t>(y_stride));
      }
    }
  }
}

}  // namespace tokenlora::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
