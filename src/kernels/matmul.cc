// MatMul: threading, scratch and kernel choice. This is the one place that
// decides how a projection is computed (SIMD tile kernel of matmul-inl.h, or
// the scalar twins under TOKENLORA_SIMD=scalar); faster paths (int8
// activations, repacked weights) plug in here.
//
// Threading: output features are cut into tiles of kTileRows (16) rows and the
// pool claims tiles dynamically. A tile writes y[:, 16·k .. 16·k + 15], i.e.
// 64-byte runs of every y row, so two threads never write the same cache line
// of y when y is 64-byte aligned and n_out % 16 == 0 (otherwise only the lines
// straddling two tiles are shared). MatMulShared numbers the tiles of several
// matrices (q/k/v, gate/up) in a row, so they share one parallel region.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/error.h"
#include "kernels/dispatch.h"
#include "kernels/kernels.h"
#include "kernels/prefetch.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "kernels/matmul-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tokenlora::kernels::HWY_NAMESPACE {

void MatMulTileSimd(DType t, const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t n_in,
                    const float* x, int64_t n_tok, float* y, int64_t y_stride, float* scratch,
                    int64_t scratch_stride, size_t prefetch) {
  MatMulTileT(t, w, row_bytes, n_rows, n_in, x, n_tok, y, y_stride, scratch, scratch_stride,
              prefetch);
}

void MatMulTileRowInvariantSimd(DType t, const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t n_in,
                                const float* x, int64_t n_tok, float* y, int64_t y_stride, float* scratch,
                                int64_t scratch_stride, size_t prefetch) {
  MatMulTileT(t, w, row_bytes, n_rows, n_in, x, n_tok, y, y_stride, scratch, scratch_stride, prefetch,
              /*row_invariant=*/true);
}

}  // namespace tokenlora::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "hwy/aligned_allocator.h"

namespace tokenlora::kernels {
namespace {

// Same contract as MatMulTileSimd (see MatMulTileT in matmul-inl.h).
using TileFn = void (*)(DType t, const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t n_in,
                        const float* x, int64_t n_tok, float* y, int64_t y_stride, float* scratch,
                        int64_t scratch_stride, size_t prefetch);

// The scalar twins composed the same way: dequantize a row, dot it with every token.
void MatMulTileScalar(DType t, const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t n_in,
                      const float* x, int64_t n_tok, float* y, int64_t y_stride, float* scratch,
                      int64_t /*scratch_stride*/, size_t /*prefetch*/) {
  for (int64_t r = 0; r < n_rows; ++r) {
    scalar::DequantizeRow(t, w + static_cast<size_t>(r) * row_bytes, scratch, n_in);
    for (int64_t tok = 0; tok < n_tok; ++tok) {
      y[tok * y_stride + r] = scalar::Dot(scratch, x + tok * n_in, n_in);
    }
  }
}

// Per-thread dequantization scratch, 64-byte aligned. It grows (allocates)
// only when a thread first meets a wider row, never per call.
float* TileScratch(size_t n_floats) {
  thread_local hwy::AlignedFreeUniquePtr<float[]> buffer;
  thread_local size_t capacity = 0;
  if (capacity < n_floats) {
    buffer = hwy::AllocateAligned<float>(n_floats);
    TL_CHECK_MSG(buffer != nullptr, "MatMul: out of memory for tile scratch");
    capacity = n_floats;
  }
  return buffer.get();
}

// Minimum multiply-adds per claimed chunk: below this, waking a thread costs
// more than the work it takes over.
constexpr int64_t kMinMacsPerChunk = 64 * 1024;

}  // namespace

HWY_EXPORT(MatMulTileSimd);
HWY_EXPORT(MatMulTileRowInvariantSimd);

void MatMulImpl(const TensorView* const* ws, float* const* ys, int n, const float* x, int64_t n_tok,
                ThreadPool& pool, bool row_invariant);

void MatMul(const TensorView& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool) {
  const TensorView* ws[] = {&w};
  float* ys[] = {y};
  MatMulImpl(ws, ys, 1, x, n_tok, pool, false);
}

void MatMulRowInvariant(const TensorView& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool) {
  const TensorView* ws[] = {&w};
  float* ys[] = {y};
  MatMulImpl(ws, ys, 1, x, n_tok, pool, true);
}

void MatMulShared(const TensorView* const* ws, float* const* ys, int n, const float* x,
                  int64_t n_tok, ThreadPool& pool) {
  MatMulImpl(ws, ys, n, x, n_tok, pool, false);
}

void MatMulImpl(const TensorView* const* ws, float* const* ys, int n, const float* x, int64_t n_tok,
                ThreadPool& pool, bool row_invariant) {
  TL_CHECK_MSG(n >= 1 && n <= kMaxShared, "MatMulShared: 1 to 8 matrices");
  const int64_t n_in = ws[0]->Cols();
  // first_tile[i]: global index of matrix i's first tile.
  int64_t first_tile[kMaxShared + 1] = {0};
  for (int i = 0; i < n; ++i) {
    const TensorView& w = *ws[i];
    TL_CHECK_MSG(w.dtype != DType::kI32 && w.Cols() % Info(w.dtype).block_size == 0,
                 "MatMul: weight '" + w.name + "' has no weight dtype or a partial block per row");
    TL_CHECK_MSG(w.Cols() == n_in, "MatMulShared: matrices differ in input size");
    first_tile[i + 1] = first_tile[i] + (w.Rows() + kTileRows - 1) / kTileRows;
  }
  const int64_t n_tiles = first_tile[n];
  if (n_tok <= 0 || n_tiles <= 0) return;

  const TileFn tile = internal::ForceScalar() ? &MatMulTileScalar
                      : row_invariant        ? &HWY_DYNAMIC_DISPATCH(MatMulTileRowInvariantSimd)
                                             : &HWY_DYNAMIC_DISPATCH(MatMulTileSimd);
  // Scratch rows start on 64-byte boundaries.
  const int64_t scratch_stride = (n_in + 15) / 16 * 16;
  const size_t prefetch = StreamPrefetchBytes();

  const int64_t macs_per_tile = std::max<int64_t>(1, kTileRows * n_in * n_tok);
  auto run = [&](size_t begin, size_t end, int /*thread*/) {
    float* scratch = TileScratch(static_cast<size_t>(2 * kTileRows * scratch_stride));
    int i = 0;
    for (size_t k = begin; k < end; ++k) {
      while (static_cast<int64_t>(k) >= first_tile[i + 1]) ++i;  // a chunk may cross matrices
      const TensorView& w = *ws[i];
      const int64_t n_out = w.Rows();
      const size_t row_bytes = RowBytes(w.dtype, n_in);
      const int64_t row0 = (static_cast<int64_t>(k) - first_tile[i]) * kTileRows;
      const int64_t n_rows = std::min(kTileRows, n_out - row0);
      tile(w.dtype, static_cast<const uint8_t*>(w.data) + static_cast<size_t>(row0) * row_bytes,
           row_bytes, n_rows, n_in, x, n_tok, ys[i] + row0, n_out, scratch, scratch_stride, prefetch);
    }
  };
  if (n_tok <= 2) {
    // Decoding streams the weights from DRAM: one contiguous range per thread
    // keeps one long stream each for the prefetchers (measured: +10-25% GB/s
    // on 576-1536-row matrices against ~7-tile chunks claimed in turn); a
    // thread that finishes early steals the back half of another's range.
    const int64_t chunk = std::max<int64_t>(1, kMinMacsPerChunk / 4 / macs_per_tile);
    pool.ParallelForRanges(static_cast<size_t>(n_tiles), static_cast<size_t>(chunk), run);
  } else {
    const int64_t grain = std::max<int64_t>(1, kMinMacsPerChunk / macs_per_tile);
    pool.ParallelFor(static_cast<size_t>(n_tiles), static_cast<size_t>(grain), run);
  }
}

}  // namespace tokenlora::kernels
#endif  // HWY_ONCE
