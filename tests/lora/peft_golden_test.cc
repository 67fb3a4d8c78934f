// Our three mix modes against PEFT itself (tests/golden/lora/peft_logits.json,
// made by scripts/make_golden_lora.py from the adapters in tests/data/lora/):
// each adapter alone, PEFT's `cat` mixture (= exact), current PEFT `linear`
// (= peft-linear) and PEFT 0.4.0 `linear` (= peft04-linear), on the tiny
// Llama as safetensors and as GGUF (q/k rows permuted, adapters reordered).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "lora/adapter_bank.h"
#include "lora/mixer.h"
#include "lora_test_util.h"
#include "test_util.h"

namespace tokenlora {
namespace {

// Writes the tiny base for the golden script; does nothing in a normal run.
TEST(LoraGoldenExport, WriteBase) {
  const char* dir = std::getenv("TOKENLORA_LORA_EXPORT_DIR");
  if (dir == nullptr) GTEST_SKIP() << "set TOKENLORA_LORA_EXPORT_DIR to export the tiny base";
  std::filesystem::create_directories(dir);
  testing::WriteTinyLlamaSafetensors(dir);
}

const nlohmann::json& Golden() {
  static const nlohmann::json j =
      nlohmann::json::parse(ReadTextFile(testing::SourcePath("tests/golden/lora/peft_logits.json")));
  return j;
}

std::vector<float> GoldenLogits(const nlohmann::json& c) {
  std::vector<float> out;
  for (const auto& row : c["logits"]) {
    for (const auto& v : row) out.push_back(v.get<float>());
  }
  return out;
}

constexpr const char* kAdapters[] = {"qv", "attn", "mlp", "qv2", "regex", "v1"};
// f32 throughout; only summation order differs from PyTorch.
constexpr float kTol = 1e-4f;

class PeftGoldenTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir();
    const std::string format = GetParam();
    model_ = Model::Load(format == "gguf" ? testing::WriteTinyLlamaGgufPermuted(dir_)
                                          : testing::WriteTinyLlamaSafetensors(dir_));
    bank_ = std::make_unique<AdapterBank>(*model_);
    for (const char* name : kAdapters)
      bank_->Load(name, testing::SourcePath(std::string("tests/data/lora/") + name));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<AdapterBank> bank_;
  ThreadPool pool_{4};
};

TEST_P(PeftGoldenTest, EveryCaseMatchesPeft) {
  ASSERT_EQ(Golden()["prompt_ids"].get<std::vector<int32_t>>(), testing::LoraPromptIds());
  LoraMixer mixer(*bank_);
  int n_cases = 0;
  for (const auto& c : Golden()["cases"]) {
    const std::string name = c["name"];
    std::vector<std::pair<std::string, float>> weights;
    for (const auto& [k, v] : c["weights"].items()) weights.emplace_back(k, v.get<float>());
    mixer.set_mode(ParseMixMode(c["mode"]));
    mixer.SetMixture(weights);
    const std::vector<float> got = testing::RunLogits(*model_, testing::LoraPromptIds(), &mixer, pool_);
    const float diff = testing::MaxAbsDiff(got, GoldenLogits(c));
    EXPECT_LE(diff, kTol) << GetParam() << " base, case " << name << " (" << c["mode"] << ")";
    std::printf("[ %s base ] %-7s %-14s max |ours - PEFT| = %.2e\n", GetParam(), name.c_str(),
                c["mode"].get<std::string>().c_str(), static_cast<double>(diff));
    ++n_cases;
  }
  EXPECT_EQ(n_cases, 10);  // base, 6 adapters alone, cat, linear, peft04
}

// tests/data/lora/qv.gguf is adapter `qv` written by gguf-py the way
// convert_lora_to_gguf does (q lora_b rows permuted): on either base it must
// give PEFT's logits for `qv`, which checks the GGUF loader and both
// directions of the q/k reordering against an independent writer.
TEST_P(PeftGoldenTest, LlamaCppGgufAdapterMatchesPeft) {
  bank_->Load("qv_gguf", testing::SourcePath("tests/data/lora/qv.gguf"));
  LoraMixer mixer(*bank_);
  mixer.SetMixture({{"qv_gguf", 1.0f}});
  const std::vector<float> got = testing::RunLogits(*model_, testing::LoraPromptIds(), &mixer, pool_);
  for (const auto& c : Golden()["cases"]) {
    if (c["name"] == "qv") {
      EXPECT_LE(testing::MaxAbsDiff(got, GoldenLogits(c)), kTol) << GetParam();
    }
  }
}

// Every golden case with the adapters stored as Q8_0 (lora_A Q8_0; their
// lora_B, r <= 16, falls back to f16) against the same case in f32 storage,
// within the tolerance derived in lora_test_util.h.
TEST_P(PeftGoldenTest, Q8StorageStaysCloseToF32) {
  AdapterBank bank8(*model_);
  for (const char* name : kAdapters)
    bank8.Load(name, testing::SourcePath(std::string("tests/data/lora/") + name), {DType::kQ8_0});
  LoraMixer mixer32(*bank_), mixer8(bank8);
  const std::vector<float> base = testing::RunLogits(*model_, testing::LoraPromptIds(), nullptr, pool_);
  for (const auto& c : Golden()["cases"]) {
    std::vector<std::pair<std::string, float>> weights;
    for (const auto& [k, v] : c["weights"].items()) weights.emplace_back(k, v.get<float>());
    for (LoraMixer* m : {&mixer32, &mixer8}) {
      m->set_mode(ParseMixMode(c["mode"]));
      m->SetMixture(weights);
    }
    const std::vector<float> f32 = testing::RunLogits(*model_, testing::LoraPromptIds(), &mixer32, pool_);
    const std::vector<float> q8 = testing::RunLogits(*model_, testing::LoraPromptIds(), &mixer8, pool_);
    const float effect = testing::MaxAbsDiff(f32, base), diff = testing::MaxAbsDiff(q8, f32);
    EXPECT_LE(diff, testing::kQ8RelTol * effect + testing::kQ8AbsTol)
        << GetParam() << " base, case " << c["name"] << " (" << c["mode"] << ")";
    std::printf("[ %s base ] %-7s %-14s effect %.3f  |q8_0 - f32| = %.2e (%.2f%% of the effect)\n",
                GetParam(), c["name"].get<std::string>().c_str(), c["mode"].get<std::string>().c_str(),
                static_cast<double>(effect), static_cast<double>(diff),
                effect > 0 ? 100.0 * diff / effect : 0.0);
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, PeftGoldenTest, ::testing::Values("safetensors", "gguf"));

// The permuted GGUF base must be the same function as the safetensors base,
// or the adapter tests above would compare different models.
TEST(PermutedGgufBase, SameLogitsAsSafetensors) {
  const std::string dir = testing::TempDir();
  ThreadPool pool(4);
  auto st = Model::Load(testing::WriteTinyLlamaSafetensors(dir));
  auto gg = Model::Load(testing::WriteTinyLlamaGgufPermuted(dir));
  ASSERT_EQ(gg->config().rope_style, RopeStyle::kAdjacentPairs);
  const auto ids = testing::LoraPromptIds();
  EXPECT_LE(testing::MaxAbsDiff(testing::RunLogits(*st, ids, nullptr, pool),
                                testing::RunLogits(*gg, ids, nullptr, pool)),
            1e-4f);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tokenlora
