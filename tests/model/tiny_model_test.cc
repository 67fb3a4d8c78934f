// Tiny random models (one per architecture, format and weight type) written
// by our own writers, checked against logits from transformers
// (tests/golden/model/tiny_models.json, made by scripts/make_golden_tiny.py).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/mapped_file.h"
#include "model/llama/config.h"
#include "model/llama/forward.h"
#include "model/model.h"
#include "tiny_model.h"
#include "test_util.h"

namespace tokenlora {
namespace {

using testing::TinySpec;

// Writes every tiny model into $TOKENLORA_TINY_EXPORT_DIR for the golden
// script; does nothing in a normal run.
// Head count and embedding length that do not divide are named as such
// (they used to be blamed on rope.dimension_count).
TEST(LlamaConfigErrors, HeadsThatDoNotDivideTheWidthAreNamed) {
  const nlohmann::json base = {{"model_type", "llama"},       {"num_hidden_layers", 2}, {"hidden_size", 100},
                               {"num_attention_heads", 3},   {"intermediate_size", 64}, {"vocab_size", 32},
                               {"rms_norm_eps", 1e-5}};
  try {
    ConfigFromHfJson(base.dump(), "config.json");
    ADD_FAILURE() << "expected InputError";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("hidden_size 100 is not a multiple of num_attention_heads 3"), std::string::npos) << what;
    EXPECT_EQ(what.find("rope"), std::string::npos) << what;
  }
}

TEST(TinyModelExport, WriteAll) {
  const char* dir = std::getenv("TOKENLORA_TINY_EXPORT_DIR");
  if (dir == nullptr) GTEST_SKIP() << "set TOKENLORA_TINY_EXPORT_DIR to export the tiny models";
  std::filesystem::create_directories(dir);
  for (const TinySpec& spec : testing::AllTinySpecs()) testing::WriteTinyModel(spec, dir);
}

const nlohmann::json& Golden() {
  static const nlohmann::json j =
      nlohmann::json::parse(ReadTextFile(testing::SourcePath("tests/golden/model/tiny_models.json")));
  return j;
}

class TinyModelTest : public ::testing::TestWithParam<TinySpec> {};

std::vector<float> AllLogits(const Model& model, const std::vector<int32_t>& ids, int batch) {
  ThreadPool pool(2);
  KvCache kv(model.config(), 64);
  LlamaForward forward(model, batch);
  std::vector<float> logits(ids.size() * static_cast<size_t>(model.config().vocab_size));
  forward.Run(ids, kv, {&pool, nullptr}, logits.data(), true);
  return logits;
}

TEST_P(TinyModelTest, MatchesTransformers) {
  const TinySpec spec = GetParam();
  const nlohmann::json& g = Golden()["models"][spec.Name()];
  ASSERT_FALSE(g.is_null()) << "no golden entry for " << spec.Name();
  const std::string dir = testing::TempDir();
  auto model = Model::Load(testing::WriteTinyModel(spec, dir));
  const std::vector<int32_t> ids = testing::TinyPromptIds();
  const int vocab = model->config().vocab_size;
  const std::vector<float> logits = AllLogits(*model, ids, 256);

  // Weights are dequantized exactly as gguf-py does and activations stay f32,
  // so only the summation order differs from PyTorch: 1e-4 covers it.
  const double kTol = 1e-4;
  const auto& top_ids = g["top_ids"];
  const auto& top_logits = g["top_logits"];
  ASSERT_EQ(top_ids.size(), ids.size());
  for (size_t t = 0; t < ids.size(); ++t) {
    const float* row = &logits[t * static_cast<size_t>(vocab)];
    int best = 0;
    for (int v = 1; v < vocab; ++v) best = row[v] > row[best] ? v : best;
    EXPECT_EQ(best, top_ids[t][0].get<int>()) << spec.Name() << " position " << t;
    for (size_t k = 0; k < top_ids[t].size(); ++k) {
      EXPECT_NEAR(row[top_ids[t][k].get<int>()], top_logits[t][k].get<double>(), kTol)
          << spec.Name() << " position " << t << " rank " << k;
    }
  }
  const auto& last = g["last_logits"];
  ASSERT_EQ(static_cast<int>(last.size()), vocab);
  const float* row = &logits[(ids.size() - 1) * static_cast<size_t>(vocab)];
  for (int v = 0; v < vocab; ++v) EXPECT_NEAR(row[v], last[static_cast<size_t>(v)].get<double>(), kTol) << v;

  // Greedy continuation through the decode path (KV cache, one token a step).
  ThreadPool pool(1);
  KvCache kv(model->config(), 64);
  LlamaForward forward(*model, 256);
  std::vector<float> step(static_cast<size_t>(vocab));
  forward.Run(ids, kv, {&pool, nullptr}, step.data(), false);
  std::vector<int32_t> greedy;
  for (size_t i = 0; i < g["greedy_ids"].size(); ++i) {
    int32_t next = static_cast<int32_t>(std::max_element(step.begin(), step.end()) - step.begin());
    greedy.push_back(next);
    const int32_t one[1] = {next};
    forward.Run(one, kv, {&pool, nullptr}, step.data(), false);
  }
  EXPECT_EQ(greedy, g["greedy_ids"].get<std::vector<int32_t>>()) << spec.Name();
  std::filesystem::remove_all(dir);
}

// The golden values can tell a wrong forward from a right one only if the
// models compute something: a top-1 that just echoes the input token (tied
// embeddings dominating the residual stream) or a greedy run that repeats one
// token would pass with a forward that ignores every layer.
TEST_P(TinyModelTest, GoldenIsNotDegenerate) {
  const TinySpec spec = GetParam();
  const nlohmann::json& g = Golden()["models"][spec.Name()];
  ASSERT_FALSE(g.is_null()) << "no golden entry for " << spec.Name();
  const std::vector<int32_t> ids = testing::TinyPromptIds();
  ASSERT_EQ(g["top_ids"].size(), ids.size());
  size_t echoes = 0;
  for (size_t t = 0; t < ids.size(); ++t) echoes += g["top_ids"][t][0].get<int32_t>() == ids[t];
  EXPECT_LT(2 * echoes, ids.size()) << spec.Name() << ": top-1 is the input token at " << echoes << " of "
                                    << ids.size() << " positions";
  const auto greedy = g["greedy_ids"].get<std::vector<int32_t>>();
  const std::set<int32_t> distinct(greedy.begin(), greedy.end());
  EXPECT_GE(distinct.size(), 3u) << spec.Name() << ": greedy output has " << distinct.size() << " distinct tokens";
}

// Batched prefill equals one token at a time, and splitting the batch does not matter.
TEST_P(TinyModelTest, BatchedEqualsSingle) {
  const TinySpec spec = GetParam();
  const std::string dir = testing::TempDir();
  auto model = Model::Load(testing::WriteTinyModel(spec, dir));
  const std::vector<int32_t> ids = testing::TinyPromptIds();
  const std::vector<float> batched = AllLogits(*model, ids, 256);
  const std::vector<float> single = AllLogits(*model, ids, 1);
  const std::vector<float> split = AllLogits(*model, ids, 5);
  ASSERT_EQ(batched.size(), single.size());
  // The batched kernels may sum in another order than the one-token path:
  // rounding noise through two layers stays far below the 1e-4 golden bound.
  for (size_t i = 0; i < batched.size(); ++i) {
    const double tol = 5e-5;
    ASSERT_NEAR(batched[i], single[i], tol) << i;
    ASSERT_NEAR(batched[i], split[i], tol) << i;
  }
  std::filesystem::remove_all(dir);
}

// Weights copied (or packed) into the huge-page stream buffer compute exactly
// what views into the mapped file compute.
TEST_P(TinyModelTest, StreamBufferChangesNoBit) {
  const TinySpec spec = GetParam();
  const std::string dir = testing::TempDir();
  const std::string path = testing::WriteTinyModel(spec, dir);
  const std::vector<int32_t> ids = testing::TinyPromptIds();
  for (bool int8 : {false, true}) {
    ModelOptions mapped, buffered;
    mapped.int8_activations = buffered.int8_activations = int8;
    mapped.stream_buffer = false;
    buffered.stream_buffer = true;
    auto a = Model::Load(path, mapped);
    auto b = Model::Load(path, buffered);
    EXPECT_EQ(a->int8_projections(), b->int8_projections());
    EXPECT_EQ(AllLogits(*a, ids, 256), AllLogits(*b, ids, 256)) << (int8 ? "int8" : "f32");
  }
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, TinyModelTest, ::testing::ValuesIn(testing::AllTinySpecs()),
                         [](const ::testing::TestParamInfo<TinySpec>& info) { return info.param.Name(); });

}  // namespace
}  // namespace tokenlora
