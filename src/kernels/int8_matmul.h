// Int8-activation matrix multiply for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K,
// Q5_K and Q6_K weights: the scheme llama.cpp uses for these types, on
// AVX-512 VNNI (vpdpbusd) or AVX2 (vpmaddubsw).
//
// Activations are quantized per block of 32 to int8 (scale = max|x| / 127,
// round half to even, the Q8_0/Q8_1 rule), so each block's dot product is an
// exact integer sum scaled once in f32:
//   Q4_0: y += d_w·d_x·(Σ q_w·q_x − 8·Σ q_x)          (q_w the nibble 0..15)
//   Q8_0: y += d_w·d_x·(Σ (q_w+128)·q_x − 128·Σ q_x)
//   Q4_1: y += d_w·d_x·Σ q_w·q_x + m_w·(d_x·Σ q_x)
//   Q5_0: y += d_w·d_x·(Σ q_w·q_x − 16·Σ q_x)         (q_w 0..31)
//   Q5_1: y += d_w·d_x·Σ q_w·q_x + m_w·(d_x·Σ q_x)    (q_w 0..31)
//   Q4_K: as Q4_1 per 32-element sub-block j, with d_w = d·sc_j and
//         m_w = −dmin·mn_j (both exact in f32: an f16 times a 6-bit integer)
//   Q5_K: as Q5_1 per 32-element sub-block, d_w and m_w as Q4_K
//   Q6_K: two terms per block, one per 16-element sub-block h (h = 0: elements
//         0..15, h = 1: 16..31), each with its own scale d_h = d·sc_h (exact
//         in f32: an f16 times an int8):
//         y += d_h·d_x·(Σ_h q_w·q_x − 32·Σ_h q_x)     (q_w 0..63)
//         the h = 0 terms summed into one f32 accumulator, the h = 1 terms
//         into another, the two added at the end (as Q4_1's offset terms)
// (llama.cpp quantizes K-quant activations per 256 and sums the sub-blocks
// in integers; here every type shares the per-32 activations.)
// This is not f32-exact: results differ from MatMul by the activation
// rounding (relative ~1e-3 per block). Model::Load uses it only when asked.
//
// Weights are repacked once (PackForInt8) into panels of 16 output rows so
// one 512-bit vpdpbusd computes 4 products for each of the 16 rows: per
// 32-element block a panel holds
//   qs: [chunks][16 rows][4 bytes]  Q4_*/Q5_*/Q6_K: 4 chunks, byte = the
//       block's low nibbles (low nibble element 4j+m, high nibble 16+4j+m);
//       Q8_0: 8 chunks of q+128 (element 4j+m)
//   qh: Q5_* only, [16 rows][4 bytes]: bit j of byte 4r+m = the fifth bit
//       of element 4j+m of row r, so quant vector j (chunk layout above) gets
//       its fifth bits by one shift and mask of this vector: (qh >> j) & 1;
//   qc: Q6_K only, the two high bits of each quant as 2-bit crumbs in two
//       [16 rows][4 bytes] vectors: bits 2i..2i+1 of byte 4r+m of vector c
//       = bits 4..5 of element 4j+m of row r, j = 4c + i, so quant vector j
//       gets both its high bits by one shift and mask: (qc_c << (4 − 2i)) & 0x30
//   d:  [16] f16 row scales; Q4_1/Q5_1 also m: [16] f16 row offsets;
//       the K-quants keep their scales as the file does, in integers:
//       Q4_K/Q5_K: [16] u8 sc_j, then [16] u8 mn_j (the 6-bit sub-block scale
//       and min of each row), then an 8-byte slice of the super-block's
//       record [16] f16 d, [16] f16 dmin: block j (0..7) of a super-block
//       holds bytes 8j..8j+7 of it;
//       Q6_K: [16] i8 sc of elements 0..15, then [16] of elements 16..31,
//       then a 4-byte slice (block j: bytes 4j..4j+3) of the super-block's
//       record [16] f16 d;
//       the kernels read a super-block's record once, at its first block,
//       and form d·sc (exact in f32: an f16 times a 6- or 8-bit integer) and
//       −dmin·mn per block
// (the same bytes per block as the GGUF layout, so decode reads no more:
// per row and 32 elements the K-quants read 18.5 (Q4_K), 22.5 (Q5_K) and
// 26.25 (Q6_K) bytes where the file has 18, 22 and 26.25).
// Rows past n_out in the last panel are zero and never written out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/thread_pool.h"
#include "tensor/tensor.h"

namespace tokenlora::kernels {

inline constexpr int64_t kPanelRows = 16;

struct PackedMatrix {
  DType dtype = DType::kQ4_0;
  int64_t n_out = 0;         // rows of the original weight
  int64_t n_in = 0;          // elements per row (multiple of 32; of 256 for the K-quants)
  size_t group_bytes = 0;    // one 32-element block of one panel (qs + scales)
  size_t panel_bytes = 0;    // group_bytes · n_in / 32
  // 64-byte aligned; owned (PackForInt8) or not (PackForInt8Into: a no-op deleter).
  std::unique_ptr<uint8_t[], void (*)(void*)> data{nullptr, nullptr};
  const uint8_t* Panel(int64_t p) const { return data.get() + static_cast<size_t>(p) * panel_bytes; }
  int64_t NumPanels() const { return (n_out + kPanelRows - 1) / kPanelRows; }
};

// True for the weight types the int8 path implements (Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0, Q4_K, Q5_K, Q6_K).
bool Int8Packable(DType t);
// True for the types the AMX prompt kernel implements (Q4_0, Q4_1, Q8_0);
// prompts of the other packable types run the VNNI kernel on AMX machines.
bool Int8AmxSupports(DType t);
// The SIMD kernels this CPU runs: "amx" (AMX tiles for prompts of
// kAmxMinTokens or more, VNNI for the rest), else "vnni" (AVX-512
// F/BW/VL/VNNI), else "avx2" (AVX2 + FMA + F16C), else "" — then the int8
// path would only have its scalar twin, so callers keep f32.
// TOKENLORA_INT8_KERNEL=vnni or =avx2 picks a lesser kernel on a machine that
// has more (to measure or test it). Read once.
const char* Int8KernelName();
// Int8KernelName() is not empty.
bool Int8Accelerated();
// What the CPU supports, whatever was picked (tests run every kernel).
bool CpuHasVnni();
bool CpuHasAvx2();
// AMX-TILE and AMX-INT8 usable here: listed by CPUID, enabled by the OS
// (XCR0, and Linux's per-process permission, requested here) and a probe
// product that does not fault (some VMs list AMX and fault). Read once.
bool CpuHasAmx();
// Prompts of at least this many tokens run on AMX where Int8KernelName() is
// "amx"; fewer (decoding) run the VNNI kernels.
inline constexpr int64_t kAmxMinTokens = 16;
// The kernel a MatMulInt8 of n_tok tokens runs on Int8AmxSupports weights:
// Int8KernelName(), except "vnni" for fewer than kAmxMinTokens tokens where
// that is "amx".
const char* Int8KernelNameFor(int64_t n_tok);
// The same for weights of type t: "vnni" where AMX does not support t.
const char* Int8KernelNameFor(DType t, int64_t n_tok);
// Repacks a [n_out, n_in] weight of an Int8Packable type. Aborts (a broken
// invariant) for other types.
std::unique_ptr<PackedMatrix> PackForInt8(const TensorView& w);
// The same into caller-owned memory: dst holds PackedInt8Bytes(w) bytes (a
// multiple of 64), is 64-byte aligned, and outlives the result. Lets a model
// place all its matrices in one buffer, in the order decoding reads them.
size_t PackedInt8Bytes(const TensorView& w);
std::unique_ptr<PackedMatrix> PackForInt8Into(const TensorView& w, uint8_t* dst);

// y = x·Wᵀ with int8 activations. x: [n_tok, n_in] f32, y: [n_tok, n_out].
// Runs the AMX, VNNI or AVX2 kernels, or the scalar twin under
// TOKENLORA_SIMD=scalar or on CPUs with neither; all give bit-identical
// results.
void MatMulInt8(const PackedMatrix& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool);
// ys[i] = x·Wᵢᵀ for n matrices of one dtype and n_in (q/k/v, gate/up): the
// activations are quantized once and all panels share one parallel region.
// Results are bit-identical to n MatMulInt8 calls.
void MatMulInt8Shared(const PackedMatrix* const* ws, float* const* ys, int n, const float* x,
                      int64_t n_tok, ThreadPool& pool);

namespace scalar {
void MatMulInt8(const PackedMatrix& w, const float* x, int64_t n_tok, float* y);
}  // namespace scalar

namespace internal {

// Activations quantized for one weight type, per token and block of 32.
struct QuantizedActs {
  int64_t n_tok = 0, n_in = 0, n_blocks = 0;  // n_blocks = n_in / 32
  int8_t* q = nullptr;     // [n_tok, n_in]
  float* d = nullptr;      // [n_tok, n_blocks] scale
  int32_t* corr = nullptr; // [n_tok, n_blocks] offset·Σq (8 Q4_0, 16 Q5_0, 128 Q8_0, 0 Q4_1/Q5_1;
                           // Q6_K: 32·Σq of elements 0..15)
  float* s = nullptr;      // [n_tok, n_blocks] d·Σq (used by Q4_1/Q5_1/Q4_K/Q5_K)
  int32_t* corr_hi = nullptr;  // [n_tok, n_blocks] Q6_K only: 32·Σq of elements 16..31
};

// The offset of the unsigned weight quants that corr removes (8 Q4_0, 16
// Q5_0, 128 Q8_0, 32 Q6_K (corr and corr_hi); 0 for the types with a min,
// whose quants are the values).
constexpr int32_t ActOffset(DType t) {
  switch (t) {
    case DType::kQ4_0: return 8;
    case DType::kQ5_0: return 16;
    case DType::kQ8_0: return 128;
    case DType::kQ6_K: return 32;
    default: return 0;
  }
}
// Q4_1, Q5_1, Q4_K and Q5_K: a per-row offset m_w added through QuantizedActs::s.
constexpr bool HasMin(DType t) {
  return t == DType::kQ4_1 || t == DType::kQ5_1 || t == DType::kQ4_K || t == DType::kQ5_K;
}
// Q6_K: two scales per block (elements 0..15 and 16..31), two corrections.
constexpr bool HasHalfScales(DType t) { return t == DType::kQ6_K; }
// The K-quants: integer sub-block scales per block, f16 super-block scales
// in slices (the layout above).
constexpr bool HasSuperScales(DType t) { return t == DType::kQ4_K || t == DType::kQ5_K || t == DType::kQ6_K; }
// Blocks of 32 per K-quant super-block, and the bytes of each block's slice
// of the super-block record (Q4_K/Q5_K: 64-byte d and dmin; Q6_K: 32-byte d).
inline constexpr int64_t kBlocksPerSuper = 8;
constexpr size_t SuperSliceBytes(DType t) { return t == DType::kQ6_K ? 4 : 8; }
// Bytes after the quants of a K-quant block: the 32 sub-block scale bytes,
// then the slice.
constexpr size_t KScaleBytes(DType t) { return 32 + SuperSliceBytes(t); }
// Q5_0, Q5_1 and Q5_K: the qh mask of the fifth bits after the nibbles.
constexpr bool HasFifthBit(DType t) { return t == DType::kQ5_0 || t == DType::kQ5_1 || t == DType::kQ5_K; }
// Q6_K: the two qc vectors of the fifth and sixth bits after the nibbles.
constexpr bool HasHighCrumbs(DType t) { return t == DType::kQ6_K; }
// Bytes of a panel's quants per 32-element block (16 rows): nibbles (256),
// plus the qh bytes (64) or qc bytes (128), or Q8_0's bytes (512). The
// scales follow.
constexpr size_t QsBytes(DType t) {
  return t == DType::kQ8_0 ? 512 : 256 + (HasFifthBit(t) ? 64 : 0) + (HasHighCrumbs(t) ? 128 : 0);
}

// A K-quant super-block's record (int8_matmul.h layout) gathered from the
// slices of its 8 blocks: `first` is its first block's group, `group_bytes`
// the stride. rec: [64] (Q4_K/Q5_K: [16] f16 d, [16] f16 dmin; Q6_K: [16] f16 d).
// (PutSuperRecord in int8_matmul.cc writes it.)
constexpr size_t SuperSliceOffset(DType t) { return QsBytes(t) + 32; }  // the slice, within a block
inline void GatherSuperRecord(DType t, const uint8_t* first, size_t group_bytes, uint8_t rec[64]) {
  const size_t slice = SuperSliceBytes(t), at = SuperSliceOffset(t);
  for (int64_t j = 0; j < kBlocksPerSuper; ++j) {
    __builtin_memcpy(rec + slice * static_cast<size_t>(j), first + static_cast<size_t>(j) * group_bytes + at, slice);
  }
}

// Quantizes tokens [tok_begin, tok_end) of x into a (scalar twin; the VNNI
// version gives identical bytes).
void QuantizeActsScalar(DType t, const float* x, int64_t tok_begin, int64_t tok_end,
                        const QuantizedActs& a);
// Panels [p_begin, p_end) for all tokens (scalar twin of the VNNI kernel).
// `prefetch`: bytes ahead the SIMD kernels prefetch the weights (0: none;
// MatMulInt8 passes StreamPrefetchBytes() for 1-2 tokens, else 0; the scalar
// twin ignores it). It changes no result.
void PanelsScalar(const PackedMatrix& w, const QuantizedActs& a, int64_t p_begin, int64_t p_end,
                  float* y, size_t prefetch);

// The VNNI versions (int8_matmul_vnni.cc); call only when CpuHasVnni().
void QuantizeActsVnni(DType t, const float* x, int64_t tok_begin, int64_t tok_end,
                      const QuantizedActs& a);
void PanelsVnni(const PackedMatrix& w, const QuantizedActs& a, int64_t p_begin, int64_t p_end,
                float* y, size_t prefetch);
// The AMX panels (int8_matmul_amx.cc; quantize with QuantizeActsVnni); call
// only when CpuHasAmx() and Int8AmxSupports(w.dtype). Any n_tok works; worth
// it from kAmxMinTokens on.
void PanelsAmx(const PackedMatrix& w, const QuantizedActs& a, int64_t p_begin, int64_t p_end,
               float* y, size_t prefetch);
// The AVX2 versions (int8_matmul_avx2.cc); call only when CpuHasAvx2().
void QuantizeActsAvx2(DType t, const float* x, int64_t tok_begin, int64_t tok_end,
                      const QuantizedActs& a);
void PanelsAvx2(const PackedMatrix& w, const QuantizedActs& a, int64_t p_begin, int64_t p_end,
                float* y, size_t prefetch);

}  // namespace internal
}  // namespace tokenlora::kernels
