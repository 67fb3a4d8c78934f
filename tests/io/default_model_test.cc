// Facts about the real default model (SmolLM2-135M-Instruct, Q4_1), read
// with our GGUF reader. Skipped when the model has not been fetched.
#include <gtest/gtest.h>

#include "io/gguf.h"
#include "io/inspect.h"
#include "test_util.h"

namespace tokenlora {
namespace {

TEST(DefaultModel, GgufFacts) {
  const std::string path = testing::DefaultModelPath();
  if (path.empty()) GTEST_SKIP() << "default model not fetched (scripts/fetch-models)";
  const GgufFile f = GgufFile::Open(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.tensors().size(), 272u);
  EXPECT_EQ(f.GetString("general.architecture"), "llama");
  EXPECT_EQ(f.GetInt("llama.block_count"), 30);
  EXPECT_EQ(f.GetInt("llama.embedding_length"), 576);
  EXPECT_EQ(f.Get("tokenizer.ggml.tokens").ArraySize(), 49152u);
  EXPECT_EQ(f.Get("tokenizer.ggml.merges").ArraySize(), 48900u);

  const GgufTensorInfo* embd = f.FindTensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->dtype, DType::kQ8_0);
  EXPECT_EQ(embd->shape, (std::vector<int64_t>{49152, 576}));
  EXPECT_EQ(embd->NumBytes(), 49152u * 576 / 32 * 34);
  const GgufTensorInfo* q = f.FindTensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->dtype, DType::kQ4_1);
  EXPECT_EQ(q->shape, (std::vector<int64_t>{576, 576}));

  // Every tensor's data lies inside the mapping, and the summary covers all.
  uint64_t total = 0;
  for (const GgufTensorInfo& t : f.tensors()) total += t.NumBytes();
  EXPECT_LE(f.data_offset() + total, f.file_size());
  const std::string summary = FormatGgufSummary(f);
  EXPECT_NE(summary.find("total: 272 tensors, " + std::to_string(total) + " bytes"), std::string::npos);
}

}  // namespace
}  // namespace tokenlora
