// TOKENLORA_PREFETCH parsing and the per-CPU default (kernels/prefetch.h).
#include "kernels/prefetch.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace tokenlora::kernels {
namespace {

TEST(Prefetch, ParsesByteCountsThatAreWholeCacheLines) {
  EXPECT_EQ(ParsePrefetchBytes("0"), 0u);
  EXPECT_EQ(ParsePrefetchBytes("64"), 64u);
  EXPECT_EQ(ParsePrefetchBytes("4096"), 4096u);
  EXPECT_EQ(ParsePrefetchBytes("65536"), 65536u);
}

TEST(Prefetch, RejectsWhatIsNotAByteCount) {
  for (const char* bad : {"", "-64", "4k", "4096 ", " 64", "100", "65600", "999999", "0x40", "1e3"}) {
    EXPECT_FALSE(ParsePrefetchBytes(bad).has_value()) << "'" << bad << "'";
  }
  EXPECT_FALSE(ParsePrefetchBytes(nullptr).has_value());
}

TEST(Prefetch, DefaultIsOnlyOnIntel) {
  __builtin_cpu_init();
  EXPECT_EQ(DefaultPrefetchBytes(), __builtin_cpu_is("intel") ? 4096u : 0u);
  // Without TOKENLORA_PREFETCH in the test environment the default holds.
  if (std::getenv("TOKENLORA_PREFETCH") == nullptr) {
    EXPECT_EQ(StreamPrefetchBytes(), DefaultPrefetchBytes());
  }
}

}  // namespace
}  // namespace tokenlora::kernels
