// AMX kernels of the int8-activation MatMul for prompts (layout, numerics and
// scalar twins: int8_matmul.h / int8_matmul.cc).
//
// One TDPBSSD (or TDPBSUD for Q4_1) multiplies a tile of 16 tokens × 32
// activation bytes (one block) by a tile of the block's weights for the 16
// rows of a panel, in the VNNI order the panels already use (8 rows of 16 × 4
// bytes): 8192 multiply-adds per instruction, 64 times what one vpdpbusd
// does. Each block has its own scales, so every block's 16×16 int32 tile is
// stored and scaled in f32 with AVX-512, exactly as the VNNI kernel scales
// its lanes: acc[t] = fma(float(isum), d_w · d_x[t], acc[t]). The integer
// sums equal the scalar twin's (Q4_0 and Q8_0 weights are unpacked to signed
// bytes, which folds in the offset the other kernels subtract as `corr`), so
// results are bit-identical to it.
//
// Tokens go in passes of 64 (4 groups of 16); per pass, the weights of two
// panels at a time are unpacked into a thread-local tile buffer (Q4: nibbles
// to bytes; Q4_0 minus 8, Q8_0 back to signed) and reused by the pass's token
// groups, two at a time. A last group of fewer than 16 tokens is copied into
// a zero-padded buffer so no tile load reads past the activations.
//
// GCC 12's AMX intrinsics tell the compiler neither that ldtilecfg reads the
// whole 64-byte configuration (its operand is one pointer's 8 bytes: stores
// to the rest can be dropped, which crashes llama.cpp built with GCC 12) nor
// that tilestored writes memory; the wrappers below are inline assembly with
// a "memory" clobber instead.
// GCC 12's _mm512_cvtph_ps / _mm512_cvtepi32_ps start from
// _mm512_undefined_*(), which -Wmaybe-uninitialized reports inside the header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cpuid.h>
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/int8_matmul.h"

#define TL_AMX_AVX __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c,fma")))

// Tile register numbers must be immediates: macros.
#define TL_TILE_LOAD(tmm, base, stride) \
  __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #tmm ::"r"(base), "r"(static_cast<long>(stride)) : "memory")
#define TL_TILE_STORE(tmm, base, stride) \
  __asm__ volatile("tilestored %%tmm" #tmm ", (%0,%1,1)" ::"r"(base), "r"(static_cast<long>(stride)) : "memory")
#define TL_TILE_ZERO(tmm) __asm__ volatile("tilezero %%tmm" #tmm ::: "memory")
#define TL_TILE_DPBSSD(c, a, b) __asm__ volatile("tdpbssd %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::: "memory")
#define TL_TILE_DPBSUD(c, a, b) __asm__ volatile("tdpbsud %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::: "memory")

namespace tokenlora::kernels::internal {
namespace {

constexpr int kGroup = 16;           // tokens per A tile
constexpr int kBlockBytes = 32;      // activation bytes per block (A tile columns)
constexpr int kTileBBytes = 8 * 64;  // one block's unpacked weights for a panel
constexpr int kTileSums = kGroup * kPanelRows;  // int32 sums (or f32 accumulators) per C tile
constexpr int kChunk = 4;                       // blocks whose products are stored before scaling
constexpr int64_t kChunkGroups = 4;             // token groups per pass over the panels

// The palette-1 configuration: tmm0/tmm1 activations of two token groups (16
// × 32 bytes), tmm2/tmm3 weights of two panels (8 × 64 bytes), tmm4..tmm7
// the four int32 products (16 × 16; tmm4 + 2·group + panel).
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

void LoadTileConfig() {
  TileConfig cfg;
  for (int t : {0, 1}) cfg.rows[t] = kGroup, cfg.colsb[t] = kBlockBytes;
  for (int t : {2, 3}) cfg.rows[t] = 8, cfg.colsb[t] = 64;
  for (int t : {4, 5, 6, 7}) cfg.rows[t] = kGroup, cfg.colsb[t] = 64;
  __asm__ volatile("ldtilecfg %0" ::"m"(cfg) : "memory");
}

void ReleaseTiles() { __asm__ volatile("tilerelease" ::: "memory"); }

// 16 tokens' quantized activations: q rows of q_stride bytes, d and s rows of
// d_stride floats (QuantizedActs, or the zero-padded copy of a last group).
struct TokenGroup {
  const int8_t* q;
  int64_t q_stride;
  const float *d, *s;
  int64_t d_stride;
  int64_t tok0;  // first token (row of y)
  int n_valid;   // tokens to write (16, or fewer in a last group)
};

// A panel and its unpacked weights.
struct PanelTiles {
  const uint8_t* panel;
  const uint8_t* tiles;  // [n_blocks][8][64]
  int64_t row0;          // first output row
  __mmask16 mask;        // its real rows
};

// Per-thread scratch.
struct AmxScratch {
  std::vector<uint8_t> tiles;          // two panels' unpacked weights (+ alignment)
  std::vector<int8_t> tail_q;          // [16][n_in] last group's activations, zero-padded
  std::vector<float> tail_d, tail_s;   // [16][n_blocks], zero-padded
  alignas(64) int32_t sums[kChunk][4][kTileSums];  // a chunk of blocks' four products
  alignas(64) float acc[4][kTileSums];        // f32 accumulators of the four products
};

// One panel's blocks as B tiles: row j of block b holds bytes 4r..4r+3 =
// elements 4j..4j+3 of panel row r (signed for Q4_0/Q8_0, 0..15 for Q4_1).
template <DType kType>
TL_AMX_AVX void UnpackPanel(const uint8_t* panel, size_t group_bytes, int64_t n_blocks, uint8_t* out) {
  const __m512i low = _mm512_set1_epi8(0x0F);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* g = panel + static_cast<size_t>(b) * group_bytes;
    uint8_t* o = out + b * kTileBBytes;
    if constexpr (kType == DType::kQ8_0) {
      const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
      for (int j = 0; j < 8; ++j) {
        _mm512_store_si512(o + 64 * j, _mm512_xor_si512(_mm512_loadu_si512(g + 64 * j), bias));
      }
    } else {
      const __m512i eight = _mm512_set1_epi8(kType == DType::kQ4_0 ? 8 : 0);
      for (int j = 0; j < 4; ++j) {
        const __m512i packed = _mm512_loadu_si512(g + 64 * j);
        const __m512i lo = _mm512_and_si512(packed, low);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(packed, 4), low);
        _mm512_store_si512(o + 64 * j, _mm512_sub_epi8(lo, eight));
        _mm512_store_si512(o + 64 * (j + 4), _mm512_sub_epi8(hi, eight));
      }
    }
  }
}

// A block's 16 f16 row scales (or Q4_1 offsets) as f32.
TL_AMX_AVX inline __m512 RowScales(const uint8_t* f16s) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(f16s)));
}

// acc[t] = fma(float(sums[t]), dw · d[t], acc[t]) for the 16 tokens of one
// block's product: the VNNI kernel's arithmetic, in the same order.
TL_AMX_AVX inline void ScaleSums(const int32_t* sums, __m512 dw, const float* d, int64_t d_stride,
                                 __m512* acc) {
  for (int t = 0; t < kGroup; ++t) {
    const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(d[t * d_stride]));
    const __m512 isum = _mm512_cvtepi32_ps(_mm512_load_si512(sums + 16 * t));
    acc[t] = _mm512_fmadd_ps(isum, scale, acc[t]);
  }
}

// The int32 products of block b for up to 2 token groups × 2 panels, stored
// to sums[2·group + panel]. Tile instructions of one block wait on each other
// (a store on its product, a product on its loads), so four independent
// products per block keep the tile unit busy.
template <DType kType>
TL_AMX_AVX inline void BlockProducts(const TokenGroup* g, int ng, const PanelTiles* pt, int np, int64_t b,
                                     int32_t (*sums)[kTileSums]) {
#define TL_DP(c, a, bt)                  \
  do {                                   \
    TL_TILE_ZERO(c);                     \
    if constexpr (kType == DType::kQ4_1) \
      TL_TILE_DPBSUD(c, a, bt);          \
    else                                 \
      TL_TILE_DPBSSD(c, a, bt);          \
  } while (0)
  TL_TILE_LOAD(0, g[0].q + b * kBlockBytes, g[0].q_stride);
  TL_TILE_LOAD(2, pt[0].tiles + b * kTileBBytes, 64);
  if (ng == 2) TL_TILE_LOAD(1, g[1].q + b * kBlockBytes, g[1].q_stride);
  if (np == 2) TL_TILE_LOAD(3, pt[1].tiles + b * kTileBBytes, 64);
  TL_DP(4, 0, 2);
  if (np == 2) TL_DP(5, 0, 3);
  if (ng == 2) {
    TL_DP(6, 1, 2);
    if (np == 2) TL_DP(7, 1, 3);
  }
#undef TL_DP
  TL_TILE_STORE(4, sums[0], 64);
  if (np == 2) TL_TILE_STORE(5, sums[1], 64);
  if (ng == 2) {
    TL_TILE_STORE(6, sums[2], 64);
    if (np == 2) TL_TILE_STORE(7, sums[3], 64);
  }
}

// y rows of up to 2 token groups × columns of up to 2 panels.
template <DType kType>
TL_AMX_AVX void GroupsTimesPanels(const TokenGroup* g, int ng, const PanelTiles* pt, int np,
                                  size_t group_bytes, int64_t n_blocks, AmxScratch& s, float* y,
                                  int64_t y_stride) {
  constexpr size_t kScaleOffset = kType == DType::kQ8_0 ? 512 : 256;
  std::memset(s.acc, 0, sizeof(s.acc));
  // Blocks go in chunks: first the tile products of the chunk's blocks (the
  // tile unit pipelines independent products), then each product's scaling
  // with its 16 accumulators held in registers across the chunk.
  for (int64_t c0 = 0; c0 < n_blocks; c0 += kChunk) {
    const int nc = static_cast<int>(std::min<int64_t>(kChunk, n_blocks - c0));
    for (int k = 0; k < nc; ++k) BlockProducts<kType>(g, ng, pt, np, c0 + k, s.sums[k]);
    for (int gi = 0; gi < ng; ++gi) {
      for (int pi = 0; pi < np; ++pi) {
        float* acc_mem = s.acc[2 * gi + pi];
        __m512 acc[kGroup];
        for (int t = 0; t < kGroup; ++t) acc[t] = _mm512_load_ps(acc_mem + 16 * t);
        for (int k = 0; k < nc; ++k) {
          const int64_t b = c0 + k;
          const __m512 dw = RowScales(pt[pi].panel + static_cast<size_t>(b) * group_bytes + kScaleOffset);
          ScaleSums(s.sums[k][2 * gi + pi], dw, g[gi].d + b, g[gi].d_stride, acc);
        }
        for (int t = 0; t < kGroup; ++t) _mm512_store_ps(acc_mem + 16 * t, acc[t]);
      }
    }
  }
  for (int gi = 0; gi < ng; ++gi) {
    for (int pi = 0; pi < np; ++pi) {
      const float* acc = s.acc[2 * gi + pi];
      float* yo = y + g[gi].tok0 * y_stride + pt[pi].row0;
      if constexpr (kType == DType::kQ4_1) {
        // The offset terms Σ_b m_w · (d_x Σq_x), summed apart as the twin does.
        __m512 acc_m[kGroup];
        for (int t = 0; t < kGroup; ++t) acc_m[t] = _mm512_setzero_ps();
        for (int64_t b = 0; b < n_blocks; ++b) {
          const __m512 mw = RowScales(pt[pi].panel + static_cast<size_t>(b) * group_bytes + kScaleOffset + 32);
          for (int t = 0; t < kGroup; ++t) {
            acc_m[t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(g[gi].s[t * g[gi].d_stride + b]), acc_m[t]);
          }
        }
        for (int t = 0; t < g[gi].n_valid; ++t) {
          _mm512_mask_storeu_ps(yo + t * y_stride, pt[pi].mask, _mm512_add_ps(_mm512_load_ps(acc + 16 * t), acc_m[t]));
        }
      } else {
        for (int t = 0; t < g[gi].n_valid; ++t) {
          _mm512_mask_storeu_ps(yo + t * y_stride, pt[pi].mask, _mm512_load_ps(acc + 16 * t));
        }
      }
    }
  }
}

template <DType kType>
TL_AMX_AVX void PanelsT(const PackedMatrix& w, const QuantizedActs& a, int64_t p_begin, int64_t p_end,
                        float* y) {
  thread_local AmxScratch scratch;
  const int64_t nb = a.n_blocks;
  const size_t panel_tile_bytes = static_cast<size_t>(nb * kTileBBytes);
  if (scratch.tiles.size() < 2 * panel_tile_bytes + 64) scratch.tiles.resize(2 * panel_tile_bytes + 64);
  uint8_t* tiles = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(scratch.tiles.data()) + 63) &
                                              ~uintptr_t{63});
  // The token groups: full ones in place, a last partial one padded.
  const int64_t n_full = a.n_tok / kGroup * kGroup;
  const int tail = static_cast<int>(a.n_tok - n_full);
  if (tail > 0) {
    scratch.tail_q.assign(static_cast<size_t>(kGroup * a.n_in), 0);
    scratch.tail_d.assign(static_cast<size_t>(kGroup * nb), 0.0f);
    scratch.tail_s.assign(static_cast<size_t>(kGroup * nb), 0.0f);
    std::memcpy(scratch.tail_q.data(), a.q + n_full * a.n_in, static_cast<size_t>(tail * a.n_in));
    std::memcpy(scratch.tail_d.data(), a.d + n_full * nb, static_cast<size_t>(tail * nb) * sizeof(float));
    std::memcpy(scratch.tail_s.data(), a.s + n_full * nb, static_cast<size_t>(tail * nb) * sizeof(float));
  }
  auto group_at = [&](int64_t tok0) -> TokenGroup {
    if (tok0 < n_full) return {a.q + tok0 * a.n_in, a.n_in, a.d + tok0 * nb, a.s + tok0 * nb, nb, tok0, kGroup};
    return {scratch.tail_q.data(), a.n_in, scratch.tail_d.data(), scratch.tail_s.data(), nb, tok0, tail};
  };
  const int64_t n_groups = (a.n_tok + kGroup - 1) / kGroup;
  LoadTileConfig();
  // Tokens in passes of kChunkGroups groups (64 tokens), so the y rows one
  // panel writes stay within 64 pages: the 49152-row head over 512 tokens
  // writes rows 192 KiB apart, and one pass over all 512 tokens ran it at
  // 224 cycles per tile product against 110 in passes of 64 (576x1536
  // matrices: 79 -> 69; single thread).
  for (int64_t g0 = 0; g0 < n_groups; g0 += kChunkGroups) {
    const int64_t g_end = std::min(n_groups, g0 + kChunkGroups);
    for (int64_t p = p_begin; p < p_end; p += 2) {
      const int np = p + 1 < p_end ? 2 : 1;
      PanelTiles pt[2];
      for (int pi = 0; pi < np; ++pi) {
        const int64_t rows = std::min<int64_t>(kPanelRows, w.n_out - (p + pi) * kPanelRows);
        uint8_t* unpacked = tiles + pi * panel_tile_bytes;
        UnpackPanel<kType>(w.Panel(p + pi), w.group_bytes, nb, unpacked);
        pt[pi] = {w.Panel(p + pi), unpacked, (p + pi) * kPanelRows, static_cast<__mmask16>((1u << rows) - 1u)};
      }
      for (int64_t gi = g0; gi < g_end; gi += 2) {
        const int ng = gi + 1 < g_end ? 2 : 1;
        const TokenGroup g[2] = {group_at(gi * kGroup), group_at(std::min(gi + 1, g_end - 1) * kGroup)};
        GroupsTimesPanels<kType>(g, ng, pt, np, w.group_bytes, nb, scratch, y, w.n_out);
      }
    }
  }
  ReleaseTiles();
}

// Runs one 16×64 by 64×16 product under a SIGILL guard: some VMs list AMX in
// CPUID but fault on tile instructions.
sigjmp_buf probe_jump;
void OnProbeSigill(int) { siglongjmp(probe_jump, 1); }

TL_AMX_AVX bool ProbeAmx() {
  struct sigaction guard {}, previous {};
  guard.sa_handler = &OnProbeSigill;
  sigemptyset(&guard.sa_mask);
  if (sigaction(SIGILL, &guard, &previous) != 0) return false;
  alignas(64) int8_t ones[16 * 64];
  alignas(64) int32_t out[16 * 16];
  std::memset(ones, 1, sizeof(ones));
  std::memset(out, 0, sizeof(out));
  volatile bool ok = false;
  if (sigsetjmp(probe_jump, 1) == 0) {
    TileConfig cfg;
    for (int t = 0; t < 3; ++t) cfg.rows[t] = 16, cfg.colsb[t] = 64;
    __asm__ volatile("ldtilecfg %0" ::"m"(cfg) : "memory");
    TL_TILE_LOAD(0, ones, 64);
    TL_TILE_LOAD(1, ones, 64);
    TL_TILE_ZERO(2);
    TL_TILE_DPBSSD(2, 0, 1);
    TL_TILE_STORE(2, out, 64);
    ReleaseTiles();
    ok = out[0] == 64 && out[255] == 64;
  }
  sigaction(SIGILL, &previous, nullptr);
  return ok;
}

}  // namespace
}  // namespace tokenlora::kernels::internal

namespace tokenlora::kernels {

bool CpuHasAmx() {
  static const bool ok = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
    const bool tile = (edx >> 24) & 1u, int8 = (edx >> 25) & 1u;
    if (!tile || !int8 || !CpuHasVnni()) return false;
    // The OS must enable the tile state (XCR0 bits 17-18) and, on Linux, let
    // this process use it.
    unsigned xcr0_lo = 0, xcr0_hi = 0;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    if (((xcr0_lo >> 17) & 3u) != 3u) return false;
    constexpr int kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) return false;
    return internal::ProbeAmx();
  }();
  return ok;
}

}  // namespace tokenlora::kernels

namespace tokenlora::kernels::internal {

void PanelsAmx(const PackedMatrix& w, const QuantizedActs& a, int64_t p_begin, int64_t p_end, float* y,
               size_t /*prefetch*/) {
  if (a.n_tok <= 0) return;
  switch (w.dtype) {
    case DType::kQ4_0: return PanelsT<DType::kQ4_0>(w, a, p_begin, p_end, y);
    case DType::kQ4_1: return PanelsT<DType::kQ4_1>(w, a, p_begin, p_end, y);
    case DType::kQ8_0: return PanelsT<DType::kQ8_0>(w, a, p_begin, p_end, y);
    default: return;
  }
}

}  // namespace tokenlora::kernels::internal
