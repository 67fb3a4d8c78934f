// Int8-activation MatMul: packing, the scalar twins and the driver
// (threading, activation scratch, kernel choice). Layout and numerics:
// int8_matmul.h; the VNNI kernels: int8_matmul_vnni.cc.
#include "kernels/int8_matmul.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "kernels/dispatch.h"
#include "kernels/prefetch.h"
#include "kernels/quant_blocks.h"

namespace tokenlora::kernels {
namespace {

constexpr int64_t kBlock = kBlock32;
using internal::ActOffset;
using internal::HasSuperScales;
using internal::kBlocksPerSuper;
using internal::KScaleBytes;
using internal::SuperSliceBytes;
using internal::HasFifthBit;
using internal::HasHalfScales;
using internal::HasMin;
using internal::HasHighCrumbs;
using internal::QsBytes;

// Quantized activations of one MatMulInt8 call, owned by the calling thread
// (thread_local; the pool's workers fill and read it through the view during
// the call). Grows only when a wider call comes, so the token loop does not
// allocate.
struct ActScratch {
  std::vector<int8_t> q;
  std::vector<float> d, s;
  std::vector<int32_t> corr, corr_hi;
  internal::QuantizedActs View(int64_t n_tok, int64_t n_in) {
    const int64_t nb = n_in / kBlock;
    const size_t nq = static_cast<size_t>(n_tok * n_in), ns = static_cast<size_t>(n_tok * nb);
    if (q.size() < nq) q.resize(nq);
    if (d.size() < ns) {
      d.resize(ns);
      s.resize(ns);
      corr.resize(ns);
      corr_hi.resize(ns);
    }
    return {n_tok, n_in, nb, q.data(), d.data(), corr.data(), s.data(), corr_hi.data()};
  }
};

// The quantizer and panel kernel MatMulInt8 runs (chosen once per process).
struct KernelPair {
  void (*quantize)(DType, const float*, int64_t, int64_t, const internal::QuantizedActs&);
  void (*panels)(const PackedMatrix&, const internal::QuantizedActs&, int64_t, int64_t, float*, size_t);
  // For kAmxMinTokens or more tokens (the same as panels unless AMX).
  void (*prompt_panels)(const PackedMatrix&, const internal::QuantizedActs&, int64_t, int64_t, float*,
                        size_t);
};

KernelPair PickKernels();

// Multiply-adds below which a chunk of panels is not worth another thread.
constexpr int64_t kMinMacsPerChunk = 64 * 1024;

}  // namespace

bool Int8Packable(DType t) {
  return t == DType::kQ4_0 || t == DType::kQ4_1 || t == DType::kQ5_0 || t == DType::kQ5_1 ||
         t == DType::kQ8_0 || t == DType::kQ4_K || t == DType::kQ5_K || t == DType::kQ6_K;
}

bool Int8AmxSupports(DType t) { return t == DType::kQ4_0 || t == DType::kQ4_1 || t == DType::kQ8_0; }

bool CpuHasVnni() {
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") &&
                         __builtin_cpu_supports("avx512vnni");
  return ok;
}

bool CpuHasAvx2() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                         __builtin_cpu_supports("f16c");
  return ok;
}

const char* Int8KernelName() {
  static const char* name = [] {
    const char* env = std::getenv("TOKENLORA_INT8_KERNEL");
    const bool want_avx2 = env != nullptr && std::strcmp(env, "avx2") == 0;
    const bool want_vnni = env != nullptr && std::strcmp(env, "vnni") == 0;
    if (!want_avx2 && !want_vnni && CpuHasAmx()) return "amx";
    if (CpuHasVnni() && !want_avx2) return "vnni";
    return CpuHasAvx2() ? "avx2" : "";
  }();
  return name;
}

bool Int8Accelerated() { return *Int8KernelName() != '\0'; }

namespace {
// Up to this many tokens a call streams each weight panel from memory once
// and reuses it for a few token groups (decoding, or the rows of a batch of
// decoding sequences): prefetch the stream ahead.
constexpr int64_t kStreamMaxTok = 32;
// Prompts take KernelPair::prompt_panels from this size on (PickKernels).
bool UsesPromptKernel(int64_t n_tok) { return n_tok >= kAmxMinTokens; }
}  // namespace

const char* Int8KernelNameFor(int64_t n_tok) {
  const char* name = Int8KernelName();
  return std::strcmp(name, "amx") == 0 && !UsesPromptKernel(n_tok) ? "vnni" : name;
}

const char* Int8KernelNameFor(DType t, int64_t n_tok) {
  const char* name = Int8KernelNameFor(n_tok);
  return std::strcmp(name, "amx") == 0 && !Int8AmxSupports(t) ? "vnni" : name;
}

namespace {
KernelPair PickKernels() {
  const std::string_view name = internal::ForceScalar() ? "" : Int8KernelName();
  if (name == "amx") return {&internal::QuantizeActsVnni, &internal::PanelsVnni, &internal::PanelsAmx};
  if (name == "vnni") return {&internal::QuantizeActsVnni, &internal::PanelsVnni, &internal::PanelsVnni};
  if (name == "avx2") return {&internal::QuantizeActsAvx2, &internal::PanelsAvx2, &internal::PanelsAvx2};
  return {&internal::QuantizeActsScalar, &internal::PanelsScalar, &internal::PanelsScalar};
}
}  // namespace

namespace {
// The packed shape of w, without its bytes.
std::unique_ptr<PackedMatrix> PackedShape(const TensorView& w) {
  TL_CHECK_MSG(Int8Packable(w.dtype) && w.shape.size() == 2 && w.Cols() % Info(w.dtype).block_size == 0,
               "PackForInt8: weight '" + w.name + "' is not a Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q4_K/Q5_K/Q6_K matrix");
  auto p = std::make_unique<PackedMatrix>();
  p->dtype = w.dtype;
  p->n_out = w.Rows();
  p->n_in = w.Cols();
  const size_t scale_bytes = HasSuperScales(w.dtype) ? KScaleBytes(w.dtype)
                                                     : (HasMin(w.dtype) ? 2 : 1) * kPanelRows * sizeof(uint16_t);
  p->group_bytes = QsBytes(w.dtype) + scale_bytes;
  p->panel_bytes = p->group_bytes * static_cast<size_t>(p->n_in / kBlock);
  return p;
}

// Writes row r's fifth bits (qh: bit i = element i) into a panel block's qh
// bytes (int8_matmul.h): bit j of byte 4r+m = element 4j+m.
void PackFifthBits(uint32_t qh, int64_t r, uint8_t* qh_bytes) {
  for (int m = 0; m < 4; ++m) {
    uint8_t byte = 0;
    for (int j = 0; j < 8; ++j) byte = static_cast<uint8_t>(byte | ((qh >> (4 * j + m)) & 1u) << j);
    qh_bytes[4 * r + m] = byte;
  }
}

// Writes the f16 v at byte k of a type-t super-block's record (int8_matmul.h:
// byte k lives in block k / slice; GatherSuperRecord reads it back). first:
// the super-block's first block group.
void PutSuperRecord(DType t, uint8_t* first, size_t group_bytes, size_t k, uint16_t v) {
  const size_t slice = SuperSliceBytes(t);
  uint8_t* at = first + (k / slice) * group_bytes + internal::SuperSliceOffset(t) + k % slice;
  std::memcpy(at, &v, 2);  // k and slice are even: both bytes in one slice
}

// Word helpers of the K-quant repack: 8 and 4 bytes at a time (the repack
// of a 7B model's 4 GB is load time; memcpy keeps the unaligned reads
// defined). Byte i of a loaded word is its bits 8i..8i+7: x86 is little-endian.
uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
uint32_t Load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
constexpr uint64_t kLowNibbles = 0x0F0F0F0F0F0F0F0Full;

// The panel's nibble bytes of one 32-element block whose element l has the
// 4-bit value (lo[l] >> shift) & 15 (lo: 32 bytes): byte k = element k |
// element k + 16 << 4, written as row r's 4 bytes of each of the 4 chunks.
void PutNibbles(const uint8_t* lo, int shift, int64_t r, uint8_t* g) {
  for (int w = 0; w < 2; ++w) {
    const uint64_t a = (Load64(lo + 8 * w) >> shift) & kLowNibbles;        // elements 8w .. 8w+7
    const uint64_t b = (Load64(lo + 16 + 8 * w) >> shift) & kLowNibbles;   // elements 16+8w ..
    const uint64_t bytes = a | (b << 4);
    std::memcpy(g + 64 * (2 * w) + 4 * r, &bytes, 4);
    std::memcpy(g + 64 * (2 * w + 1) + 4 * r, reinterpret_cast<const uint8_t*>(&bytes) + 4, 4);
  }
}

// Row r's Q4_K or Q5_K super-block sb (src: the row) as the 8 Q4_1/Q5_1-style
// panel blocks from `first` on (stride group_bytes): the nibbles (and Q5_K's
// fifth bits) in the panel order, the 6-bit sc and mn, d and dmin in the
// super-block record.
template <typename Block>
void PackKSuperBlock(const uint8_t* src, int64_t sb, int64_t r, uint8_t* first, size_t group_bytes) {
  Block blk;
  std::memcpy(&blk, src + static_cast<size_t>(sb) * sizeof(blk), sizeof(blk));
  uint8_t sc[8], mn[8];
  UnpackKScales(blk.scales, sc, mn);
  constexpr bool kQ5 = sizeof(Block) == sizeof(BlockQ5_K);
  constexpr DType kType = kQ5 ? DType::kQ5_K : DType::kQ4_K;
  constexpr size_t qs_bytes = QsBytes(kType);
  for (int j = 0; j < 8; ++j) {
    uint8_t* g = first + static_cast<size_t>(j) * group_bytes;
    // Element l of sub-block j: nibble j % 2 of qs[32·(j / 2) + l].
    PutNibbles(blk.qs + 32 * (j / 2), 4 * (j % 2), r, g);
    if constexpr (kQ5) {
      // Its fifth bit: bit j of qh[l]; the panel's byte 4r+m holds element
      // 4i+m's at bit i.
      uint32_t bits = 0;
      for (int i = 0; i < 8; ++i) bits |= ((Load32(blk.qh + 4 * i) >> j) & 0x01010101u) << i;
      std::memcpy(g + 256 + 4 * r, &bits, 4);
    }
    g[qs_bytes + r] = sc[j];
    g[qs_bytes + kPanelRows + r] = mn[j];
  }
  // Row r's d and dmin at bytes 2r and 32 + 2r of the super-block record.
  PutSuperRecord(kType, first, group_bytes, 2 * static_cast<size_t>(r), blk.d);
  PutSuperRecord(kType, first, group_bytes, 32 + 2 * static_cast<size_t>(r), blk.dmin);
}

// Row r's Q6_K super-block sb as the 8 panel blocks from `first` on: 6-bit
// quants (q + 32, 0..63) as nibbles and qc crumbs, the int8 scales of each
// 16-element half, d in the super-block record.
void PackQ6KSuperBlock(const uint8_t* src, int64_t sb, int64_t r, uint8_t* first, size_t group_bytes) {
  BlockQ6_K blk;
  std::memcpy(&blk, src + static_cast<size_t>(sb) * sizeof(blk), sizeof(blk));
  const size_t qs_bytes = QsBytes(DType::kQ6_K);
  for (int j = 0; j < 8; ++j) {
    uint8_t* g = first + static_cast<size_t>(j) * group_bytes;
    // quant_blocks.h: element 32j + l lies in half h = j / 4 at o = 32·(j % 4) + l:
    // low 4 bits = nibble (j % 4) / 2 of ql[64h + 32·(j % 2) + l], high 2 bits
    // = bits 2·(j % 4) of qh[32h + l].
    const int h = j / 4, jj = j % 4;
    PutNibbles(blk.ql + 64 * h + 32 * (jj % 2), 4 * (jj / 2), r, g);
    for (int c = 0; c < 2; ++c) {
      // Crumb i of the panel's byte 4r+m in vector c: element 4(4c+i)+m.
      uint32_t crumbs = 0;
      for (int i = 0; i < 4; ++i) {
        crumbs |= ((Load32(blk.qh + 32 * h + 4 * (4 * c + i)) >> (2 * jj)) & 0x03030303u) << (2 * i);
      }
      std::memcpy(g + 256 + 64 * c + 4 * r, &crumbs, 4);
    }
    g[qs_bytes + r] = static_cast<uint8_t>(blk.scales[2 * j]);
    g[qs_bytes + kPanelRows + r] = static_cast<uint8_t>(blk.scales[2 * j + 1]);
  }
  PutSuperRecord(DType::kQ6_K, first, group_bytes, 2 * static_cast<size_t>(r), blk.d);
}

// Bytes of a packed matrix's panels, rounded up to whole cache lines.
size_t PaddedBytes(const PackedMatrix& p) {
  return (p.panel_bytes * static_cast<size_t>(p.NumPanels()) + 63) / 64 * 64;
}
}  // namespace

size_t PackedInt8Bytes(const TensorView& w) { return PaddedBytes(*PackedShape(w)); }

std::unique_ptr<PackedMatrix> PackForInt8(const TensorView& w) {
  const size_t total = std::max<size_t>(PackedInt8Bytes(w), 64);
  std::unique_ptr<uint8_t[], void (*)(void*)> owned{static_cast<uint8_t*>(std::aligned_alloc(64, total)),
                                                    &std::free};
  TL_CHECK_MSG(owned != nullptr, "PackForInt8: out of memory for '" + w.name + "'");
  std::unique_ptr<PackedMatrix> p = PackForInt8Into(w, owned.get());
  p->data = std::move(owned);
  return p;
}

std::unique_ptr<PackedMatrix> PackForInt8Into(const TensorView& w, uint8_t* dst) {
  std::unique_ptr<PackedMatrix> p = PackedShape(w);
  const size_t qs_bytes = QsBytes(w.dtype);
  const int64_t nb = p->n_in / kBlock;
  p->data = {dst, [](void*) {}};  // the caller owns dst
  std::memset(dst, 0, PaddedBytes(*p));

  for (int64_t row = 0; row < p->n_out; ++row) {
    const int64_t panel = row / kPanelRows, r = row % kPanelRows;
    const uint8_t* src = w.RowPtr(row);
    uint8_t* dst_panel = p->data.get() + static_cast<size_t>(panel) * p->panel_bytes;
    if (HasSuperScales(w.dtype)) {  // a super-block (8 panel blocks) at a time
      for (int64_t b = 0; b < nb; b += kBlocksPerSuper) {
        uint8_t* first = dst_panel + static_cast<size_t>(b) * p->group_bytes;
        if (w.dtype == DType::kQ4_K) {
          PackKSuperBlock<BlockQ4_K>(src, b / kBlocksPerSuper, r, first, p->group_bytes);
        } else if (w.dtype == DType::kQ5_K) {
          PackKSuperBlock<BlockQ5_K>(src, b / kBlocksPerSuper, r, first, p->group_bytes);
        } else {
          PackQ6KSuperBlock(src, b / kBlocksPerSuper, r, first, p->group_bytes);
        }
      }
      continue;
    }
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* g = dst_panel + static_cast<size_t>(b) * p->group_bytes;
      auto* scales = reinterpret_cast<uint16_t*>(g + qs_bytes);
      if (w.dtype == DType::kQ8_0) {
        BlockQ8_0 blk;
        std::memcpy(&blk, src + static_cast<size_t>(b) * sizeof(blk), sizeof(blk));
        for (int j = 0; j < 8; ++j) {
          for (int m = 0; m < 4; ++m) {
            g[64 * j + 4 * r + m] = static_cast<uint8_t>(blk.qs[4 * j + m]) ^ 0x80u;
          }
        }
        std::memcpy(&scales[r], &blk.d, 2);
      } else if (w.dtype == DType::kQ4_0) {
        BlockQ4_0 blk;
        std::memcpy(&blk, src + static_cast<size_t>(b) * sizeof(blk), sizeof(blk));
        for (int j = 0; j < 4; ++j) std::memcpy(g + 64 * j + 4 * r, blk.qs + 4 * j, 4);
        std::memcpy(&scales[r], &blk.d, 2);
      } else if (w.dtype == DType::kQ4_1) {
        BlockQ4_1 blk;
        std::memcpy(&blk, src + static_cast<size_t>(b) * sizeof(blk), sizeof(blk));
        for (int j = 0; j < 4; ++j) std::memcpy(g + 64 * j + 4 * r, blk.qs + 4 * j, 4);
        std::memcpy(&scales[r], &blk.d, 2);
        std::memcpy(&scales[kPanelRows + r], &blk.m, 2);
      } else if (w.dtype == DType::kQ5_0) {
        BlockQ5_0 blk;
        std::memcpy(&blk, src + static_cast<size_t>(b) * sizeof(blk), sizeof(blk));
        for (int j = 0; j < 4; ++j) std::memcpy(g + 64 * j + 4 * r, blk.qs + 4 * j, 4);
        PackFifthBits(LoadQh(blk.qh), r, g + 256);
        std::memcpy(&scales[r], &blk.d, 2);
      } else {
        BlockQ5_1 blk;
        std::memcpy(&blk, src + static_cast<size_t>(b) * sizeof(blk), sizeof(blk));
        for (int j = 0; j < 4; ++j) std::memcpy(g + 64 * j + 4 * r, blk.qs + 4 * j, 4);
        PackFifthBits(LoadQh(blk.qh), r, g + 256);
        std::memcpy(&scales[r], &blk.d, 2);
        std::memcpy(&scales[kPanelRows + r], &blk.m, 2);
      }
    }
  }
  return p;
}

namespace internal {

void QuantizeActsScalar(DType t, const float* x, int64_t tok_begin, int64_t tok_end,
                        const QuantizedActs& a) {
  const int32_t offset = ActOffset(t);
  for (int64_t tok = tok_begin; tok < tok_end; ++tok) {
    for (int64_t b = 0; b < a.n_blocks; ++b) {
      const float* xb = x + tok * a.n_in + b * kBlock;
      float amax = 0.0f;
      for (int i = 0; i < kBlock; ++i) amax = std::max(amax, std::fabs(xb[i]));
      const float d = amax / 127.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      int8_t* q = a.q + tok * a.n_in + b * kBlock;
      int32_t sum = 0, sum_lo = 0;
      for (int i = 0; i < kBlock; ++i) {
        q[i] = static_cast<int8_t>(static_cast<int32_t>(std::nearbyint(xb[i] * id)));
        sum += q[i];
        if (i == 15) sum_lo = sum;
      }
      const int64_t k = tok * a.n_blocks + b;
      a.d[k] = d;
      a.s[k] = d * static_cast<float>(sum);
      if (HasHalfScales(t)) {
        a.corr[k] = offset * sum_lo;
        a.corr_hi[k] = offset * (sum - sum_lo);
      } else {
        a.corr[k] = offset * sum;
      }
    }
  }
}

void PanelsScalar(const PackedMatrix& w, const QuantizedActs& a, int64_t p_begin, int64_t p_end,
                  float* y, size_t /*prefetch*/) {
  const bool q8 = w.dtype == DType::kQ8_0, has_min = HasMin(w.dtype), q5 = HasFifthBit(w.dtype);
  const bool q6 = HasHighCrumbs(w.dtype), halves = HasHalfScales(w.dtype), super_scales = HasSuperScales(w.dtype);
  const size_t qs_bytes = QsBytes(w.dtype);
  for (int64_t p = p_begin; p < p_end; ++p) {
    const uint8_t* panel = w.Panel(p);
    const int64_t rows = std::min(kPanelRows, w.n_out - p * kPanelRows);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t tok = 0; tok < a.n_tok; ++tok) {
        // The offset terms of the types with a min, or Q6_K's second halves,
        // go to acc_m.
        float acc = 0.0f, acc_m = 0.0f;
        float super_d = 0.0f, super_m = 0.0f;  // the K-quants' f16 d and −dmin of this super-block
        for (int64_t b = 0; b < a.n_blocks; ++b) {
          const uint8_t* g = panel + static_cast<size_t>(b) * w.group_bytes;
          const int8_t* xq = a.q + tok * a.n_in + b * kBlock;
          const int64_t k = tok * a.n_blocks + b;
          // isum[1]: Q6_K's elements 16..31 (quant vectors 4..7).
          int32_t isum[2] = {-a.corr[k], halves ? -a.corr_hi[k] : 0};
          for (int j = 0; j < 8; ++j) {
            for (int m = 0; m < 4; ++m) {
              uint8_t wq;
              if (q8) {
                wq = g[64 * j + 4 * r + m];
              } else {
                const uint8_t byte = g[64 * (j % 4) + 4 * r + m];
                wq = j < 4 ? byte & 0x0F : byte >> 4;
              }
              if (q5) wq = static_cast<uint8_t>(wq | ((g[256 + 4 * r + m] >> j) & 1u) << 4);
              if (q6) wq = static_cast<uint8_t>(wq | ((g[256 + 64 * (j / 4) + 4 * r + m] >> (2 * (j % 4))) & 3u) << 4);
              isum[halves && j >= 4] += static_cast<int32_t>(wq) * xq[4 * j + m];
            }
          }
          float dw, mw = 0.0f;
          if (super_scales) {
            if (b % kBlocksPerSuper == 0) {
              uint8_t rec[64];
              internal::GatherSuperRecord(w.dtype, g, w.group_bytes, rec);
              uint16_t h;
              std::memcpy(&h, rec + 2 * r, 2);
              super_d = F16ToF32(h);
              if (has_min) {
                std::memcpy(&h, rec + 32 + 2 * r, 2);
                super_m = -F16ToF32(h);
              }
            }
            // d·sc and −dmin·mn: exact in f32 (an f16 times a 6- or 8-bit integer).
            if (halves) {
              dw = super_d * static_cast<float>(static_cast<int8_t>(g[qs_bytes + r]));
              mw = super_d * static_cast<float>(static_cast<int8_t>(g[qs_bytes + kPanelRows + r]));
            } else {
              dw = super_d * static_cast<float>(g[qs_bytes + r]);
              mw = super_m * static_cast<float>(g[qs_bytes + kPanelRows + r]);
            }
          } else {
            uint16_t dh, mh;
            std::memcpy(&dh, g + qs_bytes + 2 * r, 2);
            dw = F16ToF32(dh);
            if (has_min) {
              std::memcpy(&mh, g + qs_bytes + 2 * (kPanelRows + r), 2);
              mw = F16ToF32(mh);
            }
          }
          const float scale = dw * a.d[k];
          acc = std::fma(static_cast<float>(isum[0]), scale, acc);
          if (has_min) acc_m = std::fma(mw, a.s[k], acc_m);
          if (halves) acc_m = std::fma(static_cast<float>(isum[1]), mw * a.d[k], acc_m);  // mw: d·sc of 16..31
        }
        y[tok * w.n_out + p * kPanelRows + r] = has_min || halves ? acc + acc_m : acc;
      }
    }
  }
}

}  // namespace internal

namespace scalar {
void MatMulInt8(const PackedMatrix& w, const float* x, int64_t n_tok, float* y) {
  if (n_tok <= 0 || w.n_out <= 0) return;
  thread_local ActScratch scratch;
  const internal::QuantizedActs a = scratch.View(n_tok, w.n_in);
  internal::QuantizeActsScalar(w.dtype, x, 0, n_tok, a);
  internal::PanelsScalar(w, a, 0, w.NumPanels(), y, 0);
}
}  // namespace scalar

void MatMulInt8(const PackedMatrix& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool) {
  const PackedMatrix* ws[] = {&w};
  float* ys[] = {y};
  MatMulInt8Shared(ws, ys, 1, x, n_tok, pool);
}

void MatMulInt8Shared(const PackedMatrix* const* ws, float* const* ys, int n, const float* x,
                      int64_t n_tok, ThreadPool& pool) {
  if (n_tok <= 0 || n <= 0) return;
  const DType dtype = ws[0]->dtype;
  const int64_t n_in = ws[0]->n_in;
  // first_panel[i]: global index of matrix i's first panel.
  int64_t first_panel[8 + 1] = {0};
  TL_CHECK_MSG(n <= 8, "MatMulInt8Shared: at most 8 matrices");
  for (int i = 0; i < n; ++i) {
    TL_CHECK_MSG(ws[i]->dtype == dtype && ws[i]->n_in == n_in,
                 "MatMulInt8Shared: matrices differ in dtype or input size");
    first_panel[i + 1] = first_panel[i] + ws[i]->NumPanels();
  }
  thread_local ActScratch scratch;
  const internal::QuantizedActs a = scratch.View(n_tok, n_in);
  static const KernelPair kernels = PickKernels();
  const auto quantize = kernels.quantize;
  // AMX implements only some types: the others run the decode kernel (VNNI).
  const auto panels =
      UsesPromptKernel(n_tok) && Int8AmxSupports(dtype) ? kernels.prompt_panels : kernels.panels;
  // Decoding (1-2 tokens) streams the weights once: prefetch them ahead.
  const size_t prefetch = n_tok <= kStreamMaxTok ? StreamPrefetchBytes() : 0;

  // Quantize the activations once (split over tokens for long prompts).
  if (n_tok >= 64 && pool.size() > 1) {
    pool.ParallelFor(static_cast<size_t>(n_tok), 16, [&](size_t begin, size_t end, int) {
      quantize(dtype, x, static_cast<int64_t>(begin), static_cast<int64_t>(end), a);
    });
  } else {
    quantize(dtype, x, 0, n_tok, a);
  }
  const int64_t macs_per_panel = std::max<int64_t>(1, kPanelRows * n_in * n_tok);
  auto run = [&](size_t begin, size_t end, int) {
    // A chunk may cross from one matrix into the next.
    auto p = static_cast<int64_t>(begin);
    for (int i = 0; i < n && p < static_cast<int64_t>(end); ++i) {
      if (p >= first_panel[i + 1]) continue;
      const int64_t stop = std::min<int64_t>(static_cast<int64_t>(end), first_panel[i + 1]);
      panels(*ws[i], a, p - first_panel[i], stop - first_panel[i], ys[i], prefetch);
      p = stop;
    }
  };
  const auto n_panels = static_cast<size_t>(first_panel[n]);
  if (n_tok <= 2) {
    // Decoding streams the weights from DRAM: one contiguous range per thread
    // keeps one long stream each for the prefetchers (measured: 576x576 Q4_0
    // 19 -> 23-24 GB/s, 1536x576 23 -> 25-27 GB/s against chunks claimed in
    // turn); a thread that finishes early steals the back half of another's
    // range (decode +4%, paired reps in one process).
    const int64_t chunk = std::max<int64_t>(1, kMinMacsPerChunk / 4 / macs_per_panel);
    pool.ParallelForRanges(n_panels, static_cast<size_t>(chunk), run);
  } else {
    const int64_t grain = std::max<int64_t>(1, kMinMacsPerChunk / macs_per_panel);
    pool.ParallelFor(n_panels, static_cast<size_t>(grain), run);
  }
}

}  // namespace tokenlora::kernels
