// `tokenlora train` through the built binary on the tiny model: the written
// adapter loads in `tokenlora generate --adapter`, --resume continues a run
// stopped early, and bad input exits 2 with a message naming the problem.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"

#include "lora/lora_test_util.h"
#include "test_util.h"
#include "tiny_model.h"

namespace tokenlora {
namespace {

std::string WriteArcRecords(const std::string& dir, int n) {
  const std::string path = dir + "/arc.jsonl";
  std::ofstream out(path);
  for (int i = 0; i < n; ++i) {
    nlohmann::json j = {
        {"question",
         {{"stem", "Which number is " + std::to_string(i) + "?"},
          {"choices",
           {{{"label", "A"}, {"text", std::to_string(i)}}, {{"label", "B"}, {"text", std::to_string(i + 1)}}}}}},
        {"answerKey", "A"}};
    out << j.dump() << "\n";
  }
  return path;
}

// A tiny run stopped after step 2 of 4 with a checkpoint there, for the
// --resume tests to damage: `resume` continues it, `bytes` holds the file.
struct StoppedRun {
  std::string dir, resume, checkpoint, bytes;
};
StoppedRun StopAfterTwoSteps() {
  StoppedRun r;
  r.dir = testing::TempDir();
  const std::string model = testing::WriteTinyModel({"llama", "gguf", DType::kQ4_0}, r.dir);
  const std::string data = WriteArcRecords(r.dir, 8);
  const std::string common = "train -q -m " + model + " --data '" + data +
                             "' --template arc_challenge --rank 4 --max-len 64 -t 1 --batch 2 --steps 4 "
                             "--checkpoint-every 2 -o " + r.dir + "/run";
  const auto stop = testing::RunTokenlora(common + " --stop-after 2");
  EXPECT_EQ(stop.code, 0) << stop.out;
  r.resume = common + " --resume";
  r.checkpoint = r.dir + "/run/checkpoint.safetensors";
  std::ifstream in(r.checkpoint, std::ios::binary);
  r.bytes.assign(std::istreambuf_iterator<char>(in), {});
  return r;
}

TEST(TrainCli, TrainsAnAdapterThatGenerateLoads) {
  const std::string dir = testing::TempDir();
  const std::string model = testing::WriteTinyModel({"llama", "gguf", DType::kQ4_0}, dir);
  const std::string data = WriteArcRecords(dir, 12);
  const std::string common = "train -m " + model + " --data '" + data + "[:10]' --val '" + data +
                             "[10:]' --template arc_challenge --rank 8 --alpha 16 --dropout 0.1 "
                             "--targets q_proj,v_proj,o_proj --lr 1e-3 --batch 2 --grad-accum 2 --max-len 64 --seed 3 "
                             "-t 2 --steps 4 --checkpoint-every 2";
  const auto r = testing::RunTokenlora(common + " -o " + dir + "/out");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(testing::Contains(r.out, "10 sequences"));
  EXPECT_TRUE(testing::Contains(r.out, "tok/s"));
  EXPECT_TRUE(testing::Contains(r.out, "validation loss"));
  for (const char* f : {"adapter_config.json", "adapter_model.safetensors", "train_log.jsonl", "loss.svg"}) {
    EXPECT_TRUE(std::filesystem::exists(dir + "/out/" + f)) << f;
  }
  const auto g = testing::RunTokenlora("generate -m " + model + " --adapter arc=" + dir +
                                       "/out -p 'Question: Which number is 3?' -n 4 -t 1");
  EXPECT_EQ(g.code, 0) << g.out;

  // Stopped after step 3, resumed: the same adapter bytes as the straight run.
  const auto stop = testing::RunTokenlora(common + " -o " + dir + "/part --stop-after 3");
  ASSERT_EQ(stop.code, 0) << stop.out;
  EXPECT_TRUE(testing::Contains(stop.out, "--resume"));
  const auto resume = testing::RunTokenlora(common + " -o " + dir + "/part --resume");
  ASSERT_EQ(resume.code, 0) << resume.out;
  EXPECT_TRUE(testing::Contains(resume.out, "(from 2)"));
  std::ifstream a(dir + "/out/adapter_model.safetensors", std::ios::binary),
      b(dir + "/part/adapter_model.safetensors", std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(a), {}), std::string(std::istreambuf_iterator<char>(b), {}));

  // Resumed once more, finished: nothing runs and no speed or loss is made up.
  const auto again = testing::RunTokenlora(common + " -o " + dir + "/part --resume");
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_TRUE(testing::Contains(again.out, "no step to run: the checkpoint is at step 4")) << again.out;
  EXPECT_FALSE(testing::Contains(again.out, "last loss")) << again.out;
}

// A checkpoint holding a NaN (a diverged run, a corrupt file) is refused on
// --resume; it used to train on with loss NaN and write an adapter that
// `generate` refuses. The run writes nothing over what is there.
TEST(TrainCli, ResumeRefusesACheckpointHoldingNaN) {
  StoppedRun run = StopAfterTwoSteps();
  const std::string& dir = run.dir;
  const std::string& checkpoint = run.checkpoint;
  std::string& bytes = run.bytes;
  ASSERT_FALSE(bytes.empty());
  {
    const SafetensorsFile f = SafetensorsFile::Parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                                                     checkpoint);
    const TensorView& t = f.tensors().back();
    ASSERT_EQ(t.dtype, DType::kF32);
    const size_t at = static_cast<size_t>(static_cast<const uint8_t*>(t.data) - reinterpret_cast<const uint8_t*>(bytes.data()));
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(bytes.data() + at, &nan, sizeof nan);
  }
  std::ofstream(checkpoint, std::ios::binary) << bytes;
  const auto resume = testing::RunTokenlora(run.resume);
  EXPECT_EQ(resume.code, 2) << resume.out;
  EXPECT_TRUE(testing::Contains(resume.out, "holds NaN at element 0"));
  EXPECT_TRUE(testing::Contains(resume.out, "start again without --resume"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/run/adapter_model.safetensors"));
  std::filesystem::remove_all(dir);
}

// A checkpoint whose tensor bytes changed after writing (a flipped bit, a bad
// copy) is refused on --resume: safetensors has no checksum of its own, and
// a changed moment or weight would have resumed without a word.
TEST(TrainCli, ResumeRefusesACheckpointWhoseBytesChanged) {
  StoppedRun run = StopAfterTwoSteps();
  const std::string& dir = run.dir;
  ASSERT_FALSE(run.bytes.empty());
  run.bytes[run.bytes.size() - 3] ^= 0x01;  // the last tensor's last value, still finite
  std::ofstream(run.checkpoint, std::ios::binary) << run.bytes;
  const auto resume = testing::RunTokenlora(run.resume);
  EXPECT_EQ(resume.code, 2) << resume.out;
  EXPECT_TRUE(testing::Contains(resume.out, "the file is corrupt")) << resume.out;
  EXPECT_FALSE(std::filesystem::exists(dir + "/run/adapter_model.safetensors"));
  std::filesystem::remove_all(dir);
}

// --rank above min(in, out) of a target is refused (it used to allocate
// until the kernel killed the process).
TEST(TrainCli, RankAboveTheProjectionIsRefused) {
  const std::string dir = testing::TempDir();
  const std::string model = testing::WriteTinyModel({"llama", "gguf", DType::kQ4_0}, dir);
  const std::string data = WriteArcRecords(dir, 4);
  const auto r = testing::RunTokenlora("train -q -m " + model + " --data " + data +
                                       " --template arc_challenge --rank 100000 -t 1 -o " + dir + "/out");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_TRUE(testing::Contains(r.out, "--rank 100000: expected at most min(in, out)"));
  std::filesystem::remove_all(dir);
}

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// adapter_config.json says what was trained, as PEFT writes it (base model,
// task type, the dropout the trainer applied), with the base file's name and
// SHA-256; convert-adapter keeps it; loss.svg's title names no directories.
TEST(TrainCli, RecordsWhatWasTrained) {
  const std::string dir = testing::TempDir();
  const std::string model = testing::WriteTinyModel({"llama", "gguf", DType::kQ4_0}, dir);
  const std::string data = WriteArcRecords(dir, 8);
  const std::string common = "train -m " + model + " --data '" + data +
                             "' --template arc_challenge --rank 4 --alpha 8 --max-len 64 -t 1 --steps 1 -q";
  auto r = testing::RunTokenlora(common + " --dropout 0.25 --base-name org/tiny-llama -o " + dir + "/named");
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json named = ReadJson(dir + "/named/adapter_config.json");
  EXPECT_EQ(named["base_model_name_or_path"], "org/tiny-llama");
  EXPECT_EQ(named["task_type"], "CAUSAL_LM");
  EXPECT_DOUBLE_EQ(named["lora_dropout"].get<double>(), 0.25);
  EXPECT_EQ(named["peft_type"], "LORA");
  EXPECT_EQ(named["r"], 4);
  EXPECT_EQ(named["tokenlora"]["base_model_file"], std::filesystem::path(model).filename().string());
  const std::string sha = named["tokenlora"]["base_model_sha256"].get<std::string>();
  EXPECT_EQ(sha.size(), 64u);
  EXPECT_EQ(sha.find_first_not_of("0123456789abcdef"), std::string::npos) << sha;

  // Without --base-name and --dropout: the model file's name and the default 0.1.
  // --val none is the default the help names (no validation).
  r = testing::RunTokenlora(common + " --val none -o " + dir + "/plain");
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json plain = ReadJson(dir + "/plain/adapter_config.json");
  EXPECT_EQ(plain["base_model_name_or_path"], std::filesystem::path(model).filename().string());
  EXPECT_DOUBLE_EQ(plain["lora_dropout"].get<double>(), 0.1);
  EXPECT_EQ(plain["tokenlora"]["base_model_sha256"], sha);

  // The loss curve's title: the data file's name, not where it lay.
  std::ifstream svg_in(dir + "/named/loss.svg");
  const std::string svg(std::istreambuf_iterator<char>(svg_in), {});
  EXPECT_TRUE(testing::Contains(svg, "LoRA training: arc.jsonl<")) << svg.substr(0, 400);
  EXPECT_FALSE(testing::Contains(svg, dir)) << svg.substr(0, 400);

  // convert-adapter to another PEFT directory keeps the record.
  r = testing::RunTokenlora("convert-adapter " + dir + "/named -m " + model + " --outtype f16 -o " + dir + "/f16");
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json converted = ReadJson(dir + "/f16/adapter_config.json");
  for (const char* key : {"base_model_name_or_path", "task_type", "lora_dropout", "tokenlora"}) {
    EXPECT_EQ(converted[key], named[key]) << key;
  }
}

TEST(TrainCli, BadInputExitsTwoWithAMessage) {
  const std::string dir = testing::TempDir();
  const std::string model = testing::WriteTinyModel({"llama", "gguf", DType::kF32}, dir);
  const std::string data = WriteArcRecords(dir, 3);
  const std::string base = "train -m " + model + " --data " + data + " -o " + dir + "/out --steps 1 -q";
  auto r = testing::RunTokenlora(base + " --template nosuch");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_TRUE(testing::Contains(r.out, "nosuch"));
  r = testing::RunTokenlora(base + " --template gsm8k");  // ARC records lack 'answer'
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_TRUE(testing::Contains(r.out, "arc.jsonl:1"));
  r = testing::RunTokenlora(base + " --template arc_challenge --targets q_proj,lm_head");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_TRUE(testing::Contains(r.out, "lm_head"));
  r = testing::RunTokenlora(base + " --template arc_challenge --resume");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_TRUE(testing::Contains(r.out, "checkpoint"));
}

}  // namespace
}  // namespace tokenlora
