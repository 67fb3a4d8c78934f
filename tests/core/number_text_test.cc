#include "core/number_text.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <limits>

namespace tokenlora {
namespace {

TEST(GeneralNumber, WritesWhatPrintfPercentGWrites) {
  const double values[] = {0.0,    -0.0,    0.9f,     0.9,      50,     1e-05,  1e-4,  123456, 1234567,
                           65504,  -2.5,    1e300,    -1e-300,  4,      0.1f,   1e6,   999999.5,
                           std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::max()};
  for (double v : values) {
    char expected[64];
    std::snprintf(expected, sizeof expected, "%g", v);
    EXPECT_EQ(GeneralNumber(v), expected) << "value " << v;
  }
  EXPECT_EQ(GeneralNumber(0.9f), "0.9");
  EXPECT_EQ(GeneralNumber(1e-05), "1e-05");
  EXPECT_EQ(GeneralNumber(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(GeneralNumber(-std::numeric_limits<double>::infinity()), "-inf");
}

}  // namespace
}  // namespace tokenlora
