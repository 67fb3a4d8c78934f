// F16/BF16 conversions (tensor/dtype.h), which the f16/bf16 weight paths and
// every block scale rely on: numpy/gguf-py goldens on special values and
// exhaustive round trips.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernel_test_util.h"
#include "tensor/dtype.h"

namespace tokenlora {
namespace {

using testing::BytesToFloats;
using testing::FloatBits;
using testing::ReadGolden;

std::vector<uint16_t> ReadU16(const char* name) {
  const auto bytes = ReadGolden(name);
  std::vector<uint16_t> out(bytes.size() / 2);
  std::memcpy(out.data(), bytes.data(), out.size() * 2);
  return out;
}

// convert_input.f32: ±0, ±inf, NaNs, f16 max and its overflow threshold,
// f16 subnormals and the ties between them, round-to-even ties for both
// formats, f32 subnormals, and random values over 15 decades.
TEST(Convert, F32ToF16MatchesNumpy) {
  const auto x = BytesToFloats(ReadGolden("convert_input.f32"));
  const auto want = ReadU16("convert_f16.bin");
  ASSERT_EQ(x.size(), want.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const uint16_t got = F32ToF16(x[i]);
    if (std::isnan(x[i])) {
      // NaN payloads differ between converters (numpy keeps the top payload
      // bits, we return a canonical quiet NaN); only NaN-ness and sign matter.
      EXPECT_TRUE((got & 0x7C00) == 0x7C00 && (got & 0x03FF) != 0) << i;
      EXPECT_EQ(got & 0x8000, want[i] & 0x8000) << i;
    } else {
      EXPECT_EQ(got, want[i]) << "input " << x[i] << " (index " << i << ")";
    }
  }
}

TEST(Convert, F32ToBF16MatchesGgufPy) {
  const auto x = BytesToFloats(ReadGolden("convert_input.f32"));
  const auto want = ReadU16("convert_bf16.bin");
  ASSERT_EQ(x.size(), want.size());
  for (size_t i = 0; i < x.size(); ++i)
    EXPECT_EQ(F32ToBF16(x[i]), want[i]) << "input " << x[i] << " (index " << i << ")";
}

TEST(Convert, HalfRoundTripsExhaustively) {
  for (uint32_t h = 0; h < (1u << 16); ++h) {
    const float f = F16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(F32ToF16(f), h) << std::hex << h;
    // Bits one ulp (f32) either side still round back to h unless h is at a
    // tie boundary: every f16 is far from its neighbours' midpoints.
    if (std::isfinite(f) && f != 0.0f) {
      ASSERT_EQ(F32ToF16(std::nextafter(f, 0.0f)), h) << std::hex << h;
    }
  }
}

TEST(Convert, BFloat16RoundTripsExhaustively) {
  for (uint32_t h = 0; h < (1u << 16); ++h) {
    const float f = BF16ToF32(static_cast<uint16_t>(h));
    ASSERT_EQ(FloatBits(f), h << 16);
    if (std::isnan(f)) continue;
    ASSERT_EQ(F32ToBF16(f), h) << std::hex << h;
  }
}

}  // namespace
}  // namespace tokenlora
