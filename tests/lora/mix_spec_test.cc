// The NAME=PATH and NAME=W,... spellings the front ends share.
#include "lora/mix_spec.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "lora_test_util.h"

namespace tokenlora {
namespace {

TEST(MixSpec, AdapterSpecs) {
  EXPECT_EQ(ParseAdapterSpec("math=/data/math-lora").name, "math");
  EXPECT_EQ(ParseAdapterSpec("math=/data/math-lora").path, "/data/math-lora");
  // A bare path is named after its stem; an '=' after a '/' belongs to the path.
  EXPECT_EQ(ParseAdapterSpec("/data/code-lora/").name, "code-lora");
  EXPECT_EQ(ParseAdapterSpec("/data/x.gguf").name, "x");
  EXPECT_EQ(ParseAdapterSpec("/data/a=b").path, "/data/a=b");
  EXPECT_THROW(ParseAdapterSpec("math="), InputError);
  EXPECT_THROW(ParseAdapterSpec("=/data/x"), InputError);
}

TEST(MixSpec, Mixtures) {
  const auto mix = ParseMixSpec("math=0.7,code=-0.25,chat=1e-1");
  ASSERT_EQ(mix.size(), 3u);
  EXPECT_EQ(mix[1].first, "code");
  EXPECT_FLOAT_EQ(mix[1].second, -0.25f);
  EXPECT_FLOAT_EQ(mix[2].second, 0.1f);
  for (const char* bad : {"math", "math=", "=1", "math=1,", "math=1x", "math=nan", "math=inf", "a=1,a=2"}) {
    EXPECT_THROW(ParseMixSpec(bad), InputError) << bad;
  }
  try {
    ParseMixSpec("math=1,math=2");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_TRUE(testing::Contains(e.what(), "'math' is given twice"));
  }
}

}  // namespace
}  // namespace tokenlora
