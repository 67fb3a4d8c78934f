// End-to-end tests of the `tokenlora` binary: exit codes and messages a
// user sees, on tiny models written by our writers.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <utility>
#include <vector>

#include "io/gguf.h"

#include "test_util.h"
#include "tiny_model.h"

namespace tokenlora {
namespace {

using Result = testing::CliResult;
Result RunCli(const std::string& args) { return testing::RunTokenlora(args); }

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir();
    model_ = testing::WriteTinyModel({"llama", "gguf", DType::kQ4_0}, dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_, model_;
};

TEST_F(CliTest, GenerateStreamsTextAndReportsSpeed) {
  const Result r = RunCli("generate -m " + model_ + " -p 'Hello' -n 8 --ignore-eos");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("prefill:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tokens/s"), std::string::npos) << r.out;
}

TEST_F(CliTest, InspectPrintsTensorTable) {
  const Result r = RunCli("inspect " + model_);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("blk.0.attn_q.weight"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("llama.block_count"), std::string::npos) << r.out;
}

TEST_F(CliTest, TokenizeJson) {
  const Result r = RunCli("tokenize -m " + model_ + " --json 'Hi!'");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("\"ids\":[72,105,33]"), std::string::npos) << r.out;
}

TEST_F(CliTest, BenchJson) {
  const Result r = RunCli("bench -m " + model_ + " -p 8 -n 4 --reps 1 -t 1 --json");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("\"prefill_tps\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"decode_tps\""), std::string::npos) << r.out;
  const Result bad = RunCli("bench -m " + model_ + " -p 8 -n 4 --mix-every 2");
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_NE(bad.out.find("--adapter"), std::string::npos) << bad.out;
}

// -d puts tokens in the KV cache before each test (llama-bench's -d);
// --kv-type picks the cache's elements.
TEST_F(CliTest, BenchDepthAndKvType) {
  const Result r = RunCli("bench -m " + model_ + " -p 8 -n 4 -d 40 --kv-type f32 --reps 1 -t 1 --json");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("\"n_depth\": 40"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"kv_type\": \"f32\""), std::string::npos) << r.out;
  const Result deep = RunCli("bench -m " + model_ + " -p 8 -n 4 -d 1000000 --reps 1");
  EXPECT_EQ(deep.code, 2) << deep.out;
  EXPECT_NE(deep.out.find("--n-depth"), std::string::npos) << deep.out;
  const Result f32 = RunCli("generate -m " + model_ + " -p 'Hello' -n 4 --ignore-eos --kv-type f32");
  EXPECT_EQ(f32.code, 0) << f32.out;
  EXPECT_NE(f32.out.find("kv f32"), std::string::npos) << f32.out;
  const Result bad = RunCli("generate -m " + model_ + " -p 'Hello' -n 4 --kv-type q8_0");
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_NE(bad.out.find("--kv-type"), std::string::npos) << bad.out;
}

// The tiny Q4_0 model is the tiny f32 model's matrices through QuantizeRow
// (bit for bit gguf-py's quantizer), so re-quantizing the f32 file must give
// exactly its tensors; and a Q4_1 -> Q4_0 pass goes through f32 the same way.
TEST_F(CliTest, QuantizeReproducesTheQuantizedTinyModel) {
  const std::string f32 = testing::WriteTinyModel({"llama", "gguf", DType::kF32}, dir_);
  const std::string want = testing::WriteTinyModel({"llama", "gguf", DType::kQ4_0}, dir_);
  const Result r = RunCli("quantize " + f32 + " --type q4_0 -o " + dir_ + "/out.gguf");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("as q4_0"), std::string::npos) << r.out;
  const GgufFile got = GgufFile::Open(dir_ + "/out.gguf"), ref = GgufFile::Open(want);
  ASSERT_EQ(got.tensors().size(), ref.tensors().size());
  for (size_t i = 0; i < ref.tensors().size(); ++i) {
    const TensorView a = got.View(got.tensors()[i]), b = ref.View(ref.tensors()[i]);
    ASSERT_EQ(a.dtype, b.dtype) << a.name;
    ASSERT_EQ(a.NumBytes(), b.NumBytes()) << a.name;
    EXPECT_EQ(std::memcmp(a.data, b.data, a.NumBytes()), 0) << a.name;
  }
  EXPECT_EQ(got.GetInt("general.file_type"), 2);
  // The result runs.
  EXPECT_EQ(RunCli("generate -m " + dir_ + "/out.gguf -p hi -n 4 --ignore-eos").code, 0);
  // Bad input: unknown type, a directory, overwriting the input.
  for (const auto& [args, expect] : std::vector<std::pair<std::string, std::string>>{
           {"quantize " + f32 + " --type q3_x -o " + dir_ + "/x.gguf", "q3_x"},
           {"quantize " + f32 + " --type q4_0 -o " + f32, "overwrite"},
           {"quantize " + f32 + " --type q4_0 -o " + dir_ + "/none/x.gguf", "does not exist"}}) {
    const Result bad = RunCli(args);
    EXPECT_EQ(bad.code, 2) << args << "\n" << bad.out;
    EXPECT_NE(bad.out.find(expect), std::string::npos) << args << "\n" << bad.out;
  }
}

TEST_F(CliTest, BadInputExitsWithTwoAndSaysWhy) {
  struct Case {
    std::string args, expect;
  };
  std::ofstream(dir_ + "/garbage.gguf") << "this is not a gguf file at all";
  const Case cases[] = {
      {"generate -m " + dir_ + "/missing.gguf -p hi", "does not exist"},
      {"generate -m " + dir_ + "/garbage.gguf -p hi", "garbage.gguf"},
      {"generate -m " + model_ + " -p hi --top-p 7", "top-p"},
      {"generate -m " + model_ + " -p hi --no-such-flag", "unknown option '--no-such-flag'"},
      {"generate -m " + model_ + " -p hi --temperature 0.5", "unknown option '--temperature' (did you mean --temp?)"},
      {"eval --suite paper --config base", "unknown option '--config' (did you mean --configs?)"},
      {"generate -m " + model_ + " -p hi stray", "stray"},
      {"generate -m " + model_, "prompt"},
      {"generate -m " + model_ + " -p hi --threads 0", "threads"},
      {"frobnicate", "frobnicate"},
      {"inspect " + dir_ + "/garbage.gguf", "garbage.gguf"},
  };
  for (const Case& c : cases) {
    const Result r = RunCli(c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find(c.expect), std::string::npos) << c.args << "\n" << r.out;
  }
}

}  // namespace
}  // namespace tokenlora
