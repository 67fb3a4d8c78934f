// `inspect` output for GGUF, safetensors files and directories, and the
// errors for files of other kinds.
#include "io/inspect.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "io/gguf.h"
#include "io/safetensors.h"
#include "io_test_util.h"
#include "test_util.h"

namespace tokenlora {
namespace {

namespace fs = std::filesystem;
using testing::RandomBytes;

class Inspect : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::TempDir(); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

void ExpectContains(const std::string& text, const std::vector<std::string>& parts) {
  for (const std::string& p : parts) EXPECT_NE(text.find(p), std::string::npos) << "'" << p << "' not in:\n" << text;
}

std::string ErrorOf(const std::string& path) {
  try {
    InspectModelFile(path);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST_F(Inspect, Gguf) {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetU32("llama.block_count", 30);
  w.SetF32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  std::vector<std::string> tokens;
  for (int i = 0; i < 100; ++i) tokens.push_back("tok" + std::to_string(i));
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  const auto q = RandomBytes(4 * 34, 1);
  const auto n = RandomBytes(32 * 4, 2);
  w.AddTensor("token_embd.weight", DType::kQ8_0, {4, 32}, q.data(), q.size());
  w.AddTensor("output_norm.weight", DType::kF32, {32}, n.data(), n.size());
  w.Write(dir_ + "/m.gguf");
  const std::string out = InspectModelFile(dir_ + "/m.gguf");
  ExpectContains(out, {"GGUF version 3, alignment 32",
                       "metadata (4 keys)",
                       "general.architecture",
                       "string",
                       "\"llama\"",
                       "u32",
                       "30",
                       "1e-05",
                       "array[string]",
                       "[\"tok0\", \"tok1\", \"tok2\", \"tok3\", \"tok4\", \"tok5\", \"tok6\", \"tok7\", ...] (100 items)",
                       "tensors (2 tensors",
                       "token_embd.weight",
                       "q8_0",
                       "[4, 32]",
                       "136",
                       "output_norm.weight",
                       "total: 2 tensors, 264 bytes",
                       "f32",
                       "1 tensor"});
  EXPECT_EQ(out.find("tok8"), std::string::npos);
  // Keys keep file order.
  EXPECT_LT(out.find("general.architecture"), out.find("tokenizer.ggml.tokens"));
}

TEST_F(Inspect, SafetensorsFileAndDirectory) {
  SafetensorsWriter w;
  w.SetMetadata("format", "pt");
  const auto a = RandomBytes(6 * 2, 1);
  const auto b = RandomBytes(4, 2);
  w.AddTensor("model.embed_tokens.weight", DType::kBF16, {2, 3}, a.data(), a.size());
  w.AddTensor("model.norm.weight", DType::kF32, {1}, b.data(), b.size());
  w.Write(dir_ + "/model.safetensors");
  std::string out = InspectModelFile(dir_ + "/model.safetensors");
  ExpectContains(out, {"(safetensors", "metadata (1 key)", "format", "\"pt\"", "model.embed_tokens.weight",
                       "BF16", "[2, 3]", "model.norm.weight", "12", "total: 2 tensors, 16 bytes"});
  out = InspectModelFile(dir_);
  ExpectContains(out, {"directory:", "1 file)", "model.embed_tokens.weight"});

  // Sharded: the table gains a file column.
  const std::string sharded = dir_ + "/sharded";
  fs::create_directory(sharded);
  SafetensorsWriter s1, s2;
  s1.AddTensor("a", DType::kF32, {1}, b.data(), b.size());
  s2.AddTensor("b", DType::kI32, {1}, b.data(), b.size());
  s1.Write(sharded + "/part1.safetensors");
  s2.Write(sharded + "/part2.safetensors");
  std::ofstream(sharded + "/model.safetensors.index.json")
      << R"({"weight_map": {"a": "part1.safetensors", "b": "part2.safetensors"}})";
  out = InspectModelFile(sharded);
  ExpectContains(out, {"2 files)", "shard:", "part1.safetensors", "part2.safetensors", "I32", "file"});
}

TEST_F(Inspect, OtherKindsOfFile) {
  std::ofstream(dir_ + "/model.bin") << std::string("PK\x03\x04rest", 8);
  std::string msg = ErrorOf(dir_ + "/model.bin");
  ExpectContains(msg, {"not a GGUF or safetensors file", "50 4b 03 04", "PyTorch"});
  std::ofstream(dir_ + "/config.json") << R"({"architectures": ["LlamaForCausalLM"]})";
  ExpectContains(ErrorOf(dir_ + "/config.json"), {"JSON file", "model directory"});
  std::ofstream(dir_ + "/empty");
  ExpectContains(ErrorOf(dir_ + "/empty"), {"empty file"});
  ExpectContains(ErrorOf(dir_ + "/missing.gguf"), {"cannot open", "missing.gguf"});
  // A .gguf file that is not GGUF gets the GGUF reader's message.
  std::ofstream(dir_ + "/bad.gguf") << "hello world, not gguf";
  ExpectContains(ErrorOf(dir_ + "/bad.gguf"), {"not a GGUF file"});
  ExpectContains(ErrorOf(dir_), {"no model.safetensors"});
}

}  // namespace
}  // namespace tokenlora
