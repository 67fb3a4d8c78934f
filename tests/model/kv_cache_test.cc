// KvCache sizes and reuse (the batched engine keeps finished sequences'
// caches and hands them to new ones).
#include "model/llama/kv_cache.h"

#include <gtest/gtest.h>

namespace tokenlora {
namespace {

LlamaConfig SmallConfig() {
  LlamaConfig c;
  c.n_layers = 2;
  c.d_model = 64;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 16;
  c.max_context = 4096;
  return c;
}

TEST(KvCache, BytesForMatchesWhatTheConstructorAllocates) {
  const LlamaConfig c = SmallConfig();
  for (int capacity : {1, 31, 32, 33, 100}) {
    for (DType t : {DType::kF16, DType::kF32}) {
      const KvCache kv(c, capacity, t);
      EXPECT_EQ(kv.bytes(), KvCache::BytesFor(c, capacity, t));
      const size_t padded = (capacity + 31) / 32 * 32;
      EXPECT_EQ(kv.bytes(), 2 * 2 * padded * 32 * (t == DType::kF16 ? 2 : 4));
    }
  }
}

TEST(KvCache, ReuseTakesSmallerOrEqualCapacitiesOfTheSameType) {
  const LlamaConfig c = SmallConfig();
  KvCache kv(c, 100, DType::kF16);  // 128 positions of memory
  kv.set_n_past(40);
  EXPECT_FALSE(kv.Reuse(50, DType::kF32));   // other element type
  EXPECT_FALSE(kv.Reuse(129, DType::kF16));  // more than its memory
  EXPECT_EQ(kv.n_past(), 40);                // a refused reuse changes nothing
  EXPECT_EQ(kv.capacity(), 100);
  EXPECT_TRUE(kv.Reuse(128, DType::kF16));
  EXPECT_EQ(kv.capacity(), 128);
  EXPECT_EQ(kv.n_past(), 0);
  EXPECT_TRUE(kv.Reuse(7, DType::kF16));
  EXPECT_EQ(kv.capacity(), 7);
  EXPECT_EQ(kv.bytes(), KvCache::BytesFor(c, 100, DType::kF16));  // the memory it holds
  EXPECT_EQ(kv.layer(0).capacity, 128);                              // the layout stays
}

}  // namespace
}  // namespace tokenlora
