// The adapter flags of `tokenlora generate`, and `merge` / `convert-adapter`,
// end to end through the built binary: exit codes and what the user reads.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "lora_test_util.h"
#include "test_util.h"

namespace tokenlora {
namespace {

namespace fs = std::filesystem;
using testing::Contains;

using Result = testing::CliResult;
std::string Binary() { return std::string(TOKENLORA_BINARY_DIR) + "/tools/tokenlora"; }
Result RunCli(const std::string& args) { return testing::RunTokenlora(args); }

// The ids line `generate --ids` prints.
std::string Ids(const std::string& out) {
  const size_t at = out.find("ids:");
  return at == std::string::npos ? "" : out.substr(at, out.find('\n', at) - at);
}

class LoraCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(Binary())) GTEST_SKIP() << "build the tokenlora binary first (ninja tokenlora_cli)";
    dir_ = testing::TempDir();
    model_ = testing::WriteTinyLlamaSafetensors(dir_);
    data_ = testing::SourcePath("tests/data/lora");
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::string Generate(const std::string& model, const std::string& extra) {
    return "generate -m " + model + " -p 'Hello world' -n 6 --ignore-eos --ids -t 2 " + extra;
  }
  std::string dir_, model_, data_;
};

TEST_F(LoraCliTest, GenerateWithMixtureEqualsMergedModel) {
  const std::string adapters =
      "--adapter qv=" + data_ + "/qv --adapter mlp=" + data_ + "/mlp --mix qv=0.5,mlp=1";
  const Result mixed = RunCli(Generate(model_, adapters));
  ASSERT_EQ(mixed.code, 0) << mixed.out;
  EXPECT_TRUE(Contains(mixed.out, "adapter qv weight 0.5: r=8 alpha=16 q_proj,v_proj on 2 layers"));

  const Result merge = RunCli("merge -m " + model_ + " " + adapters + " -o " + dir_ + "/merged");
  ASSERT_EQ(merge.code, 0) << merge.out;
  EXPECT_TRUE(Contains(merge.out, "merged 10 projections"));
  const Result merged = RunCli(Generate(dir_ + "/merged", ""));
  ASSERT_EQ(merged.code, 0) << merged.out;
  EXPECT_EQ(Ids(merged.out), Ids(mixed.out));
  EXPECT_NE(Ids(RunCli(Generate(model_, "")).out), Ids(mixed.out));
}

TEST_F(LoraCliTest, ConvertAdapterRoundTrip) {
  const Result to_gguf =
      RunCli("convert-adapter " + data_ + "/attn -m " + model_ + " -o " + dir_ + "/attn.gguf");
  ASSERT_EQ(to_gguf.code, 0) << to_gguf.out;
  const Result back = RunCli("convert-adapter " + dir_ + "/attn.gguf -m " + model_ + " -o " + dir_ +
                             "/attn_back --outtype f16");
  ASSERT_EQ(back.code, 0) << back.out;
  EXPECT_TRUE(fs::exists(dir_ + "/attn_back/adapter_config.json"));
  // Every run must succeed (two failures would compare equal), and both
  // converted adapters load back and generate what the original does.
  const Result original = RunCli(Generate(model_, "--adapter " + data_ + "/attn"));
  ASSERT_EQ(original.code, 0) << original.out;
  ASSERT_FALSE(Ids(original.out).empty()) << original.out;
  const Result from_gguf = RunCli(Generate(model_, "--adapter " + dir_ + "/attn.gguf"));
  ASSERT_EQ(from_gguf.code, 0) << from_gguf.out;
  EXPECT_EQ(Ids(from_gguf.out), Ids(original.out));
  const Result from_back = RunCli(Generate(model_, "--adapter " + dir_ + "/attn_back"));
  ASSERT_EQ(from_back.code, 0) << from_back.out;
  EXPECT_EQ(Ids(from_back.out), Ids(original.out));
  EXPECT_NE(Ids(RunCli(Generate(model_, "")).out), Ids(original.out));  // the adapter matters
}

// Values beyond f16's range are refused where f16 is chosen (loading with
// --adapter-type f16, converting with --outtype f16), not turned into Inf
// (convert-adapter used to write a file the loader then refused).
TEST_F(LoraCliTest, F16OverflowIsRefusedAtConversionAndLoad) {
  const auto model = Model::Load(model_);
  LoraAdapter big = testing::RandomAdapter(model->config(), "big", 4, 8, {ModuleKind::kQ}, 7);
  ASSERT_EQ(big.modules.front().b.dtype, DType::kF32);
  reinterpret_cast<float*>(big.modules.front().b.data.data())[1] = 1e6f;
  WritePeftAdapter(big, model->config(), dir_ + "/big");
  const Result load = RunCli(Generate(model_, "--adapter big=" + dir_ + "/big --adapter-type f16"));
  EXPECT_EQ(load.code, 2) << load.out;
  EXPECT_TRUE(Contains(load.out, "element 1 is 1e+06, beyond the f16 range (|x| <= 65504)"));
  for (const char* out : {"/big_f16", "/big_f16.gguf"}) {
    const Result convert =
        RunCli("convert-adapter " + dir_ + "/big -m " + model_ + " -o " + dir_ + out + " --outtype f16");
    EXPECT_EQ(convert.code, 2) << convert.out;
    EXPECT_TRUE(Contains(convert.out, "beyond the f16 range"));
    EXPECT_FALSE(fs::exists(dir_ + out)) << out;
  }
  // f32 keeps it: the conversion works.
  const Result f32 = RunCli("convert-adapter " + dir_ + "/big -m " + model_ + " -o " + dir_ + "/big.gguf");
  EXPECT_EQ(f32.code, 0) << f32.out;
}

// A mixture that overflows the activations stops the generation with an
// error naming the likely cause; it used to "stop at EOS" (greedy argmax of
// NaN is token 0) with exit 0, or print garbage when sampling.
TEST_F(LoraCliTest, NonFiniteLogitsStopWithAnError) {
  for (const char* sampling : {"", "--temp 0.8 --seed 3"}) {
    const Result r = RunCli(Generate(model_, std::string("--adapter qv=") + data_ + "/qv --mix qv=1e30 " + sampling));
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_TRUE(Contains(r.out, "tokenlora: error: the model's logits hold"));
    EXPECT_TRUE(Contains(r.out, "adapter weights or --mix scales too large"));
  }
}

// adapter_config.json without r: PEFT's default 8 applies, and the message
// says so instead of "gives r=8".
TEST_F(LoraCliTest, MissingRankNamesPeftDefault) {
  fs::copy(data_ + "/attn", dir_ + "/attn_no_r", fs::copy_options::recursive);
  const std::string config = dir_ + "/attn_no_r/adapter_config.json";
  std::ifstream in(config);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t at = text.find("\"r\": 4,");
  ASSERT_NE(at, std::string::npos) << text;
  text.erase(at, std::string("\"r\": 4,").size());
  std::ofstream(config) << text;
  const Result r = RunCli(Generate(model_, "--adapter a=" + dir_ + "/attn_no_r"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_TRUE(Contains(r.out, "has rank 4 but adapter_config.json has no r, so PEFT's default r=8 applies"));
  EXPECT_FALSE(Contains(r.out, "gives r=8"));
}

// --adapter-type q8_0 in bench, --outtype q8_0 in convert-adapter.
TEST_F(LoraCliTest, Q8StorageFlags) {
  const std::string bench = "bench -m " + model_ + " -p 4 -n 2 --reps 1 -t 2 --adapter qv=" + data_ + "/qv ";
  const Result q8 = RunCli(bench + "--adapter-type q8_0 --mix-every 1");
  ASSERT_EQ(q8.code, 0) << q8.out;
  EXPECT_TRUE(Contains(q8.out, "q8_0 storage"));
  const Result bad = RunCli(bench + "--adapter-type q4_0");
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_TRUE(Contains(bad.out, "unknown adapter storage type 'q4_0'; expected f32, f16 or q8_0"));

  const Result gguf =
      RunCli("convert-adapter " + data_ + "/qv -m " + model_ + " -o " + dir_ + "/qv_q8.gguf --outtype q8_0");
  ASSERT_EQ(gguf.code, 0) << gguf.out;
  const Result peft =
      RunCli("convert-adapter " + data_ + "/qv -m " + model_ + " -o " + dir_ + "/qv_q8 --outtype q8_0");
  EXPECT_EQ(peft.code, 2) << peft.out;
  EXPECT_TRUE(Contains(peft.out, "q8_0 tensors need a llama.cpp LoRA .gguf output"));
}

TEST_F(LoraCliTest, BadFlagsAndFilesExitWith2) {
  struct Case {
    std::string args, expect;
  };
  const Case cases[] = {
      {Generate(model_, "--adapter x=" + dir_ + "/missing"), "adapter 'x'"},
      {Generate(model_, "--adapter qv=" + data_ + "/qv --mix code=1"),
       "no adapter named 'code' is loaded (loaded: 'qv')"},
      {Generate(model_, "--adapter qv=" + data_ + "/qv --mix qv=high"),
       "weight 'high' of 'qv' is not a number"},
      {Generate(model_, "--adapter qv=" + data_ + "/qv --mix-mode cat"), "--mix-mode"},
      {Generate(model_, "--adapter qv=" + data_ + "/qv --lora-activations int4"), "--lora-activations"},
      {Generate(model_, "--mix qv=1"), "--mix needs adapters"},
      {Generate(model_,
                "--adapter qv=" + data_ + "/qv --adapter attn=" + data_ + "/attn --mix-mode peft-linear"),
       "'qv' has r=8 and 'attn' has r=4"},
      {Generate(model_, "--adapter qv=" + data_ + "/qv --adapter qv=" + data_ + "/qv2"), "already loaded"},
      {Generate(model_, "--adapter m=" + model_), "no adapter_config.json"},
      {"merge -m " + model_ + " --adapter qv=" + data_ + "/qv -o " + dir_ + "/out.gguf", "not .gguf"},
      {"merge -m " + model_ + " --adapter qv=" + data_ + "/qv -o " + model_, "the base's own directory"},
      {"convert-adapter " + data_ + "/qv -m " + dir_ + "/no_model -o " + dir_ + "/x.gguf", "does not exist"},
  };
  for (const Case& c : cases) {
    const Result r = RunCli(c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.out;
    EXPECT_TRUE(Contains(r.out, c.expect)) << c.args;
  }
}

}  // namespace
}  // namespace tokenlora
