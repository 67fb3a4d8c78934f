// AddMatMulTransposed: dx += dy · W, the input gradient of a projection
// y = x·Wᵀ (training's backward pass), over weights of any dtype.
//
// Work is cut into (column chunk × token block) items that the pool claims
// dynamically. A column chunk is kColChunk input features (or one block when
// a block is wider: K-quants' 256): the weight rows are stored block by block
// along n_in, so the chunk of a row is itself a valid run of blocks that
// DequantizeRow decodes without touching the rest of the row. Each item walks
// the output features in tiles of kRowsPerTile rows: it dequantizes the tile's
// chunk into f32 scratch once, then for its tokens, 4 at a time, adds
// Σ_r dy[t, o+r]·W[o+r, chunk] to dx[t, chunk] while 4 tokens × 2 vectors of
// dx stay in registers (see AccumulateTokens).
//
// Every dx element is written by one item, in the same order (output
// features ascending), so results do not depend on the thread count. Versus
// the scalar twin (matmul_scalar.cc) the only difference is the fused
// multiply-add: rounding only, relative to Σ_o |dy·W|.
#include <algorithm>
#include <cstdint>

#include "core/error.h"
#include "kernels/dispatch.h"
#include "kernels/kernels.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul_transposed.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace tokenlora::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// dx[t·dx_stride + i] += Σ_{r < n_rows} dy[t·dy_stride + r] · w[r·width + i]
// for t < n_tok, i < width, adding the rows' terms in ascending r.
//   w:  [n_rows, width] f32 (the dequantized tile chunk)
//   dy: [n_tok, ...] row stride dy_stride (column r = output feature r of the tile)
//   dx: [n_tok, ...] row stride dx_stride
// Register blocking: 4 tokens × 2 vectors of dx stay in registers while the
// rows stream by: per row, 2 weight loads and 4 broadcasts feed 8 FMAs.
template <int kT>
HWY_INLINE void AccumulateTokens(const float* HWY_RESTRICT w, int64_t n_rows, int64_t width,
                                 const float* HWY_RESTRICT dy, int64_t dy_stride, float* HWY_RESTRICT dx,
                                 int64_t dx_stride) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + 2 * N <= width; i += 2 * N) {
    V acc0[kT], acc1[kT];
    for (int t = 0; t < kT; ++t) {
      acc0[t] = hn::LoadU(d, dx + t * dx_stride + i);
      acc1[t] = hn::LoadU(d, dx + t * dx_stride + i + N);
    }
    for (int64_t r = 0; r < n_rows; ++r) {
      const V w0 = hn::LoadU(d, w + r * width + i);
      const V w1 = hn::LoadU(d, w + r * width + i + N);
      for (int t = 0; t < kT; ++t) {
        const V g = hn::Set(d, dy[t * dy_stride + r]);
        acc0[t] = hn::MulAdd(g, w0, acc0[t]);
        acc1[t] = hn::MulAdd(g, w1, acc1[t]);
      }
    }
    for (int t = 0; t < kT; ++t) {
      hn::StoreU(acc0[t], d, dx + t * dx_stride + i);
      hn::StoreU(acc1[t], d, dx + t * dx_stride + i + N);
    }
  }
  for (; i + N <= width; i += N) {
    V acc[kT];
    for (int t = 0; t < kT; ++t) acc[t] = hn::LoadU(d, dx + t * dx_stride + i);
    for (int64_t r = 0; r < n_rows; ++r) {
      const V wv = hn::LoadU(d, w + r * width + i);
      for (int t = 0; t < kT; ++t) acc[t] = hn::MulAdd(hn::Set(d, dy[t * dy_stride + r]), wv, acc[t]);
    }
    for (int t = 0; t < kT; ++t) hn::StoreU(acc[t], d, dx + t * dx_stride + i);
  }
  for (; i < width; ++i) {
    for (int t = 0; t < kT; ++t) {
      float acc = dx[t * dx_stride + i];
      for (int64_t r = 0; r < n_rows; ++r) acc += dy[t * dy_stride + r] * w[r * width + i];
      dx[t * dx_stride + i] = acc;
    }
  }
}

void AccumulateTileSimd(const float* HWY_RESTRICT w, int64_t n_rows, int64_t width, const float* HWY_RESTRICT dy,
                        int64_t dy_stride, int64_t n_tok, float* HWY_RESTRICT dx, int64_t dx_stride) {
  int64_t t = 0;
  for (; t + 4 <= n_tok; t += 4) {
    AccumulateTokens<4>(w, n_rows, width, dy + t * dy_stride, dy_stride, dx + t * dx_stride, dx_stride);
  }
  for (; t < n_tok; ++t) {
    AccumulateTokens<1>(w, n_rows, width, dy + t * dy_stride, dy_stride, dx + t * dx_stride, dx_stride);
  }
}

}  // namespace tokenlora::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <vector>

namespace tokenlora::kernels {
namespace {

// Output features dequantized per tile, input features per column chunk
// (1 KiB of f32: a tile's chunk is 16 KiB of scratch, L1-sized), tokens per
// work item (enough to amortise dequantizing the chunk 64 times over).
constexpr int64_t kRowsPerTile = 16;
constexpr int64_t kColChunk = 256;
constexpr int64_t kTokBlock = 64;

using TileFn = void (*)(const float* w, int64_t n_rows, int64_t width, const float* dy, int64_t dy_stride,
                        int64_t n_tok, float* dx, int64_t dx_stride);

// The scalar composition with the same order of additions (no FMA).
void AccumulateTileScalar(const float* w, int64_t n_rows, int64_t width, const float* dy, int64_t dy_stride,
                          int64_t n_tok, float* dx, int64_t dx_stride) {
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int64_t i = 0; i < width; ++i) {
      float acc = dx[t * dx_stride + i];
      for (int64_t r = 0; r < n_rows; ++r) acc += dy[t * dy_stride + r] * w[r * width + i];
      dx[t * dx_stride + i] = acc;
    }
  }
}

}  // namespace

HWY_EXPORT(AccumulateTileSimd);

void AddMatMulTransposed(const TensorView& w, const float* dy, int64_t n_tok, float* dx, ThreadPool& pool) {
  const int64_t n_out = w.Rows();
  const int64_t n_in = w.Cols();
  const int64_t block = Info(w.dtype).block_size;
  TL_CHECK_MSG(w.dtype != DType::kI32 && n_in % block == 0,
               "AddMatMulTransposed: weight '" + w.name + "' has no weight dtype or a partial block per row");
  if (n_tok <= 0 || n_out <= 0 || n_in <= 0) return;
  const bool scalar_path = internal::ForceScalar();
  const TileFn tile = scalar_path ? &AccumulateTileScalar : &HWY_DYNAMIC_DISPATCH(AccumulateTileSimd);
  const auto dequantize = scalar_path ? &scalar::DequantizeRow : &DequantizeRow;

  const int64_t chunk = std::max(kColChunk, block) / block * block;
  const int64_t n_chunks = (n_in + chunk - 1) / chunk;
  const int64_t n_tok_blocks = (n_tok + kTokBlock - 1) / kTokBlock;
  const size_t row_bytes = RowBytes(w.dtype, n_in);
  const auto* w_bytes = static_cast<const uint8_t*>(w.data);
  pool.ParallelFor(static_cast<size_t>(n_chunks * n_tok_blocks), 1, [&](size_t begin, size_t end, int) {
    std::vector<float> scratch(static_cast<size_t>(kRowsPerTile * chunk));  // [16, chunk]
    for (size_t item = begin; item < end; ++item) {
      const int64_t c0 = static_cast<int64_t>(item) % n_chunks * chunk;
      const int64_t width = std::min(chunk, n_in - c0);
      const int64_t t0 = static_cast<int64_t>(item) / n_chunks * kTokBlock;
      const int64_t toks = std::min(kTokBlock, n_tok - t0);
      const size_t col_offset = RowBytes(w.dtype, c0);
      for (int64_t o0 = 0; o0 < n_out; o0 += kRowsPerTile) {
        const int64_t rows = std::min(kRowsPerTile, n_out - o0);
        for (int64_t r = 0; r < rows; ++r) {
          dequantize(w.dtype, w_bytes + static_cast<size_t>(o0 + r) * row_bytes + col_offset,
                     scratch.data() + r * width, width);
        }
        tile(scratch.data(), rows, width, dy + t0 * n_out + o0, n_out, toks, dx + t0 * n_in + c0, n_in);
      }
    }
  });
}

namespace scalar {

void AddMatMulTransposed(const TensorView& w, const float* dy, int64_t n_tok, float* dx) {
  const int64_t n_out = w.Rows();
  const int64_t n_in = w.Cols();
  TL_CHECK_MSG(w.dtype != DType::kI32 && n_in % Info(w.dtype).block_size == 0,
               "scalar::AddMatMulTransposed: weight '" + w.name + "' has no weight dtype or a partial block");
  if (n_tok <= 0 || n_out <= 0 || n_in <= 0) return;
  std::vector<float> row(static_cast<size_t>(n_in));
  for (int64_t o = 0; o < n_out; ++o) {
    DequantizeRow(w.dtype, w.RowPtr(o), row.data(), n_in);
    for (int64_t t = 0; t < n_tok; ++t) {
      const float g = dy[t * n_out + o];
      for (int64_t i = 0; i < n_in; ++i) dx[t * n_in + i] += g * row[static_cast<size_t>(i)];
    }
  }
}

}  // namespace scalar
}  // namespace tokenlora::kernels
#endif  // HWY_ONCE
