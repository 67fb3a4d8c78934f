// Loading PEFT and llama.cpp GGUF adapters: what the config means, and the
// errors a user gets for adapters we cannot or must not run.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/mapped_file.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "lora/adapter_bank.h"
#include "lora/merge.h"
#include "lora_test_util.h"
#include "test_util.h"
#include "tiny_model.h"

namespace tokenlora {
namespace {

namespace fs = std::filesystem;
using testing::Contains;

std::string Data(const std::string& name) { return testing::SourcePath("tests/data/lora/" + name); }

// Runs `f`, which must throw InputError; returns the message.
template <typename F>
std::string ErrorOf(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no InputError thrown";
  return "";
}

class AdapterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir();
    model_ = Model::Load(testing::WriteTinyLlamaSafetensors(dir_));
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A copy of a committed adapter whose adapter_config.json `edit` changes.
  std::string EditedCopy(const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
    const std::string out = dir_ + "/" + name + "_edited_" + std::to_string(++n_copies_);
    fs::create_directories(out);
    fs::copy_file(Data(name) + "/adapter_model.safetensors", out + "/adapter_model.safetensors");
    nlohmann::json j = nlohmann::json::parse(ReadTextFile(Data(name) + "/adapter_config.json"));
    edit(j);
    std::ofstream(out + "/adapter_config.json") << j.dump(2);
    return out;
  }
  // An adapter directory holding `tensors` under the config of `config_from`.
  std::string WithTensors(const std::string& config_from, SafetensorsWriter& st) {
    const std::string out = dir_ + "/custom_" + std::to_string(++n_copies_);
    fs::create_directories(out);
    fs::copy_file(Data(config_from) + "/adapter_config.json", out + "/adapter_config.json");
    st.Write(out + "/adapter_model.safetensors");
    return out;
  }

  std::string dir_;
  std::unique_ptr<Model> model_;
  int n_copies_ = 0;
};

TEST_F(AdapterTest, PeftConfigSetsRanksAlphasAndTargets) {
  const LoraAdapter mlp = LoadAdapter("mlp", Data("mlp"));
  EXPECT_EQ(mlp.format, "peft");
  ASSERT_EQ(mlp.modules.size(), 6u);  // gate, up, down × 2 layers
  EXPECT_EQ(mlp.Find(0, ModuleKind::kDown)->rank, 16);
  EXPECT_EQ(mlp.Find(1, ModuleKind::kDown)->rank, 8);  // rank_pattern "layers.1.mlp.down_proj"
  EXPECT_FLOAT_EQ(mlp.Find(1, ModuleKind::kDown)->scale, 32.0f / 8);
  EXPECT_FLOAT_EQ(mlp.Find(0, ModuleKind::kUp)->scale, 8.0f / 16);  // alpha_pattern "up_proj"
  EXPECT_FLOAT_EQ(mlp.Find(0, ModuleKind::kGate)->scale, 32.0f / 16);
  EXPECT_EQ(mlp.TargetNames(), "gate_proj,up_proj,down_proj");

  const LoraAdapter attn = LoadAdapter("attn", Data("attn"));
  EXPECT_TRUE(attn.use_rslora);
  EXPECT_FLOAT_EQ(attn.Find(0, ModuleKind::kO)->scale, 8.0f / 2.0f);  // alpha / √r

  const LoraAdapter v1 = LoadAdapter("v1", Data("v1"));  // layers_to_transform = [1]
  ASSERT_EQ(v1.modules.size(), 1u);
  EXPECT_EQ(v1.modules[0].layer, 1);

  const LoraAdapter re = LoadAdapter("regex", Data("regex"));  // target_modules is a regex
  ASSERT_EQ(re.modules.size(), 2u);
  EXPECT_EQ(re.TargetNames(), "k_proj,o_proj");
  EXPECT_TRUE(re.declared_target("model.layers.0.self_attn.k_proj"));
  EXPECT_FALSE(re.declared_target("model.layers.1.self_attn.k_proj"));
}

TEST_F(AdapterTest, PythonRegexSyntaxAndExcludes) {
  // Python's named groups work (PCRE2 reads re syntax).
  const std::string named =
      EditedCopy("qv", [](auto& j) { j["target_modules"] = R"(.*\.(?P<m>q_proj|v_proj))"; });
  EXPECT_EQ(LoadAdapter("qv", named).modules.size(), 4u);
  // exclude_modules removes a module the weights still hold: refused.
  const std::string excluded =
      EditedCopy("qv", [](auto& j) { j["exclude_modules"] = {"model.layers.1.self_attn.v_proj"}; });
  EXPECT_TRUE(Contains(ErrorOf([&] { LoadAdapter("qv", excluded); }),
                       "adapts model.layers.1.self_attn.v_proj but adapter_config.json"));
}

TEST_F(AdapterTest, AcceptsTheDirectoryOrEitherFile) {
  for (const std::string& p :
       {Data("qv"), Data("qv") + "/adapter_config.json", Data("qv") + "/adapter_model.safetensors"}) {
    EXPECT_EQ(LoadAdapter("qv", p).modules.size(), 4u) << p;
  }
}

TEST_F(AdapterTest, F16StorageKeepsValuesToHalfPrecision) {
  const LoraAdapter f32 = LoadAdapter("qv", Data("qv"));
  const LoraAdapter f16 = LoadAdapter("qv", Data("qv"), {DType::kF16});
  EXPECT_EQ(f16.modules[0].a.dtype, DType::kF16);
  EXPECT_EQ(f16.NumBytes() * 2, f32.NumBytes());
  const std::vector<float> a = f32.modules[0].a.ToF32(), b = f16.modules[0].a.ToF32();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-3f * std::fabs(a[i]) + 1e-7f);
}

TEST_F(AdapterTest, UnsupportedOptionsAreRefusedByName) {
  struct Case {
    std::function<void(nlohmann::json&)> edit;
    const char* expect;
  };
  const Case cases[] = {
      {[](auto& j) { j["use_dora"] = true; }, "DoRA"},
      {[](auto& j) { j["bias"] = "all"; }, "only \"none\""},
      {[](auto& j) { j["modules_to_save"] = {"lm_head"}; }, "modules_to_save"},
      {[](auto& j) { j["lora_bias"] = true; }, "lora_bias"},
      {[](auto& j) {
         j["layer_replication"] = {{0, 2}};
       },
       "layer_replication"},
      {[](auto& j) { j["peft_type"] = "IA3"; }, "LoRA adapters only"},
      {[](auto& j) {
         j["target_modules"] = {"q_proj", "v_proj", "embed_tokens"};
       },
       "embed_tokens"},
      {[](auto& j) {
         j["target_modules"] = {"q_proj", "v_proj", "lm_head"};
       },
       "lm_head"},
      {[](auto& j) { j["target_modules"] = "(q_proj|v_proj"; }, "is not a valid regular expression"},
      {[](auto& j) {
         j["rank_pattern"] = {{"q_proj[", 4}};
       },
       "rank_pattern key"},
      {[](auto& j) { j["r"] = 4; }, "has rank 8 but adapter_config.json gives r=4"},
      {[](auto& j) { j["r"] = "8"; }, "r must be a number"},
      {[](auto& j) { j["r"] = 4294967304ull; }, "r is out of range"},
      {[](auto& j) { j["lora_alpha"] = 1e39; }, "lora_alpha must be a finite number"},
      {[](auto& j) {
         j["rank_pattern"] = {{"q_proj", 0}};
       },
       "rank_pattern['q_proj'] must be a positive rank"},
      {[](auto& j) {
         j["rank_pattern"] = {{"q_proj", 2.5}};
       },
       "must be an integer"},
      {[](auto& j) {
         j["rank_pattern"] = {{"q_proj", -4294967288ll}};
       },
       "is out of range"},
      {[](auto& j) {
         j["alpha_pattern"] = {{"v_proj", 1e300}};
       },
       "alpha_pattern['v_proj'] must be a finite number"},
      {[](auto& j) {
         j["layers_to_transform"] = {0, 1.5};
       },
       "layers_to_transform must be an integer"},
      {[](auto& j) { j["target_modules"] = {"q_proj"}; }, "v_proj but adapter_config.json's target_modules"},
      {[](auto& j) { j["layers_to_transform"] = {1}; }, "model.layers.0.self_attn.q_proj but"},
      {[](auto& j) { j.erase("target_modules"); }, "no target_modules"},
  };
  for (const Case& c : cases) {
    const std::string path = EditedCopy("qv", c.edit);
    EXPECT_TRUE(Contains(ErrorOf([&] { LoadAdapter("qv", path); }), c.expect));
  }
}

TEST_F(AdapterTest, CorruptAndMissingFilesGetClearErrors) {
  // Not JSON.
  std::string p = EditedCopy("qv", [](auto&) {});
  std::ofstream(p + "/adapter_config.json") << "{\"r\": 8,";
  EXPECT_TRUE(Contains(ErrorOf([&] { LoadAdapter("qv", p); }), "not valid JSON"));
  // Truncated weights.
  p = EditedCopy("qv", [](auto&) {});
  fs::resize_file(p + "/adapter_model.safetensors", 1000);
  EXPECT_TRUE(Contains(ErrorOf([&] { LoadAdapter("qv", p); }), "adapter_model.safetensors"));
  // PyTorch pickle only: say how to convert.
  p = EditedCopy("qv", [](auto&) {});
  fs::rename(p + "/adapter_model.safetensors", p + "/adapter_model.bin");
  std::string msg = ErrorOf([&] { LoadAdapter("qv", p); });
  EXPECT_TRUE(Contains(msg, "adapter_model.bin"));
  EXPECT_TRUE(Contains(msg, "save_file"));
  EXPECT_TRUE(Contains(ErrorOf([&] { LoadAdapter("qv", p + "/adapter_model.bin"); }), "save_file"));
  // Nothing there.
  EXPECT_TRUE(Contains(ErrorOf([&] { LoadAdapter("x", dir_ + "/nope"); }), "no such file"));
  fs::create_directories(dir_ + "/empty");
  EXPECT_TRUE(Contains(ErrorOf([&] { LoadAdapter("x", dir_ + "/empty"); }), "no adapter_config.json"));
}

TEST_F(AdapterTest, BadTensorsAreNamed) {
  const std::vector<float> a(8 * 256, 0.01f), b(256 * 8, 0.01f);
  const std::string q = "base_model.model.model.layers.0.self_attn.q_proj.";
  {
    SafetensorsWriter st;
    st.AddTensor(q + "lora_A.weight", DType::kF32, {8, 256}, a.data(), a.size() * 4);
    EXPECT_TRUE(
        Contains(ErrorOf([&] { LoadAdapter("x", WithTensors("qv", st)); }), "has lora_A but no lora_B"));
  }
  {
    std::vector<float> bad = b;
    bad[17] = NAN;
    SafetensorsWriter st;
    st.AddTensor(q + "lora_A.weight", DType::kF32, {8, 256}, a.data(), a.size() * 4);
    st.AddTensor(q + "lora_B.weight", DType::kF32, {256, 8}, bad.data(), bad.size() * 4);
    EXPECT_TRUE(Contains(ErrorOf([&] { LoadAdapter("x", WithTensors("qv", st)); }), "NaN at element 17"));
  }
  {
    SafetensorsWriter st;
    st.AddTensor("base_model.model.model.embed_tokens.lora_embedding_A", DType::kF32, {8, 256}, a.data(),
                 a.size() * 4);
    EXPECT_TRUE(Contains(ErrorOf([&] { LoadAdapter("x", WithTensors("qv", st)); }), "embedding LoRA"));
  }
  {
    SafetensorsWriter st;
    st.AddTensor(q + "lora_magnitude_vector", DType::kF32, {256}, a.data(), 256 * 4);
    EXPECT_TRUE(Contains(ErrorOf([&] { LoadAdapter("x", WithTensors("qv", st)); }), "DoRA"));
  }
  {
    SafetensorsWriter st;
    st.AddTensor(q + "lora_A.weight", DType::kF32, {8, 256}, a.data(), a.size() * 4);
    st.AddTensor(q + "lora_B.weight", DType::kF32, {256, 4}, b.data(), 256 * 4 * 4);
    EXPECT_TRUE(
        Contains(ErrorOf([&] { LoadAdapter("x", WithTensors("qv", st)); }), "must equal lora_A's rows"));
  }
}

TEST_F(AdapterTest, ValidationAgainstTheBaseNamesAdapterTensorAndShapes) {
  AdapterBank bank(*model_);
  LlamaConfig other = model_->config();
  other.d_model = 128;
  std::string msg =
      ErrorOf([&] { bank.Add(testing::RandomAdapter(other, "math", 4, 8, {ModuleKind::kQ}, 1)); });
  EXPECT_TRUE(Contains(msg, "adapter 'math'"));
  EXPECT_TRUE(Contains(msg, "layer 0 q_proj lora_A is [4, 128], base expects [4, 256]"));
  EXPECT_TRUE(Contains(msg, "different base model"));

  other = model_->config();
  other.n_layers = 3;
  msg = ErrorOf([&] { bank.Add(testing::RandomAdapter(other, "deep", 4, 8, {ModuleKind::kV}, 1)); });
  EXPECT_TRUE(Contains(msg, "layer 2 v_proj but the base"));
  EXPECT_TRUE(Contains(msg, "has 2 layers"));

  other = model_->config();
  other.d_ff = 1024;
  msg = ErrorOf([&] { bank.Add(testing::RandomAdapter(other, "wide", 4, 8, {ModuleKind::kDown}, 1)); });
  EXPECT_TRUE(Contains(msg, "down_proj lora_A is [4, 1024], base expects [4, 512]"));
  EXPECT_EQ(bank.size(), 0);

  // A config that promises more than the weights hold.
  LoraAdapter half = testing::RandomAdapter(model_->config(), "half", 4, 8, {ModuleKind::kQ}, 1);
  half.modules.pop_back();  // drop layer 1
  WritePeftAdapter(half, model_->config(), dir_ + "/half");
  nlohmann::json j = nlohmann::json::parse(ReadTextFile(dir_ + "/half/adapter_config.json"));
  j["target_modules"] = {"q_proj"};
  std::ofstream(dir_ + "/half/adapter_config.json") << j.dump();
  EXPECT_TRUE(Contains(ErrorOf([&] { bank.Load("half", dir_ + "/half"); }),
                       "targets model.layers.1.self_attn.q_proj but the weights have no lora_A/lora_B"));
}

TEST_F(AdapterTest, GgufAdapterErrors) {
  // A base model given as an adapter.
  const std::string model_gguf = testing::WriteTinyModel({"llama", "gguf", DType::kF32}, dir_);
  EXPECT_TRUE(Contains(ErrorOf([&] { LoadAdapter("m", model_gguf); }), "this is a model: pass it with -m"));
  // An adapter for another architecture.
  LlamaConfig qwen = model_->config();
  qwen.arch = "qwen2";
  WriteGgufAdapter(testing::RandomAdapter(qwen, "q", 4, 8, {ModuleKind::kQ}, 1), qwen, dir_ + "/q.gguf");
  AdapterBank bank(*model_);
  EXPECT_TRUE(Contains(ErrorOf([&] { bank.Load("q", dir_ + "/q.gguf"); }), "made for architecture 'qwen2'"));
  // Embedding LoRA.
  GgufWriter g;
  g.SetString("general.architecture", "llama");
  g.SetString("general.type", "adapter");
  g.SetString("adapter.type", "lora");
  const std::vector<float> v(8 * 256, 0.0f);
  g.AddTensor("token_embd.weight.lora_a", DType::kF32, {8, 256}, v.data(), v.size() * 4);
  g.Write(dir_ + "/emb.gguf");
  EXPECT_TRUE(Contains(ErrorOf([&] { LoadAdapter("e", dir_ + "/emb.gguf"); }), "embedding LoRA"));
  // Truncated file.
  fs::copy_file(Data("qv.gguf"), dir_ + "/cut.gguf");
  fs::resize_file(dir_ + "/cut.gguf", 4000);
  EXPECT_TRUE(Contains(ErrorOf([&] { LoadAdapter("cut", dir_ + "/cut.gguf"); }), "cut.gguf"));
}

TEST(PermuteHeadRows, MatchesConvertHfToGgufAndInverts) {
  // 2 heads of head_dim 4, one byte per row: convert_hf_to_gguf's permute
  // maps each head's rows (0 1 | 2 3) to (0 2 1 3).
  std::vector<uint8_t> rows = {0, 1, 2, 3, 4, 5, 6, 7};
  PermuteHeadRows(rows.data(), 2, 4, 1, false);
  EXPECT_EQ(rows, (std::vector<uint8_t>{0, 2, 1, 3, 4, 6, 5, 7}));
  std::vector<uint8_t> big(64 * 3);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 7);
  std::vector<uint8_t> copy = big;
  PermuteHeadRows(copy.data(), 4, 16, 3, false);
  EXPECT_NE(copy, big);
  PermuteHeadRows(copy.data(), 4, 16, 3, true);
  EXPECT_EQ(copy, big);
}

// PEFT → GGUF → PEFT keeps every adapter's function on both base formats,
// including rsLoRA and rank/alpha patterns (folded into lora_b in GGUF).
TEST_F(AdapterTest, ConvertRoundTripKeepsLogits) {
  ThreadPool pool(4);
  auto gguf_base = Model::Load(testing::WriteTinyLlamaGgufPermuted(dir_));
  for (const char* name : {"qv", "attn", "mlp", "v1"}) {
    const std::string gguf = dir_ + "/" + name + ".gguf", peft = dir_ + "/" + name + "_back";
    ConvertAdapter(Data(name), gguf, *model_, DType::kF32);
    ConvertAdapter(gguf, peft, *gguf_base, DType::kF32);
    for (const Model* base : {model_.get(), gguf_base.get()}) {
      AdapterBank bank(*base);
      bank.Load("orig", Data(name));
      bank.Load("gguf", gguf);
      bank.Load("back", peft);
      LoraMixer mixer(bank);
      std::vector<std::vector<float>> logits;
      for (const char* which : {"orig", "gguf", "back"}) {
        mixer.SetMixture({{which, 1.0f}});
        logits.push_back(testing::RunLogits(*base, testing::LoraPromptIds(), &mixer, pool));
      }
      EXPECT_LE(testing::MaxAbsDiff(logits[0], logits[1]), 1e-5f)
          << name << " via GGUF on " << base->format();
      EXPECT_LE(testing::MaxAbsDiff(logits[0], logits[2]), 1e-5f)
          << name << " round trip on " << base->format();
    }
  }
  // The GGUF adapter of a llama carries permuted q rows, like llama.cpp's.
  const GgufFile ours = GgufFile::Open(dir_ + "/qv.gguf"), ref = GgufFile::Open(Data("qv.gguf"));
  const TensorView a = ours.View(*ours.FindTensor("blk.0.attn_q.weight.lora_b"));
  const TensorView b = ref.View(*ref.FindTensor("blk.0.attn_q.weight.lora_b"));
  ASSERT_EQ(a.shape, b.shape);
  EXPECT_EQ(std::memcmp(a.data, b.data, a.NumBytes()), 0);
  EXPECT_FLOAT_EQ(static_cast<float>(ours.GetFloat("adapter.lora.alpha")), 16.0f);
}

}  // namespace
}  // namespace tokenlora
