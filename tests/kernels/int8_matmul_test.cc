// The int8-activation MatMul (kernels/int8_matmul.h):
//  * the scalar twin against an independent double-precision evaluation of
//    the documented formula from the original GGUF blocks (checks packing);
//  * the AMX, VNNI and AVX2 kernels bit-identical to the scalar twin, over shapes
//    that hit every token remainder, partial panels, 1 and 2 threads,
//    misaligned x, and the extreme Q8_0, Q5 and K-quant quants;
//  * activation quantization: SIMD bytes == scalar bytes, ties, zero blocks;
//  * int8 close to the f32 MatMul (the price of the int8 activations).
#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/int8_matmul.h"
#include "kernels/kernels.h"
#include "kernels/quant_blocks.h"
#include "kernels/quantize.h"

namespace tokenlora::kernels {
namespace {

using testing::MakeWeights;
using testing::Weights;

// Int8 quantization of one block written out independently of the kernels:
// d = max|x| / 127, q = x / d rounded half to even.
void QuantizeBlockRef(const float* x, std::vector<double>& xq_deq) {
  float amax = 0.0f;
  for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int i = 0; i < 32; ++i) xq_deq.push_back(static_cast<double>(d) * std::nearbyint(x[i] * id));
}

// y[t, o] = Σ_i dequant(w)[o, i] · dequant(int8(x))[t, i] in double: the
// documented result of the int8 path, whatever the packing.
std::vector<double> Reference(const Weights& w, const float* x, int64_t n_tok) {
  const int64_t n_out = w.view.shape[0], n_in = w.view.shape[1];
  std::vector<double> xd;
  for (int64_t i = 0; i < n_tok * n_in; i += 32) QuantizeBlockRef(x + i, xd);
  std::vector<double> y(static_cast<size_t>(n_tok * n_out));
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int64_t o = 0; o < n_out; ++o) {
      double s = 0;
      for (int64_t i = 0; i < n_in; ++i) {
        s += static_cast<double>(w.dequantized[static_cast<size_t>(o * n_in + i)]) *
             xd[static_cast<size_t>(t * n_in + i)];
      }
      y[static_cast<size_t>(t * n_out + o)] = s;
    }
  }
  return y;
}

// The SIMD kernel pairs this CPU can run, called directly (the public entry
// runs only the one Int8KernelName() picked).
struct SimdKernel {
  const char* name;
  void (*quantize)(DType, const float*, int64_t, int64_t, const internal::QuantizedActs&);
  void (*panels)(const PackedMatrix&, const internal::QuantizedActs&, int64_t, int64_t, float*, size_t);
  // The AMX kernel implements only some of the packable types.
  bool Runs(DType t) const { return std::string(name) != "amx" || Int8AmxSupports(t); }
};
std::vector<SimdKernel> AvailableKernels() {
  std::vector<SimdKernel> k;
  if (CpuHasAmx()) k.push_back({"amx", &internal::QuantizeActsVnni, &internal::PanelsAmx});
  if (CpuHasVnni()) k.push_back({"vnni", &internal::QuantizeActsVnni, &internal::PanelsVnni});
  if (CpuHasAvx2()) k.push_back({"avx2", &internal::QuantizeActsAvx2, &internal::PanelsAvx2});
  return k;
}

// Buffers for the quantized activations of [n_tok, n_in].
struct Acts {
  std::vector<int8_t> q;
  std::vector<float> d, s;
  std::vector<int32_t> corr, corr_hi;
  internal::QuantizedActs view;
  Acts(int64_t n_tok, int64_t n_in)
      : q(static_cast<size_t>(n_tok * n_in)), d(static_cast<size_t>(n_tok * n_in / 32)), s(d.size()), corr(d.size()),
        corr_hi(d.size()),
        view{n_tok, n_in, n_in / 32, q.data(), d.data(), corr.data(), s.data(), corr_hi.data()} {}
};

class Int8MatMul : public ::testing::TestWithParam<DType> {};

// n rounded up to whole blocks of t (256 for the K-quants), so every shape
// below is a legal row length of every type.
int64_t Cols(DType t, int64_t n) {
  const int64_t block = Info(t).block_size;
  return (n + block - 1) / block * block;
}

TEST_P(Int8MatMul, ScalarTwinMatchesIndependentFormula) {
  const DType t = GetParam();
  std::mt19937 rng(7);
  for (int64_t n_out : {1, 16, 37}) {
    for (int64_t n_in_any : {32, 96, 576}) {
      const int64_t n_in = Cols(t, n_in_any);
      for (int64_t n_tok : {1, 3, 9}) {
        SCOPED_TRACE(std::to_string(n_out) + "x" + std::to_string(n_in) + " tokens " + std::to_string(n_tok));
        const Weights w = MakeWeights(rng, t, n_out, n_in);
        const auto x = testing::RandomFloats(rng, static_cast<size_t>(n_tok * n_in), -2.0f, 2.0f);
        const auto packed = PackForInt8(w.view);
        std::vector<float> y(static_cast<size_t>(n_tok * n_out), -1.0f);
        scalar::MatMulInt8(*packed, x.data(), n_tok, y.data());
        const auto want = Reference(w, x.data(), n_tok);
        for (size_t k = 0; k < y.size(); ++k) {
          // f32 scaling of exact integer sums, one rounding per block.
          EXPECT_NEAR(y[k], want[k], 1e-5 * (1.0 + std::fabs(want[k]))) << k;
        }
      }
    }
  }
}

TEST_P(Int8MatMul, SimdKernelsBitIdenticalToScalarTwin) {
  const auto kernels = AvailableKernels();
  if (kernels.empty()) GTEST_SKIP() << "this CPU has neither AVX-512 VNNI nor AVX2";
  const DType t = GetParam();
  std::mt19937 rng(11);
  ThreadPool one(1), two(2);
  for (int64_t n_out : {16, 37, 64, 100}) {
    for (int64_t n_in_any : {32, 64, 160, 576}) {
      const int64_t n_in = Cols(t, n_in_any);
      for (int64_t n_tok : {1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 70}) {
        SCOPED_TRACE(std::to_string(n_out) + "x" + std::to_string(n_in) + " tokens " + std::to_string(n_tok));
        const Weights w = MakeWeights(rng, t, n_out, n_in);
        // One float past an aligned start: x misaligned for every vector load.
        auto buf = testing::RandomFloats(rng, static_cast<size_t>(n_tok * n_in + 1), -3.0f, 3.0f);
        const float* x = buf.data() + 1;
        const auto packed = PackForInt8(w.view);
        const size_t n_y = static_cast<size_t>(n_tok * n_out);
        std::vector<float> want(n_y), got1(n_y + 1, -7.0f), got2(n_y, -7.0f);
        scalar::MatMulInt8(*packed, x, n_tok, want.data());
        // The public entry (the picked kernel, 1 and 2 threads, misaligned y)...
        MatMulInt8(*packed, x, n_tok, got1.data() + 1, one);
        MatMulInt8(*packed, x, n_tok, got2.data(), two);
        for (size_t k = 0; k < n_y; ++k) {
          ASSERT_EQ(testing::FloatBits(got1[k + 1]), testing::FloatBits(want[k])) << k;
          ASSERT_EQ(testing::FloatBits(got2[k]), testing::FloatBits(want[k])) << k;
        }
        // ...and every kernel this CPU has, called directly.
        for (const SimdKernel& kernel : kernels) {
          if (!kernel.Runs(t)) continue;
          Acts acts(n_tok, n_in);
          kernel.quantize(t, x, 0, n_tok, acts.view);
          // Prefetching ahead (none, 4 KiB, past the end) changes no result.
          for (const size_t prefetch : {size_t{0}, size_t{4096}, size_t{65536}}) {
            std::vector<float> got(n_y, -7.0f);
            kernel.panels(*packed, acts.view, 0, packed->NumPanels(), got.data(), prefetch);
            for (size_t k = 0; k < n_y; ++k) {
              ASSERT_EQ(testing::FloatBits(got[k]), testing::FloatBits(want[k]))
                  << kernel.name << " prefetch " << prefetch << " " << k;
            }
          }
        }
      }
    }
  }
}

// Every SIMD kernel that runs `t` gives the scalar twin's `want` ([n_tok,
// n_out]) bit for bit on the first n tokens of x ([n_tok, n_in]), for each n
// of `token_counts` (decode and prompt paths).
void ExpectKernelsMatchTwin(const std::vector<SimdKernel>& kernels, DType t, const PackedMatrix& packed,
                            const std::vector<float>& x, int64_t n_in, const std::vector<float>& want,
                            std::initializer_list<int64_t> token_counts) {
  for (const SimdKernel& kernel : kernels) {
    if (!kernel.Runs(t)) continue;
    for (const int64_t n : token_counts) {
      Acts acts(n, n_in);
      kernel.quantize(t, x.data(), 0, n, acts.view);
      std::vector<float> got(static_cast<size_t>(n * packed.n_out));
      kernel.panels(packed, acts.view, 0, packed.NumPanels(), got.data(), 4096);
      EXPECT_TRUE(std::equal(got.begin(), got.end(), want.begin())) << kernel.name << " " << n;
    }
  }
}

// Q8_0 quants of -128 (legal in a GGUF file though Q8_0 rounding never makes
// them) and activations of ±127 are the extremes of the AVX2 sign trick.
TEST(Int8MatMulExtremes, Q8ExtremeQuantsStayExact) {
  const auto kernels = AvailableKernels();
  if (kernels.empty()) GTEST_SKIP() << "this CPU has neither AVX-512 VNNI nor AVX2";
  const int64_t n_out = 16, n_in = 64, n_tok = 2;
  std::vector<uint8_t> bytes(RowBytes(DType::kQ8_0, n_in) * n_out);
  for (size_t b = 0; b < bytes.size(); b += 34) {
    const uint16_t one = 0x3C00;  // f16 1.0
    std::memcpy(&bytes[b], &one, 2);
    for (int i = 0; i < 32; ++i) bytes[b + 2 + static_cast<size_t>(i)] = (i + b / 34) % 3 == 0 ? 0x80 : 0x7F;
  }
  TensorView v{"q8.extreme", DType::kQ8_0, {n_out, n_in}, bytes.data()};
  std::vector<float> x(static_cast<size_t>(n_tok * n_in));
  for (size_t i = 0; i < x.size(); ++i) x[i] = i % 2 ? 1.0f : -1.0f;  // quantizes to ±127
  const auto packed = PackForInt8(v);
  std::vector<float> want(static_cast<size_t>(n_tok * n_out));
  scalar::MatMulInt8(*packed, x.data(), n_tok, want.data());
  ExpectKernelsMatchTwin(kernels, DType::kQ8_0, *packed, x, n_in, want, {n_tok});
}

// Q5 quants of 31 (all fifth bits set) against activations of ±127: the
// largest 16-bit partial sums of the AVX2 kernel (4·2·31·127 = 31496), and
// the fifth-bit masks of every row and element.
TEST(Int8MatMulExtremes, Q5ExtremeQuantsStayExact) {
  const auto kernels = AvailableKernels();
  if (kernels.empty()) GTEST_SKIP() << "this CPU has neither AVX-512 VNNI nor AVX2";
  for (const DType t : {DType::kQ5_0, DType::kQ5_1}) {
    SCOPED_TRACE(Name(t));
    const int64_t n_out = 32, n_in = 64, n_tok = 3;
    const size_t block_bytes = t == DType::kQ5_0 ? sizeof(BlockQ5_0) : sizeof(BlockQ5_1);
    std::vector<uint8_t> bytes(RowBytes(t, n_in) * n_out);
    for (size_t b = 0; b < bytes.size() / block_bytes; ++b) {
      uint8_t* blk = &bytes[b * block_bytes];
      const uint16_t one = 0x3C00, half = 0x3800;  // f16 1.0, 0.5
      std::memcpy(blk, &one, 2);
      if (t == DType::kQ5_1) std::memcpy(blk + 2, &half, 2);
      uint8_t* qh = blk + (t == DType::kQ5_0 ? 2 : 4);
      uint8_t* qs = qh + 4;
      // Even blocks: every quant 31; odd blocks: a row-dependent pattern.
      for (int i = 0; i < 4; ++i) qh[i] = b % 2 == 0 ? 0xFF : static_cast<uint8_t>(0x5A ^ (b * 37 + i));
      for (int i = 0; i < 16; ++i) qs[i] = b % 2 == 0 ? 0xFF : static_cast<uint8_t>(b * 13 + i * 7);
    }
    TensorView v{"q5.extreme", t, {n_out, n_in}, bytes.data()};
    std::vector<float> x(static_cast<size_t>(n_tok * n_in));
    // Token 0 all +1, token 1 all -1 (both quantize to ±127), token 2 mixed.
    for (size_t i = 0; i < x.size(); ++i) x[i] = i < 64 ? 1.0f : i < 128 ? -1.0f : (i % 3 ? 1.0f : -1.0f);
    const auto packed = PackForInt8(v);
    std::vector<float> want(static_cast<size_t>(n_tok * n_out));
    scalar::MatMulInt8(*packed, x.data(), n_tok, want.data());
    ExpectKernelsMatchTwin(kernels, t, *packed, x, n_in, want, {n_tok});
  }
}

// Q6_K quants of 63 and 0 (q − 32 = 31, −32) with int8 sub-block scales of
// 127 and −128, Q5_K quants of 31 with 6-bit scales and mins of 63, against
// activations of ±127: the largest 16-bit partial sums of the AVX2 kernel
// (Q6_K: 2·2·63·127 = 32004) and both bit masks of every row and element.
// Whole super-blocks of 256, one of them all-extreme, one a pattern.
TEST(Int8MatMulExtremes, KQuantExtremeQuantsStayExact) {
  const auto kernels = AvailableKernels();
  if (kernels.empty()) GTEST_SKIP() << "this CPU has neither AVX-512 VNNI nor AVX2";
  for (const DType t : {DType::kQ6_K, DType::kQ5_K}) {
    SCOPED_TRACE(Name(t));
    const int64_t n_out = 32, n_in = 512, n_tok = 3;
    const size_t block_bytes = static_cast<size_t>(Info(t).block_bytes);
    std::vector<uint8_t> bytes(RowBytes(t, n_in) * n_out);
    const uint16_t one = 0x3C00, half = 0x3800;  // f16 1.0, 0.5
    for (size_t b = 0; b < bytes.size() / block_bytes; ++b) {
      uint8_t* blk = &bytes[b * block_bytes];
      const bool all = b % 2 == 0;  // even super-blocks: every quant and scale at its extreme
      auto pattern = [&](size_t i) { return all ? uint8_t{0xFF} : static_cast<uint8_t>(b * 29 + i * 13 + 0x5A); };
      if (t == DType::kQ6_K) {
        BlockQ6_K q;
        for (size_t i = 0; i < sizeof(q.ql); ++i) q.ql[i] = pattern(i);
        for (size_t i = 0; i < sizeof(q.qh); ++i) q.qh[i] = pattern(i + 7);
        // All 63 (q − 32 = 31) with scale 127 / −128 alternating; odd blocks also hit q = 0.
        if (!all) q.ql[3] = q.qh[3] = 0;
        for (int j = 0; j < 16; ++j) q.scales[j] = static_cast<int8_t>(j % 2 ? -128 : 127);
        q.d = one;
        std::memcpy(blk, &q, sizeof(q));
      } else {
        BlockQ5_K q;
        q.d = one;
        q.dmin = half;
        for (int i = 0; i < kKScaleBytes; ++i) q.scales[i] = all ? 0xFF : pattern(static_cast<size_t>(i));
        for (size_t i = 0; i < sizeof(q.qh); ++i) q.qh[i] = pattern(i + 3);
        for (size_t i = 0; i < sizeof(q.qs); ++i) q.qs[i] = pattern(i);
        std::memcpy(blk, &q, sizeof(q));
      }
    }
    TensorView v{"k.extreme", t, {n_out, n_in}, bytes.data()};
    std::vector<float> x(static_cast<size_t>(n_tok * n_in));
    // Token 0 all +1, token 1 all -1 (both quantize to ±127), token 2 mixed.
    for (size_t i = 0; i < x.size(); ++i) {
      x[i] = i < 512 ? 1.0f : i < 1024 ? -1.0f : (i % 3 ? 1.0f : -1.0f);
    }
    const auto packed = PackForInt8(v);
    std::vector<float> want(static_cast<size_t>(n_tok * n_out));
    scalar::MatMulInt8(*packed, x.data(), n_tok, want.data());
    // The twin against the dequantized weights (x quantizes exactly to ±127·(1/127)).
    std::vector<float> row(static_cast<size_t>(n_in));
    for (int64_t o = 0; o < n_out; ++o) {
      scalar::DequantizeRow(t, v.RowPtr(o), row.data(), n_in);
      for (int64_t tok = 0; tok < n_tok; ++tok) {
        double ref = 0, abs_sum = 0;
        for (int64_t i = 0; i < n_in; ++i) {
          ref += static_cast<double>(row[static_cast<size_t>(i)]) * x[static_cast<size_t>(tok * n_in + i)];
          abs_sum += std::fabs(row[static_cast<size_t>(i)]);
        }
        EXPECT_NEAR(want[static_cast<size_t>(tok * n_out + o)], ref, 1e-5 * (1.0 + abs_sum)) << o << " " << tok;
      }
    }
    ExpectKernelsMatchTwin(kernels, t, *packed, x, n_in, want, {1, 2, n_tok});  // decode and prompt paths
  }
}

TEST(Int8Kernels, AmxRunsOnlyTheTypesItImplements) {
  for (const DType t : {DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ8_0, DType::kQ4_K,
                        DType::kQ5_K, DType::kQ6_K}) {
    EXPECT_TRUE(Int8Packable(t));
    for (const int64_t n_tok : {int64_t{1}, kAmxMinTokens, int64_t{512}}) {
      const std::string name = Int8KernelNameFor(t, n_tok);
      if (!Int8AmxSupports(t) || n_tok < kAmxMinTokens) {
        EXPECT_NE(name, "amx") << Name(t) << " " << n_tok;
      }
    }
  }
  EXPECT_FALSE(Int8AmxSupports(DType::kQ5_0));
  EXPECT_FALSE(Int8AmxSupports(DType::kQ5_1));
  EXPECT_FALSE(Int8AmxSupports(DType::kQ4_K));
  EXPECT_FALSE(Int8AmxSupports(DType::kQ5_K));
  EXPECT_FALSE(Int8AmxSupports(DType::kQ6_K));
}

// The cost of int8 activations against the f32 MatMul: relative error of a
// dot product ~ 1/127 per block / √(blocks); bound 2% of Σ|w·x|.
TEST_P(Int8MatMul, CloseToF32MatMul) {
  const DType t = GetParam();
  std::mt19937 rng(3);
  ThreadPool pool(2);
  const int64_t n_out = 48, n_in = Cols(t, 576), n_tok = 5;
  const Weights w = MakeWeights(rng, t, n_out, n_in);
  const auto x = testing::RandomFloats(rng, static_cast<size_t>(n_tok * n_in), -1.0f, 1.0f);
  const auto packed = PackForInt8(w.view);
  std::vector<float> y8(static_cast<size_t>(n_tok * n_out)), y32(y8.size());
  MatMulInt8(*packed, x.data(), n_tok, y8.data(), pool);
  MatMul(w.view, x.data(), n_tok, y32.data(), pool);
  for (int64_t tok = 0; tok < n_tok; ++tok) {
    for (int64_t o = 0; o < n_out; ++o) {
      double abs_sum = 0;
      for (int64_t i = 0; i < n_in; ++i) {
        abs_sum += std::fabs(w.dequantized[static_cast<size_t>(o * n_in + i)] *
                             x[static_cast<size_t>(tok * n_in + i)]);
      }
      const size_t k = static_cast<size_t>(tok * n_out + o);
      EXPECT_NEAR(y8[k], y32[k], 0.02 * abs_sum) << k;
    }
  }
}

// q/k/v-style: three matrices of one input in one region, panels of a chunk
// crossing from one matrix into the next; bit-identical to separate calls.
TEST_P(Int8MatMul, SharedInputEqualsSeparateCalls) {
  std::mt19937 rng(23);
  ThreadPool pool(2);
  const int64_t n_in = Cols(GetParam(), 64);
  const Weights w0 = MakeWeights(rng, GetParam(), 37, n_in), w1 = MakeWeights(rng, GetParam(), 16, n_in),
                w2 = MakeWeights(rng, GetParam(), 70, n_in);
  const auto p0 = PackForInt8(w0.view), p1 = PackForInt8(w1.view), p2 = PackForInt8(w2.view);
  for (int64_t n_tok : {1, 9}) {
    const auto x = testing::RandomFloats(rng, static_cast<size_t>(n_tok * n_in), -1.0f, 1.0f);
    std::vector<float> a0(37 * n_tok), a1(16 * n_tok), a2(70 * n_tok), b0(a0.size()), b1(a1.size()), b2(a2.size());
    MatMulInt8(*p0, x.data(), n_tok, a0.data(), pool);
    MatMulInt8(*p1, x.data(), n_tok, a1.data(), pool);
    MatMulInt8(*p2, x.data(), n_tok, a2.data(), pool);
    const PackedMatrix* ws[] = {p0.get(), p1.get(), p2.get()};
    float* ys[] = {b0.data(), b1.data(), b2.data()};
    MatMulInt8Shared(ws, ys, 3, x.data(), n_tok, pool);
    EXPECT_EQ(a0, b0);
    EXPECT_EQ(a1, b1);
    EXPECT_EQ(a2, b2);
  }
}

// Packing into caller memory (Model::Load's weight buffer) writes the same
// bytes as PackForInt8, padding included, whatever the memory held before,
// and stays inside PackedInt8Bytes.
TEST_P(Int8MatMul, PackIntoCallerMemoryEqualsOwnedPack) {
  std::mt19937 rng(29);
  ThreadPool pool(2);
  const int64_t n_in = Cols(GetParam(), 96);
  for (int64_t n_out : {1, 16, 37}) {
    const Weights w = MakeWeights(rng, GetParam(), n_out, n_in);
    const auto owned = PackForInt8(w.view);
    const size_t bytes = PackedInt8Bytes(w.view);
    ASSERT_EQ(bytes % 64, 0u);
    ASSERT_GE(bytes, owned->panel_bytes * static_cast<size_t>(owned->NumPanels()));
    std::vector<uint8_t> memory(bytes + 64 + 8, 0xAB);  // 64-byte aligned start, guard bytes after
    uint8_t* dst = memory.data() + (64 - reinterpret_cast<uintptr_t>(memory.data()) % 64) % 64;
    const auto placed = PackForInt8Into(w.view, dst);
    ASSERT_EQ(placed->data.get(), dst);
    EXPECT_EQ(std::memcmp(placed->data.get(), owned->data.get(), bytes), 0) << n_out;
    EXPECT_EQ(dst[bytes], 0xAB);
    const auto x = testing::RandomFloats(rng, static_cast<size_t>(n_in), -1.0f, 1.0f);
    std::vector<float> a(static_cast<size_t>(n_out)), b(a.size());
    MatMulInt8(*owned, x.data(), 1, a.data(), pool);
    MatMulInt8(*placed, x.data(), 1, b.data(), pool);
    EXPECT_EQ(a, b);
  }
}

INSTANTIATE_TEST_SUITE_P(Types, Int8MatMul,
                         ::testing::Values(DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1,
                                           DType::kQ8_0, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K),
                         [](const auto& info) { return std::string(Name(info.param)); });

TEST(Int8Acts, SimdQuantizationMatchesScalarIncludingTiesAndZeros) {
  const auto kernels = AvailableKernels();
  if (kernels.empty()) GTEST_SKIP() << "this CPU has neither AVX-512 VNNI nor AVX2";
  std::mt19937 rng(5);
  const int64_t n_tok = 3, n_in = 128, nb = n_in / 32;
  auto x = testing::RandomFloats(rng, static_cast<size_t>(n_tok * n_in), -5.0f, 5.0f);
  // Block 1 of token 0: all zero. Block 2: exact halves after scaling
  // (max 127 → d = 1, values k + 0.5 must round to even).
  std::fill(x.begin() + 32, x.begin() + 64, 0.0f);
  for (int i = 0; i < 32; ++i) x[static_cast<size_t>(64 + i)] = i == 0 ? 127.0f : -20.5f + static_cast<float>(i);
  for (const SimdKernel& kernel : kernels) {
  SCOPED_TRACE(kernel.name);
  for (DType t : {DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ8_0, DType::kQ4_K, DType::kQ5_K,
                  DType::kQ6_K}) {
    std::vector<int8_t> q1(x.size()), q2(x.size());
    std::vector<float> d1(n_tok * nb), d2(d1.size()), s1(d1.size()), s2(d1.size());
    std::vector<int32_t> c1(d1.size()), c2(d1.size()), h1(d1.size()), h2(d1.size());
    internal::QuantizedActs a1{n_tok, n_in, nb, q1.data(), d1.data(), c1.data(), s1.data(), h1.data()};
    internal::QuantizedActs a2{n_tok, n_in, nb, q2.data(), d2.data(), c2.data(), s2.data(), h2.data()};
    internal::QuantizeActsScalar(t, x.data(), 0, n_tok, a1);
    kernel.quantize(t, x.data(), 0, n_tok, a2);
    EXPECT_EQ(q1, q2);
    EXPECT_EQ(c1, c2);
    if (t == DType::kQ6_K) {
      EXPECT_EQ(h1, h2);
      // The two halves' corrections: 32·Σq of elements 0..15 and 16..31.
      int32_t lo = 0, hi = 0;
      for (int i = 0; i < 16; ++i) lo += q1[static_cast<size_t>(i)], hi += q1[static_cast<size_t>(16 + i)];
      EXPECT_EQ(c1[0], 32 * lo);
      EXPECT_EQ(h1[0], 32 * hi);
    }
    for (size_t k = 0; k < d1.size(); ++k) {
      EXPECT_EQ(testing::FloatBits(d1[k]), testing::FloatBits(d2[k]));
      EXPECT_EQ(testing::FloatBits(s1[k]), testing::FloatBits(s2[k]));
    }
    EXPECT_EQ(d1[1], 0.0f);
    EXPECT_EQ(q1[65], -20);  // -19.5 → -20 (even)
    EXPECT_EQ(q1[66], -18);  // -18.5 → -18
  }
  }
}

TEST(Int8PackDeathTest, RefusesOtherTypes) {
  std::vector<uint8_t> bytes(RowBytes(DType::kF16, 256) * 2);
  TensorView v{"blk.0.attn_q.weight", DType::kF16, {2, 256}, bytes.data()};
  EXPECT_FALSE(Int8Packable(DType::kF16));
  EXPECT_FALSE(Int8Packable(DType::kBF16));
  EXPECT_FALSE(Int8Packable(DType::kF32));
  EXPECT_DEATH(PackForInt8(v), "not a Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q4_K/Q5_K/Q6_K matrix");
}

}  // namespace
}  // namespace tokenlora::kernels
