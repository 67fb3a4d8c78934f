// Issue 21: what a hostile new user tries. Each case used to crash, run out
// of memory, print NaN with exit 0 or be accepted silently; now each exits
// with code 2 and one "tokenlora: error:" line naming the flag or file, what
// was expected and what was found (or, for invalid UTF-8, warns once).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_util.h"
#include "tiny_model.h"

namespace tokenlora {
namespace {

namespace fs = std::filesystem;
using Result = testing::CliResult;
Result RunCli(const std::string& args) { return testing::RunTokenlora(args); }

bool Has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

class HardeningCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir();
    model_ = testing::WriteTinyModel({"llama", "gguf", DType::kQ4_0}, dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ + "/" + name, std::ios::binary) << bytes;
  }
  // Exit code 2, the house prefix, and every part in the message.
  void ExpectRefused(const std::string& args, const std::vector<std::string>& parts) {
    const Result r = RunCli(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
    EXPECT_TRUE(Has(r.out, "tokenlora: error: ")) << args << "\n" << r.out;
    for (const std::string& p : parts) EXPECT_TRUE(Has(r.out, p)) << "'" << p << "' not in:\n" << args << "\n" << r.out;
  }
  std::string dir_, model_;
};

// One validation per flag, shared by every command: -t is [1, 256] on route,
// embed and router as on generate and bench; numbers that are not numbers say
// so; bounds print short; train --steps 0 no longer means "one epoch".
TEST_F(HardeningCliTest, EveryCommandChecksItsNumericFlagsTheSameWay) {
  for (const std::string t : {"0", "-4", "5000"}) {
    ExpectRefused("embed -t " + t + " hello", {"embed: ", "-t", "expected an integer in [1, 256], got " + t});
    ExpectRefused("route --router r.json -t " + t + " hello", {"route: ", "expected an integer in [1, 256]"});
    ExpectRefused("router build --task a=x.jsonl -o r.json -t " + t, {"router build: ", "[1, 256]"});
    ExpectRefused("generate -m " + model_ + " -p hi -t " + t, {"generate: ", "[1, 256]"});
    ExpectRefused("bench -m " + model_ + " -t " + t, {"bench: ", "[1, 256]"});
  }
  ExpectRefused("generate -m " + model_ + " -p hi -n abc", {"--n-predict", "got 'abc' (not an integer)"});
  ExpectRefused("generate -m " + model_ + " -p hi --seed -1", {"--seed", "expected an integer >= 0, got -1"});
  ExpectRefused("generate -m " + model_ + " -p hi --temp nan", {"--temp", "expected a number in [0, 100], got nan"});
  const Result limit = RunCli("eval --task gsm8k=x.jsonl --limit 0");
  EXPECT_EQ(limit.code, 2) << limit.out;
  EXPECT_TRUE(Has(limit.out, "--limit: expected an integer >= 1, got 0")) << limit.out;
  EXPECT_FALSE(Has(limit.out, "179769313")) << limit.out;  // no 300-digit bound
  EXPECT_FALSE(Has(limit.out, "not in range")) << limit.out;
  ExpectRefused("train -m " + model_ + " --data x.jsonl --template gsm8k -o out --steps 0",
                {"--steps", "expected an integer >= 1, got 0"});
}

// Routing flags: a temperature that is given is used or refused (never the
// default in its place, never NaN weights), and generate's errors name the
// flag the user typed (--route-top-k, not route's or the sampler's --top-k).
TEST_F(HardeningCliTest, RoutingFlagsAreCheckedAndNamedAsTyped) {
  for (const std::string t : {"0", "-1", "inf", "nan"}) {
    ExpectRefused("route --router r.json --temperature " + t + " hello",
                  {"--temperature", "expected a number > 0 and <= 1e+06"});
    ExpectRefused("generate -m " + model_ + " -p hi --router r.json --adapter a=x --route-temperature " + t,
                  {"--route-temperature", "expected a number > 0"});
  }
  ExpectRefused("generate -m " + model_ + " -p hi --router r.json --adapter a=x --route-top-k 0",
                {"--route-top-k", "expected an integer >= 1, got 0"});
  for (const std::string s : {"mean", "softmax:0", "softmax:x"}) {
    ExpectRefused("route --router r.json --score " + s + " hello", {"--score", "'" + s + "'", "softmax:T"});
    ExpectRefused("router eval --router r.json --task a=x.jsonl --score " + s, {"--score", "'" + s + "'"});
    ExpectRefused("generate -m " + model_ + " -p hi --router r.json --adapter a=x --route-score " + s,
                  {"--route-score", "'" + s + "'"});
  }
  ExpectRefused("router build --task a=x.jsonl -o r.json --prototypes 0", {"--prototypes", "[1, 4096], got 0"});
  ExpectRefused("router build --task a=x.jsonl -o r.json --seed -1", {"--seed", "got -1"});
  for (const std::string w : {"0", "-1", "nan", "2e6", "x"})
    ExpectRefused("router build --task a=x.jsonl -o r.json --whiten " + w, {"--whiten"});
}

// Sizes: -c beyond the model's context is refused with what fits; a prompt
// file is read with a bound (/dev/zero used to read until killed).
TEST_F(HardeningCliTest, SizesAreCheckedBeforeAllocating) {
  ExpectRefused("generate -m " + model_ + " -p hi -n 4 -c 5000000",
                {"5000000", "beyond the model's context of 256", "give at most 256"});
  ExpectRefused("generate -m " + model_ + " -n 4 -f /dev/zero", {"/dev/zero", "holds more than 64 MiB"});
  Write("t.jsonl", "{\"question\": \"1+1?\", \"answer\": \"2\"}\n");
  ExpectRefused("train -q -m " + model_ + " --data " + dir_ + "/t.jsonl --template gsm8k -o " + dir_ +
                    "/out --rank 100000",
                {"--rank 100000: expected at most min(in, out)"});
}

// Invalid UTF-8 in a prompt is read as U+FFFD with one warning, as Hugging
// Face tokenizers see it — never dropped silently.
TEST_F(HardeningCliTest, InvalidUtf8PromptWarnsAndBecomesReplacementCharacter) {
  Write("bad.txt", std::string("Hi \xff\xfe there"));
  const Result r = RunCli("generate -m " + model_ + " -n 2 --ignore-eos -f " + dir_ + "/bad.txt");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(Has(r.out, "is not valid UTF-8 (first bad byte 0xff at offset 3)")) << r.out;
  Write("ok.txt", "Hi \xef\xbf\xbd\xef\xbf\xbd there");
  const Result tok_bad = RunCli("tokenize -m " + model_ + " --json \"$(cat " + dir_ + "/bad.txt)\"");
  const Result tok_ok = RunCli("tokenize -m " + model_ + " --json \"$(cat " + dir_ + "/ok.txt)\"");
  ASSERT_EQ(tok_bad.code, 0) << tok_bad.out;
  ASSERT_EQ(tok_ok.code, 0) << tok_ok.out;
  const std::string ids_bad = tok_bad.out.substr(tok_bad.out.find("{\"ids\""));
  EXPECT_EQ(ids_bad, tok_ok.out.substr(tok_ok.out.find("{\"ids\"")));
}

// Files and paths: errors name the flag and the real problem.
TEST_F(HardeningCliTest, FilesAndPathsAreJudgedForWhatTheyAre) {
  fs::create_directories(dir_ + "/data_dir");
  ExpectRefused("train -m " + model_ + " --data " + dir_ + "/missing.jsonl --template gsm8k -o " + dir_ + "/o",
                {"check the path of --data"});
  ExpectRefused("train -m " + model_ + " --data " + dir_ + "/data_dir --template gsm8k -o " + dir_ + "/o",
                {"--data", "is a directory; expected a JSONL file"});
  ExpectRefused("bench -m " + model_ + " --peer " + dir_ + "/missing-llama-bench", {"--peer", "does not exist"});
  fs::create_directories(dir_ + "/st");
  Write("st/model.safetensors", "");
  ExpectRefused("generate -p hi -m " + dir_ + "/st/model.safetensors",
                {"model.safetensors': a safetensors file is loaded as part of its Hugging Face directory",
                 "no config.json beside it"});
  // router build checks -o before minutes of embedding.
  Write("t.jsonl", "{\"question\": \"q\", \"answer\": \"a\"}\n");
  ExpectRefused("router build --task gsm8k=" + dir_ + "/t.jsonl -o " + dir_ + "/no/such/dir/r.json",
                {"directory " + dir_ + "/no/such/dir does not exist"});
}

// The router encoder's precision flag and its benchmark: values checked
// where parsed, the encoder benchmark refuses the language-model flags.
TEST_F(HardeningCliTest, EmbedderPrecisionAndEncoderBenchFlags) {
  ExpectRefused("embed --embedder-precision bf16 hello", {"--embedder-precision 'bf16'", "expected f32", "int8"});
  ExpectRefused("generate -m " + model_ + " -p hi --embedder-precision int8", {"--embedder-precision", "needs a router"});
  ExpectRefused("bench --encoder 0", {"--encoder", "1..256"});
  ExpectRefused("bench --encoder 16 --parallel 4", {"--parallel is not taken with --encoder"});
  ExpectRefused("bench --encoder-batch 4", {"--encoder-batch goes with --encoder"});
  ExpectRefused("router check-precision --router r.json --task a=x.jsonl --embedder-precision auto",
                {"--embedder-precision"});
}

}  // namespace
}  // namespace tokenlora
