// K-quant quantizers (Q4_K, Q5_K, Q6_K): a direct min/max scale choice, not
// llama.cpp's iterative RMSE search (make_qkx2_quants), so errors are somewhat
// larger than llama.cpp's files but every element has a guaranteed bound.
//
// Q4_K / Q5_K (L = 15 / 31 levels, 8 sub-blocks j of 32, value d·sc_j·q − dmin·mn_j):
//   1. mins: m_j = max(0, −min_j) (the format can only shift down);
//      dmin = max_j m_j / 63 as f16 rounded up; mn_j = round(m_j / dmin) ≤ 63.
//   2. steps: s_j = (max_j + dmin·mn_j) / L, the step that spans the sub-block;
//      d = max_j s_j / 63 as f16 rounded up; sc_j = ceil(s_j / d) ≤ 63, so the
//      actual step d·sc_j lies in [s_j, s_j + d] and the top value is covered.
//   3. q = clamp(round((x + dmin·mn_j) / (d·sc_j)), 0, L).
//   Bound: |x − x̂| ≤ (d·sc_j)/2 + dmin/2 ≤ range_j / (2L) + d + dmin, where
//   range_j = max_j − min(min_j, 0) (a half-step of the sub-block plus the
//   quantization of its scale and min).
//
// Q6_K (16 sub-blocks j of 16, value d·sc_j·q with q in −32..31, sc_j int8):
//   s_j = max|x| / 31; d = max_j s_j / 127 as f16 rounded up;
//   sc_j = ceil(s_j / d) ≤ 127; q = clamp(round(x / (d·sc_j)), −32, 31).
//   Bound: |x − x̂| ≤ (d·sc_j)/2 ≤ max_j|x| / 62 + d.
//
// Rounding the f16 super-scales up (never down) keeps sc_j, mn_j ≤ 63 (127)
// without clamping away range. Inputs must be finite with |x| < ~6e7 so that
// the f16 super-scales do not overflow.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/quant_blocks.h"
#include "kernels/quantize.h"

namespace tokenlora::kernels::internal {
namespace {

// The smallest f16 >= v (v >= 0, finite): its bits and its value.
uint16_t F16RoundUp(float v, float* value) {
  uint16_t h = F32ToF16(v);
  if (F16ToF32(h) < v) ++h;  // next representable half (v > 0 here)
  *value = F16ToF32(h);
  return h;
}

int RoundClamp(float v, int lo, int hi) {
  const float r = std::round(v);
  if (!(r > static_cast<float>(lo))) return lo;  // also NaN -> lo
  if (r >= static_cast<float>(hi)) return hi;
  return static_cast<int>(r);
}

int CeilClamp(float v, int hi) {
  const float c = std::ceil(v);
  if (!(c > 0.0f)) return 0;
  return c >= static_cast<float>(hi) ? hi : static_cast<int>(c);
}

// Steps 1–3 above for one 256-element super-block; q receives 0..levels.
void QuantizeKWithMins(const float* x, int levels, uint16_t* d_out, uint16_t* dmin_out,
                       uint8_t packed_scales[kKScaleBytes], uint8_t q[kBlockK]) {
  float hi[8], shift[8];
  float max_shift = 0.0f;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float lo = xs[0];
    hi[j] = xs[0];
    for (int l = 1; l < 32; ++l) {
      lo = std::min(lo, xs[l]);
      hi[j] = std::max(hi[j], xs[l]);
    }
    shift[j] = std::max(0.0f, -lo);
    max_shift = std::max(max_shift, shift[j]);
  }
  float dmin = 0.0f;
  *dmin_out = F16RoundUp(max_shift / 63.0f, &dmin);
  uint8_t sc[8], mn[8];
  float offset[8], step[8];
  float max_step = 0.0f;
  for (int j = 0; j < 8; ++j) {
    mn[j] = static_cast<uint8_t>(dmin > 0.0f ? RoundClamp(shift[j] / dmin, 0, 63) : 0);
    offset[j] = dmin * static_cast<float>(mn[j]);  // exactly what dequantization subtracts
    step[j] = std::max(0.0f, (hi[j] + offset[j]) / static_cast<float>(levels));
    max_step = std::max(max_step, step[j]);
  }
  float d = 0.0f;
  *d_out = F16RoundUp(max_step / 63.0f, &d);
  for (int j = 0; j < 8; ++j) {
    sc[j] = static_cast<uint8_t>(d > 0.0f ? CeilClamp(step[j] / d, 63) : 0);
    const float scale = d * static_cast<float>(sc[j]);
    for (int l = 0; l < 32; ++l) {
      const float v = x[32 * j + l] + offset[j];
      q[32 * j + l] = static_cast<uint8_t>(scale > 0.0f ? RoundClamp(v / scale, 0, levels) : 0);
    }
  }
  PackKScales(sc, mn, packed_scales);
}

// Sub-block j = 2g in the low nibbles of qs[32g..32g+31], 2g + 1 in the high.
void PackKNibbles(const uint8_t q[kBlockK], uint8_t qs[kBlockK / 2]) {
  for (int g = 0; g < 4; ++g) {
    for (int l = 0; l < 32; ++l) {
      qs[32 * g + l] =
          static_cast<uint8_t>((q[64 * g + l] & 0x0F) | ((q[64 * g + 32 + l] & 0x0F) << 4));
    }
  }
}

}  // namespace

void QuantizeQ4_K(const float* src, uint8_t* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b) {
    BlockQ4_K blk;
    uint8_t q[kBlockK];
    QuantizeKWithMins(src + b * kBlockK, 15, &blk.d, &blk.dmin, blk.scales, q);
    PackKNibbles(q, blk.qs);
    std::memcpy(dst + b * static_cast<int64_t>(sizeof(blk)), &blk, sizeof(blk));
  }
}

void QuantizeQ5_K(const float* src, uint8_t* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b) {
    BlockQ5_K blk;
    uint8_t q[kBlockK];
    QuantizeKWithMins(src + b * kBlockK, 31, &blk.d, &blk.dmin, blk.scales, q);
    PackKNibbles(q, blk.qs);
    // Bit j of qh[l] = fifth bit of element 32·j + l.
    for (int l = 0; l < 32; ++l) {
      uint8_t bits = 0;
      for (int j = 0; j < 8; ++j)
        bits = static_cast<uint8_t>(bits | (((q[32 * j + l] >> 4) & 1) << j));
      blk.qh[l] = bits;
    }
    std::memcpy(dst + b * static_cast<int64_t>(sizeof(blk)), &blk, sizeof(blk));
  }
}

void QuantizeQ6_K(const float* src, uint8_t* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b) {
    const float* x = src + b * kBlockK;
    float step[16];
    float max_step = 0.0f;
    for (int j = 0; j < 16; ++j) {
      float amax = 0.0f;
      for (int l = 0; l < 16; ++l) amax = std::max(amax, std::fabs(x[16 * j + l]));
      step[j] = amax / 31.0f;
      max_step = std::max(max_step, step[j]);
    }
    BlockQ6_K blk;
    float d = 0.0f;
    blk.d = F16RoundUp(max_step / 127.0f, &d);
    int q[kBlockK];  // -32..31
    for (int j = 0; j < 16; ++j) {
      const int sc = d > 0.0f ? CeilClamp(step[j] / d, 127) : 0;
      blk.scales[j] = static_cast<int8_t>(sc);
      const float scale = d * static_cast<float>(sc);
      for (int l = 0; l < 16; ++l) {
        q[16 * j + l] = scale > 0.0f ? RoundClamp(x[16 * j + l] / scale, -32, 31) : 0;
      }
    }
    // Layout of quant_blocks.h: element 128·h + o -> low bits in ql[64·h + o % 64]
    // (nibble o / 64), high bits in qh[32·h + o % 32] (bits 2·(o / 32)).
    std::memset(blk.ql, 0, sizeof(blk.ql));
    std::memset(blk.qh, 0, sizeof(blk.qh));
    for (int e = 0; e < kBlockK; ++e) {
      const int u = q[e] + 32;  // 0..63
      const int h = e / 128, o = e % 128;
      blk.ql[64 * h + o % 64] =
          static_cast<uint8_t>(blk.ql[64 * h + o % 64] | ((u & 0x0F) << (4 * (o / 64))));
      blk.qh[32 * h + o % 32] =
          static_cast<uint8_t>(blk.qh[32 * h + o % 32] | ((u >> 4) << (2 * (o / 32))));
    }
    std::memcpy(dst + b * static_cast<int64_t>(sizeof(blk)), &blk, sizeof(blk));
  }
}

}  // namespace tokenlora::kernels::internal
