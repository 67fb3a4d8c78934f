// Q8_0 adapter storage (AdapterLoadOptions{DType::kQ8_0}): the values it
// keeps, the f16 fallback for rows that are not whole 32-value blocks, the
// storage names, and the function of Q8_0 adapters against the f32 path in
// every mix mode, merged, stacked with adapters of other storage, and
// written to GGUF. (The PEFT goldens in Q8_0: peft_golden_test.cc.)
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <random>
#include <span>

#include "core/error.h"
#include "io/gguf.h"
#include "kernels/int8_matmul.h"
#include "kernels/kernels.h"
#include "kernels/quantize.h"
#include "lora/adapter_bank.h"
#include "lora/merge.h"
#include "lora/mixer.h"
#include "lora_test_util.h"
#include "model/llama/forward.h"
#include "test_util.h"

namespace tokenlora {
namespace {

namespace fs = std::filesystem;
using testing::Contains;
using Mix = std::vector<std::pair<std::string, float>>;
constexpr int kMax = AdapterBank::kMaxAdapters;

// Q8_0 stores q = round(x/d) with d = amax/127 (amax: the block's largest
// magnitude), so |x − q·d| <= d/2 = amax/254; the f16 rounding of d (relative
// 2^-11 while d is a normal f16, which value_scale ensures) adds at most
// |q|·d·2^-11 <= amax·2^-11. f32 rounding of x/d adds ~1e-7 relative.
constexpr float kQ8Bound = 1.0f / 254 + 1.0f / 2048;

using testing::kQ8AbsTol;
using testing::kQ8RelTol;

std::string Data(const std::string& name) { return testing::SourcePath("tests/data/lora/" + name); }

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

// Largest |x̂ − x| / (amax of x's block), over the blocks of `values` [rows, cols].
float MaxBlockRelativeError(const std::vector<float>& values, const std::vector<float>& got) {
  float worst = 0;
  for (size_t b = 0; b < values.size(); b += 32) {
    float amax = 0, err = 0;
    for (size_t i = b; i < b + 32; ++i) {
      amax = std::max(amax, std::fabs(values[i]));
      err = std::max(err, std::fabs(got[i] - values[i]));
    }
    if (amax > 0) worst = std::max(worst, err / amax);
  }
  return worst;
}

TEST(Q8Storage, ValuesStayWithinTheBlockBoundAtAnyMagnitude) {
  const int64_t rows = 8, cols = 256;
  for (float magnitude : {1.0f, 1e-2f, 1e-4f, 1e-6f}) {
    std::vector<float> v(static_cast<size_t>(rows * cols));
    uint64_t s = 12345;
    for (size_t i = 0; i < v.size(); ++i) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      const float u = static_cast<float>(s >> 40) / static_cast<float>(1 << 24) * 2 - 1;  // [-1, 1)
      v[i] = u * magnitude * (i % 256 < 32 ? 1e-3f : 1.0f);  // one block per row 1000× smaller
    }
    const LoraMatrix m = LoraMatrix::FromF32(v.data(), rows, cols, DType::kQ8_0);
    ASSERT_EQ(m.dtype, DType::kQ8_0);
    EXPECT_EQ(m.data.size(), static_cast<size_t>(rows * cols / 32 * 34));
    int exponent = 0;
    EXPECT_EQ(std::frexp(m.value_scale, &exponent), 0.5f) << "value_scale must be a power of two";
    EXPECT_LE(MaxBlockRelativeError(v, m.ToF32()), kQ8Bound * 1.0001f) << "magnitude " << magnitude;

    // Plain Q8_0 of the same values (no value_scale): below |x| ≈ 7.8e-3 its
    // f16 block scales are subnormal and lose bits; value_scale is why the
    // bound above holds at every magnitude.
    std::vector<uint8_t> plain(RowBytes(DType::kQ8_0, cols) * static_cast<size_t>(rows));
    std::vector<float> back(v.size());
    for (int64_t r = 0; r < rows; ++r) {
      kernels::QuantizeRow(DType::kQ8_0, &v[static_cast<size_t>(r * cols)],
                           plain.data() + static_cast<size_t>(r) * RowBytes(DType::kQ8_0, cols), cols);
      kernels::DequantizeRow(DType::kQ8_0,
                             plain.data() + static_cast<size_t>(r) * RowBytes(DType::kQ8_0, cols),
                             &back[static_cast<size_t>(r * cols)], cols);
    }
    if (magnitude <= 1e-4f) {
      EXPECT_GT(MaxBlockRelativeError(v, back), 2 * kQ8Bound) << "magnitude " << magnitude;
    }
  }
  // All zeros: zeros back.
  const std::vector<float> zeros(64, 0.0f);
  EXPECT_EQ(LoraMatrix::FromF32(zeros.data(), 2, 32, DType::kQ8_0).ToF32(), zeros);
}

TEST(Q8Storage, StorageNamesParseAndBadNamesListTheChoices) {
  for (DType t : {DType::kF32, DType::kF16, DType::kQ8_0})
    EXPECT_EQ(ParseAdapterStorage(AdapterStorageName(t)), t);
  EXPECT_EQ(ParseAdapterStorage("Q8_0"), DType::kQ8_0);
  for (const char* bad : {"q4_0", "bf16", "", "q8"}) {
    const std::string msg = ErrorOf([&] { ParseAdapterStorage(bad); });
    EXPECT_TRUE(Contains(msg, "unknown adapter storage type '" + std::string(bad) + "'"));
    EXPECT_TRUE(Contains(msg, "expected f32, f16 or q8_0"));
  }
  EXPECT_TRUE(Contains(ErrorOf([&] { LoadAdapter("qv", Data("qv"), {DType::kQ4_0}); }),
                       "storage type must be f32, f16 or q8_0, got q4_0"));
}

TEST(Q8Storage, RankNotMultipleOf32KeepsLoraBInF16) {
  // qv has r=8: lora_A [8, 256] is whole blocks, lora_B [n_out, 8] is not.
  const LoraAdapter q8 = LoadAdapter("qv", Data("qv"), {DType::kQ8_0});
  const LoraAdapter f16 = LoadAdapter("qv", Data("qv"), {DType::kF16});
  for (size_t i = 0; i < q8.modules.size(); ++i) {
    EXPECT_EQ(q8.modules[i].a.dtype, DType::kQ8_0);
    EXPECT_EQ(q8.modules[i].b.dtype, DType::kF16);
    EXPECT_EQ(q8.modules[i].b.data, f16.modules[i].b.data);  // exactly the f16 storage
  }
  EXPECT_TRUE(Contains(q8.Describe(),
                       "layers, lora_A q8_0, lora_B f16 (f16 where rows are not whole "
                       "32-value Q8_0 blocks: r=8), "));
  EXPECT_LT(q8.NumBytes(), f16.NumBytes());

  // mlp: r=16, and r=8 by rank_pattern; both listed.
  EXPECT_TRUE(Contains(LoadAdapter("mlp", Data("mlp"), {DType::kQ8_0}).Describe(), "blocks: r=8,16)"));

  // r=32 and r=64: everything Q8_0, 34/128 of the f32 bytes.
  const std::string dir = testing::TempDir();
  auto model = Model::Load(testing::WriteTinyLlamaSafetensors(dir));
  for (int rank : {32, 64}) {
    const LoraAdapter a =
        testing::RandomAdapter(model->config(), "r", rank, 16, {ModuleKind::kQ}, 1, DType::kQ8_0);
    const LoraAdapter f = testing::RandomAdapter(model->config(), "r", rank, 16, {ModuleKind::kQ}, 1);
    EXPECT_EQ(a.modules[0].b.dtype, DType::kQ8_0);
    EXPECT_TRUE(Contains(a.Describe(), "layers, q8_0, "));
    EXPECT_EQ(a.NumBytes() * 128, f.NumBytes() * 34);
  }
  fs::remove_all(dir);
}

class Q8MixerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir();
    model_ = Model::Load(testing::WriteTinyLlamaSafetensors(dir_));
    bank32_ = std::make_unique<AdapterBank>(*model_);
    bank8_ = std::make_unique<AdapterBank>(*model_);
    // The same random values in f32 and in Q8_0; ranks 32 and 64 store
    // lora_B in Q8_0 too. r32a/r32b share q and v (linear modes).
    const std::vector<ModuleKind> attn = {ModuleKind::kQ, ModuleKind::kV, ModuleKind::kO};
    const std::vector<ModuleKind> most = {ModuleKind::kQ,    ModuleKind::kK,  ModuleKind::kV,
                                          ModuleKind::kGate, ModuleKind::kUp, ModuleKind::kDown};
    struct Spec {
      const char* name;
      int rank;
      float alpha;
      std::vector<ModuleKind> kinds;
      uint64_t seed;
    };
    const Spec specs[] = {{"r32a", 32, 16, attn, 1},
                          {"r32b", 32, 64, {ModuleKind::kQ, ModuleKind::kV}, 2},
                          {"r64", 64, 16, most, 3}};
    for (const Spec& s : specs) {
      bank32_->Add(testing::RandomAdapter(model_->config(), s.name, s.rank, s.alpha, s.kinds, s.seed));
      bank8_->Add(
          testing::RandomAdapter(model_->config(), s.name, s.rank, s.alpha, s.kinds, s.seed, DType::kQ8_0));
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<float> Logits(const ProjectionHook* hook, const Model* model = nullptr) {
    return testing::RunLogits(model ? *model : *model_, testing::LoraPromptIds(), hook, pool_);
  }
  std::vector<float> Logits(const AdapterBank& bank, const Mix& mix, MixMode mode, bool int8 = false) {
    LoraMixer mixer(bank, {.mode = mode, .int8_activations = int8});
    mixer.SetMixture(mix);
    return Logits(&mixer);
  }
  // `mix` of `bank` against the same mixture of bank32_.
  void ExpectCloseToF32(const AdapterBank& bank, const Mix& mix, MixMode mode, const std::string& what,
                        bool int8 = false) {
    const std::vector<float> f32 = Logits(*bank32_, mix, mode), got = Logits(bank, mix, mode, int8);
    const float effect = testing::MaxAbsDiff(f32, Logits(nullptr)), diff = testing::MaxAbsDiff(got, f32);
    EXPECT_GT(effect, 0.05f) << what;  // the adapters visibly change the logits
    EXPECT_LE(diff, kQ8RelTol * effect + kQ8AbsTol) << what;
    std::printf("[ q8_0 ] %-34s effect %.3f  |q8_0 - f32| %.2e (%.2f%% of the effect)\n", what.c_str(),
                static_cast<double>(effect), static_cast<double>(diff), 100.0 * diff / effect);
  }
  // The mixer against `tokenlora merge` of the same bank: both use the same
  // dequantized values, so they agree to f32 summation order.
  void ExpectEqualsMerged(const AdapterBank& bank, const Mix& mix, MixMode mode, const std::string& what) {
    const std::string out = dir_ + "/merged_" + std::to_string(++n_merged_);
    MergeMixture(bank, mix, MergeOptions{.mode = mode}, out, pool_);
    auto merged = Model::Load(out);
    EXPECT_LE(testing::MaxAbsDiff(Logits(bank, mix, mode), Logits(nullptr, merged.get())), 1e-4f) << what;
  }

  std::string dir_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<AdapterBank> bank32_, bank8_;
  ThreadPool pool_{4};
  int n_merged_ = 0;
};

TEST_F(Q8MixerTest, EveryModeAndMergeMatchTheF32Path) {
  const Mix exact = {{"r32a", 0.7f}, {"r32b", -0.4f}, {"r64", 1.1f}};  // Q8_0 A and B stacks
  const Mix linear = {{"r32a", 0.6f}, {"r32b", 0.5f}};                 // equal ranks
  ExpectCloseToF32(*bank8_, exact, MixMode::kExact, "exact, 3 adapters");
  ExpectCloseToF32(*bank8_, {{"r64", 1.0f}}, MixMode::kExact, "exact, r64 alone");
  ExpectCloseToF32(*bank8_, linear, MixMode::kPeftLinear, "peft-linear");
  ExpectCloseToF32(*bank8_, linear, MixMode::kPeft04Linear, "peft04-linear");
  ExpectEqualsMerged(*bank8_, exact, MixMode::kExact, "exact");
  ExpectEqualsMerged(*bank8_, linear, MixMode::kPeftLinear, "peft-linear");
  ExpectEqualsMerged(*bank8_, linear, MixMode::kPeft04Linear, "peft04-linear");
}

// Per-token weights in one forward batch against the same tokens one by one.
void ExpectBatchEqualsTokenByToken(const Model& model, const AdapterBank& bank, bool int8, ThreadPool& pool) {
  const std::vector<int32_t> ids = testing::LoraPromptIds();
  const int64_t vocab = model.config().vocab_size;
  std::vector<float> w(ids.size() * kMax, 0.0f);
  for (size_t t = 0; t < ids.size(); ++t) {
    if (t % 3 == 1) continue;  // a base-only token
    w[t * kMax + static_cast<size_t>(bank.Require("r32a"))] = 0.3f + 0.1f * static_cast<float>(t);
    w[t * kMax + static_cast<size_t>(bank.Require("r32b"))] = t % 2 ? -0.5f : 0.0f;
  }
  for (MixMode mode : {MixMode::kExact, MixMode::kPeftLinear, MixMode::kPeft04Linear}) {
    LoraMixer mixer(bank, {.mode = mode, .int8_activations = int8});
    std::vector<float> batched(ids.size() * static_cast<size_t>(vocab)), single(batched.size());
    {
      KvCache kv(model.config(), static_cast<int>(ids.size()));
      LlamaForward forward(model);
      RunWithTokenWeights(forward, mixer, ids, w, kMax, kv, pool, batched.data(), true, 256);
    }
    KvCache kv(model.config(), static_cast<int>(ids.size()));
    LlamaForward forward(model);
    for (size_t t = 0; t < ids.size(); ++t) {
      mixer.SetTokenWeights(std::span(w).subspan(t * kMax, kMax), 1, kMax);
      forward.Run(std::span(ids).subspan(t, 1), kv, {&pool, &mixer}, &single[t * static_cast<size_t>(vocab)],
                  true);
    }
    // f32: summation order only. int8: the prompt's and the decode steps'
    // attention kernels differ in the last bits, and where that moves an
    // activation across a rounding boundary of its int8 block, the product
    // moves by one quantization step (measured: up to 2e-3 here).
    EXPECT_LE(testing::MaxAbsDiff(batched, single), int8 ? 1e-2f : 1e-5f)
        << MixModeName(mode) << (int8 ? " int8" : "");
  }
}

TEST_F(Q8MixerTest, PerTokenWeightsInOneBatchEqualTokenByToken) {
  ExpectBatchEqualsTokenByToken(*model_, *bank8_, /*int8=*/false, pool_);
}

// MixerOptions::int8_activations: A·x and B·z of Q8_0 stacks with the input
// rounded per block of 32 as the weights are (|error| <= amax/254 of its
// block, the same bound as a Q8_0 weight), so the logits stay within the
// Q8_0 tolerance of the f32 path (kQ8RelTol allows twice the aligned worst
// case of the weights' rounding alone); a batch still equals its tokens one
// by one (to an activation rounding step). Stacks that are not Q8_0
// (lora_B of r = 16 in f16) keep f32 activations.
TEST_F(Q8MixerTest, Int8ActivationsStayCloseToF32AndBatchInvariant) {
  if (!kernels::Int8Accelerated()) GTEST_SKIP() << "this CPU has no int8 kernels; the mixer keeps f32";
  const Mix exact = {{"r32a", 0.7f}, {"r32b", -0.4f}, {"r64", 1.1f}};
  const Mix linear = {{"r32a", 0.6f}, {"r32b", 0.5f}};
  ExpectCloseToF32(*bank8_, exact, MixMode::kExact, "int8 exact, 3 adapters", true);
  ExpectCloseToF32(*bank8_, {{"r64", 1.0f}}, MixMode::kExact, "int8 exact, r64 alone", true);
  ExpectCloseToF32(*bank8_, linear, MixMode::kPeftLinear, "int8 peft-linear", true);
  ExpectCloseToF32(*bank8_, linear, MixMode::kPeft04Linear, "int8 peft04-linear", true);
  // f32-stored adapters: their stacks are quantized to Q8_0 panels.
  ExpectCloseToF32(*bank32_, exact, MixMode::kExact, "int8, f32 storage, 3 adapters", true);
  ExpectCloseToF32(*bank32_, linear, MixMode::kPeftLinear, "int8, f32 storage, peft-linear", true);
  // The int8 kernels ran: not the bits of f32 activations.
  EXPECT_GT(testing::MaxAbsDiff(Logits(*bank8_, exact, MixMode::kExact, true),
                                Logits(*bank8_, exact, MixMode::kExact, false)),
            0.0f);
  ExpectBatchEqualsTokenByToken(*model_, *bank8_, /*int8=*/true, pool_);
  bank8_->Add(testing::RandomAdapter(model_->config(), "r16", 16, 32, {ModuleKind::kQ, ModuleKind::kV}, 4,
                                     DType::kQ8_0));  // lora_A Q8_0 (int8), lora_B f16 (f32 activations)
  bank32_->Add(testing::RandomAdapter(model_->config(), "r16", 16, 32, {ModuleKind::kQ, ModuleKind::kV}, 4));
  ExpectCloseToF32(*bank8_, {{"r16", 0.9f}, {"r64", 0.5f}}, MixMode::kExact, "int8, q8_0 A + f16 B", true);
}

// The projections of one input (q, k, v of a layer) through AddDeltaShared
// (one int8 call for all their A products) equal AddDelta one by one, bit
// for bit, with one mixture and with per-token weights of one adapter set.
TEST_F(Q8MixerTest, SharedInputDeltasEqualOneByOne) {
  if (!kernels::Int8Accelerated()) GTEST_SKIP() << "this CPU has no int8 kernels; the mixer keeps f32";
  const LlamaLayer& layer = model_->weights().layers[1];
  const Linear* linears[3] = {&layer.q, &layer.k, &layer.v};
  const int64_t n_tok = 5, d = model_->config().d_model;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n_tok * d));
  for (float& v : x) v = dist(rng);
  LoraMixer mixer(*bank8_, {.int8_activations = true});
  std::vector<float> w(static_cast<size_t>(n_tok) * kMax, 0.0f);
  for (int64_t t = 0; t < n_tok; ++t) {
    w[static_cast<size_t>(t) * kMax + static_cast<size_t>(bank8_->Require("r32a"))] = 0.2f * static_cast<float>(t + 1);
    w[static_cast<size_t>(t) * kMax + static_cast<size_t>(bank8_->Require("r64"))] = -0.7f;
  }
  for (int64_t rows : {int64_t{1}, n_tok}) {
    mixer.SetTokenWeights(std::span(w).first(static_cast<size_t>(rows) * kMax), rows, kMax);
    std::vector<std::vector<float>> shared(3), alone(3);
    float* ys[3];
    for (int i = 0; i < 3; ++i) {
      shared[static_cast<size_t>(i)].assign(static_cast<size_t>(n_tok * linears[i]->n_out()), 0.5f);
      alone[static_cast<size_t>(i)] = shared[static_cast<size_t>(i)];
      ys[i] = shared[static_cast<size_t>(i)].data();
    }
    mixer.AddDeltaShared(linears, ys, 3, x.data(), n_tok, pool_);
    for (int i = 0; i < 3; ++i) mixer.AddDelta(*linears[i], x.data(), n_tok, alone[static_cast<size_t>(i)].data(), pool_);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(shared[static_cast<size_t>(i)], alone[static_cast<size_t>(i)]) << "projection " << i << ", rows " << rows;
      EXPECT_NE(alone[static_cast<size_t>(i)], std::vector<float>(alone[static_cast<size_t>(i)].size(), 0.5f))
          << "projection " << i;  // q and v adapted (k by r64)
    }
  }
}

// Q8_0 adapters beside f32 and f16 ones, and beside Q8_0 adapters whose
// lora_B fell back to f16: those stacks are f32 values, still exact.
TEST_F(Q8MixerTest, MixesWithAdaptersOfOtherStorage) {
  bank8_->Load("qv_f16", Data("qv"), {DType::kF16});
  bank8_->Load("attn_f32", Data("attn"), {DType::kF32});
  bank8_->Add(testing::RandomAdapter(model_->config(), "r16", 16, 32, {ModuleKind::kQ, ModuleKind::kV}, 4,
                                     DType::kQ8_0));  // lora_A Q8_0, lora_B f16
  bank32_->Load("qv_f16", Data("qv"), {DType::kF16});
  bank32_->Load("attn_f32", Data("attn"), {DType::kF32});
  bank32_->Add(testing::RandomAdapter(model_->config(), "r16", 16, 32, {ModuleKind::kQ, ModuleKind::kV}, 4));

  const Mix all = {{"r32a", 0.5f}, {"r64", 0.8f}, {"qv_f16", -0.6f}, {"attn_f32", 0.9f}, {"r16", 0.4f}};
  const Mix q8_only = {{"r32a", 0.5f}, {"r64", 0.8f}, {"r16", -0.7f}};  // Q8_0 A stack, mixed B
  for (const Mix* mix : {&all, &q8_only}) {
    const std::string what = mix == &all ? "q8_0 + f16 + f32 adapters" : "q8_0 r=32/64 + q8_0 r=16";
    ExpectEqualsMerged(*bank8_, *mix, MixMode::kExact, what);
    ExpectCloseToF32(*bank8_, *mix, MixMode::kExact, what);
  }
  // A linear mode across storage: equal ranks, Q8_0 and f16.
  bank8_->Add(testing::RandomAdapter(model_->config(), "r32_f16", 32, 8, {ModuleKind::kQ, ModuleKind::kV}, 5,
                                     DType::kF16));
  bank32_->Add(
      testing::RandomAdapter(model_->config(), "r32_f16", 32, 8, {ModuleKind::kQ, ModuleKind::kV}, 5));
  const Mix linear = {{"r32a", 0.6f}, {"r32_f16", -0.5f}};
  ExpectEqualsMerged(*bank8_, linear, MixMode::kPeftLinear, "peft-linear, q8_0 + f16");
  ExpectCloseToF32(*bank8_, linear, MixMode::kPeftLinear, "peft-linear, q8_0 + f16");
}

TEST_F(Q8MixerTest, WrittenToGgufAsPlainQ8_0WithTheSameValues) {
  // A bound adapter (q rows in the base's order) written and read back.
  const LoraAdapter& r64 = *bank8_->adapter(bank8_->Require("r64"));
  WriteGgufAdapter(r64, model_->config(), dir_ + "/r64.gguf");
  const GgufFile g = GgufFile::Open(dir_ + "/r64.gguf");
  EXPECT_EQ(g.FindTensor("blk.0.attn_q.weight.lora_a")->dtype, DType::kQ8_0);
  EXPECT_EQ(g.FindTensor("blk.0.attn_q.weight.lora_b")->dtype, DType::kQ8_0);
  AdapterBank back(*model_);
  back.Load("r64", dir_ + "/r64.gguf");  // read as f32: the file's values exactly
  const LoraAdapter& read = *back.adapter(0);
  ASSERT_EQ(read.modules.size(), r64.modules.size());
  for (size_t i = 0; i < r64.modules.size(); ++i) {
    EXPECT_EQ(read.modules[i].a.ToF32(), r64.modules[i].a.ToF32()) << i;
    EXPECT_EQ(read.modules[i].b.ToF32(), r64.modules[i].b.ToF32()) << i;
  }
  // PEFT directories get f32 (safetensors has no Q8_0), also the same values.
  WritePeftAdapter(r64, model_->config(), dir_ + "/r64_peft");
  const LoraAdapter peft = LoadAdapter("p", dir_ + "/r64_peft");
  EXPECT_EQ(peft.modules[2].b.ToF32(), r64.modules[2].b.ToF32());

  // convert-adapter --outtype q8_0: .gguf only; lora_B of r=16 stays f16.
  ConvertAdapter(Data("mlp"), dir_ + "/mlp_q8.gguf", *model_, DType::kQ8_0);
  const GgufFile mlp = GgufFile::Open(dir_ + "/mlp_q8.gguf");
  EXPECT_EQ(mlp.FindTensor("blk.0.ffn_up.weight.lora_a")->dtype, DType::kQ8_0);
  EXPECT_EQ(mlp.FindTensor("blk.0.ffn_up.weight.lora_b")->dtype, DType::kF16);
  EXPECT_TRUE(Contains(ErrorOf([&] { ConvertAdapter(Data("qv"), dir_ + "/qv_q8", *model_, DType::kQ8_0); }),
                       "q8_0 tensors need a llama.cpp LoRA .gguf output"));
}

}  // namespace
}  // namespace tokenlora
