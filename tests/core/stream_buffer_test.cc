#include "core/stream_buffer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>

namespace tokenlora {
namespace {

constexpr uintptr_t kHugePage = uintptr_t{2} << 20;

TEST(StreamBuffer, AlignedZeroedAndWritable) {
  for (size_t bytes : {size_t{1}, size_t{4096}, kHugePage - 1, kHugePage, 3 * kHugePage + 17}) {
    StreamBuffer buf(bytes);
    ASSERT_EQ(buf.size(), bytes);
    ASSERT_NE(buf.data(), nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(buf.data()) % kHugePage, 0u) << bytes;
    for (size_t i = 0; i < bytes; i += 1021) ASSERT_EQ(buf.data()[i], 0) << i;
    EXPECT_EQ(buf.data()[bytes - 1], 0);
    buf.data()[0] = 1;
    buf.data()[bytes - 1] = 2;
    EXPECT_EQ(buf.data()[bytes - 1], 2);
  }
}

// HugePageBytes reads the kernel's own account; whether it grants huge pages
// depends on the system (THP mode, fragmentation), so only its range is checked.
TEST(StreamBuffer, HugePageBytesIsWithinTheBuffer) {
  StreamBuffer buf(4 * kHugePage);
  for (size_t i = 0; i < buf.size(); i += 4096) buf.data()[i] = 1;
  const size_t huge = buf.HugePageBytes();
  EXPECT_LE(huge, buf.size());
  EXPECT_EQ(huge % kHugePage, 0u);
  EXPECT_EQ(StreamBuffer(0).HugePageBytes(), 0u);
}

TEST(StreamBuffer, EmptyHasNoMemory) {
  StreamBuffer buf(0);
  EXPECT_EQ(buf.size(), 0u);
  EXPECT_EQ(buf.data(), nullptr);
  EXPECT_FALSE(buf.huge_pages());
}

TEST(StreamBuffer, EnvironmentTurnsHugePagesOff) {
  ASSERT_EQ(setenv("TOKENLORA_HUGE_PAGES", "0", 1), 0);
  StreamBuffer off(kHugePage);
  EXPECT_FALSE(off.huge_pages());
  ASSERT_EQ(unsetenv("TOKENLORA_HUGE_PAGES"), 0);
  // Whether the advice is taken depends on the kernel (THP "never" refuses it).
  StreamBuffer on(kHugePage);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(on.data()) % kHugePage, 0u);
}

}  // namespace
}  // namespace tokenlora
