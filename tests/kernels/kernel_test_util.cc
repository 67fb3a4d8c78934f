#include "kernel_test_util.h"

#include <cstddef>

#include "kernels/kernels.h"
#include "kernels/quant_blocks.h"
#include "kernels/quantize.h"

namespace tokenlora::testing {
namespace {

// Byte offsets of the f16 scale fields in one block of t.
std::vector<size_t> ScaleOffsets(DType t) {
  using namespace kernels;
  switch (t) {
    case DType::kQ8_0: return {offsetof(BlockQ8_0, d)};
    case DType::kQ4_0: return {offsetof(BlockQ4_0, d)};
    case DType::kQ4_1: return {offsetof(BlockQ4_1, d), offsetof(BlockQ4_1, m)};
    case DType::kQ5_0: return {offsetof(BlockQ5_0, d)};
    case DType::kQ5_1: return {offsetof(BlockQ5_1, d), offsetof(BlockQ5_1, m)};
    case DType::kQ4_K: return {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)};
    case DType::kQ5_K: return {offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)};
    case DType::kQ6_K: return {offsetof(BlockQ6_K, d)};
    default: return {};
  }
}

}  // namespace

std::vector<uint8_t> RandomBlocks(std::mt19937& rng, DType t, int64_t n_blocks) {
  const DTypeInfo& info = Info(t);
  std::vector<uint8_t> bytes(static_cast<size_t>(n_blocks * info.block_bytes));
  std::uniform_int_distribution<int> byte(0, 255);
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(byte(rng));
  std::uniform_real_distribution<float> scale(-0.1f, 0.1f);
  auto put16 = [&](size_t at, uint16_t v) { std::memcpy(bytes.data() + at, &v, 2); };
  if (t == DType::kF32) {
    std::uniform_real_distribution<float> value(-4.0f, 4.0f);
    for (int64_t i = 0; i < n_blocks; ++i) {
      const float v = value(rng);
      std::memcpy(bytes.data() + 4 * i, &v, 4);
    }
  } else if (t == DType::kF16 || t == DType::kBF16) {
    for (int64_t i = 0; i < n_blocks; ++i) {
      uint16_t h;
      std::memcpy(&h, bytes.data() + 2 * i, 2);
      const uint16_t exp_mask = t == DType::kF16 ? 0x7C00 : 0x7F80;
      if ((h & exp_mask) == exp_mask)
        put16(2 * static_cast<size_t>(i), static_cast<uint16_t>(h & ~0x4000));
    }
  } else {
    for (int64_t b = 0; b < n_blocks; ++b) {
      for (size_t off : ScaleOffsets(t)) {
        put16(static_cast<size_t>(b * info.block_bytes) + off, F32ToF16(scale(rng)));
      }
    }
  }
  return bytes;
}

Weights MakeWeights(std::mt19937& rng, DType t, int64_t n_out, int64_t n_in) {
  Weights w;
  const auto values = RandomFloats(rng, static_cast<size_t>(n_out * n_in), -1.0f, 1.0f);
  const size_t row_bytes = RowBytes(t, n_in);
  w.bytes.resize(static_cast<size_t>(n_out) * row_bytes);
  w.dequantized.resize(values.size());
  for (int64_t o = 0; o < n_out; ++o) {
    uint8_t* row = w.bytes.data() + static_cast<size_t>(o) * row_bytes;
    kernels::QuantizeRow(t, values.data() + o * n_in, row, n_in);
    kernels::scalar::DequantizeRow(t, row, w.dequantized.data() + o * n_in, n_in);
  }
  w.view = {"test.weight", t, {n_out, n_in}, w.bytes.data()};
  return w;
}

}  // namespace tokenlora::testing
