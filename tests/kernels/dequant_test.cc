// DequantizeRow: SIMD == scalar twin bit for bit (all targets, 0..8 blocks,
// misaligned source and destination), both == gguf-py on golden blocks, and
// the f16 paths exhaustively over all 65536 halves.
//
// Tolerance: none. Dequantized values are f16 scales times small integers
// whose products are exact in f32, so every correct implementation rounds
// identically (see src/kernels/dequant_scalar.cc).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/kernels.h"
#include "kernels/quant_blocks.h"

namespace tokenlora::kernels {
namespace {

using testing::BytesToFloats;
using testing::FloatBits;
using testing::ReadGolden;

const DType kWeightTypes[] = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ8_0,
                              DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1,
                              DType::kQ4_K, DType::kQ5_K, DType::kQ6_K};

// Index of the first element whose bits differ, or -1.
int64_t FirstMismatch(const float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (FloatBits(a[i]) != FloatBits(b[i])) return i;
  }
  return -1;
}

TEST(Dequantize, SimdMatchesScalarTwinAllLengthsAndAlignments) {
  std::mt19937 rng(1);
  for (DType t : kWeightTypes) {
    SCOPED_TRACE(std::string(Name(t)));
    const int block = Info(t).block_size;
    // Plain types: lengths 0 .. 2N+7 elements; block types: 0 .. 8 blocks.
    const int64_t max_units = block == 1 ? 2 * testing::kMaxLanes + 7 : 8;
    for (int64_t units = 0; units <= max_units; ++units) {
      const int64_t n = units * block;
      const std::vector<uint8_t> row = testing::RandomBlocks(rng, t, units);
      std::vector<float> expected(static_cast<size_t>(n));
      scalar::DequantizeRow(t, row.data(), expected.data(), n);
      for (int misalign = 0; misalign <= 3; ++misalign) {
        // Source shifted by `misalign` bytes, destination by `misalign` floats.
        std::vector<uint8_t> src(row.size() + 8);
        if (!row.empty()) std::memcpy(src.data() + misalign, row.data(), row.size());
        std::vector<float> dst(static_cast<size_t>(n) + 8, -1.0f);
        testing::ForEachSimdTarget([&] {
          std::fill(dst.begin(), dst.end(), -1.0f);
          DequantizeRow(t, src.data() + misalign, dst.data() + misalign, n);
          const int64_t bad = FirstMismatch(dst.data() + misalign, expected.data(), n);
          ASSERT_EQ(bad, -1) << "n=" << n << " misalign=" << misalign << " element " << bad << ": "
                             << dst[static_cast<size_t>(misalign + bad)] << " vs "
                             << expected[static_cast<size_t>(bad)];
          // Nothing written outside [0, n).
          for (int i = 0; i < misalign; ++i) ASSERT_EQ(dst[static_cast<size_t>(i)], -1.0f);
          for (size_t i = static_cast<size_t>(misalign + n); i < dst.size(); ++i)
            ASSERT_EQ(dst[i], -1.0f);
        });
      }
    }
  }
}

struct GoldenCase {
  const char* name;
  DType type;
};
void PrintTo(const GoldenCase& c, std::ostream* os) { *os << c.name; }

class DequantGolden : public ::testing::TestWithParam<GoldenCase> {};

// Blocks with random bits (finite scales, plus edge scales: ±0, subnormal,
// ±65504) dequantized by gguf-py.
TEST_P(DequantGolden, MatchesGgufPy) {
  const GoldenCase& c = GetParam();
  const std::vector<uint8_t> blocks = ReadGolden(std::string("dequant_") + c.name + ".bin");
  const std::vector<float> expected =
      BytesToFloats(ReadGolden(std::string("dequant_") + c.name + ".f32"));
  const DTypeInfo& info = Info(c.type);
  ASSERT_EQ(blocks.size() % static_cast<size_t>(info.block_bytes), 0u);
  const int64_t n =
      static_cast<int64_t>(blocks.size() / static_cast<size_t>(info.block_bytes)) * info.block_size;
  ASSERT_EQ(static_cast<size_t>(n), expected.size());
  ASSERT_GT(n, 0);

  std::vector<float> got(static_cast<size_t>(n));
  scalar::DequantizeRow(c.type, blocks.data(), got.data(), n);
  int64_t bad = FirstMismatch(got.data(), expected.data(), n);
  ASSERT_EQ(bad, -1) << "scalar twin, element " << bad << ": " << got[static_cast<size_t>(bad)]
                     << " vs gguf-py " << expected[static_cast<size_t>(bad)];
  testing::ForEachSimdTarget([&] {
    std::fill(got.begin(), got.end(), 0.0f);
    DequantizeRow(c.type, blocks.data(), got.data(), n);
    const int64_t bad_simd = FirstMismatch(got.data(), expected.data(), n);
    ASSERT_EQ(bad_simd, -1) << "SIMD, element " << bad_simd;
  });
}

INSTANTIATE_TEST_SUITE_P(
    AllTypes, DequantGolden,
    ::testing::Values(GoldenCase{"f16", DType::kF16}, GoldenCase{"bf16", DType::kBF16},
                      GoldenCase{"q8_0", DType::kQ8_0}, GoldenCase{"q4_0", DType::kQ4_0},
                      GoldenCase{"q4_1", DType::kQ4_1}, GoldenCase{"q5_0", DType::kQ5_0},
                      GoldenCase{"q5_1", DType::kQ5_1}, GoldenCase{"q4_K", DType::kQ4_K},
                      GoldenCase{"q5_K", DType::kQ5_K}, GoldenCase{"q6_K", DType::kQ6_K}),
    [](const auto& info) { return std::string(info.param.name); });

// Equal bits, or both NaN (vector conversions may quiet a signalling NaN).
bool SameOrBothNaN(float a, float b) {
  return FloatBits(a) == FloatBits(b) || (std::isnan(a) && std::isnan(b));
}

// Every f16 bit pattern: the vector F16 row conversion and the inline scale
// conversion (exercised through Q8_0 blocks with all quants 1, so the output
// is exactly 1·d) both equal F16ToF32.
TEST(Dequantize, F16ExhaustiveRowsAndBlockScales) {
  constexpr int kCount = 1 << 16;
  std::vector<uint16_t> halves(kCount);
  std::vector<uint8_t> q8(static_cast<size_t>(kCount) * sizeof(BlockQ8_0));
  for (int h = 0; h < kCount; ++h) {
    halves[static_cast<size_t>(h)] = static_cast<uint16_t>(h);
    BlockQ8_0 blk;
    blk.d = static_cast<uint16_t>(h);
    std::memset(blk.qs, 1, sizeof(blk.qs));
    std::memcpy(q8.data() + static_cast<size_t>(h) * sizeof(blk), &blk, sizeof(blk));
  }
  std::vector<float> row(kCount), scales(static_cast<size_t>(kCount) * kBlock32);
  testing::ForEachSimdTarget([&] {
    DequantizeRow(DType::kF16, halves.data(), row.data(), kCount);
    DequantizeRow(DType::kQ8_0, q8.data(), scales.data(), static_cast<int64_t>(kCount) * kBlock32);
    for (int h = 0; h < kCount; ++h) {
      const float want = F16ToF32(static_cast<uint16_t>(h));
      ASSERT_TRUE(SameOrBothNaN(row[static_cast<size_t>(h)], want))
          << "f16 row, half 0x" << std::hex << h;
      for (int i = 0; i < kBlock32; ++i) {
        ASSERT_TRUE(
            SameOrBothNaN(scales[static_cast<size_t>(h) * kBlock32 + static_cast<size_t>(i)], want))
            << "Q8_0 scale, half 0x" << std::hex << h;
      }
    }
  });
}

TEST(Dequantize, BF16ExhaustiveRows) {
  constexpr int kCount = 1 << 16;
  std::vector<uint16_t> values(kCount);
  for (int h = 0; h < kCount; ++h) values[static_cast<size_t>(h)] = static_cast<uint16_t>(h);
  std::vector<float> row(kCount);
  testing::ForEachSimdTarget([&] {
    DequantizeRow(DType::kBF16, values.data(), row.data(), kCount);
    for (int h = 0; h < kCount; ++h) {
      ASSERT_EQ(FloatBits(row[static_cast<size_t>(h)]), static_cast<uint32_t>(h) << 16) << h;
    }
  });
}

}  // namespace
}  // namespace tokenlora::kernels
