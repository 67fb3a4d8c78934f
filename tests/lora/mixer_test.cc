// The mixer's identities: weights 0 = the base bit for bit; one-hot = that
// adapter alone; exact mixture = the forward pass of the merged weights;
// per-token weights in one batched prefill = each token run with its own
// weights; rows of different sequences keep their own mixtures. And the
// bank: many adapters, added and removed at run time.
#include "lora/mixer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "lora/adapter_bank.h"
#include "lora/merge.h"
#include "lora_test_util.h"
#include "model/llama/forward.h"
#include "model/project.h"
#include "test_util.h"
#include "tiny_model.h"

namespace tokenlora {
namespace {

namespace fs = std::filesystem;
using testing::Contains;
constexpr int kMax = AdapterBank::kMaxAdapters;

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

class MixerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir();
    model_ = Model::Load(testing::WriteTinyLlamaSafetensors(dir_));
    bank_ = std::make_unique<AdapterBank>(*model_);
    for (const char* name : {"qv", "attn", "mlp", "qv2"}) bank_->Load(name, Data(name));
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<float> Logits(const ProjectionHook* hook, const Model* model = nullptr) {
    return testing::RunLogits(model ? *model : *model_, testing::LoraPromptIds(), hook, pool_);
  }
  // Merges `mix` into a copy of the base and returns that model's logits.
  std::vector<float> MergedLogits(const std::vector<std::pair<std::string, float>>& mix, MixMode mode) {
    const std::string out = dir_ + "/merged_" + std::to_string(++n_merged_);
    MergeMixture(*bank_, mix, MergeOptions{.mode = mode}, out, pool_);
    auto merged = Model::Load(out);
    return Logits(nullptr, merged.get());
  }

  std::string dir_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<AdapterBank> bank_;
  ThreadPool pool_{4};
  int n_merged_ = 0;
};

TEST_F(MixerTest, ZeroWeightsGiveTheBaseBitForBit) {
  const std::vector<float> base = Logits(nullptr);
  LoraMixer mixer(*bank_);
  EXPECT_EQ(Logits(&mixer), base);                                   // no weights set
  mixer.SetMixture({{"qv", 0.0f}, {"attn", 0.0f}, {"mlp", 1e-6f}});  // 1e-6 is below min_weight
  EXPECT_FALSE(mixer.active());
  EXPECT_EQ(std::memcmp(Logits(&mixer).data(), base.data(), base.size() * sizeof(float)), 0);
  mixer.SetMixture({{"qv", 1.0f}});
  EXPECT_NE(Logits(&mixer), base);
  mixer.Clear();
  EXPECT_EQ(Logits(&mixer), base);
}

TEST_F(MixerTest, OneHotIsThatAdapterAlone) {
  for (const char* name : {"qv", "attn", "mlp"}) {
    AdapterBank alone(*model_);
    alone.Load(name, Data(name));
    LoraMixer one(alone);
    one.SetMixture({{name, 1.0f}});
    LoraMixer many(*bank_);
    std::vector<std::pair<std::string, float>> hot;
    for (const std::string& n : bank_->Names()) hot.emplace_back(n, n == name ? 1.0f : 0.0f);
    many.SetMixture(hot);
    EXPECT_EQ(Logits(&many), Logits(&one)) << name;
  }
}

TEST_F(MixerTest, ExactMixtureEqualsMergedWeights) {
  const std::vector<std::pair<std::string, float>> mix = {
      {"qv", 0.7f}, {"attn", -0.4f}, {"mlp", 1.2f}, {"qv2", 0.3f}};
  LoraMixer mixer(*bank_);
  mixer.SetMixture(mix);
  EXPECT_LE(testing::MaxAbsDiff(Logits(&mixer), MergedLogits(mix, MixMode::kExact)), 1e-4f);
  // The linear modes bake in their own ΔW too.
  const std::vector<std::pair<std::string, float>> lin = {{"qv", 0.6f}, {"qv2", -0.4f}};
  for (MixMode mode : {MixMode::kPeftLinear, MixMode::kPeft04Linear}) {
    LoraMixer m(*bank_, {.mode = mode});
    m.SetMixture(lin);
    EXPECT_LE(testing::MaxAbsDiff(Logits(&m), MergedLogits(lin, mode)), 1e-4f) << MixModeName(mode);
  }
}

TEST_F(MixerTest, ExactMixtureEqualsMergedWeightsOnGgufBase) {
  auto gguf = Model::Load(testing::WriteTinyLlamaGgufPermuted(dir_));
  AdapterBank bank(*gguf);
  for (const char* name : {"qv", "attn", "mlp"}) bank.Load(name, Data(name));
  const std::vector<std::pair<std::string, float>> mix = {{"qv", 0.5f}, {"attn", 0.9f}, {"mlp", -0.3f}};
  LoraMixer mixer(bank);
  mixer.SetMixture(mix);
  MergeMixture(bank, mix, {}, dir_ + "/merged.gguf", pool_);
  auto merged = Model::Load(dir_ + "/merged.gguf");
  EXPECT_LE(testing::MaxAbsDiff(Logits(&mixer, gguf.get()), Logits(nullptr, merged.get())), 1e-4f);
}

// Random per-token weights, with some tokens on the base alone and some
// weights under the threshold.
std::vector<float> TokenWeights(size_t n_tok, const std::vector<int>& slots, uint64_t seed) {
  std::vector<float> w(n_tok * kMax, 0.0f);
  for (size_t t = 0; t < n_tok; ++t) {
    if (t % 4 == 2) continue;  // a base-only token
    for (int s : slots) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      const float u = static_cast<float>(seed >> 40) / static_cast<float>(1 << 24);  // [0, 1)
      w[t * kMax + static_cast<size_t>(s)] = u < 0.15f ? 0.0f : 2 * u - 0.8f;
    }
  }
  return w;
}

TEST_F(MixerTest, PerTokenWeightsInOneBatchEqualTokenByToken) {
  const std::vector<int32_t> ids = testing::LoraPromptIds();
  const int64_t vocab = model_->config().vocab_size;
  struct Case {
    MixMode mode;
    std::vector<std::string> names;
  };
  const Case cases[] = {{MixMode::kExact, {"qv", "attn", "mlp", "qv2"}},
                        {MixMode::kPeftLinear, {"qv", "qv2", "mlp"}},  // equal ranks where they meet
                        {MixMode::kPeft04Linear, {"qv", "qv2"}}};
  for (const Case& c : cases) {
    std::vector<int> slots;
    for (const std::string& n : c.names) slots.push_back(bank_->Require(n));
    const std::vector<float> w = TokenWeights(ids.size(), slots, 42);
    LoraMixer mixer(*bank_, {.mode = c.mode});

    std::vector<float> batched(ids.size() * static_cast<size_t>(vocab));
    {
      KvCache kv(model_->config(), static_cast<int>(ids.size()));
      LlamaForward forward(*model_);
      RunWithTokenWeights(forward, mixer, ids, w, kMax, kv, pool_, batched.data(), true, 256);
    }
    std::vector<float> chunked(batched.size());
    {
      KvCache kv(model_->config(), static_cast<int>(ids.size()));
      LlamaForward forward(*model_, 3);
      RunWithTokenWeights(forward, mixer, ids, w, kMax, kv, pool_, chunked.data(), true, 3);
    }
    std::vector<float> single(batched.size());
    {
      KvCache kv(model_->config(), static_cast<int>(ids.size()));
      LlamaForward forward(*model_);
      for (size_t t = 0; t < ids.size(); ++t) {
        mixer.SetTokenWeights(std::span(w).subspan(t * kMax, kMax), 1, kMax);
        forward.Run(std::span(ids).subspan(t, 1), kv, {&pool_, &mixer},
                    &single[t * static_cast<size_t>(vocab)], true);
      }
    }
    EXPECT_LE(testing::MaxAbsDiff(batched, single), 1e-5f) << MixModeName(c.mode);
    EXPECT_LE(testing::MaxAbsDiff(batched, chunked), 1e-5f) << MixModeName(c.mode);
  }
}

TEST_F(MixerTest, RowsOfOneBatchKeepTheirOwnMixtures) {
  // Two sequences in one batch: row 0 mixes qv, row 1 mixes qv2 and attn.
  const Linear& q = model_->weights().layers[1].q;
  const int64_t n_in = q.n_in(), n_out = q.n_out();
  std::vector<float> x(static_cast<size_t>(2 * n_in));
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i));
  std::vector<float> w(2 * kMax, 0.0f);
  w[static_cast<size_t>(bank_->Require("qv"))] = 1.0f;
  w[static_cast<size_t>(kMax + bank_->Require("qv2"))] = 0.5f;
  w[static_cast<size_t>(kMax + bank_->Require("attn"))] = 2.0f;
  LoraMixer mixer(*bank_);
  std::vector<float> both(static_cast<size_t>(2 * n_out));
  mixer.SetTokenWeights(w, 2, kMax);
  Project(q, x.data(), 2, both.data(), {&pool_, &mixer});
  for (int row = 0; row < 2; ++row) {
    std::vector<float> one(static_cast<size_t>(n_out));
    mixer.SetTokenWeights(std::span(w).subspan(static_cast<size_t>(row * kMax), kMax), 1, kMax);
    Project(q, x.data() + row * n_in, 1, one.data(), {&pool_, &mixer});
    const std::vector<float> got(both.begin() + row * n_out, both.begin() + (row + 1) * n_out);
    EXPECT_LE(testing::MaxAbsDiff(got, one), 1e-6f) << "row " << row;
  }
  // A row without adapters keeps the base output bit for bit.
  std::vector<float> base(static_cast<size_t>(n_out)), mixed(static_cast<size_t>(2 * n_out));
  Project(q, x.data() + n_in, 1, base.data(), {&pool_, nullptr});
  std::fill(w.begin(), w.begin() + kMax, 0.0f);
  w[static_cast<size_t>(bank_->Require("qv"))] = 1.0f;
  std::fill(w.begin() + kMax, w.end(), 0.0f);
  mixer.SetTokenWeights(w, 2, kMax);
  Project(q, x.data(), 2, mixed.data(), {&pool_, &mixer});
  EXPECT_EQ(std::memcmp(mixed.data() + n_out, base.data(), base.size() * sizeof(float)), 0);
}

TEST_F(MixerTest, LinearModesNeedEqualRanksWhereAdaptersMeet) {
  LoraMixer mixer(*bank_, {.mode = MixMode::kPeftLinear});
  const std::string msg = ErrorOf([&] { mixer.SetMixture({{"qv", 1.0f}, {"attn", 1.0f}}); });
  EXPECT_TRUE(Contains(msg, "'qv' has r=8 and 'attn' has r=4"));
  EXPECT_TRUE(Contains(msg, "--mix-mode exact"));
  EXPECT_FALSE(mixer.active());
  mixer.SetMixture({{"qv", 1.0f}, {"mlp", 1.0f}});  // no module in common
  EXPECT_TRUE(mixer.active());
}

// Sequences that ask for their own mix mode share a batch: each row is mixed
// in its mode, as in a batch of its own.
TEST_F(MixerTest, RowsOfOneBatchKeepTheirOwnMixModes) {
  const Linear& q = model_->weights().layers[1].q;
  const int64_t n_in = q.n_in(), n_out = q.n_out();
  std::vector<float> x(static_cast<size_t>(3 * n_in));
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.21f * static_cast<float>(i % static_cast<size_t>(n_in)));
  std::vector<float> w(3 * kMax, 0.0f);
  for (int row = 0; row < 3; ++row) {
    w[static_cast<size_t>(row * kMax + bank_->Require("qv"))] = 0.7f;
    w[static_cast<size_t>(row * kMax + bank_->Require("qv2"))] = -0.4f;
  }
  const std::vector<MixMode> modes = {MixMode::kExact, MixMode::kPeft04Linear, MixMode::kPeftLinear};
  LoraMixer mixer(*bank_);
  std::vector<float> all(static_cast<size_t>(3 * n_out));
  mixer.SetTokenWeights(w, 3, kMax, modes);
  Project(q, x.data(), 3, all.data(), {&pool_, &mixer});
  std::vector<float> exact_row;
  for (int row = 0; row < 3; ++row) {
    LoraMixer alone(*bank_, {.mode = modes[static_cast<size_t>(row)]});
    alone.SetTokenWeights(std::span(w).subspan(static_cast<size_t>(row * kMax), kMax), 1, kMax);
    std::vector<float> one(static_cast<size_t>(n_out));
    Project(q, x.data() + row * n_in, 1, one.data(), {&pool_, &alone});
    const std::vector<float> got(all.begin() + row * n_out, all.begin() + (row + 1) * n_out);
    EXPECT_LE(testing::MaxAbsDiff(got, one), 1e-6f) << MixModeName(modes[static_cast<size_t>(row)]);
  }
  // Same input, same weights: the modes differ for a two-adapter mixture
  // (else the test would show nothing).
  const std::vector<float> r0(all.begin(), all.begin() + n_out), r1(all.begin() + n_out, all.begin() + 2 * n_out);
  EXPECT_GT(testing::MaxAbsDiff(r0, r1), 1e-4f);
  // A per-row linear mode checks ranks like the mixer's own mode does.
  std::vector<float> bad(kMax, 0.0f);
  bad[static_cast<size_t>(bank_->Require("qv"))] = 1.0f;
  bad[static_cast<size_t>(bank_->Require("attn"))] = 1.0f;
  const MixMode linear = MixMode::kPeft04Linear;
  EXPECT_TRUE(Contains(ErrorOf([&] { mixer.SetTokenWeights(bad, 1, kMax, std::span(&linear, 1)); }), "r=8"));
  EXPECT_TRUE(Contains(ErrorOf([&] { mixer.CheckWeights(bad, MixMode::kPeft04Linear); }), "r=8"));
  mixer.CheckWeights(bad, MixMode::kExact);
}

// Unloading at run time: a leased adapter is retired, not freed, until its
// last user is done; its slot never changes meaning meanwhile.
TEST_F(MixerTest, RemovedAdapterStaysWhileLeased) {
  const int slot = bank_->Require("qv");
  std::vector<float> w(kMax, 0.0f);
  w[static_cast<size_t>(slot)] = 1.0f;
  LoraMixer mixer(*bank_);
  mixer.SetTokenWeights(w, 1, kMax);
  const std::vector<float> before = Logits(&mixer);

  AdapterBank::Lease lease = bank_->Hold(uint64_t{1} << slot);
  EXPECT_TRUE(lease.holds(slot));
  const uint64_t generation = bank_->generation();
  EXPECT_FALSE(bank_->Remove("qv"));  // held: retired
  EXPECT_EQ(bank_->Find("qv"), -1);
  EXPECT_EQ(bank_->retired(), 1);
  EXPECT_EQ(bank_->size(), 3);
  EXPECT_NE(bank_->adapter(slot), nullptr);
  EXPECT_EQ(bank_->generation(), generation);  // the tables are unchanged
  // The name is free at once; the new adapter takes another slot.
  const int again = bank_->Load("qv", Data("qv"));
  EXPECT_NE(again, slot);
  EXPECT_EQ(bank_->Reclaim(), 0);  // still held
  mixer.SetTokenWeights(w, 1, kMax);
  EXPECT_EQ(Logits(&mixer), before);

  lease = {};
  EXPECT_EQ(bank_->Reclaim(), 1);
  EXPECT_EQ(bank_->adapter(slot), nullptr);
  EXPECT_EQ(bank_->retired(), 0);
  EXPECT_GT(bank_->generation(), generation);
  EXPECT_TRUE(Contains(ErrorOf([&] { mixer.SetTokenWeights(w, 1, kMax); }), "holds no adapter"));
  EXPECT_TRUE(bank_->Remove("qv"));  // nobody holds the new one: freed at once
}

TEST_F(MixerTest, BadWeightsAreRefused) {
  LoraMixer mixer(*bank_);
  EXPECT_TRUE(Contains(ErrorOf([&] {
                         mixer.SetMixture({{"nope", 1.0f}});
                       }),
                       "no adapter named 'nope' is loaded (loaded: 'qv'"));
  EXPECT_TRUE(Contains(ErrorOf([&] { mixer.SetMixture({{"qv", NAN}}); }), "not finite"));
  std::vector<float> w(kMax, 0.0f);
  w[40] = 1.0f;
  EXPECT_TRUE(
      Contains(ErrorOf([&] { mixer.SetTokenWeights(w, 1, kMax); }), "slot 40, which holds no adapter"));
  EXPECT_THROW(ParseMixMode("cat"), InputError);
}

TEST_F(MixerTest, StackCacheEvictionKeepsResults) {
  const std::vector<std::vector<std::pair<std::string, float>>> mixes = {
      {{"qv", 0.5f}, {"attn", 1.0f}},
      {{"qv", 0.5f}, {"qv2", 1.0f}},
      {{"attn", 0.3f}, {"qv2", 0.2f}, {"mlp", 1.0f}}};
  LoraMixer small(*bank_, {.max_cached_sets = 1});
  for (int round = 0; round < 2; ++round) {
    for (const auto& mix : mixes) {
      LoraMixer fresh(*bank_);
      fresh.SetMixture(mix);
      small.SetMixture(mix);
      EXPECT_EQ(Logits(&small), Logits(&fresh));
    }
  }
}

TEST_F(MixerTest, F16StorageStaysCloseToF32) {
  AdapterBank bank16(*model_);
  for (const char* name : {"qv", "attn", "mlp"}) bank16.Load(name, Data(name), {DType::kF16});
  const std::vector<std::pair<std::string, float>> mix = {{"qv", 0.7f}, {"attn", 0.5f}, {"mlp", 0.4f}};
  LoraMixer m32(*bank_), m16(bank16);
  m32.SetMixture(mix);
  m16.SetMixture(mix);
  EXPECT_LE(testing::MaxAbsDiff(Logits(&m32), Logits(&m16)), 2e-3f);
}

TEST_F(MixerTest, ManyAdaptersAddedAndRemovedAtRunTime) {
  AdapterBank bank(*model_);
  const std::vector<ModuleKind> all = {ModuleKind::kQ,    ModuleKind::kK,  ModuleKind::kV,   ModuleKind::kO,
                                       ModuleKind::kGate, ModuleKind::kUp, ModuleKind::kDown};
  std::vector<std::pair<std::string, float>> mix;
  for (int i = 0; i < 40; ++i) {
    std::vector<ModuleKind> kinds;
    for (size_t k = 0; k < all.size(); ++k) {
      if ((i + static_cast<int>(k)) % 3 != 0) kinds.push_back(all[k]);
    }
    const std::string name = "ad" + std::to_string(i);
    EXPECT_EQ(
        bank.Add(testing::RandomAdapter(model_->config(), name, 1 + i % 7, 4.0f + static_cast<float>(i % 5),
                                        kinds, 1000 + static_cast<uint64_t>(i))),
        i);
    mix.emplace_back(name, 0.05f * static_cast<float>(i % 9) - 0.15f);
  }
  EXPECT_EQ(bank.size(), 40);
  auto check = [&](const std::vector<std::pair<std::string, float>>& m) {
    LoraMixer mixer(bank);
    mixer.SetMixture(m);
    const std::string out = dir_ + "/many_" + std::to_string(++n_merged_);
    MergeMixture(bank, m, {}, out, pool_);
    auto merged = Model::Load(out);
    EXPECT_LE(testing::MaxAbsDiff(Logits(&mixer), Logits(nullptr, merged.get())), 1e-4f);
  };
  check(mix);

  // Remove every other adapter; new ones take the lowest free slots.
  const uint64_t generation = bank.generation();
  std::vector<std::pair<std::string, float>> kept;
  for (int i = 0; i < 40; ++i) {
    if (i % 2 == 0) {
      bank.Remove("ad" + std::to_string(i));
    } else {
      kept.push_back(mix[static_cast<size_t>(i)]);
    }
  }
  EXPECT_GT(bank.generation(), generation);
  EXPECT_EQ(bank.Add(testing::RandomAdapter(model_->config(), "late", 5, 10, {ModuleKind::kV}, 7)), 0);
  kept.emplace_back("late", 0.8f);
  check(kept);
  EXPECT_TRUE(Contains(ErrorOf([&] { bank.Remove("ad0"); }), "no adapter named 'ad0'"));
  EXPECT_TRUE(Contains(
      ErrorOf([&] { bank.Add(testing::RandomAdapter(model_->config(), "late", 2, 2, {ModuleKind::kQ}, 1)); }),
      "already loaded"));
  for (int i = 0; bank.size() < kMax; ++i) {
    bank.Add(testing::RandomAdapter(model_->config(), "fill" + std::to_string(i), 1, 1, {ModuleKind::kQ}, 1));
  }
  EXPECT_TRUE(Contains(ErrorOf([&] {
                         bank.Add(
                             testing::RandomAdapter(model_->config(), "one_more", 1, 1, {ModuleKind::kQ}, 1));
                       }),
                       "all 64 adapter slots are in use"));
}

TEST_F(MixerTest, MergeIntoQuantizedBase) {
  auto q8 = Model::Load(testing::WriteTinyModel({"llama", "gguf", DType::kQ8_0}, dir_));
  AdapterBank bank(*q8);
  bank.Load("mlp", Data("mlp"));
  LoraMixer mixer(bank);
  mixer.SetMixture({{"mlp", 1.0f}});
  const std::vector<float> want = Logits(&mixer, q8.get()), base = Logits(nullptr, q8.get());
  // Re-quantized to Q8_0 (the default) or kept as F16.
  MergeMixture(bank, {{"mlp", 1.0f}}, {}, dir_ + "/q8.gguf", pool_);
  MergeMixture(bank, {{"mlp", 1.0f}}, {.merged_type = DType::kF16}, dir_ + "/f16.gguf", pool_);
  auto mq8 = Model::Load(dir_ + "/q8.gguf"), mf16 = Model::Load(dir_ + "/f16.gguf");
  EXPECT_EQ(mq8->weights().layers[0].down.weight.dtype, DType::kQ8_0);
  EXPECT_EQ(mf16->weights().layers[0].down.weight.dtype, DType::kF16);
  EXPECT_EQ(mf16->weights().layers[0].q.weight.dtype, DType::kQ8_0);  // untouched projections are copied
  const float d_base = testing::MaxAbsDiff(want, base);
  EXPECT_LE(testing::MaxAbsDiff(want, Logits(nullptr, mf16.get())), 5e-3f);
  EXPECT_LE(testing::MaxAbsDiff(want, Logits(nullptr, mq8.get())), 0.1f * d_base);
  EXPECT_TRUE(Contains(ErrorOf([&] {
                         MergeMixture(bank, {{"mlp", 1.0f}}, {}, dir_ + "/x.safetensors", pool_);
                       }),
                       "must be a .gguf file"));
}

}  // namespace
}  // namespace tokenlora
